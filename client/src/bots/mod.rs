//! The bot swarm behind `arena-bots`: N bots in one process, each a real
//! client that joins through the same [`crate::session::ClientSession`] the
//! page runs, sends inputs at the protocol's input rate, and measures every
//! frame it reads.
//!
//! - [`config`]: what the swarm is asked to do, and each bot's way to its room.
//! - [`brain`]: how a bot steers (the behaviours).
//! - [`bot`]: one bot's life: connect, then tick (steer) and deliver
//!   (through the link conditioner, both ways) until the run ends.
//! - [`record`]: what one bot measured.
//! - [`swarm`]: all the bots at once.
//! - [`report`]: the summary `arena-bots` prints.

pub mod bot;
pub mod brain;
pub mod config;
pub mod record;
pub mod report;
pub mod swarm;

pub use bot::Live;
pub use brain::Behaviour;
pub use config::{RoomPlan, SwarmConfig};
pub use record::{BotRecord, FrameBytes, Outcome};
pub use report::{Corrections, FrameParts, Percentiles, ProcessCpu, Report, percentile, process_cpu_seconds};
pub use swarm::run_swarm;
