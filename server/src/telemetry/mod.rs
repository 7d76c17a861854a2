//! What the server measures of itself, the ground floor every other job
//! counts into:
//! - [`metrics`]: the counters and histograms served at `/metrics`.
//! - [`history`]: this node's last minute, a sample a second, from those
//!   counters (the operators' page draws it).

pub mod history;
pub mod metrics;
