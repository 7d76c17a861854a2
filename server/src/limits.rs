//! The bounds an attacker meets first: how many sockets the process holds
//! (in all and per address) and how many messages one connection may send.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

/// Which cap refused a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapExceeded {
    /// The process holds `--max-connections` sockets.
    Total(usize),
    /// This address holds `--max-connections-per-ip` sockets.
    PerIp(usize),
}

impl CapExceeded {
    /// The sentence sent in the 503's body.
    pub fn message(self) -> String {
        match self {
            CapExceeded::Total(max) => {
                format!("the server holds its limit of {max} connections; try again soon")
            }
            CapExceeded::PerIp(max) => {
                format!("your address holds its limit of {max} connections; close some and try again")
            }
        }
    }
}

/// Counts open connections, in all and per remote address.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    /// Whether loopback peers (bots and a reverse proxy on this machine)
    /// are held to `max_per_ip` too; by default they count only in the total.
    limit_loopback: bool,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One open connection's place under the caps; dropping it frees the place.
/// The HTTP connection and, after an upgrade, the WebSocket task share it.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    /// The address counted against the per-address cap, if any.
    ip: Option<IpAddr>,
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_ip: usize, limit_loopback: bool) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_total,
            max_per_ip,
            limit_loopback,
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // Only counters live here and nothing panics while holding the lock.
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a place for a connection from `ip`, or says which cap is full.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, CapExceeded> {
        let mut open = self.lock();
        if open.total >= self.max_total {
            return Err(CapExceeded::Total(self.max_total));
        }
        let counted = (self.limit_loopback || !ip.is_loopback()).then_some(ip);
        if let Some(ip) = counted {
            let from_ip = open.per_ip.entry(ip).or_insert(0);
            if *from_ip >= self.max_per_ip {
                return Err(CapExceeded::PerIp(self.max_per_ip));
            }
            *from_ip += 1;
        }
        open.total += 1;
        Ok(ConnectionSlot { limits: self.clone(), ip: counted })
    }

    /// Connections open right now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// Distinct addresses with a connection open (the per-IP map's size).
    pub fn addresses(&self) -> usize {
        self.lock().per_ip.len()
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        open.total -= 1;
        if let Some(ip) = self.ip
            && let Some(count) = open.per_ip.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                open.per_ip.remove(&ip);
            }
        }
    }
}

/// A token bucket over a connection's messages, control frames included.
/// A real client sends about 32 messages a second (30 input batches, 2
/// pings; a client that sends each input alone, 62); the burst absorbs what a
/// network stall delivers at once.
#[derive(Debug)]
pub struct RateBudget {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

/// Seconds of traffic at the full rate the bucket holds.
const BURST_SECS: f64 = 3.0;

impl RateBudget {
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec);
        let burst = per_sec * BURST_SECS;
        RateBudget { per_sec, burst, tokens: burst, updated: Instant::now() }
    }

    /// Spends one message; `false` once the client has sent more than the
    /// rate allows over any window longer than the burst.
    pub fn spend(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.saturating_duration_since(self.updated).as_secs_f64() * self.per_sec;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Duration;

    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn caps_count_per_address_and_in_all_and_free_on_drop() {
        let limits = ConnectionLimits::new(3, 2, false);
        let a1 = limits.try_acquire(A).expect("first from A fits");
        let _a2 = limits.try_acquire(A).expect("second from A fits");
        assert_eq!(
            limits.try_acquire(A).err(),
            Some(CapExceeded::PerIp(2)),
            "third from A should be refused"
        );
        let _b1 = limits.try_acquire(B).expect("B has its own count");
        assert_eq!(limits.try_acquire(B).err(), Some(CapExceeded::Total(3)), "the total cap should hold");
        drop(a1);
        assert_eq!(limits.open(), 2, "a dropped slot should free its place");
        let _b2 = limits.try_acquire(B).expect("a freed place can be taken");
    }

    #[test]
    fn an_address_with_nothing_open_is_forgotten() {
        let limits = ConnectionLimits::new(10, 10, false);
        let slots: Vec<_> = (0..5).map(|_| limits.try_acquire(A).expect("fits")).collect();
        assert_eq!(limits.addresses(), 1);
        drop(slots);
        assert_eq!((limits.open(), limits.addresses()), (0, 0), "the per-IP map should not grow forever");
    }

    #[test]
    fn loopback_counts_only_in_the_total_unless_asked() {
        let local = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let exempt = ConnectionLimits::new(5, 1, false);
        let slots: Vec<_> =
            (0..5).map(|_| exempt.try_acquire(local).expect("loopback is not held to 1")).collect();
        assert_eq!(exempt.try_acquire(local).err(), Some(CapExceeded::Total(5)), "but the total holds");
        drop(slots);
        let strict = ConnectionLimits::new(5, 1, true);
        let _one = strict.try_acquire(local).expect("first fits");
        assert_eq!(strict.try_acquire(local).err(), Some(CapExceeded::PerIp(1)), "--limit-loopback");
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_allows_a_burst_then_the_rate() {
        let mut budget = RateBudget::new(100);
        assert!((0..300).all(|_| budget.spend()), "a 3 s burst should pass");
        assert!(!budget.spend(), "the 301st message at once should not");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!((0..10).all(|_| budget.spend()), "100 ms refills 10 messages");
        assert!(!budget.spend());
    }

    #[tokio::test(start_paused = true)]
    async fn an_honest_client_never_runs_dry() {
        let mut budget = RateBudget::new(120);
        // 60 inputs and 2 pings a second for a minute.
        for _ in 0..60 * 62 {
            tokio::time::advance(Duration::from_micros(1_000_000 / 62)).await;
            assert!(budget.spend(), "62 messages a second should always pass");
        }
    }
}
