//! arena-hub: a minimal broadcast server in the style of a gorilla/websocket
//! hub (the seeds' Go server), speaking arena's protocol so the same
//! `arena-bots` can play on it: one room, every player's inputs applied
//! with arena's shared rules, and every tick the full state to everyone,
//! encoded once (each player's frame is its own short head, its tick, ack
//! and body, before the same bytes for all: every player, no interest, no
//! deltas, no prediction help), handed to a writer task per connection
//! over a bounded channel (a full one drops the frame, as the hub's
//! `select { default: }` does), written with tokio-tungstenite.
//!
//! It is what `scripts/sidebyside.sh` measures arena against; it is not a
//! game server (no rooms, resume, limits, origin checks or TLS). Listens
//! on `--bind`; any path upgrades.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arena_shared::codec::{decode_client, encode_server};
use arena_shared::game::{Match, MatchSettings};
use arena_shared::protocol::{
    ClientMsg, Frame, Hosting, OtherUpdate, PROTOCOL_VERSION, PlayerId, PlayerInfo, PlayerState, Seen,
    ServerMsg, Welcome,
};
use arena_shared::sim::Input;
use bytes::Bytes;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(name = "arena-hub", about = "A minimal full-state broadcast server speaking arena's protocol")]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:3001")]
    bind: SocketAddr,
    /// Ticks a second.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=240))]
    tick_rate: u16,
    /// Players at most.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    max_players: u16,
}

/// Frames a connection's writer may have waiting; past it, frames are dropped.
const SEND_QUEUE: usize = 16;

/// One connected player.
struct Client {
    send: mpsc::Sender<Bytes>,
    /// The last input seq applied for it.
    acked: u32,
}

/// The one room: the game, the clients, and the inputs waiting for the tick.
struct Hub {
    game: Match,
    clients: BTreeMap<PlayerId, Client>,
    inputs: Vec<(PlayerId, u32, Input)>,
    next_id: PlayerId,
    tick_rate: u16,
    max_players: u16,
}

type Shared = Arc<Mutex<Hub>>;

fn lock(hub: &Shared) -> std::sync::MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(PoisonError::into_inner)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let settings = MatchSettings::new(args.tick_rate, 180, 10, args.max_players);
    let hub = Arc::new(Mutex::new(Hub {
        game: Match::new(settings),
        clients: BTreeMap::new(),
        inputs: Vec::new(),
        next_id: 1,
        tick_rate: args.tick_rate,
        max_players: args.max_players,
    }));
    let listener = TcpListener::bind(args.bind).await?;
    eprintln!("arena-hub listening on {}", listener.local_addr()?);
    tokio::spawn(tick(hub.clone(), args.tick_rate));
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        tokio::spawn(serve(socket, hub.clone()));
    }
}

/// The tick: inputs in, the game advances, everyone gets the full state.
async fn tick(hub: Shared, tick_rate: u16) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / u32::from(tick_rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        let mut hub = lock(&hub);
        let hub = &mut *hub;
        for (id, seq, input) in std::mem::take(&mut hub.inputs) {
            if let Some(client) = hub.clients.get_mut(&id)
                && seq > client.acked
            {
                hub.game.apply_input(id, input);
                client.acked = seq;
            }
        }
        hub.game.advance();
        let states = hub.game.states();
        let everyone = full_view(&states);
        for state in &states {
            let Some(client) = hub.clients.get(&state.id) else { continue };
            let frame = Bytes::from(frame_for(hub.game.tick(), client.acked, *state, &everyone));
            // A writer that is behind misses this frame.
            let _ = client.send.try_send(frame);
        }
    }
}

/// The part of every frame that is the same for all: everyone's view
/// (the receiver too), no one gone, no one near. Encoded once a tick.
fn full_view(states: &[PlayerState]) -> Vec<u8> {
    let mut last = 0;
    let others: Vec<OtherUpdate> = states
        .iter()
        .map(|state| {
            let seen = Seen::of(state);
            let update = OtherUpdate { id_gap: state.id - last, dx: seen.x, dy: seen.y, life: seen.life };
            last = state.id;
            update
        })
        .collect();
    let nobody: Vec<PlayerId> = Vec::new();
    let near: Vec<arena_shared::protocol::NearUpdate> = Vec::new();
    arena_shared::codec::encode_part(&(others, nobody, near))
}

