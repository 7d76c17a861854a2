//! The operators' channel through Redis: each node's report for the
//! operators' page (published while the page is open somewhere), and the
//! orders an operator gives on one node for another.

use std::time::Duration;

use super::redis::keys::REPORTS;
use super::redis::{Redis, RedisError, millis};

const ORDERS_PREFIX: &str = "arena:orders:";
/// Set while the operators' page is open somewhere.
const PAGE_OPEN_KEY: &str = "arena:admin:watching";
/// Most operator orders that wait for one node.
const MAX_ORDERS: isize = 64;
/// An order nobody takes within this long is dropped.
const ORDER_KEEP: Duration = Duration::from_secs(60);

/// Reports and orders between nodes and operators.
#[derive(Clone)]
pub struct Orders(pub Redis);

impl Orders {
    /// Publishes `node`'s report for the operators' page, for `ttl`.
    pub async fn report(&self, node: &str, report: &str, ttl: Duration) -> Result<(), RedisError> {
        self.0.put(&REPORTS, node, report, ttl).await
    }

    /// Every live node's last report.
    pub async fn reports(&self) -> Result<Vec<String>, RedisError> {
        Ok(self.0.entries(&REPORTS).await?.into_iter().map(|(_, report)| report).collect())
    }

    /// Queues an operator's order for `node` (it takes its orders every
    /// second). At most 64 wait; one nobody takes within a minute is dropped.
    pub async fn send(&self, node: &str, order: &str) -> Result<(), RedisError> {
        let key = format!("{ORDERS_PREFIX}{node}");
        let mut pipe = redis::pipe();
        pipe.atomic()
            .rpush(&key, order)
            .ltrim(&key, -MAX_ORDERS, -1)
            .pexpire(&key, millis(ORDER_KEEP) as i64);
        self.0.pipe(&pipe).await
    }

    /// Takes every order waiting for `node`, oldest first, and says
    /// whether the operators' page is open (so the node reports).
    pub async fn take(&self, node: &str) -> Result<(Vec<String>, bool), RedisError> {
        let key = format!("{ORDERS_PREFIX}{node}");
        let mut pipe = redis::pipe();
        pipe.atomic().lrange(&key, 0, -1).del(&key).ignore().exists(PAGE_OPEN_KEY);
        self.0.pipe(&pipe).await
    }

    /// Marks the operators' page open for `ttl`; whether it already was.
    pub async fn page_opened(&self, ttl: Duration) -> Result<bool, RedisError> {
        let mut pipe = redis::pipe();
        pipe.atomic().exists(PAGE_OPEN_KEY).pset_ex(PAGE_OPEN_KEY, 1, millis(ttl)).ignore();
        let (was,): (bool,) = self.0.pipe(&pipe).await?;
        Ok(was)
    }
}
