//! What everyone in the room must be told (comings and goings, knockouts,
//! rounds, the host), in the order it happened, until the room takes it
//! to its players' outboxes.

use arena_shared::protocol::ServerMsg;

#[derive(Debug, Default)]
pub struct News(Vec<ServerMsg>);

impl News {
    pub fn push(&mut self, msg: ServerMsg) {
        self.0.push(msg);
    }

    /// What there is to tell since the last call, oldest first.
    pub fn take(&mut self) -> Vec<ServerMsg> {
        std::mem::take(&mut self.0)
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}
