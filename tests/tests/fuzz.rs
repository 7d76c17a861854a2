//! A live connection fed arbitrary message sequences (cargo-fuzz needs a
//! nightly compiler these machines do not have, so proptest drives it):
//! valid messages with extreme numbers, messages out of order, raw bytes,
//! control frames with any payload, text. Whatever a case sends, no
//! connection task panics (debug builds check every overflow), the socket
//! either stays open or is closed with one of the protocol's close codes,
//! and an honest player in the same room is never closed and keeps getting
//! frames.
//!
//! `PROPTEST_CASES` sets the number of sequences (48 by default: CI's bound).

use std::time::Duration;

use arena_bots::ws::{ClientError, Incoming, WsClient};
use arena_shared::codec::encode_client;
use arena_shared::protocol::{
    ClientMsg, MAX_INPUTS_PER_MSG, PROTOCOL_VERSION, RoomRequest, ServerMsg, close,
};
use arena_shared::sim::Input;
use arena_tests::{TestServer, test_config};
use proptest::prelude::*;
use tokio_tungstenite::tungstenite::{Bytes, Message};

/// One thing a fuzzed client sends.
#[derive(Debug, Clone)]
enum Step {
    Msg(ClientMsg),
    Raw(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Text(String),
}

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(u32::MAX), Just(u32::MAX - 1), Just(u32::MAX - 3), any::<u32>()]
}

fn input() -> impl Strategy<Value = Input> {
    (any::<i8>(), any::<i8>(), any::<bool>()).prop_map(|(x, y, dash)| Input { x, y, dash })
}

fn room() -> impl Strategy<Value = RoomRequest> {
    prop_oneof![
        Just(RoomRequest::Quick),
        Just(RoomRequest::CreatePrivate),
        "[a-z0-9]{0,16}".prop_map(|code| RoomRequest::Join { code }),
    ]
}

fn message() -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        (
            prop_oneof![Just(PROTOCOL_VERSION), any::<u16>()],
            "\\PC{0,20}",
            any::<u8>(),
            room(),
            proptest::option::of(any::<[u8; 16]>()),
        )
            .prop_map(|(version, name, color, room, resume)| ClientMsg::Hello {
                version,
                name,
                color,
                room,
                resume
            }),
        (edge_u32(), input()).prop_map(|(seq, input)| ClientMsg::Input { seq, input }),
        any::<u64>().prop_map(|client_time_us| ClientMsg::Ping { client_time_us }),
        Just(ClientMsg::Resync),
        (edge_u32(), proptest::collection::vec(input(), 0..=MAX_INPUTS_PER_MSG + 2))
            .prop_map(|(seq, inputs)| ClientMsg::Inputs { seq, inputs }),
    ]
}

/// What a joined client may send: messages the server must take in any
/// number and with any values (extreme seqs, any ping payloads).
fn game_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (edge_u32(), proptest::collection::vec(input(), 1..=MAX_INPUTS_PER_MSG))
            .prop_map(|(seq, inputs)| Step::Msg(ClientMsg::Inputs { seq, inputs })),
        3 => (edge_u32(), input()).prop_map(|(seq, input)| Step::Msg(ClientMsg::Input { seq, input })),
        1 => any::<u64>().prop_map(|client_time_us| Step::Msg(ClientMsg::Ping { client_time_us })),
        1 => Just(Step::Msg(ClientMsg::Resync)),
        1 => proptest::collection::vec(any::<u8>(), 0..16).prop_map(Step::Ping),
        1 => proptest::collection::vec(any::<u8>(), 0..16).prop_map(Step::Pong),
    ]
}

/// Anything at all: what ends a sequence, or starts one without a Hello.
fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => message().prop_map(Step::Msg),
        3 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Step::Raw),
        1 => "\\PC{0,8}".prop_map(Step::Text),
        1 => game_step(),
    ]
}

/// A valid Hello first most of the time (so the sequence plays), then game
/// messages, then perhaps one of anything.
fn sequence() -> impl Strategy<Value = (bool, Vec<Step>)> {
    (
        proptest::bool::weighted(0.8),
        proptest::option::of(any_step()),
        proptest::collection::vec(game_step(), 0..60),
        proptest::option::weighted(0.5, any_step()),
    )
        .prop_map(|(hello_first, opening, game, last)| {
            let opening = if hello_first { None } else { opening };
            (hello_first, opening.into_iter().chain(game).chain(last).collect())
        })
}

fn to_message(step: &Step) -> Message {
    match step {
        Step::Msg(msg) => Message::Binary(encode_client(msg).into()),
        Step::Raw(bytes) => Message::Binary(bytes.clone().into()),
        Step::Ping(bytes) => Message::Ping(Bytes::copy_from_slice(bytes)),
        Step::Pong(bytes) => Message::Pong(Bytes::copy_from_slice(bytes)),
        Step::Text(text) => Message::Text(text.as_str().into()),
    }
}

