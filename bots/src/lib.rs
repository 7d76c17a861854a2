//! `arena-bots`: arena's native clients. N bots in one process, each a
//! real client that joins through the same `ClientSession` the page runs
//! (`arena-client-core`), sends inputs at the protocol's input rate, and
//! measures every frame it reads: the end-to-end tests' players and the
//! load generator.
//!
//! # Layout
//! - [`ws`]: a WebSocket client speaking the protocol (connect, from a
//!   chosen source address too, handshake, typed receive); [`tls`]: which
//!   `wss://` servers to trust.
//! - [`flags`]: what `arena-bots` and `arena-attack` parse alike.
//! - [`config`]: what the swarm is asked to do, and each bot's way to its room.
//! - [`brain`]: how a bot steers (the behaviours).
//! - [`bot`]: one bot's life: connect, then tick (steer) and deliver
//!   (through the link conditioner, both ways) until the run ends.
//! - [`record`]: what one bot measured; [`report`]: the summary
//!   `arena-bots` prints.
//! - [`swarm`]: all the bots at once.
//! - [`verify`]: `arena-bots --verify-replay`, a recorded round re-run;
//!   [`http`]: the one HTTP client (that download, and the tests').

pub mod bot;
pub mod brain;
pub mod config;
pub mod flags;
pub mod http;
pub mod nodes;
pub mod record;
pub mod report;
pub mod swarm;
pub mod tls;
pub mod verify;
pub mod ws;

pub use bot::Live;
pub use brain::Behaviour;
pub use config::{RoomPlan, SwarmConfig};
pub use record::{BotRecord, FrameBytes, Outcome};
pub use report::{Corrections, FrameParts, Percentiles, ProcessCpu, Report, percentile, process_cpu_seconds};
pub use swarm::run_swarm;
