//! How an input travels from a connection to the world: a
//! [`QueuedInput`], taken by the tick from an [`InputSource`] (the room's
//! inbound queues, or a test's lists).

use arena_shared::protocol::PlayerId;
use arena_shared::sim::Input;

/// One input as a connection hands it over.
#[derive(Debug, Clone, Copy)]
pub struct QueuedInput {
    pub seq: u32,
    pub input: Input,
}

/// Where a tick takes each player's inputs from, in arrival (= seq) order:
/// the room's inbound queues, or a test's lists. The world takes only what
/// a player's budget allows; the rest waits where it is.
pub trait InputSource {
    fn next_input(&mut self, id: PlayerId) -> Option<QueuedInput>;
}

/// A tick with no inputs at all (tests).
#[cfg(test)]
pub struct NoInputs;

#[cfg(test)]
impl InputSource for NoInputs {
    fn next_input(&mut self, _: PlayerId) -> Option<QueuedInput> {
        None
    }
}
