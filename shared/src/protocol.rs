//! Every message that crosses the wire, in one place.
//!
//! Messages are bincode-encoded with [`crate::codec`]; one WebSocket binary
//! message carries exactly one [`ClientMsg`] or [`ServerMsg`]. The first
//! message each way is the handshake (`Hello` / `Welcome` or `Rejected`).

use serde::{Deserialize, Serialize};

use crate::sim::{Body, Input};

// ---------------------------------------------------------------------------
// Versions and limits
// ---------------------------------------------------------------------------

/// Bumped on every incompatible change to these types or to `sim`.
pub const PROTOCOL_VERSION: u16 = 1;

/// Inputs per second a client sends; each input is one `sim::step` of
/// [`crate::sim::INPUT_DT_MICROS`].
pub const INPUT_RATE_HZ: u32 = 60;

/// Longest player name, in characters.
pub const MAX_NAME_CHARS: usize = 16;

/// Most players a room can hold, whatever `--max-players` says; also the cap on
/// every player list a decoder accepts.
pub const MAX_PLAYERS: usize = 512;

/// Longest rejection or close reason, in bytes (a close frame allows 123).
pub const MAX_REASON_BYTES: usize = 120;

/// Largest message a client may send. Real ones are under 40 bytes.
pub const MAX_CLIENT_MSG_BYTES: usize = 256;

/// Largest message the server sends (a full frame of `MAX_PLAYERS`).
pub const MAX_SERVER_MSG_BYTES: usize = 64 * 1024;

/// Identifies a player within a room for as long as it is connected.
pub type PlayerId = u16;

// ---------------------------------------------------------------------------
// Client -> server
// ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ClientMsg {
    /// Handshake: must be the first message, exactly once.
    Hello { version: u16, name: String },
    /// One input, applied as one simulation step. `seq` rises by at least one
    /// per input so the server can ack it in frames.
    Input { seq: u32, input: Input },
    /// Application-level ping; the server echoes `client_time_us` in `Pong`.
    Ping { client_time_us: u64 },
}

// ---------------------------------------------------------------------------
// Server -> client
// ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ServerMsg {
    /// Handshake accepted.
    Welcome(Welcome),
    /// Handshake refused; a close frame follows.
    Rejected(Rejection),
    /// The world after one tick, sent to every player every tick.
    Frame(Frame),
    /// A player joined (also sent for yourself, after `Welcome`).
    Joined(PlayerInfo),
    /// A player left.
    Left { id: PlayerId },
    /// Answer to `ClientMsg::Ping`.
    Pong { client_time_us: u64 },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub version: u16,
    /// Your own player's id.
    pub you: PlayerId,
    /// Server ticks per second; frames arrive at this rate.
    pub tick_rate: u16,
    /// The tick the next frame will follow.
    pub tick: u32,
    /// Everyone already in the room (not including you).
    pub players: Vec<PlayerInfo>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PlayerInfo {
    pub id: PlayerId,
    pub name: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tick: u32,
    /// The last input `seq` the server applied for the receiving player
    /// (0 before any input).
    pub ack_seq: u32,
    /// Every player in the room, sorted by id.
    pub players: Vec<PlayerState>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayerState {
    pub id: PlayerId,
    pub body: Body,
}

// ---------------------------------------------------------------------------
// Rejections and close codes
// ---------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    /// A sentence a person can read, shown by the client as is.
    pub message: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    VersionMismatch { server: u16, client: u16 },
    ServerFull { max_players: u16 },
    BadName,
    ShuttingDown,
}

impl RejectReason {
    /// The close code sent after this rejection.
    pub fn close_code(self) -> u16 {
        match self {
            RejectReason::VersionMismatch { .. } => close::VERSION_MISMATCH,
            RejectReason::ServerFull { .. } => close::SERVER_FULL,
            RejectReason::BadName => close::BAD_NAME,
            RejectReason::ShuttingDown => close::GOING_AWAY,
        }
    }
}

impl Rejection {
    pub fn new(reason: RejectReason) -> Self {
        let message = match reason {
            RejectReason::VersionMismatch { server, client } => format!(
                "this client speaks protocol v{client} but the server speaks v{server}; reload the page"
            ),
            RejectReason::ServerFull { max_players } => {
                format!("the server is full (its limit is {max_players}); try again later")
            }
            RejectReason::BadName => {
                format!("names must be 1 to {MAX_NAME_CHARS} printable characters, not only spaces")
            }
            RejectReason::ShuttingDown => "the server is shutting down".to_owned(),
        };
        Rejection { reason, message }
    }
}

/// WebSocket close codes the server uses. 1xxx are RFC 6455's; 4xxx are arena's.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    /// A text message: arena speaks binary only.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// Bytes that do not decode, or a message out of order.
    pub const PROTOCOL_ERROR: u16 = 4000;
    pub const VERSION_MISMATCH: u16 = 4001;
    pub const SERVER_FULL: u16 = 4002;
    pub const BAD_NAME: u16 = 4003;
    /// The client stayed behind on frames for too long.
    pub const TOO_SLOW: u16 = 4004;
    /// No `Hello` in time, or nothing at all heard for the idle timeout.
    pub const TIMEOUT: u16 = 4005;
}

/// Checks a requested player name; returns it trimmed.
pub fn validate_name(name: &str) -> Option<&str> {
    let trimmed = name.trim();
    let chars = trimmed.chars().count();
    let printable = trimmed.chars().all(|c| !c.is_control());
    (1..=MAX_NAME_CHARS).contains(&chars).then_some(trimmed).filter(|_| printable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_name_accepts_trimmed_printable_names() {
        assert_eq!(validate_name("  ada "), Some("ada"), "should trim spaces");
        assert_eq!(validate_name("Zoë 🚀"), Some("Zoë 🚀"), "should accept unicode");
        assert_eq!(validate_name(&"x".repeat(MAX_NAME_CHARS)), Some("xxxxxxxxxxxxxxxx"));
    }

    #[test]
    fn validate_name_rejects_empty_long_and_control_names() {
        assert_eq!(validate_name("   "), None, "should reject blank names");
        assert_eq!(validate_name(&"x".repeat(MAX_NAME_CHARS + 1)), None, "should reject long names");
        assert_eq!(validate_name("a\u{7}b"), None, "should reject control characters");
    }

    #[test]
    fn every_rejection_has_a_close_code_and_short_message() {
        for reason in [
            RejectReason::VersionMismatch { server: 1, client: 9 },
            RejectReason::ServerFull { max_players: 500 },
            RejectReason::BadName,
            RejectReason::ShuttingDown,
        ] {
            let rejection = Rejection::new(reason);
            assert!(rejection.message.len() <= MAX_REASON_BYTES, "should fit a close frame: {rejection:?}");
            assert!(reason.close_code() >= 1000);
        }
    }
}
