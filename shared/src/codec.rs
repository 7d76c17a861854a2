//! One bincode configuration for every side, and decoding that never panics.
//!
//! Decoding is bounded three ways: the input length is checked against the
//! message's cap before bincode sees it, bincode itself runs with a byte
//! [`CONFIG`] limit (so no length prefix can make it allocate more than that),
//! and every decoded collection and string is checked against the protocol's
//! caps. Trailing bytes are an error too: one message, one value.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::{
    COLORS, ClientMsg, MAX_CLIENT_MSG_BYTES, MAX_INPUTS_PER_MSG, MAX_NAME_CHARS, MAX_NEAR, MAX_PLAYERS,
    MAX_REASON_BYTES, MAX_ROOM_CODE_CHARS, MAX_SERVER_MSG_BYTES, MAX_URL_BYTES, RoundInfo, RoundPhase,
    ServerMsg,
};

/// The bincode configuration used by server, browser and bots alike:
/// little-endian, varint integers, and a hard limit on bytes read.
pub const CONFIG: Configuration<LittleEndian, Varint, Limit<MAX_SERVER_MSG_BYTES>> =
    bincode::config::standard().with_limit::<MAX_SERVER_MSG_BYTES>();

/// Why some bytes are not a valid message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("message is {len} bytes; the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("message is empty")]
    Empty,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("{what} has {len} entries; the limit is {max}")]
    TooMany { what: &'static str, len: usize, max: usize },
    #[error("{what} is too long")]
    TooLong { what: &'static str },
    #[error("the player name is longer than {MAX_NAME_CHARS} characters")]
    NameTooLong,
    #[error("{what} {value} is out of range (at most {max})")]
    OutOfRange { what: &'static str, value: u64, max: u64 },
}

/// Encodes a client message.
pub fn encode_client(msg: &ClientMsg) -> Vec<u8> {
    encode(msg)
}

/// Encodes a server message.
pub fn encode_server(msg: &ServerMsg) -> Vec<u8> {
    encode(msg)
}

/// Any part of a message encoded as the protocol encodes it inside the
/// message (for a server that builds messages from parts: arena-hub
/// encodes the view all its players share once a tick).
pub fn encode_part<T: Serialize>(value: &T) -> Vec<u8> {
    encode(value)
}

/// How many bytes `value` takes on the wire (for reports that break a
/// message down by part).
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    encode(value).len()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, CONFIG)
        .expect("protocol types have no unsized sequences, so encoding into a Vec cannot fail")
}

/// Encodes a room's saved state (a checkpoint or a hand-over between a
/// cluster's nodes) with the protocol's configuration.
pub fn encode_state<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("state types have no unsized sequences, so encoding into a Vec cannot fail")
}

/// Decodes a room's saved state of at most `max` bytes (bincode reads no
/// further: no length prefix can make it allocate more).
pub fn decode_state<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge { len: bytes.len(), max });
    }
    let config = bincode::config::standard().with_limit::<MAX_STATE_BYTES>();
    let (value, used) = bincode::serde::decode_from_slice(bytes, config)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

/// The most a saved room state may take: 16 MiB.
pub const MAX_STATE_BYTES: usize = 16 << 20;

/// Decodes one client message, as the server does with every binary frame.
pub fn decode_client(bytes: &[u8]) -> Result<ClientMsg, DecodeError> {
    let msg: ClientMsg = decode(bytes, MAX_CLIENT_MSG_BYTES)?;
    if let ClientMsg::Inputs { inputs, .. } = &msg {
        check_len("inputs in one message", inputs.len(), MAX_INPUTS_PER_MSG)?;
        if inputs.is_empty() {
            return Err(DecodeError::Malformed("an Inputs message with no input".into()));
        }
    }
    if let ClientMsg::Hello { name, room, color, .. } = &msg {
        check_name(name)?;
        if *color >= COLORS {
            return Err(DecodeError::OutOfRange {
                what: "colour",
                value: u64::from(*color),
                max: u64::from(COLORS - 1),
            });
        }
        if let Some(code) = room.code() {
            check_room_code(code)?;
        }
    }
    Ok(msg)
}

