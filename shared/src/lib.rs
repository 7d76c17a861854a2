//! The code every side of arena runs unchanged: server, browser client and bots.
//!
//! # Layout
//! - [`protocol`]: the messages (`ClientMsg`, `ServerMsg`), limits, close codes
//!   and `PROTOCOL_VERSION`, in labelled sections.
//! - [`codec`]: the one bincode config, bounded decoding with typed errors,
//!   and `hello_version`, which reads a `Hello`'s version before the rest.
//! - [`sim`]: the deterministic fixed-point bodies (`step`, `bump`,
//!   `collide`, `isqrt`). Integer maths only, so the same inputs give the
//!   same bits on x86_64 and wasm32.
//! - [`game`]: the rules on top of the bodies ([`game::Match`]): the
//!   platform, knockouts and credit, respawns, rounds and the podium.
//! - [`netcode`]: client-side prediction and reconciliation, interpolation
//!   and playout, the smoother, the view history, and the server-clock and
//!   round-trip estimates, engine-free so the browser app and the bots share
//!   it and it is tested natively.
//! - [`brawler`]: a bot's steering from positions, for the server's fill
//!   bots and `arena-bots`.
//! - [`replay`]: a round recorded as its spawns, removals and inputs, and
//!   played back by re-running [`game`], checked every second.

pub mod brawler;
pub mod codec;
pub mod game;
pub mod netcode;
pub mod protocol;
pub mod replay;
pub mod sim;
