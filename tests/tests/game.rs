//! The game end to end, on real sockets: a scripted player dashes another
//! off the platform and the server credits it; in a 3 s round a player who
//! walks off loses a point, the round ends with the right standings on the
//! podium, and the next one starts from zero.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use arena_bots::ws::{Incoming, WsClient};
use arena_shared::netcode::ViewHistory;
use arena_shared::protocol::{
    ClientMsg, Knockout, Life, PlayerId, RoundInfo, RoundPhase, ServerMsg, Standing, Welcome,
};
use arena_shared::sim::{FIXED_ONE, Input};
use arena_tests::{TestServer, recv_until, test_config};
use tokio::task::JoinHandle;

/// What a player that stands still heard, until it is told to stop.
struct Watcher {
    task: JoinHandle<anyhow::Result<(Vec<ServerMsg>, WsClient)>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

/// Reads (and keeps) everything `client` receives, sending nothing but
/// the reading itself: a player who stands still.
fn watch(mut client: WsClient) -> Watcher {
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut heard = Vec::new();
        loop {
            tokio::select! {
                _ = &mut stopped => return Ok((heard, client)),
                incoming = client.recv() => match incoming? {
                    Incoming::Msg(msg) => heard.push(msg),
                    Incoming::Closed(frame) => bail!("closed: {frame:?}"),
                },
            }
        }
    });
    Watcher { task, stop }
}

impl Watcher {
    async fn heard(self) -> anyhow::Result<Vec<ServerMsg>> {
        Ok(self.stop().await?.0)
    }

    /// What it heard, and the socket, to read on.
    async fn stop(self) -> anyhow::Result<(Vec<ServerMsg>, WsClient)> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// The next frame `client` receives.
async fn recv_until_frame(client: &mut WsClient) -> anyhow::Result<arena_shared::protocol::Frame> {
    recv_until(client, |m| match m {
        ServerMsg::Frame(f) => Some(f.clone()),
        _ => None,
    })
    .await
}

/// Steers `attacker` behind `victim` (on the side of the platform's
/// centre) and dashes it outwards, until the server reports a knockout.
/// Returns the knockout and everything else heard meanwhile.
async fn knock_off(attacker: &mut WsClient, victim: PlayerId) -> anyhow::Result<(Knockout, Vec<ServerMsg>)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut heard = Vec::new();
    let mut seq = 0u32;
    let (mut my_pos, mut its_pos, mut its_life) = ((0.0f32, 0.0f32), None, Life::Protected);
    let mut my_life = Life::Protected;
    // The victim's place, from the frames' views of the others.
    let mut views = ViewHistory::default();
    loop {
        if Instant::now() > deadline {
            let events: Vec<&ServerMsg> =
                heard.iter().filter(|m| !matches!(m, ServerMsg::Frame(_) | ServerMsg::Pong { .. })).collect();
            bail!(
                "no knockout within 20 s; last seen {my_pos:?} {my_life:?}, victim {its_pos:?} {its_life:?}; \
                 sent {seq} inputs; heard {events:?}"
            );
        }
        // One input per 1/60 s; read whatever arrived meanwhile.
        if let Ok(incoming) = tokio::time::timeout(Duration::from_millis(16), attacker.recv()).await {
            let Incoming::Msg(msg) = incoming? else { bail!("attacker's socket closed") };
            match &msg {
                ServerMsg::Frame(frame) => {
                    let view = views.apply(frame).context("frame fits a kept baseline")?;
                    if let Some((_, seen)) = view.iter().find(|(id, _)| *id == victim) {
                        its_pos = Some(seen.to_units());
                        its_life = seen.life;
                    }
                    let pos = frame.you.body.pos;
                    my_pos = (pos.x as f32 / FIXED_ONE as f32, pos.y as f32 / FIXED_ONE as f32);
                    my_life = frame.you.life;
                }
                ServerMsg::KnockedOut(knockout) if knockout.victim == victim => {
                    return Ok((*knockout, heard));
                }
                _ => {}
            }
            heard.push(msg);
            continue;
        }
        let Some(target) = its_pos else { continue };
        // Outwards from the centre through the victim; stand 50 units inside it.
        let len = (target.0 * target.0 + target.1 * target.1).sqrt().max(1.0);
        let out = (target.0 / len, target.1 / len);
        let spot = (target.0 - out.0 * 50.0, target.1 - out.1 * 50.0);
        let (dx, dy) = (spot.0 - my_pos.0, spot.1 - my_pos.1);
        let far = (dx * dx + dy * dy).sqrt();
        let input = if far > 8.0 {
            let speed = if far > 40.0 { 127.0 } else { 60.0 };
            Input::stick((dx / far * speed) as i8, (dy / far * speed) as i8)
        } else if its_life == Life::Alive {
            Input::stick((out.0 * 127.0) as i8, (out.1 * 127.0) as i8).with_dash(true)
        } else {
            // Wait for its spawn protection to end (it passes through others).
            Input::default()
        };
        seq += 1;
        attacker.send(&ClientMsg::Input { seq, input }).await?;
    }
}

