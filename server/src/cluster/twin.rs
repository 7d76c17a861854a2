//! The cluster's Redis in memory, for the steward's tests: the same rules
//! as the Lua scripts in [`super::lease`] and [`super::listing`] (only the
//! exact holder renews, saves, hands over, releases or forgets; epochs only
//! grow; leases lapse by their TTL), on this process's clock, with a switch
//! that makes every call fail as a Redis that is away does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lease::{Lease, LeaseStore};
use super::listing::Listing;
use super::redis::RedisError;

#[derive(Default)]
struct Keys {
    leases: HashMap<String, (Lease, Instant)>,
    epochs: HashMap<String, u64>,
    states: HashMap<String, Vec<u8>>,
    listings: HashMap<String, Listing>,
}

impl Keys {
    /// `code`'s lease if it has not lapsed.
    fn lease(&mut self, code: &str) -> Option<Lease> {
        match self.leases.get(code) {
            Some((lease, until)) if Instant::now() < *until => Some(lease.clone()),
            _ => {
                self.leases.remove(code);
                None
            }
        }
    }

    fn holds(&mut self, code: &str, lease: &Lease) -> bool {
        self.lease(code).as_ref() == Some(lease)
    }

    fn next_epoch(&mut self, code: &str, floor: u64) -> u64 {
        let epoch = self.epochs.entry(code.to_owned()).or_default();
        *epoch = (*epoch + 1).max(floor + 1);
        *epoch
    }
}

/// Redis's rules, in memory; clones share the keys.
#[derive(Default, Clone)]
pub struct Twin {
    keys: Arc<Mutex<Keys>>,
    away: Arc<AtomicBool>,
}

impl Twin {
    /// Every call fails from now on (`true`), or answers again.
    pub fn set_away(&self, away: bool) {
        self.away.store(away, SeqCst);
    }

    /// Sets `code`'s lease as another node would: `node` under a new epoch.
    pub fn take(&self, code: &str, node: &str, ttl: Duration) -> Lease {
        let mut keys = self.lock();
        let epoch = keys.next_epoch(code, 0);
        let lease = Lease { epoch, node: node.to_owned() };
        keys.leases.insert(code.to_owned(), (lease.clone(), Instant::now() + ttl));
        lease
    }

    /// Everything is gone, as after a restart of a Redis that saves nothing.
    pub fn flush(&self) {
        *self.lock() = Keys::default();
    }

    /// `code`'s lease now.
    pub fn lease(&self, code: &str) -> Option<Lease> {
        self.lock().lease(code)
    }

    /// `code`'s saved state.
    pub fn state(&self, code: &str) -> Option<Vec<u8>> {
        self.lock().states.get(code).cloned()
    }

    /// Whether `code` is listed.
    pub fn listed(&self, code: &str) -> bool {
        self.lock().listings.contains_key(code)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the keys, or fails as an absent Redis does.
    fn call<T>(&self, f: impl FnOnce(&mut Keys) -> T) -> Result<T, RedisError> {
        if self.away.load(SeqCst) {
            return Err(RedisError::Timeout(Duration::ZERO));
        }
        Ok(f(&mut self.lock()))
    }
}

impl LeaseStore for Twin {
    async fn renew(&self, code: &str, lease: &Lease, ttl: Duration) -> Result<bool, RedisError> {
        self.call(|keys| {
            let held = keys.holds(code, lease);
            if held {
                keys.leases.insert(code.to_owned(), (lease.clone(), Instant::now() + ttl));
            }
            held
        })
    }

    async fn owner(&self, code: &str) -> Result<Option<Lease>, RedisError> {
        self.call(|keys| keys.lease(code))
    }

    async fn claim_above(
        &self,
        code: &str,
        node: &str,
        ttl: Duration,
        floor: u64,
    ) -> Result<Option<u64>, RedisError> {
        self.call(|keys| {
            if keys.lease(code).is_some() {
                return None;
            }
            let epoch = keys.next_epoch(code, floor);
            let lease = Lease { epoch, node: node.to_owned() };
            keys.leases.insert(code.to_owned(), (lease, Instant::now() + ttl));
            Some(epoch)
        })
    }

    async fn transfer(
        &self,
        code: &str,
        lease: &Lease,
        node: &str,
        ttl: Duration,
        state: &[u8],
    ) -> Result<Option<u64>, RedisError> {
        self.call(|keys| {
            if !keys.holds(code, lease) {
                return None;
            }
            let epoch = keys.next_epoch(code, 0);
            keys.states.insert(code.to_owned(), state.to_vec());
            let to = Lease { epoch, node: node.to_owned() };
            keys.leases.insert(code.to_owned(), (to, Instant::now() + ttl));
            Some(epoch)
        })
    }

    async fn save(
        &self,
        code: &str,
        lease: &Lease,
        state: &[u8],
        _keep: Duration,
    ) -> Result<bool, RedisError> {
        self.call(|keys| {
            let held = keys.holds(code, lease);
            if held {
                keys.states.insert(code.to_owned(), state.to_vec());
            }
            held
        })
    }

    async fn release(&self, code: &str, lease: &Lease) -> Result<bool, RedisError> {
        self.call(|keys| keys.holds(code, lease) && keys.leases.remove(code).is_some())
    }

    async fn forget(&self, code: &str, lease: &Lease) -> Result<bool, RedisError> {
        self.call(|keys| {
            if !keys.holds(code, lease) {
                return false;
            }
            keys.states.remove(code);
            keys.listings.remove(code);
            keys.epochs.remove(code);
            keys.leases.remove(code).is_some()
        })
    }

    async fn publish(&self, listing: &Listing, lease: &Lease, _ttl: Duration) -> Result<bool, RedisError> {
        self.call(|keys| {
            let held = keys.holds(&listing.code, lease);
            if held {
                keys.listings.insert(listing.code.clone(), listing.clone());
            }
            held
        })
    }
}
