//! arena's client, in two faces.
//!
//! # Layout
//! Start with [`session`]: it is the protocol, and both faces drive it.
//! - On both targets:
//!   - [`session`]: `ClientSession`, the whole client side of the protocol
//!     as a sans-I/O state machine (the `Hello`, input batches and their
//!     prediction, pings and the round trip, `Resync`, tick order), and
//!     its [`session::Room`]: roster, scores, rounds, prediction, clock,
//!     interpolation. Drivers only move messages and time.
//!   - [`cues`]: which happenings make a sound, and each sound's recipe;
//!     [`controls`]: how keys, touch and a gamepad mix into one input.
//!   - [`conditioner`]: latency, jitter and stalls applied inside a client,
//!     on the bots' clock or the page's.
//!   - [`reconnect`]: the page's reconnect policy (where to, when, and what
//!     to say meanwhile).
//! - On native targets:
//!   - [`ws`]: a WebSocket client speaking the protocol (connect, handshake,
//!     typed receive); the bots and the end-to-end tests both use it.
//!   - [`bots`]: the bot swarm behind `arena-bots` (see its module docs).
//!   - [`attack`]: misbehaving clients (floods, resets, slowloris) for
//!     `arena-bots --attack` and the hardening tests.
//!   - [`tls`]: which `wss://` servers to trust.
//!   - [`verify`]: `arena-bots --verify-replay`, a recorded round re-run.
//! - On wasm32: [`app`], the Bevy app (see its module docs), started by the
//!   `arena-client` binary that trunk builds.

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(not(target_arch = "wasm32"))]
pub mod attack;
#[cfg(not(target_arch = "wasm32"))]
pub mod bots;
pub mod conditioner;
pub mod controls;
pub mod cues;
pub mod reconnect;
pub mod replay;
pub mod session;
#[cfg(not(target_arch = "wasm32"))]
pub mod tls;
#[cfg(not(target_arch = "wasm32"))]
pub mod verify;
#[cfg(not(target_arch = "wasm32"))]
pub mod ws;
