//! A private room's host over real sockets: only the host's commands are
//! carried out (others get a typed refusal), rules wait for the next round,
//! a lock keeps new players out, a kick closes with 4010 and keeps that
//! address out (to play and to watch) while another address comes in, a
//! player moved to watchers is closed with 4012, the next round starts at
//! most every 10 s, and the role passes on when the host leaves.

use arena_bots::ws::WsClient;
use arena_shared::protocol::{
    ClientMsg, CommandRefusal, HostCommand, Hosting, RejectReason, RoomRequest, RoundInfo, RoundPhase, Rules,
    ServerMsg, close,
};
use arena_tests::{TestServer, expect_close, recv_until, rejection, test_config};

/// Reads until a `Hosting` that `want` accepts (older ones are skipped).
async fn hosting_where(client: &mut WsClient, want: impl Fn(&Hosting) -> bool) -> anyhow::Result<Hosting> {
    recv_until(client, |msg| match msg {
        ServerMsg::Hosting(h) if want(h) => Some(*h),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_private_room_s_host_sets_rules_locks_kicks_moves_to_watchers_and_hands_over() -> anyhow::Result<()>
{
    let server = TestServer::start(test_config().with(|c| c.game.round_secs = 180)).await?;
    let (mut ada, created) = server.join_from(1, "ada", RoomRequest::CreatePrivate).await?;
    assert_eq!(created.hosting.host, created.you, "the creator hosts");
    let join = RoomRequest::Join { code: created.room.clone() };
    let (mut bob, bob_in) = server.join_from(2, "bob", join.clone()).await?;
    assert_eq!(bob_in.hosting.host, created.you, "and everyone is told who does");
    let (mut cy, cy_in) = server.join_from(3, "cy", join.clone()).await?;

    // Not the host: refused, and only bob hears it.
    bob.send(&ClientMsg::Host(HostCommand::Kick { id: created.you })).await?;
    let refusal =
        recv_until(&mut bob, |m| if let ServerMsg::Refused(r) = m { Some(*r) } else { None }).await?;
    assert_eq!(refusal, CommandRefusal::NotHost);
    let silly = Rules { round_secs: 5, points_to_win: 3 };
    ada.send(&ClientMsg::Host(HostCommand::SetRules(silly))).await?;
    let refusal =
        recv_until(&mut ada, |m| if let ServerMsg::Refused(r) = m { Some(*r) } else { None }).await?;
    assert_eq!(refusal, CommandRefusal::OutOfRange);

    // Rules: everyone is told; they apply from the next round, which the
    // host starts now.
    let rules = Rules { round_secs: 60, points_to_win: 3 };
    ada.send(&ClientMsg::Host(HostCommand::SetRules(rules))).await?;
    hosting_where(&mut cy, |h| h.rules == rules).await?;
    ada.send(&ClientMsg::Host(HostCommand::NextRound)).await?;
    let round =
        recv_until(&mut cy, |m| if let ServerMsg::Round(r) = m { Some(r.clone()) } else { None }).await?;
    let tick = recv_until(&mut cy, |m| if let ServerMsg::Frame(f) = m { Some(f.tick) } else { None }).await?;
    let RoundInfo { number: 2, phase: RoundPhase::Playing { ends_at } } = round else {
        panic!("a second round, playing: {round:?}");
    };
    assert!(ends_at.abs_diff(tick + 60 * 30) <= 2, "a 60 s round: ends at {ends_at}, now {tick}");
    // Every round is recorded: a host may not end them at will.
    ada.send(&ClientMsg::Host(HostCommand::NextRound)).await?;
    let refusal =
        recv_until(&mut ada, |m| if let ServerMsg::Refused(r) = m { Some(*r) } else { None }).await?;
    assert_eq!(refusal, CommandRefusal::TooSoon { retry_after_secs: 10 }, "{}", refusal.message());

    // Locked: a newcomer is refused with 4011; a watcher still comes in.
    ada.send(&ClientMsg::Host(HostCommand::Lock(true))).await?;
    hosting_where(&mut bob, |h| h.locked).await?;
    let locked = server.join_from(4, "dee", join.clone()).await;
    assert_eq!(rejection(locked).reason, RejectReason::RoomLocked);
    assert_eq!(RejectReason::RoomLocked.close_code(), close::ROOM_LOCKED);
    let watch = RoomRequest::Watch { code: created.room.clone() };
    let (mut watcher, _) = server.join_from(4, "dee", watch.clone()).await?;
    ada.send(&ClientMsg::Host(HostCommand::Lock(false))).await?;
    hosting_where(&mut bob, |h| !h.locked).await?;

    // A kick: 4010 with the reason, and that address stays out.
    ada.send(&ClientMsg::Host(HostCommand::Kick { id: bob_in.you })).await?;
    let (code, reason) = expect_close(&mut bob).await?.expect("a close frame");
    assert_eq!(code, close::KICKED);
    assert!(reason.contains("host removed you"), "{reason}");
    let again = rejection(server.join_from(2, "bob", join.clone()).await).reason;
    assert!(
        matches!(again, RejectReason::Banned { retry_after_secs } if retry_after_secs > 590),
        "{again:?}"
    );
    assert!(matches!(
        rejection(server.join_from(2, "bob", watch.clone()).await).reason,
        RejectReason::Banned { .. }
    ));
    let (_eve, _) = server.join_from(5, "eve", join.clone()).await?;

    // To watchers: 4012.
    ada.send(&ClientMsg::Host(HostCommand::ToWatchers { id: cy_in.you })).await?;
    assert_eq!(expect_close(&mut cy).await?.map(|c| c.0), Some(close::TO_WATCHERS));

    // A watcher hosts nothing.
    watcher.send(&ClientMsg::Host(HostCommand::NextRound)).await?;
    assert_eq!(expect_close(&mut watcher).await?.map(|c| c.0), Some(close::PROTOCOL_ERROR));

    // The host leaves: the longest present (eve, now) hosts.
    let (mut fay, fay_in) = server.join_from(6, "fay", join.clone()).await?;
    ada.close().await;
    let passed = hosting_where(&mut fay, |h| h.host != created.you).await?;
    assert!(passed.host < fay_in.you, "eve came first: {passed:?}");
    assert_eq!(passed.rules, rules, "the rules stay");
    server.stop().await
}
