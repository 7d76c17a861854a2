//! Public rooms listed in Redis for quick-joins on other nodes: each
//! leased public room's steward publishes its line (`arena:public:<code>`)
//! for a lease at a time (a lease holder's write:
//! [`super::lease::LeaseStore::publish`]), and a quick-joiner sent to another node has a
//! seat reserved there first (`arena:reserved:<code>`), so two nodes
//! cannot fill the same last seat.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::redis::keys;
use super::redis::{Redis, RedisError, clocked_script, millis};

/// A public room's line in the cluster's listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Listing {
    pub code: String,
    pub node: String,
    pub url: String,
    pub players: u64,
    /// Older nodes list no watchers.
    #[serde(default)]
    pub watchers: u64,
    pub room_size: u16,
}

/// Reserves a seat in a listed room for a quick-joiner on its way there:
/// KEYS = listing, reservations; ARGV = a unique member, hold ms. The seat
/// counts against the room's size until the room's own count (renewed with
/// its lease) can include the player. Returns 1, 0 if full, -1 if unlisted.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    clocked_script(
        r"
local listed = redis.call('GET', KEYS[1])
if not listed then return -1 end
local room = cjson.decode(listed)
prune(KEYS[2])
if room.players + redis.call('ZCARD', KEYS[2]) >= room.room_size then return 0 end
index(KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
",
    )
});

/// The cluster's listing of public rooms.
#[derive(Clone)]
pub struct Listings(pub Redis);

impl Listings {
    /// Every listed public room (lines that do not parse are left out).
    pub async fn read(&self) -> Result<Vec<Listing>, RedisError> {
        let lines = self.0.entries(&keys::LISTED).await?;
        Ok(lines.iter().filter_map(|(_, json)| serde_json::from_str(json).ok()).collect())
    }

    /// Reserves a seat in listed room `code` for `hold`; `Some(false)` if
    /// it is full, `None` if it is not listed.
    pub async fn reserve(&self, code: &str, hold: Duration) -> Result<Option<bool>, RedisError> {
        let member = format!("{:016x}", getrandom::u64().unwrap_or_default());
        let reserved: i64 = self
            .0
            .run(&RESERVE, |call| {
                call.key(keys::listing(code)).key(keys::reserved(code)).arg(member).arg(millis(hold));
            })
            .await?;
        Ok(match reserved {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        })
    }
}
