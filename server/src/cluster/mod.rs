//! The rooms of many processes (cluster mode, `--redis-url`; without it
//! nothing here touches the network):
//! - [`registry`]: this node in the cluster's registry (its heartbeat),
//!   the other nodes, `/api/cluster`, and where a drain sends rooms.
//! - [`placement`]: the cluster's side of this node's rooms: leasing a new
//!   room, finding a room through its lease, quick-joins elsewhere,
//!   restoring and adopting saved rooms, and the drain.
//! - [`ownership`]: a leased room's ownership as a state machine with no
//!   I/O: renewals, saves, a lost lease, a reclaim, a hand-over, the end.
//! - [`steward`]: beside each leased room: carries out what its ownership
//!   decides (renews, saves, lists, takes back, hands over).
//! - [`inputlog`]: the node's writer of its rooms' input logs: each tick
//!   of every room in Redis before its frames go out, one call a tick.
//! - [`redis`]: the cluster's Redis, one connection with a deadline on
//!   every call and one way to run a script; over it the small gateways
//!   [`lease`] (room leases and saved rooms), [`listing`] (public rooms for
//!   quick-joins elsewhere), `registry::Nodes` (which nodes are alive) and
//!   [`orders`] (operators' reports and orders).
//!
//! A room ([`crate::room`]) knows only its fence ([`crate::room::fence`]),
//! which a steward pushes back; everything here stands beside the rooms
//! and may call them, never the other way round.

pub mod fresh;
pub mod inputlog;
pub mod lease;
pub mod listing;
pub mod orders;
pub mod ownership;
pub mod placement;
pub mod redis;
pub mod registry;
pub mod steward;
#[cfg(test)]
pub mod twin;
