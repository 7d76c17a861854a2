//! A value read from the cluster's Redis on behalf of public requests
//! (`/api/rooms`, `/api/cluster`, quick-joins), shared by all of them for
//! [`FRESH`]: however many ask, Redis reads it at most four times a second
//! per node. Requests that arrive while it is read wait for that one read;
//! a failed read is kept as long, so an absent Redis is not asked by each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::redis::RedisError;

/// How long a read answers every request.
pub const FRESH: Duration = Duration::from_millis(250);

/// A read's outcome: the value, or why Redis did not give it.
type Read<T> = Result<Arc<T>, String>;

/// The last read of a `T` and when it was made.
pub struct Fresh<T> {
    last: tokio::sync::Mutex<Option<(Instant, Read<T>)>>,
}

impl<T> Default for Fresh<T> {
    fn default() -> Self {
        Fresh { last: tokio::sync::Mutex::new(None) }
    }
}

impl<T> Fresh<T> {
    /// The value, read with `read` if the last read is older than [`FRESH`].
    pub async fn get<F: Future<Output = Result<T, RedisError>>>(&self, read: impl FnOnce() -> F) -> Read<T> {
        let mut last = self.last.lock().await;
        if let Some((at, value)) = &*last
            && at.elapsed() < FRESH
        {
            return value.clone();
        }
        let value = read().await.map(Arc::new).map_err(|e| e.to_string());
        *last = Some((Instant::now(), value.clone()));
        value
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    use super::*;

    #[tokio::test]
    async fn many_asking_at_once_make_one_read_and_a_failure_is_kept_too() {
        let fresh = Fresh::<u32>::default();
        let reads = AtomicUsize::new(0);
        let read = || async {
            reads.fetch_add(1, SeqCst);
            Ok(7)
        };
        let answers = futures_util::future::join_all((0..50).map(|_| fresh.get(read))).await;
        assert!(answers.iter().all(|answer| answer.as_deref() == Ok(&7)));
        assert_eq!(reads.load(SeqCst), 1, "fifty requests, one read");

        let failing = Fresh::<u32>::default();
        let fails = AtomicUsize::new(0);
        let fail = || async {
            fails.fetch_add(1, SeqCst);
            Err(RedisError::Timeout(Duration::from_secs(1)))
        };
        for _ in 0..10 {
            assert!(failing.get(fail).await.is_err());
        }
        assert_eq!(fails.load(SeqCst), 1, "an absent Redis is asked once per period, not per request");
    }
}
