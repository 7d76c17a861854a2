//! A room's right to run, by this process's own clock: a [`Fence`] holds
//! until a deadline that each renewal of the room's lease pushes back (to
//! when the renewal was sent plus the lease, less a margin), so a room
//! whose node cannot reach Redis stops itself before any other node may
//! take it over. Outside cluster mode the fence always holds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// Until when a room may tick and send frames.
#[derive(Debug)]
pub struct Fence {
    /// The clock the deadline counts from.
    base: Instant,
    /// Microseconds after `base`; `u64::MAX`: always; 0: never.
    until_micros: AtomicU64,
    /// Retired for good (handed over): no renewal lets it run again.
    retired: AtomicBool,
    /// The epoch of the lease the room runs under (0 outside cluster
    /// mode): what its input-log writes are fenced by.
    epoch: AtomicU64,
}

impl Fence {
    /// A room that is not leased (outside cluster mode): it always runs.
    pub fn always() -> Self {
        Fence {
            base: Instant::now(),
            until_micros: AtomicU64::new(u64::MAX),
            retired: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
        }
    }

    /// A room leased under `epoch` that may run until `until`.
    pub fn until(until: Instant, epoch: u64) -> Self {
        let fence = Fence {
            base: Instant::now(),
            until_micros: AtomicU64::new(0),
            retired: AtomicBool::new(false),
            epoch: AtomicU64::new(epoch),
        };
        fence.extend_to(until);
        fence
    }

    /// The epoch of the lease the room runs under.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(SeqCst)
    }

    /// The room runs under a new lease (it was taken back).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, SeqCst);
    }

    /// Whether the room may run at `now`.
    pub fn holds(&self, now: Instant) -> bool {
        let until = self.until_micros.load(SeqCst);
        until == u64::MAX || micros(now.saturating_duration_since(self.base)) < until
    }

    /// A renewal went through: the room may run until `until`.
    pub fn extend_to(&self, until: Instant) {
        let until = micros(until.saturating_duration_since(self.base)).min(u64::MAX - 1);
        self.until_micros.store(until, SeqCst);
        // A renewal that raced a retirement loses (both sides are SeqCst:
        // whichever order they ran in, the fence ends up shut).
        if self.retired.load(SeqCst) {
            self.revoke();
        }
    }

    /// The room must stop at once (it is being handed over, or it was lost).
    pub fn revoke(&self) {
        self.until_micros.store(0, SeqCst);
    }

    /// The room is leaving this node (a hand-over): it stops at once, and
    /// a renewal still under way cannot start it again.
    pub fn retire(&self) {
        self.retired.store(true, SeqCst);
        self.revoke();
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_holds_until_its_deadline_and_not_after_a_revoke() {
        let now = Instant::now();
        assert!(Fence::always().holds(now + Duration::from_secs(3600)));
        let fence = Fence::until(now + Duration::from_secs(3), 1);
        assert!(fence.holds(now + Duration::from_secs(2)));
        assert!(!fence.holds(now + Duration::from_secs(3)), "not at the deadline: the lease may be gone");
        fence.extend_to(now + Duration::from_secs(6));
        assert!(fence.holds(now + Duration::from_secs(5)));
        fence.revoke();
        assert!(!fence.holds(now));
        fence.extend_to(now + Duration::from_secs(6));
        assert!(fence.holds(now + Duration::from_secs(5)), "a revoked fence is renewed (a lease taken back)");
        fence.retire();
        fence.extend_to(now + Duration::from_secs(9));
        assert!(!fence.holds(now), "a retired one is not");
    }
}