/// One player's frame: its own head (tick, ack, body) and the shared view.
/// A frame's last three fields are the view, the gone and the near: a
/// frame encoded with all three empty ends in three zero lengths, which
/// the shared bytes take the place of.
fn frame_for(tick: u32, ack_seq: u32, you: PlayerState, everyone: &[u8]) -> Vec<u8> {
    let head =
        Frame { tick, ack_seq, baseline_age: 0, you, others: Vec::new(), gone: Vec::new(), near: Vec::new() };
    let mut bytes = encode_server(&ServerMsg::Frame(head));
    bytes.truncate(bytes.len() - 3);
    bytes.extend_from_slice(everyone);
    bytes
}

/// One connection: Hello, Welcome, then inputs in and frames out.
async fn serve(socket: TcpStream, hub: Shared) {
    let Ok(ws) = tokio_tungstenite::accept_async(socket).await else { return };
    let (mut sink, mut stream) = ws.split();
    let hello = loop {
        match stream.next().await {
            Some(Ok(Message::Binary(bytes))) => break decode_client(&bytes),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
            Some(Ok(_)) => {}
        }
    };
    let Ok(ClientMsg::Hello { .. }) = hello else { return };
    let (send, mut frames) = mpsc::channel::<Bytes>(SEND_QUEUE);
    let (id, welcome) = {
        let mut hub = lock(&hub);
        if hub.clients.len() >= usize::from(hub.max_players) {
            return;
        }
        let id = hub.next_id;
        hub.next_id += 1;
        hub.game.spawn(id);
        hub.clients.insert(id, Client { send: send.clone(), acked: 0 });
        (id, welcome(&hub, id))
    };
    if sink.send(Message::Binary(encode_server(&ServerMsg::Welcome(welcome)).into())).await.is_err() {
        leave(&hub, id);
        return;
    }
    let writer = async {
        while let Some(frame) = frames.recv().await {
            if sink.send(Message::Binary(frame)).await.is_err() {
                break;
            }
        }
    };
    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            let Message::Binary(bytes) = message else {
                if matches!(message, Message::Close(_)) {
                    break;
                }
                continue;
            };
            match decode_client(&bytes) {
                Ok(ClientMsg::Input { seq, input }) => lock(&hub).inputs.push((id, seq, input)),
                Ok(ClientMsg::Inputs { seq, inputs }) => {
                    let mut hub = lock(&hub);
                    for (n, input) in inputs.into_iter().enumerate() {
                        hub.inputs.push((id, seq.wrapping_add(n as u32), input));
                    }
                }
                Ok(ClientMsg::Ping { client_time_us }) => {
                    let _ = send.try_send(Bytes::from(encode_server(&ServerMsg::Pong { client_time_us })));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    leave(&hub, id);
}

fn leave(hub: &Shared, id: PlayerId) {
    let mut hub = lock(hub);
    hub.clients.remove(&id);
    hub.game.remove(id);
}

/// The hub keeps no names: everyone is "player N" to everyone else.
fn welcome(hub: &Hub, you: PlayerId) -> Welcome {
    let players = hub
        .clients
        .keys()
        .filter(|&&id| id != you)
        .map(|&id| PlayerInfo { id, name: format!("player {id}"), color: 0, score: 0, bot: false })
        .collect();
    Welcome {
        version: PROTOCOL_VERSION,
        you,
        watching: false,
        watchers: 0,
        tick_rate: hub.tick_rate,
        tick: hub.game.tick(),
        players,
        room: "hubroom000".into(),
        private: false,
        resume: [0; 16],
        resumed: false,
        score: 0,
        platform: hub.game.settings().platform,
        round: hub.game.round().clone(),
        hosting: Hosting::nobody(180),
    }
}

#[cfg(test)]
mod tests {
    use arena_shared::codec::decode_server;
    use arena_shared::sim::Body;

    use super::*;

    #[test]
    fn a_spliced_frame_is_exactly_the_frame_encoded_whole() {
        let states: Vec<PlayerState> = [3u16, 7, 8]
            .iter()
            .map(|&id| PlayerState { id, body: Body::default(), life: Default::default() })
            .collect();
        let bytes = frame_for(42, 9, states[1], &full_view(&states));
        let Ok(ServerMsg::Frame(frame)) = decode_server(&bytes) else { panic!("a frame") };
        assert_eq!((frame.tick, frame.ack_seq, frame.you, frame.baseline_age), (42, 9, states[1], 0));
        assert_eq!(frame.others.iter().map(|u| u.id_gap).collect::<Vec<_>>(), [3, 4, 1]);
        let whole = encode_server(&ServerMsg::Frame(frame.clone()));
        assert_eq!(whole, bytes, "the same bytes as the frame encoded whole");
    }
}
