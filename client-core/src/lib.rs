//! arena's client without an engine or a socket: everything the browser
//! page (`arena-client`) and the bots (`arena-bots`) share, unit-tested
//! natively.
//!
//! # Layout
//! Start with [`session`]: it is the protocol, and both products drive it.
//! - [`session`]: `ClientSession`, the whole client side of the protocol as
//!   a sans-I/O state machine (the `Hello`, input batches and their
//!   prediction, pings and the round trip, `Resync`, tick order), and its
//!   [`session::Room`]: roster, scores, rounds, prediction, clock,
//!   interpolation. Drivers only move messages and time.
//! - [`reconnect`]: the page's reconnect policy (where to, when, with
//!   jittered backoff, and what to say meanwhile).
//! - [`controls`]: how keys, touch and a gamepad mix into one input, and
//!   the host panel's words as commands.
//! - [`cues`]: which happenings make a sound, and each sound's recipe.
//! - [`replay`]: `ReplayFeed`, a recorded round played as the messages a
//!   watcher hears.
//! - [`conditioner`]: latency, jitter and stalls applied inside a client,
//!   on the bots' clock or the page's.

pub mod conditioner;
pub mod controls;
pub mod cues;
pub mod reconnect;
pub mod replay;
pub mod session;
