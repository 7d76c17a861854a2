//! The bounds an attacker meets first: how many sockets, held seats and
//! private rooms one address may hold (and the process in all), how fast
//! one address may try things (room codes, TLS handshakes), and how many
//! messages one connection may send.
//!
//! Every per-address figure counts an [`AddressKey`]: an IPv4 address, or an
//! IPv6 address cut to its routing prefix (a /64 by default), since one
//! subscriber gets a whole /64 and could otherwise take a new address per
//! connection.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// What the per-address budgets count: an IPv4 address (a /32), or the first
/// `prefix` bits of an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AddressKey(IpAddr, u8);

impl AddressKey {
    /// The key of `ip` when IPv6 peers are counted by `/v6_prefix`. An
    /// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) counts as its IPv4 one.
    pub fn new(ip: IpAddr, v6_prefix: u8) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4), 32),
            IpAddr::V6(v6) => {
                let bits = u32::from(v6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                AddressKey(IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)), v6_prefix.min(128))
            }
        }
    }

    pub fn is_loopback(self) -> bool {
        self.0.is_loopback()
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/{}", self.1),
        }
    }
}

/// An address block, `10.0.0.0/8` or `::1/128` (a bare address is a
/// block of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// 127.0.0.0/8 and ::1/128: a proxy on this machine.
    pub fn loopback() -> Vec<Cidr> {
        vec![
            Cidr { network: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), prefix: 8 },
            Cidr { network: IpAddr::V6(Ipv6Addr::LOCALHOST), prefix: 128 },
        ]
    }

    /// Whether `ip` is inside the block (an IPv4-mapped IPv6 address counts
    /// as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = "is not an address or CIDR block; expected e.g. 10.0.0.0/8, 192.168.1.5 or fd00::/8";
        let (address, prefix) = text.split_once('/').map_or((text, None), |(a, p)| (a, Some(p)));
        let network: IpAddr = address.parse().map_err(|_| expected.to_owned())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= bits).ok_or_else(|| expected.to_owned())?,
        };
        Ok(Cidr { network, prefix })
    }
}

/// How peers are counted: the IPv6 prefix, and whether loopback peers (bots
/// and a reverse proxy on this machine) are held to the per-address limits.
#[derive(Debug, Clone, Copy)]
pub struct Counting {
    pub v6_prefix: u8,
    pub limit_loopback: bool,
}

impl Counting {
    /// The key `ip` is counted under, or `None` for an exempt loopback peer.
    pub fn key(self, ip: IpAddr) -> Option<AddressKey> {
        let key = AddressKey::new(ip, self.v6_prefix);
        (self.limit_loopback || !key.is_loopback()).then_some(key)
    }
}

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

/// Counts things held open (sockets, held seats, private rooms, TLS
/// handshakes in flight), in all and per address; a [`Slot`] is one of them.
#[derive(Debug)]
pub struct AddressCaps {
    max_total: usize,
    max_per_address: usize,
    counting: Counting,
    open: Mutex<Open>,
    /// Wakes [`AddressCaps::acquire_by`] waiters when a place is freed.
    freed: tokio::sync::Notify,
}

/// The connection caps are address caps over sockets.
pub type ConnectionLimits = AddressCaps;
/// One socket's place under the connection caps.
pub type ConnectionSlot = Slot;

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<AddressKey, usize>,
}

/// One place under an [`AddressCaps`]; dropping it frees the place. For a
/// socket, the HTTP connection and, after an upgrade, the WebSocket task
/// share it.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<AddressCaps>,
    /// The address counted against the per-address cap, if any.
    key: Option<AddressKey>,
}