/// The protocol version a `Hello` announces, read before anything else in
/// it: `None` if `bytes` do not start as a `Hello` does.
///
/// Every `PROTOCOL_VERSION`, past and future, keeps `Hello` the first
/// variant of `ClientMsg` and `version` its first field (a test pins this),
/// so a client of any other version is told "reload" even when the rest of
/// its `Hello` has another shape.
pub fn hello_version(bytes: &[u8]) -> Option<u16> {
    let limited = &bytes[..bytes.len().min(MAX_CLIENT_MSG_BYTES)];
    let ((variant, version), _): ((u32, u16), usize) =
        bincode::serde::decode_from_slice(limited, CONFIG).ok()?;
    (variant == HELLO_VARIANT).then_some(version)
}

/// `Hello`'s place among `ClientMsg`'s variants, as bincode writes it.
const HELLO_VARIANT: u32 = 0;

/// Decodes one server message, as the browser client and bots do.
pub fn decode_server(bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    let msg: ServerMsg = decode(bytes, MAX_SERVER_MSG_BYTES)?;
    match &msg {
        ServerMsg::Welcome(welcome) => {
            check_len("welcome player list", welcome.players.len(), MAX_PLAYERS)?;
            check_room_code(&welcome.room)?;
            for player in &welcome.players {
                check_name(&player.name)?;
            }
            check_round(&welcome.round)?;
        }
        ServerMsg::Rejected(rejection) => {
            if rejection.message.len() > MAX_REASON_BYTES {
                return Err(DecodeError::TooLong { what: "rejection message" });
            }
        }
        ServerMsg::Frame(frame) => {
            check_len("frame updates", frame.others.len(), MAX_PLAYERS)?;
            check_len("frame departures", frame.gone.len(), MAX_PLAYERS)?;
            check_len("frame neighbours", frame.near.len(), MAX_NEAR)?;
        }
        ServerMsg::Joined(info) => check_name(&info.name)?,
        ServerMsg::Round(round) => check_round(round)?,
        ServerMsg::Moved(moved) => {
            check_room_code(&moved.room)?;
            if moved.url.len() > MAX_URL_BYTES {
                return Err(DecodeError::TooLong { what: "node URL" });
            }
        }
        ServerMsg::Left { .. }
        | ServerMsg::Away { .. }
        | ServerMsg::Back { .. }
        | ServerMsg::Pong { .. }
        | ServerMsg::KnockedOut(_)
        | ServerMsg::Watchers { .. }
        | ServerMsg::Hosting(_)
        | ServerMsg::Refused(_)
        | ServerMsg::Replay { .. } => {}
    }
    Ok(msg)
}

fn decode<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > max {
        return Err(DecodeError::TooLarge { len: bytes.len(), max });
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, CONFIG)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::TooMany { what, len, max });
    }
    Ok(())
}

fn check_round(round: &RoundInfo) -> Result<(), DecodeError> {
    match &round.phase {
        RoundPhase::Podium { standings, .. } => check_len("standings", standings.len(), MAX_PLAYERS),
        RoundPhase::Playing { .. } => Ok(()),
    }
}

fn check_name(name: &str) -> Result<(), DecodeError> {
    // Four bytes per char is UTF-8's worst case; validity is the server's call.
    if name.len() > MAX_NAME_CHARS * 4 {
        return Err(DecodeError::NameTooLong);
    }
    Ok(())
}

