//! arena's client, in two faces.
//!
//! # Layout
//! - On native targets:
//!   - [`ws`]: a WebSocket client speaking the protocol (connect, handshake,
//!     typed receive); the bots and the end-to-end tests both use it.
//!   - [`attack`]: misbehaving clients (floods, resets, slowloris) for
//!     `arena-bots --attack` and the hardening tests.
//!   - [`tls`]: which `wss://` servers to trust.
//!   - [`conditioner`]: latency, jitter and stalls applied inside a bot.
//!   - [`bots`]: the bot swarm behind `arena-bots`: behaviours, per-bot
//!     measurements, and the report (text table or JSON).
//! - On both: [`session`], the engine-free `ClientSession` that applies
//!   every server message (roster, scores, rounds, prediction, clock,
//!   interpolation, RTT); the browser app and the bots both drive it.
//! - On wasm32: [`app`], the Bevy app (see its module docs), started by the
//!   `arena-client` binary that trunk builds.

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(not(target_arch = "wasm32"))]
pub mod attack;
#[cfg(not(target_arch = "wasm32"))]
pub mod bots;
pub mod conditioner;
pub mod session;
#[cfg(not(target_arch = "wasm32"))]
pub mod tls;
#[cfg(not(target_arch = "wasm32"))]
pub mod ws;