/// Plays one sequence; says how the connection ended.
async fn play(server: &TestServer, hello_first: bool, steps: &[Step]) -> Result<Option<u16>, String> {
    let mut client = server.client().await.map_err(|e| e.to_string())?;
    if hello_first {
        client.handshake_in("fuzz", RoomRequest::Quick).await.map_err(|e| e.to_string())?;
    }
    for step in steps {
        if client.send_raw(to_message(step)).await.is_err() {
            break;
        }
    }
    // Read for a moment: the answer to the last message comes within it.
    let until = tokio::time::Instant::now() + Duration::from_millis(400);
    loop {
        match tokio::time::timeout_at(until, client.recv()).await {
            Err(_) => return Ok(None),
            Ok(Ok(Incoming::Msg(_))) => {}
            Ok(Ok(Incoming::Closed(frame))) => {
                return Ok(Some(frame.map_or(close::ABNORMAL, |(code, _)| code)));
            }
            Ok(Err(ClientError::Lost(_))) => return Ok(Some(close::ABNORMAL)),
            Ok(Err(e)) => return Err(format!("unexpected client error: {e}")),
        }
    }
}

/// Counts the honest player's frames until `stop` fires; an error if it
/// was closed or lost meanwhile.
async fn watch(mut honest: WsClient, mut stop: tokio::sync::oneshot::Receiver<()>) -> Result<u32, String> {
    let mut frames = 0;
    loop {
        let next = tokio::select! {
            next = honest.recv() => next,
            _ = &mut stop => return Ok(frames),
        };
        match next {
            Ok(Incoming::Msg(ServerMsg::Frame(_))) => frames += 1,
            Ok(Incoming::Msg(_)) => {}
            Ok(Incoming::Closed(frame)) => return Err(format!("the honest player was closed: {frame:?}")),
            Err(e) => {
                return Err(format!("the honest player lost its connection after {frames} frames: {e}"));
            }
        }
    }
}

#[test]
#[expect(clippy::too_many_lines, reason = "the property and its harness, read top to bottom")]
fn arbitrary_message_sequences_never_panic_a_connection_or_touch_another_player() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the server");
    let config = test_config().with(|c| {
        c.game.max_players = 64;
        c.game.max_rooms = 64;
        c.game.resume_secs = 0.0;
    });
    let (server, honest) = runtime.block_on(async {
        let server = TestServer::start(config).await.expect("the server starts");
        let (honest, _) = server.player("honest").await.expect("the honest player joins");
        (server, honest)
    });
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let watching = runtime.spawn(watch(honest, stopped));
    let started = std::time::Instant::now();

    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48);
    // A fixed seed: every run plays the same sequences, so the coverage
    // check below cannot pass on one run and fail on the next. Another
    // seed (`ARENA_FUZZ_SEED=N`) explores other sequences.
    let seed = std::env::var("ARENA_FUZZ_SEED").ok().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng =
        proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = proptest::test_runner::TestRunner::new_with_rng(
        ProptestConfig { cases, ..ProptestConfig::default() },
        rng,
    );
    let endings = std::sync::Mutex::new(std::collections::BTreeMap::<Option<u16>, u32>::new());
    let result = runner.run(&sequence(), |(hello_first, steps)| {
        let ended = runtime.block_on(play(&server, hello_first, &steps));
        let ended = ended.map_err(TestCaseError::fail)?;
        *endings.lock().unwrap_or_else(|p| p.into_inner()).entry(ended).or_default() += 1;
        if let Some(code) = ended {
            prop_assert!(
                close::SENT.contains(&code) || code == close::ABNORMAL,
                "closed with an unknown code {code}"
            );
        }
        let panics = runtime
            .block_on(server.metric("arena_task_panics_total"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(panics, 0, "a connection task panicked");
        Ok(())
    });
    if let Err(failure) = result {
        panic!("a message sequence broke the server: {failure}");
    }
    let endings = endings.into_inner().unwrap_or_else(|p| p.into_inner());
    eprintln!("how the {cases} sequences ended (close code, or None: still open): {endings:?}");
    let played: u32 = endings.values().sum();
    assert_eq!(played, cases, "every case ran once: {endings:?}");
    // The default seed's sequences reach three closes (text 1003, too big
    // 1009, malformed 4000) besides staying open: the generator covers the
    // ways out. Another seed may reach fewer; it is for exploring.
    if seed == 0 {
        assert!(
            endings.keys().filter(|k| k.is_some()).count() >= 3,
            "the cases reach several ways out: {endings:?}"
        );
    }

    let elapsed = started.elapsed();
    let _ = stop.send(());
    let honest_frames =
        runtime.block_on(watching).expect("the watcher ran").unwrap_or_else(|e| panic!("{e}"));
    // 30 frames a second throughout; a loaded machine skips some ticks (the
    // honest player is never closed, which `watch` checks), never most.
    let expected = (elapsed.as_secs_f64() * 30.0) as u32;
    assert!(
        honest_frames >= expected / 3,
        "the honest player should keep getting frames: {honest_frames} in {elapsed:?}"
    );
    runtime.block_on(async {
        // A newcomer still joins and gets its own frames, ten in a row.
        let (mut again, welcome) = server.player("after").await.expect("a newcomer still joins");
        let mut frames = 0;
        while frames < 10 {
            match tokio::time::timeout(Duration::from_secs(2), again.recv()).await {
                Ok(Ok(Incoming::Msg(ServerMsg::Frame(frame)))) => {
                    assert_eq!(frame.you.id, welcome.you, "the newcomer's own frame");
                    frames += 1;
                }
                Ok(Ok(_)) => {}
                other => panic!("the newcomer should get frames, got {other:?} after {frames}"),
            }
        }
    });
    runtime.block_on(server.stop()).expect("the server stops");
}