impl AddressCaps {
    pub fn new(max_total: usize, max_per_address: usize, counting: Counting) -> Arc<Self> {
        Arc::new(AddressCaps {
            max_total,
            max_per_address,
            counting,
            open: Mutex::new(Open::default()),
            freed: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // Only counters live here and nothing panics while holding the lock.
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a place for `ip`, or says which cap is full.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, CapExceeded> {
        let mut open = self.lock();
        if open.total >= self.max_total {
            return Err(CapExceeded::Total(self.max_total));
        }
        let counted = self.counting.key(ip);
        if let Some(key) = counted {
            // Checked before an entry is made: a refused address leaves nothing behind.
            if open.per_address.get(&key).copied().unwrap_or(0) >= self.max_per_address {
                return Err(CapExceeded::PerIp(self.max_per_address));
            }
            *open.per_address.entry(key).or_insert(0) += 1;
        }
        open.total += 1;
        Ok(Slot { limits: self.clone(), key: counted })
    }

    /// Takes a place for `ip`, waiting for one to be freed until
    /// `deadline`; then says which cap was full. Woken by each freed place,
    /// never polling.
    pub async fn acquire_by(self: &Arc<Self>, ip: IpAddr, deadline: Instant) -> Result<Slot, CapExceeded> {
        loop {
            // Registered before trying, so a place freed in between wakes it.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let full = match self.try_acquire(ip) {
                Ok(slot) => return Ok(slot),
                Err(full) => full,
            };
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(full);
            }
        }
    }

    /// Places taken right now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// Distinct addresses holding a place (the per-address map's size).
    pub fn addresses(&self) -> usize {
        self.lock().per_address.len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.lock();
        open.total -= 1;
        if let Some(key) = self.key
            && let Some(count) = open.per_address.get_mut(&key)
        {
            *count -= 1;
            if *count == 0 {
                open.per_address.remove(&key);
            }
        }
        drop(open);
        self.limits.freed.notify_waiters();
    }
}

/// A token bucket: `per_sec` refill up to `burst`.
#[derive(Debug)]
pub struct RateBudget {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

/// Seconds of traffic at the full rate a connection's bucket holds.
const BURST_SECS: f64 = 3.0;

impl RateBudget {
    /// A connection's message budget: a real client sends about 32 messages
    /// a second (30 input batches, 2 pings; one that sends each input alone,
    /// 62); the burst absorbs what a network stall delivers at once.
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec);
        Self::with_burst(per_sec, per_sec * BURST_SECS)
    }

    /// A full bucket of `burst` tokens refilling at `per_sec`.
    pub fn with_burst(per_sec: f64, burst: f64) -> Self {
        RateBudget { per_sec, burst, tokens: burst, updated: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        let refill = now.saturating_duration_since(self.updated).as_secs_f64() * self.per_sec;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.updated = now;
    }

    /// Spends one message; `false` once the client has sent more than the
    /// rate allows over any window longer than the burst.
    pub fn spend(&mut self) -> bool {
        self.refill(Instant::now());
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until a token is there (zero if one is).
    fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec)
        }
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// Addresses a [`PerAddressBudget`] tracks at most. Past it, buckets that
/// have refilled are forgotten (they are the same as new ones); if none has,
/// newcomers are refused until some do, so memory stays bounded under a
/// flood from many addresses.
const MAX_TRACKED_ADDRESSES: usize = 65_536;

/// A [`RateBudget`] per address: how often one address may try something
/// (a room code, a TLS handshake), `burst` at once then `per_sec`.
#[derive(Debug)]
pub struct PerAddressBudget {
    per_sec: f64,
    burst: f64,
    counting: Counting,
    buckets: Mutex<Buckets>,
}

/// The tracked addresses, and when refilled ones were last swept out.
#[derive(Debug, Default)]
struct Buckets {
    by_address: HashMap<AddressKey, RateBudget>,
    /// A sweep walks the whole table: at most one per [`SWEEP_EVERY`], so
    /// a flood of newcomers at a full table costs O(1) each, not O(n).
    swept_at: Option<Instant>,
    sweeps: u64,
}

/// How often a full table may be swept for refilled buckets.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A budget said no: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverBudget {
    pub retry_after: Duration,
}