async fn two_players(server: &TestServer) -> anyhow::Result<((WsClient, Welcome), (WsClient, Welcome))> {
    let attacker = server.player("ada").await?;
    let victim = server.player("bob").await?;
    assert_eq!(attacker.1.room, victim.1.room, "quick-join puts both in one room");
    Ok((attacker, victim))
}

#[tokio::test]
async fn a_dash_off_the_edge_is_credited_to_the_dasher() -> anyhow::Result<()> {
    let server = TestServer::start(test_config()).await?;
    let ((mut attacker, ada), (victim_socket, bob)) = two_players(&server).await?;
    assert!(ada.platform.radius >= 200, "the platform travels in Welcome: {:?}", ada.platform);
    let victim = watch(victim_socket);
    let (knockout, _) = knock_off(&mut attacker, bob.you).await?;
    assert_eq!(knockout, Knockout { victim: bob.you, victim_score: 0, by: Some(ada.you), by_score: 1 });
    // Everyone is told, the victim too; it falls, is out, then comes back
    // protected (the fall takes 0.6 s, the respawn 2 s more).
    let (mut heard, mut socket) = victim.stop().await?;
    let life_of = |m: &ServerMsg| match m {
        ServerMsg::Frame(f) => Some(f.you.life),
        _ => None,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while heard.iter().rev().find_map(life_of) != Some(Life::Protected)
        || !heard.contains(&ServerMsg::KnockedOut(knockout))
    {
        match tokio::time::timeout_at(deadline, socket.recv()).await {
            Ok(Ok(Incoming::Msg(msg))) => heard.push(msg),
            Ok(other) => bail!("the victim's socket ended: {other:?}"),
            Err(_) => bail!(
                "no knockout news and return within 8 s; lives: {:?}",
                heard.iter().filter_map(life_of).collect::<Vec<_>>()
            ),
        }
    }
    let mut order: Vec<Life> = heard.iter().filter_map(life_of).skip_while(|l| *l != Life::Falling).collect();
    order.dedup();
    assert_eq!(
        order,
        [Life::Falling, Life::Out, Life::Protected],
        "frames show the fall, the wait, the return"
    );
    server.stop().await
}

#[tokio::test]
async fn a_short_round_ends_on_a_podium_and_the_next_starts_from_zero() -> anyhow::Result<()> {
    let config = test_config().with(|c| {
        c.game.round_secs = 3;
        c.game.podium_secs = 2;
    });
    let server = TestServer::start(config).await?;
    let ((mut ada_socket, ada), (mut bob_socket, bob)) = two_players(&server).await?;
    // Bob walks off the edge on his own, well within the 3 s round.
    let out = recv_until_frame(&mut bob_socket).await?.you.body.pos;
    let (x, y) = (f64::from(out.x), f64::from(out.y));
    let len = (x * x + y * y).sqrt().max(1.0);
    let away = Input::stick((x / len * 127.0) as i8, (y / len * 127.0) as i8);
    for seq in 1..=60 {
        bob_socket.send(&ClientMsg::Input { seq, input: away }).await?;
        tokio::time::sleep(Duration::from_millis(16)).await;
    }
    let victim = watch(bob_socket);
    let fell = recv_until(&mut ada_socket, |m| match m {
        ServerMsg::KnockedOut(k) => Some(*k),
        _ => None,
    })
    .await?;
    assert_eq!(
        fell,
        Knockout { victim: bob.you, victim_score: -1, by: None, by_score: 0 },
        "a fall of his own"
    );
    let mut attacker = ada_socket;

    // The round's end: standings best first, then a new round.
    let mut rounds: Vec<RoundInfo> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(12);
    while rounds.len() < 2 {
        let left = deadline.checked_duration_since(Instant::now()).context("rounds did not turn over")?;
        match tokio::time::timeout(left, attacker.recv()).await.context("rounds did not turn over")?? {
            Incoming::Msg(ServerMsg::Round(round)) => rounds.push(round),
            Incoming::Msg(_) => {}
            Incoming::Closed(frame) => bail!("closed: {frame:?}"),
        }
    }
    let RoundPhase::Podium { standings, next_at } = &rounds[0].phase else {
        bail!("the round should end on a podium: {rounds:?}")
    };
    assert_eq!(rounds[0].number, 1);
    assert_eq!(
        standings,
        &[
            Standing { id: ada.you, score: 0, knockouts: 0 },
            Standing { id: bob.you, score: -1, knockouts: 0 }
        ]
    );
    assert_eq!(rounds[1].number, 2);
    assert!(
        matches!(rounds[1].phase, RoundPhase::Playing { ends_at } if ends_at == next_at + 3 * 30),
        "round 2 runs for --round-secs from the podium's end: {rounds:?}"
    );
    // Scores are back to zero for everyone: a newcomer's Welcome says so.
    let (_late, welcome) = server.player("cy").await?;
    assert_eq!(welcome.round.number, 2);
    assert!(welcome.players.iter().all(|p| p.score == 0), "scores reset: {:?}", welcome.players);
    assert!(victim.heard().await?.iter().any(|m| matches!(m, ServerMsg::Round(r) if r.number == 2)));
    server.stop().await
}