fn check_room_code(code: &str) -> Result<(), DecodeError> {
    if code.len() > MAX_ROOM_CODE_CHARS {
        return Err(DecodeError::TooLong { what: "room code" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[cfg(not(target_arch = "wasm32"))]
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::*;
    use crate::sim::{Body, Input, Platform, Vec2q};

    fn sample_server_msgs() -> Vec<ServerMsg> {
        let body = Body { pos: Vec2q::new(12_345, -7), vel: Vec2q::new(-300, 99_999), dash_cooldown: 90 };
        vec![
            ServerMsg::Welcome(Welcome {
                version: PROTOCOL_VERSION,
                you: 7,
                watching: false,
                watchers: 3,
                tick_rate: 30,
                tick: 1_000_000,
                players: vec![PlayerInfo { id: 3, name: "ada".into(), color: 9, score: -4, bot: true }],
                room: "k3x9q2m7pd".into(),
                private: true,
                resume: [0xa5; 16],
                resumed: false,
                score: 0,
                platform: Platform { radius: 650 },
                round: RoundInfo { number: 4, phase: RoundPhase::Playing { ends_at: 9000 } },
                hosting: Hosting {
                    host: 7,
                    rules: Rules { round_secs: 120, points_to_win: 10 },
                    locked: true,
                },
            }),
            ServerMsg::Rejected(Rejection::new(RejectReason::RoomNotFound)),
            ServerMsg::Rejected(Rejection::new(RejectReason::RoomLocked)),
            ServerMsg::Rejected(Rejection::new(RejectReason::Banned { retry_after_secs: 600 })),
            ServerMsg::Hosting(Hosting {
                host: 0,
                rules: Rules { round_secs: 30, points_to_win: 0 },
                locked: false,
            }),
            ServerMsg::Refused(CommandRefusal::NotHost),
            ServerMsg::Refused(CommandRefusal::OutOfRange),
            ServerMsg::Replay { id: [0xc3; 16] },
            ServerMsg::Rejected(Rejection::new(RejectReason::RoomsFull { max_rooms: 64 })),
            ServerMsg::Rejected(Rejection::new(RejectReason::ServerFull { max_players: 64 })),
            ServerMsg::Rejected(Rejection::new(RejectReason::VersionMismatch { server: 1, client: 2 })),
            ServerMsg::Rejected(Rejection::new(RejectReason::BadName)),
            ServerMsg::Rejected(Rejection::new(RejectReason::ShuttingDown)),
            ServerMsg::Rejected(Rejection::new(RejectReason::TooManyGuesses { retry_after_secs: 5 })),
            ServerMsg::Rejected(Rejection::new(RejectReason::TooManyRooms { max: 4 })),
            ServerMsg::Frame(Frame {
                tick: u32::MAX,
                ack_seq: 41,
                baseline_age: u32::MAX - 2,
                you: PlayerState { id: 65_535, body, life: Life::Falling },
                others: vec![
                    OtherUpdate { id_gap: 1, dx: -3, dy: 200, life: Life::Alive },
                    OtherUpdate { id_gap: 65_000, dx: i16::MIN, dy: i16::MAX, life: Life::Out },
                ],
                gone: vec![4, 9],
                near: vec![NearUpdate {
                    id_gap: 65_535,
                    dx: i32::MIN,
                    dy: -31,
                    vel: [I24::saturating(-409_600), I24::saturating(I24::MAX)],
                    stick: [-127, 127],
                }],
            }),
            ServerMsg::Joined(PlayerInfo { id: 9, name: "Zoë 🚀".into(), color: 0, score: 3, bot: false }),
            ServerMsg::Left { id: 9 },
            ServerMsg::Away { id: 9 },
            ServerMsg::Back { id: 9 },
            ServerMsg::Pong { client_time_us: u64::MAX },
            ServerMsg::KnockedOut(Knockout { victim: 9, victim_score: 2, by: Some(3), by_score: 7 }),
            ServerMsg::KnockedOut(Knockout { victim: 9, victim_score: -1, by: None, by_score: 0 }),
            ServerMsg::Round(RoundInfo {
                number: 2,
                phase: RoundPhase::Podium {
                    standings: vec![Standing { id: 3, score: 7, knockouts: 8 }],
                    next_at: 12,
                },
            }),
            ServerMsg::Moved(Moved { url: "https://eu2.example.com".into(), room: "k3x9q2m7pd".into() }),
            ServerMsg::Moved(Moved { url: "http://10.0.0.2:7777".into(), room: String::new() }),
            ServerMsg::Watchers { count: 32 },
            ServerMsg::Rejected(Rejection::new(RejectReason::WatchersFull { max: 32 })),
        ]
    }

    fn sample_client_msgs() -> Vec<ClientMsg> {
        vec![
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name: "bob".into(),
                color: 3,
                room: RoomRequest::Quick,
                resume: None,
            },
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name: "bob".into(),
                color: 3,
                room: RoomRequest::CreatePrivate,
                resume: None,
            },
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name: "bob".into(),
                color: 3,
                room: RoomRequest::Join { code: "k3x9q2m7pd".into() },
                resume: Some([7; 16]),
            },
            ClientMsg::Input { seq: u32::MAX, input: Input { x: -127, y: 127, dash: true } },
            ClientMsg::Ping { client_time_us: 123_456_789 },
            ClientMsg::Resync,
            ClientMsg::Inputs {
                seq: 7,
                inputs: vec![Input::stick(1, 2), Input::stick(3, 4).with_dash(true)],
            },
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name: "eve".into(),
                color: 1,
                room: RoomRequest::Watch { code: "k3x9q2m7pd".into() },
                resume: None,
            },
            ClientMsg::Follow { id: 0 },
            ClientMsg::Follow { id: u16::MAX },
            ClientMsg::Host(HostCommand::SetRules(Rules { round_secs: 900, points_to_win: 99 })),
            ClientMsg::Host(HostCommand::Lock(true)),
            ClientMsg::Host(HostCommand::Kick { id: 4 }),
            ClientMsg::Host(HostCommand::ToWatchers { id: 5 }),
            ClientMsg::Host(HostCommand::NextRound),
        ]
    }

    #[test]
    fn every_server_message_round_trips() {
        for msg in sample_server_msgs() {
            let bytes = encode_server(&msg);
            assert_eq!(decode_server(&bytes), Ok(msg.clone()), "should round-trip {msg:?}");
        }
    }

    #[test]
    fn every_client_message_round_trips() {
        for msg in sample_client_msgs() {
            let bytes = encode_client(&msg);
            assert!(bytes.len() <= MAX_CLIENT_MSG_BYTES);
            assert_eq!(decode_client(&bytes), Ok(msg.clone()), "should round-trip {msg:?}");
        }
    }

    #[test]
    fn a_frame_applies_to_its_baseline_view() {
        let seen = |x, y| Seen { x, y, life: Life::Alive };
        let baseline: View = vec![(2, seen(10, 10)), (5, seen(-4, 0)), (9, seen(0, 0))];
        let body = Body::default();
        let frame = Frame {
            tick: 8,
            ack_seq: 0,
            baseline_age: 7,
            you: PlayerState { id: 1, body, life: Life::Alive },
            // 3 is new (absolute), 5 moves by (+6, -1) and falls; 9 leaves.
            others: vec![
                OtherUpdate { id_gap: 3, dx: 100, dy: -50, life: Life::Protected },
                OtherUpdate { id_gap: 2, dx: 6, dy: -1, life: Life::Falling },
            ],
            gone: vec![9],
            near: Vec::new(),
        };
        assert_eq!(
            apply_view(&baseline, &frame),
            Some(vec![
                (2, seen(10, 10)),
                (3, Seen { x: 100, y: -50, life: Life::Protected }),
                (5, Seen { x: 2, y: -1, life: Life::Falling }),
            ])
        );
        let overflow = Frame {
            others: vec![OtherUpdate { id_gap: u16::MAX, dx: 0, dy: 0, life: Life::Alive }; 2],
            ..frame.clone()
        };
        assert_eq!(apply_view(&baseline, &overflow), None, "ids past u16::MAX do not fit");
        let repeated = Frame {
            others: vec![
                OtherUpdate { id_gap: 4, dx: 0, dy: 0, life: Life::Alive },
                OtherUpdate { id_gap: 0, dx: 0, dy: 0, life: Life::Alive },
            ],
            ..frame
        };
        assert_eq!(apply_view(&baseline, &repeated), None, "an id twice does not fit");
    }

    #[test]
    fn positions_quantise_to_a_quarter_unit_and_clamp() {
        let at = |x: i32, y: i32| PlayerState { id: 1, body: Body::at(Vec2q::new(x, y)), life: Life::Alive };
        assert_eq!(
            Seen::of(&at(256, -256)),
            Seen { x: 4, y: -4, life: Life::Alive },
            "one unit is four quanta"
        );
        assert_eq!(Seen::of(&at(31, 33)).x, 0, "rounds to the nearest quantum");
        assert_eq!(Seen::of(&at(31, 33)).y, 1);
        assert_eq!(Seen::of(&at(i32::MAX / 2, i32::MIN / 2)).x, i16::MAX, "far away clamps");
        assert_eq!(Seen::of(&at(256 * 100, 0)).to_units(), (100.0, 0.0));
    }

    #[test]
    fn input_batches_are_bounded_and_not_empty() {
        let batch = |n| encode_client(&ClientMsg::Inputs { seq: 1, inputs: vec![Input::default(); n] });
        assert!(decode_client(&batch(MAX_INPUTS_PER_MSG)).is_ok());
        assert!(matches!(decode_client(&batch(MAX_INPUTS_PER_MSG + 1)), Err(DecodeError::TooMany { .. })));
        assert!(matches!(decode_client(&batch(0)), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn oversized_and_trailing_input_is_rejected() {
        let too_big = vec![0u8; MAX_CLIENT_MSG_BYTES + 1];
        assert!(matches!(decode_client(&too_big), Err(DecodeError::TooLarge { .. })));
        assert_eq!(decode_client(&[]), Err(DecodeError::Empty));
        let mut bytes = encode_client(&ClientMsg::Ping { client_time_us: 5 });
        bytes.push(0);
        assert_eq!(decode_client(&bytes), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn unknown_variant_is_a_typed_error() {
        assert!(
            matches!(decode_client(&[200]), Err(DecodeError::Malformed(_))),
            "should not decode variant 200"
        );
        assert!(matches!(decode_server(&[99, 0]), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn huge_length_prefix_does_not_allocate_or_panic() {
        // Frame variant, tick 0, ack 0, baseline 0, a zero `you` (7 bytes),
        // then an update count of u64::MAX.
        let bytes = [2u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let refused = decode_server(&bytes);
        assert!(matches!(refused, Err(DecodeError::Malformed(_))), "an impossible length: {refused:?}");
        // Hello with a name length of 2^24.
        let hello = [0u8, 1, 0xfc, 0, 0, 0, 1];
        let refused = decode_client(&hello);
        assert!(matches!(refused, Err(DecodeError::Malformed(_))), "a name of 2^24 bytes: {refused:?}");
    }

    #[test]
    fn hello_stays_the_first_variant_with_the_version_first_for_every_future_version() {
        // If this fails, `hello_version` no longer finds the version and old
        // pages stop hearing "reload": keep Hello first and version first.
        for version in [0, 1, PROTOCOL_VERSION, 250, 251, u16::MAX] {
            let hello = ClientMsg::Hello {
                version,
                name: "ada".into(),
                color: 0,
                room: RoomRequest::Quick,
                resume: None,
            };
            assert_eq!(hello_version(&encode_client(&hello)), Some(version), "version {version}");
        }
        let input = ClientMsg::Input { seq: 1, input: Input::default() };
        assert_eq!(hello_version(&encode_client(&input)), None, "an Input is not a Hello");
        assert_eq!(hello_version(&[]), None);
        assert_eq!(hello_version(&[0]), None, "cut before the version");
    }

    #[test]
    fn a_hello_of_another_shape_still_shows_its_version() {
        // Protocol 2's Hello had no colour, room or resume token; some future
        // one may add fields. Neither decodes, but both announce a version.
        let older = bincode::serde::encode_to_vec((0u32, 2u16, "ada"), CONFIG).expect("encodes");
        assert!(decode_client(&older).is_err(), "an older shape does not decode");
        assert_eq!(hello_version(&older), Some(2));
        let newer = bincode::serde::encode_to_vec((0u32, 99u16, "ada", 3u8, 0u32, 0u8, [7u8; 32]), CONFIG)
            .expect("encodes");
        assert!(decode_client(&newer).is_err(), "a newer shape does not decode");
        assert_eq!(hello_version(&newer), Some(99));
    }

    #[test]
    fn overlong_name_is_rejected_by_the_decoder() {
        let bytes = encode_server(&ServerMsg::Joined(PlayerInfo {
            id: 1,
            name: "n".repeat(200),
            color: 0,
            score: 0,
            bot: false,
        }));
        assert_eq!(decode_server(&bytes), Err(DecodeError::NameTooLong));
    }

    #[test]
    fn overlong_room_codes_are_rejected_by_both_decoders() {
        let code = "c".repeat(MAX_ROOM_CODE_CHARS + 1);
        for room in [RoomRequest::Join { code: code.clone() }, RoomRequest::Watch { code: code.clone() }] {
            let hello = ClientMsg::Hello { version: 2, name: "a".into(), color: 0, room, resume: None };
            assert_eq!(
                decode_client(&encode_client(&hello)),
                Err(DecodeError::TooLong { what: "room code" })
            );
        }
        let welcome = ServerMsg::Welcome(Welcome {
            version: 2,
            you: 1,
            watching: true,
            watchers: 1,
            tick_rate: 30,
            tick: 0,
            players: Vec::new(),
            room: code,
            private: false,
            resume: [0; 16],
            resumed: false,
            score: 0,
            platform: Platform { radius: 400 },
            round: RoundInfo { number: 1, phase: RoundPhase::Playing { ends_at: 5400 } },
            hosting: Hosting { host: 0, rules: Rules { round_secs: 180, points_to_win: 0 }, locked: false },
        });
        assert_eq!(decode_server(&encode_server(&welcome)), Err(DecodeError::TooLong { what: "room code" }));
        let moved =
            ServerMsg::Moved(Moved { url: "https://a".into(), room: "c".repeat(MAX_ROOM_CODE_CHARS + 1) });
        assert_eq!(decode_server(&encode_server(&moved)), Err(DecodeError::TooLong { what: "room code" }));
        let far = ServerMsg::Moved(Moved { url: "h".repeat(MAX_URL_BYTES + 1), room: "c".into() });
        assert_eq!(decode_server(&encode_server(&far)), Err(DecodeError::TooLong { what: "node URL" }));
    }

    #[test]
    fn frame_with_too_many_players_is_rejected() {
        let others = vec![OtherUpdate { id_gap: 1, dx: 0, dy: 0, life: Life::Out }; MAX_PLAYERS + 1];
        let you = PlayerState { id: 0, body: Body::default(), life: Life::Out };
        let bytes = encode_server(&ServerMsg::Frame(Frame {
            tick: 0,
            ack_seq: 0,
            baseline_age: 0,
            you,
            others,
            gone: Vec::new(),
            near: Vec::new(),
        }));
        assert!(matches!(decode_server(&bytes), Err(DecodeError::TooMany { .. })));
    }

    /// What any message a decoder accepts must be: within every cap, and
    /// the same message again after an encode and a decode (so nothing it
    /// carries is lost or made up on the way). Used by the property tests.
    #[cfg(not(target_arch = "wasm32"))]
    fn client_holds(msg: &ClientMsg) -> Result<(), String> {
        let again = decode_client(&encode_client(msg)).map_err(|e| format!("re-encoded: {e}"))?;
        if again != *msg {
            return Err(format!("re-encoded as {again:?}"));
        }
        if encoded_len(msg) > MAX_CLIENT_MSG_BYTES {
            return Err("over the size cap".into());
        }
        match msg {
            ClientMsg::Inputs { inputs, .. } if inputs.is_empty() || inputs.len() > MAX_INPUTS_PER_MSG => {
                Err(format!("{} inputs", inputs.len()))
            }
            ClientMsg::Hello { name, color, room, .. }
                if name.len() > MAX_NAME_CHARS * 4
                    || *color >= COLORS
                    || room.code().is_some_and(|c| c.len() > MAX_ROOM_CODE_CHARS) =>
            {
                Err("a Hello past its caps".into())
            }
            _ => Ok(()),
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn server_holds(msg: &ServerMsg) -> Result<(), String> {
        let again = decode_server(&encode_server(msg)).map_err(|e| format!("re-encoded: {e}"))?;
        if again != *msg {
            return Err(format!("re-encoded as {again:?}"));
        }
        if encoded_len(msg) > MAX_SERVER_MSG_BYTES {
            return Err("over the size cap".into());
        }
        let over = match msg {
            ServerMsg::Welcome(w) => {
                w.players.len() > MAX_PLAYERS
                    || w.room.len() > MAX_ROOM_CODE_CHARS
                    || w.players.iter().any(|p| p.name.len() > MAX_NAME_CHARS * 4)
            }
            ServerMsg::Frame(f) => {
                f.others.len() > MAX_PLAYERS || f.gone.len() > MAX_PLAYERS || f.near.len() > MAX_NEAR
            }
            ServerMsg::Joined(info) => info.name.len() > MAX_NAME_CHARS * 4,
            ServerMsg::Rejected(r) => r.message.len() > MAX_REASON_BYTES,
            ServerMsg::Moved(m) => m.room.len() > MAX_ROOM_CODE_CHARS || m.url.len() > MAX_URL_BYTES,
            _ => false,
        };
        if over { Err("past a cap".into()) } else { Ok(()) }
    }

    /// Every sample message, encoded, as (bytes, which decoder takes it).
    fn sample_bytes() -> Vec<(Vec<u8>, bool)> {
        let server = sample_server_msgs().iter().map(|m| (encode_server(m), true)).collect::<Vec<_>>();
        server.into_iter().chain(sample_client_msgs().iter().map(|m| (encode_client(m), false))).collect()
    }

    #[test]
    fn every_truncation_of_a_valid_message_is_an_error() {
        for (bytes, is_server) in sample_bytes() {
            for len in 0..bytes.len() {
                let cut = &bytes[..len];
                let decoded = if is_server {
                    decode_server(cut).map(|m| format!("{m:?}"))
                } else {
                    decode_client(cut).map(|m| format!("{m:?}"))
                };
                assert!(
                    matches!(decoded, Err(DecodeError::Empty | DecodeError::Malformed(_))),
                    "{len} of {} bytes: {decoded:?}",
                    bytes.len()
                );
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn arbitrary_bytes_decode_only_to_messages_within_their_caps(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(msg) = decode_client(&bytes) {
                prop_assert_eq!(client_holds(&msg), Ok(()), "{:?}", msg);
            }
            if let Ok(msg) = decode_server(&bytes) {
                prop_assert_eq!(server_holds(&msg), Ok(()), "{:?}", msg);
            }
        }

        #[test]
        fn mutated_valid_messages_decode_only_to_messages_within_their_caps(
            index in 0usize..64, pos in any::<usize>(), byte in any::<u8>()
        ) {
            let samples = sample_bytes();
            let (mut bytes, _) = samples[index % samples.len()].clone();
            let at = pos % bytes.len();
            bytes[at] = byte;
            if let Ok(msg) = decode_client(&bytes) {
                prop_assert_eq!(client_holds(&msg), Ok(()), "{:?}", msg);
            }
            if let Ok(msg) = decode_server(&bytes) {
                prop_assert_eq!(server_holds(&msg), Ok(()), "{:?}", msg);
            }
        }

        #[test]
        fn any_input_round_trips(seq in any::<u32>(), x in any::<i8>(), y in any::<i8>()) {
            let msg = ClientMsg::Input { seq, input: Input { x, y, dash: false } };
            prop_assert_eq!(decode_client(&encode_client(&msg)), Ok(msg));
        }
    }
}