impl PerAddressBudget {
    pub fn new(per_sec: f64, burst: f64, counting: Counting) -> Self {
        PerAddressBudget { per_sec, burst, counting, buckets: Mutex::new(Buckets::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets> {
        // Plain map operations: nothing panics while the lock is held.
        self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `ip` has a try left, without spending it.
    pub fn check(&self, ip: IpAddr) -> Result<(), OverBudget> {
        let Some(key) = self.counting.key(ip) else { return Ok(()) };
        let now = Instant::now();
        let mut buckets = self.lock();
        match buckets.by_address.get_mut(&key) {
            None => Ok(()),
            Some(bucket) => match bucket.wait(now) {
                Duration::ZERO => Ok(()),
                retry_after => Err(OverBudget { retry_after }),
            },
        }
    }

    /// Spends one try of `ip`'s, or says when the next one is.
    pub fn spend(&self, ip: IpAddr) -> Result<(), OverBudget> {
        let Some(key) = self.counting.key(ip) else { return Ok(()) };
        let now = Instant::now();
        let mut guard = self.lock();
        let buckets = &mut *guard;
        if !buckets.by_address.contains_key(&key) && buckets.by_address.len() >= MAX_TRACKED_ADDRESSES {
            if buckets.swept_at.is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY) {
                buckets.by_address.retain(|_, bucket| !bucket.is_full(now));
                buckets.swept_at = Some(now);
                buckets.sweeps += 1;
            }
            if buckets.by_address.len() >= MAX_TRACKED_ADDRESSES {
                return Err(OverBudget { retry_after: SWEEP_EVERY });
            }
        }
        let bucket =
            buckets.by_address.entry(key).or_insert_with(|| RateBudget::with_burst(self.per_sec, self.burst));
        match bucket.wait(now) {
            Duration::ZERO => {
                bucket.tokens -= 1.0;
                Ok(())
            }
            retry_after => Err(OverBudget { retry_after }),
        }
    }

    /// Addresses tracked right now.
    pub fn tracked(&self) -> usize {
        self.lock().by_address.len()
    }

    /// Sweeps of a full table so far.
    pub fn sweeps(&self) -> u64 {
        self.lock().sweeps
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Duration;

    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
    const COUNT: Counting = Counting { v6_prefix: 64, limit_loopback: false };

    fn address(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn v6(text: &str) -> IpAddr {
        text.parse().expect("an IPv6 address")
    }

    #[test]
    fn caps_count_per_address_and_in_all_and_free_on_drop() {
        let limits = ConnectionLimits::new(3, 2, COUNT);
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
        let limits = ConnectionLimits::new(10, 10, COUNT);
        let slots: Vec<_> = (0..5).map(|_| limits.try_acquire(A).expect("fits")).collect();
        assert_eq!(limits.addresses(), 1);
        drop(slots);
        assert_eq!((limits.open(), limits.addresses()), (0, 0), "the per-IP map should not grow forever");
    }

    #[test]
    fn loopback_counts_only_in_the_total_unless_asked() {
        let local = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let exempt = ConnectionLimits::new(5, 1, COUNT);
        let slots: Vec<_> =
            (0..5).map(|_| exempt.try_acquire(local).expect("loopback is not held to 1")).collect();
        assert_eq!(exempt.try_acquire(local).err(), Some(CapExceeded::Total(5)), "but the total holds");
        drop(slots);
        let strict = ConnectionLimits::new(5, 1, Counting { limit_loopback: true, ..COUNT });
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

    #[test]
    fn ipv6_peers_count_by_prefix_and_ipv4_by_address() {
        let limits = ConnectionLimits::new(100, 2, COUNT);
        let _one = limits.try_acquire(v6("2001:db8:1:2::1")).expect("first in the /64");
        let _two = limits.try_acquire(v6("2001:db8:1:2:ffff::9")).expect("second in the /64");
        assert_eq!(
            limits.try_acquire(v6("2001:db8:1:2:dead:beef:0:1")).err(),
            Some(CapExceeded::PerIp(2)),
            "a third address in the same /64 should count as the same peer"
        );
        let _other = limits.try_acquire(v6("2001:db8:1:3::1")).expect("the next /64 is another peer");
        let mapped = v6("::ffff:10.0.0.1");
        let _a = limits.try_acquire(A).expect("A");
        let _mapped = limits.try_acquire(mapped).expect("A again, IPv4-mapped");
        assert_eq!(limits.try_acquire(A).err(), Some(CapExceeded::PerIp(2)), "mapped counts as IPv4");
        assert_eq!(
            AddressKey::new(v6("2001:db8::1"), 128),
            AddressKey::new(v6("2001:db8::1"), 128),
            "/128 keeps whole addresses"
        );
        assert_ne!(AddressKey::new(v6("2001:db8::1"), 128), AddressKey::new(v6("2001:db8::2"), 128));
        assert_eq!(AddressKey::new(v6("2001:db8:aaaa::1"), 32).to_string(), "2001:db8::/32");
        assert_eq!(
            AddressKey::new(v6("2001:db8::1"), 0),
            AddressKey::new(v6("fe80::1"), 0),
            "/0 is one peer"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_per_address_budget_allows_its_burst_then_its_rate_per_address() {
        let budget = PerAddressBudget::new(0.5, 3.0, COUNT);
        assert!((0..3).all(|_| budget.spend(A).is_ok()), "the burst passes");
        let refused = budget.spend(A).expect_err("the 4th at once is refused");
        assert_eq!(refused.retry_after, Duration::from_secs(2), "says when to come back");
        assert!(budget.check(A).is_err(), "check agrees without spending");
        assert!(budget.spend(B).is_ok(), "another address has its own budget");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(budget.check(A).is_ok() && budget.spend(A).is_ok(), "one try back after 2 s");
        assert!(budget.spend(A).is_err());
        let local = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        assert!((0..100).all(|_| budget.spend(local).is_ok()), "loopback is exempt unless asked");
        assert_eq!(budget.tracked(), 2, "exempt peers are not tracked");
    }

    #[tokio::test(start_paused = true)]
    async fn a_per_address_budget_forgets_refilled_addresses_when_full() {
        let budget = PerAddressBudget::new(1.0, 1.0, COUNT);
        for n in 0..MAX_TRACKED_ADDRESSES as u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + n));
            assert!(budget.spend(ip).is_ok());
        }
        let newcomer = IpAddr::V4(std::net::Ipv4Addr::new(12, 0, 0, 1));
        assert!(budget.spend(newcomer).is_err(), "a full table refuses newcomers rather than grow");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(budget.spend(newcomer).is_ok(), "refilled buckets are forgotten to make room");
        assert_eq!(budget.tracked(), 1, "every refilled bucket went");
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_newcomers_at_a_full_table_sweeps_it_once_a_second_not_once_each() {
        // Buckets that take 10 s to refill: none is forgettable for a while.
        let budget = PerAddressBudget::new(0.1, 1.0, COUNT);
        for n in 0..MAX_TRACKED_ADDRESSES as u32 {
            assert!(budget.spend(IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + n))).is_ok());
        }
        for n in 0..5_000u32 {
            let refused = budget.spend(IpAddr::V4(std::net::Ipv4Addr::from(0x0c00_0000 + n)));
            assert_eq!(refused, Err(OverBudget { retry_after: SWEEP_EVERY }), "the table is full");
        }
        assert_eq!(budget.sweeps(), 1, "5,000 newcomers within a second cost one sweep");
        tokio::time::advance(SWEEP_EVERY).await;
        assert!(budget.spend(IpAddr::V4(std::net::Ipv4Addr::new(13, 0, 0, 1))).is_err());
        assert_eq!(budget.sweeps(), 2, "and one more a second later");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_acquire_takes_a_freed_place_at_once_and_gives_up_at_its_deadline() {
        let caps = AddressCaps::new(1, 1, COUNT);
        let held = caps.try_acquire(A).expect("the one place");
        let started = Instant::now();
        let waiter = tokio::spawn({
            let caps = caps.clone();
            async move { caps.acquire_by(B, started + Duration::from_secs(5)).await.map(|_| Instant::now()) }
        });
        tokio::time::advance(Duration::from_millis(1_234)).await;
        drop(held);
        let got_at = waiter.await.expect("joined").expect("the freed place");
        assert_eq!(got_at - started, Duration::from_millis(1_234), "woken by the free, not by a poll");
        let _taken = caps.try_acquire(A).expect("free again");
        let refused = caps.acquire_by(B, Instant::now() + Duration::from_secs(2)).await;
        assert_eq!(refused.err(), Some(CapExceeded::Total(1)), "nothing freed before the deadline");
        assert_eq!(Instant::now() - got_at, Duration::from_secs(2));
    }

    #[test]
    fn a_cap_of_zero_refuses_without_remembering_the_address() {
        let held = AddressCaps::new(100, 0, COUNT);
        for n in 0..1_000u32 {
            let refused = held.try_acquire(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n)));
            assert_eq!(refused.err(), Some(CapExceeded::PerIp(0)));
        }
        assert_eq!(held.addresses(), 0, "refused addresses leave no entry behind");
    }

    #[test]
    fn blocks_parse_and_explain_mistakes() {
        let block: Cidr = "10.1.0.0/16".parse().expect("a block");
        assert!(block.contains(address("10.1.255.3")) && !block.contains(address("10.2.0.1")));
        assert!(!block.contains(address("::1")), "families never mix");
        let one: Cidr = "192.168.1.5".parse().expect("an address");
        assert!(one.contains(address("192.168.1.5")) && !one.contains(address("192.168.1.6")));
        let v6_block: Cidr = "fd00::/8".parse().expect("a v6 block");
        assert!(v6_block.contains(address("fdab::1")) && !v6_block.contains(address("fe80::1")));
        let all: Cidr = "0.0.0.0/0".parse().expect("everything");
        assert!(all.contains(address("8.8.8.8")));
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
            let err = bad.parse::<Cidr>().expect_err(bad);
            assert!(err.contains("CIDR"), "{bad}: {err}");
        }
    }
}
