//! What operators see and order:
//! - [`admin`] (and `admin.html`): the operators' page's data and orders
//!   (every node and room, the last minute; drain a node, close a room,
//!   kick a player), across the cluster through Redis.
//! - [`history`]: this node's last minute, a sample a second.
//! - [`metrics`]: the counters and histograms served at `/metrics`.
//!
//! `metrics` is the ground floor: every other job counts into it.
//! `admin` sits at the top, beside the edge that serves it.

pub mod admin;
pub mod history;
pub mod metrics;
