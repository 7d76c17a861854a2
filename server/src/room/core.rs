//! [`Room`]: one room without its task: the world and the players' links,
//! and how what the world decides reaches the players (news first, then
//! frames), who is admitted and seated, watchers, hosts' commands and
//! operators' orders. The task ([`super::task`]) drives it; benches and
//! tests drive it directly.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use arena_shared::codec::encode_server;
use arena_shared::protocol::{Moved, PlayerId, Rejection, ResumeToken, ServerMsg, close};
use bytes::Bytes;

use crate::limits::{AddressKey, Slot};
use crate::room::interest::Scene;
use crate::room::links::{Departure, LinkEnds, Links};
use crate::room::outbox::{CloseReason, Outbox};
use crate::room::replays::{RecordingGrant, ReplayStore};
use crate::room::world::{Frames, HostEffect, Newcomer, World};
use crate::telemetry::metrics::{Kick, Metrics, RoomStats};

/// Watchers a room takes unless told otherwise (`--max-watchers`).
pub const DEFAULT_MAX_WATCHERS: u16 = 32;

/// One room without its task: the world and the players' links, and how
/// what the world decides reaches the players. The task drives it; benches
/// and tests drive it directly.
pub struct Room {
    pub world: World,
    links: Links,
    metrics: Arc<Metrics>,
    /// This room's figures for `/healthz` and `/metrics`, from what the
    /// world reports.
    stats: Arc<RoomStats>,
    pub(super) code: String,
    /// Each held seat's place under its address's limit, freed with the hold.
    holds: HashMap<PlayerId, Slot>,
    /// Players seated here so far (resumes are not new players).
    pub(super) seated_ever: u32,
    /// Watchers this room takes at once (`--max-watchers`).
    max_watchers: usize,
    /// The watcher count everyone was last told.
    watchers_told: usize,
    /// Where recorded rounds are kept (none: the world records nothing).
    replays: Option<Arc<ReplayStore>>,
    /// The memory the round being recorded holds, granted by the store.
    recording: Option<RecordingGrant>,
    /// With an input log, a new player's outbox is held until the tick
    /// after its join has been logged: nobody gets a resume token for a
    /// seat a crash could take back.
    hold_welcomes: bool,
    held: Vec<Arc<Outbox>>,
}

/// A seat given by [`Room::seat`].
#[derive(Debug)]
pub struct Seat {
    pub id: PlayerId,
    pub name: String,
    pub epoch: u32,
    pub ends: LinkEnds,
}

impl Room {
    pub fn new(world: World, slow_client_ticks: u32, metrics: Arc<Metrics>, code: String) -> Self {
        Room {
            world,
            links: Links::new(slow_client_ticks),
            metrics,
            stats: Arc::new(RoomStats::default()),
            code,
            holds: HashMap::new(),
            seated_ever: 0,
            max_watchers: usize::from(DEFAULT_MAX_WATCHERS),
            watchers_told: 0,
            replays: None,
            recording: None,
            hold_welcomes: false,
            held: Vec::new(),
        }
    }

    /// Holds each new player's `Welcome` (and all it is sent) until the
    /// next tick is published, that is, until the input log has its seat.
    pub fn holding_welcomes(mut self) -> Self {
        self.hold_welcomes = true;
        self
    }

    /// Keeps the rounds the world records in `store`.
    pub fn keeping_replays_in(mut self, store: Arc<ReplayStore>) -> Self {
        self.recording = Some(store.grant());
        self.replays = Some(store);
        self
    }

    /// Hands finished recordings to the store, deflated off the tick, and
    /// tells everyone each one's id (the podium's "Watch this round").
    fn keep_replays(&mut self) {
        self.hold_recording_to_its_grant();
        let finished = self.world.take_replays();
        if finished.is_empty() {
            return;
        }
        let Some(store) = self.replays.clone().filter(|store| store.keeps()) else { return };
        for replay in finished {
            let Some(id) = crate::room::replays::new_id() else { continue };
            let Some(pending) = store.reserve() else {
                tracing::warn!(room = %self.code, "a round was not kept: too many rounds are being stored");
                continue;
            };
            let (code, private) = (self.code.clone(), self.world.is_private());
            tokio::task::spawn_blocking(move || pending.store().keep(id, &code, private, &replay));
            let told = Bytes::from(encode_server(&ServerMsg::Replay { id }));
            for stuck in self.links.broadcast(&told, false) {
                self.kick_slow(stuck);
            }
        }
    }

    /// The round being recorded takes the memory it holds now from the
    /// store's pool (and gives back a finished one's); when the pool is
    /// full it stops being recorded, and the next round is recorded anew.
    fn hold_recording_to_its_grant(&mut self) {
        let (Some(grant), Some(store)) = (&mut self.recording, &self.replays) else { return };
        if grant.cover(self.world.recording_held()) {
            return;
        }
        self.world.cut_recording();
        grant.cover(0);
        store.recording_cut();
        tracing::warn!(
            room = %self.code,
            "this round is no longer recorded: the rounds being recorded hold all of their half of --replay-memory-mb"
        );
    }

    /// Takes at most `max` watchers at once.
    pub fn watched_by_at_most(mut self, max: u16) -> Self {
        self.max_watchers = usize::from(max);
        self
    }

    /// Opens a watcher's link, with its `Welcome` first; refused past
    /// `--max-watchers`.
    pub fn watch(&mut self, from: Option<AddressKey>) -> Result<(PlayerId, LinkEnds), Rejection> {
        self.world.admits(from)?;
        if self.links.watchers() >= self.max_watchers {
            let max = u16::try_from(self.max_watchers).unwrap_or(u16::MAX);
            return Err(Rejection::new(arena_shared::protocol::RejectReason::WatchersFull { max }));
        }
        let (id, ends) = self.links.open_watcher();
        self.world.set_watchers(self.watcher_count());
        ends.outbox.push_event(Bytes::from(encode_server(&self.world.watcher_welcome())));
        self.tell_watchers();
        Ok((id, ends))
    }

    pub(super) fn watcher_count(&self) -> u16 {
        u16::try_from(self.links.watchers()).unwrap_or(u16::MAX)
    }

    /// Tells everyone how many watch, if that changed.
    fn tell_watchers(&mut self) {
        let count = self.links.watchers();
        if count == self.watchers_told {
            return;
        }
        self.watchers_told = count;
        self.world.set_watchers(self.watcher_count());
        self.stats.watchers.store(count as u64, Relaxed);
        let msg = Bytes::from(encode_server(&ServerMsg::Watchers { count: self.watcher_count() }));
        for id in self.links.broadcast(&msg, true) {
            self.kick_slow(id);
        }
    }

    /// Reports this room's figures into `stats` (the directory's entry).
    pub fn reporting_to(mut self, stats: Arc<RoomStats>) -> Self {
        self.stats = stats;
        self
    }

    /// How long a tick took, into this room's histogram and the server's.
    pub fn record_tick(&self, took: Duration) {
        self.metrics.record_tick(took);
        self.stats.ticks.record(took.as_micros() as u64);
    }

    fn report(&self) {
        self.stats.tick.store(u64::from(self.world.tick_number()), Relaxed);
        self.stats.players.store(self.world.player_count() as u64, Relaxed);
    }

    /// Seats a newcomer, or gives back the seat `resume` holds.
    pub fn seat(
        &mut self,
        newcomer: Newcomer,
        resume: Option<ResumeToken>,
        token: impl FnOnce() -> Result<ResumeToken, Rejection>,
    ) -> Result<Seat, Rejection> {
        let seated = match resume.and_then(|token| self.world.resume(&token)) {
            Some(seated) => {
                self.holds.remove(&seated.id);
                seated
            }
            None => {
                let seated = self.world.join(newcomer, token()?)?;
                self.seated_ever = self.seated_ever.saturating_add(1);
                seated
            }
        };
        let resumed = matches!(&seated.welcome, ServerMsg::Welcome(welcome) if welcome.resumed);
        let ends = self.links.open(seated.id);
        if self.hold_welcomes && !resumed {
            ends.outbox.hold();
            self.held.push(ends.outbox.clone());
        }
        // The Welcome goes first, before anything the join told everyone.
        ends.outbox.push_event(Bytes::from(encode_server(&seated.welcome)));
        self.deliver_news(true);
        self.report();
        Ok(Seat { id: seated.id, name: seated.name, epoch: seated.epoch, ends })
    }

    /// A connection ended (see [`World::depart`]); its link goes with it.
    /// Everyone else hears of it now if the room may `speak` (its fence
    /// holds), else at its next tick.
    pub fn depart(&mut self, departure: Departure, speak: bool) -> bool {
        let Departure { id, epoch, abrupt, hold, watcher } = departure;
        if watcher {
            let current = self.links.close_watcher(id, CloseReason::new(close::NORMAL, "left"));
            if speak {
                self.tell_watchers();
            }
            return current;
        }
        let current = self.world.depart(id, epoch, abrupt);
        if current {
            self.links.close(id, CloseReason::new(close::NORMAL, "left"));
            if let Some(hold) = hold
                && self.world.is_held(id)
            {
                self.holds.insert(id, hold);
            }
        }
        if speak {
            self.deliver_news(true);
        }
        self.report();
        current
    }

    /// One tick: inputs in, the world ticks, news and frames out; clients
    /// that stopped reading are dropped.
    /// `periods`: the tick intervals since the last tick (see
    /// [`World::tick_after`]).
    pub fn tick(&mut self, periods: u32) {
        let frames = self.play(periods);
        self.publish(frames);
    }

    /// The first half of a tick: inputs in, the world ticks, the hosts'
    /// commands are carried out. Nothing has been told yet: the input log
    /// may take the tick first.
    pub fn play(&mut self, periods: u32) -> Frames {
        if periods > 1 {
            self.metrics.ticks_skipped_total.inc_by(u64::from(periods - 1));
        }
        let frames = self.world.tick_after(periods, &mut self.links);
        self.obey_hosts();
        frames
    }

    /// The second half of a tick: what [`Room::play`] decided goes out,
    /// news and then frames; clients that stopped reading are dropped.
    pub fn publish(&mut self, frames: Frames) {
        // The tick that logged their seats is out: the new players may hear.
        for outbox in self.held.drain(..) {
            outbox.release();
        }
        // The frames follow at once: they wake the writers.
        self.deliver_news(false);
        let Frames { tick, states, inputs, acks } = frames;
        let scene = Scene::new(states, inputs);
        let pushed = self.links.push_frames(tick, &acks, &scene);
        self.metrics.frames_dropped_total.inc_by(pushed.replaced);
        for id in pushed.too_slow {
            self.kick_slow(id);
        }
        if self.links.watchers() > 0 {
            let watched = self.links.push_watcher_frames(tick, &scene, self.world.leader());
            self.metrics.frames_dropped_total.inc_by(watched.replaced);
            for _ in 0..watched.watchers_too_slow {
                self.metrics.kick(Kick::TooSlow);
            }
        }
        self.tell_watchers();
        self.keep_replays();
        self.report();
    }

    /// Closes every connection with `reason`; used at shutdown.
    pub fn close_all(&mut self, reason: &CloseReason) {
        self.links.close_all(reason);
    }

    /// Sends every connected player to where the room is played now: a
    /// `Moved`, then the close. Their seats are not freed here: the room
    /// goes with its snapshot, and they resume there.
    pub fn send_everyone(&mut self, to: &Moved) {
        let moved = Bytes::from(encode_server(&ServerMsg::Moved(to.clone())));
        self.links.close_all(&CloseReason::new(close::MOVED, "the room moved to another node").after(moved));
    }

    /// Tells everyone what the world decided; a leaver's link closes, and a
    /// player whose event queue is full is stuck and gets dropped.
    fn deliver_news(&mut self, wake: bool) {
        loop {
            let news = self.world.take_news();
            if news.is_empty() {
                return;
            }
            for msg in news {
                let stuck = self.links.broadcast(&Bytes::from(encode_server(&msg)), wake);
                if let ServerMsg::Left { id } = msg {
                    self.links.close(id, CloseReason::new(close::NORMAL, "left"));
                    self.holds.remove(&id);
                }
                for id in stuck {
                    self.kick_slow(id);
                }
            }
        }
    }

    /// An operator's kick: the connection closes with [`close::KICKED`]
    /// and the seat is freed (no hold: a resume finds nothing). The `Left`
    /// it makes goes out as any leave's does, which drops the seat's hold.
    pub(super) fn kick(&mut self, id: PlayerId) -> bool {
        if !self.world.leave(id) {
            return false;
        }
        tracing::info!(room = %self.code, player = id, "removed by an operator");
        self.links.close(id, CloseReason::new(close::KICKED, "removed by the server's operator"));
        self.deliver_news(true);
        self.report();
        true
    }

    /// Carries out the host commands this tick's inputs carried: a refused
    /// one is answered to its sender alone; a kicked player's or a new
    /// watcher's connection closes with its code before the `Left` goes out.
    fn obey_hosts(&mut self) {
        for (by, command) in self.links.take_host_commands() {
            let (id, reason) = match self.world.host_command(by, command) {
                Ok(HostEffect::Done) => {
                    tracing::info!(room = %self.code, host = by, ?command, "host command");
                    continue;
                }
                Err(refusal) => {
                    self.links.send(by, Bytes::from(encode_server(&ServerMsg::Refused(refusal))));
                    continue;
                }
                Ok(HostEffect::Kicked(id)) => {
                    let minutes = arena_shared::protocol::KICK_BAN_SECS / 60;
                    let reason =
                        format!("the host removed you from this room; you can come back in {minutes} min");
                    (id, CloseReason::new(close::KICKED, reason))
                }
                Ok(HostEffect::ToWatchers(id)) => {
                    (id, CloseReason::new(close::TO_WATCHERS, "the host made you a watcher"))
                }
            };
            tracing::info!(room = %self.code, host = by, player = id, ?command, "host command");
            self.links.close(id, reason);
        }
    }

    fn kick_slow(&mut self, id: PlayerId) {
        tracing::warn!(room = %self.code, player = id, "disconnecting a client that stayed behind");
        self.links.close(id, CloseReason::new(close::TOO_SLOW, "too slow: frames were not being read"));
        self.metrics.kick(Kick::TooSlow);
        self.world.leave(id);
    }
}

#[cfg(test)]
mod tests {
    use arena_shared::codec::decode_server;
    use arena_shared::protocol::Frame;
    use arena_shared::sim::Input;

    use super::*;
    use crate::room::input::QueuedInput;
    use crate::room::links::Inbound;
    use crate::room::outbox::Outbox;

    fn room(slow_client_ticks: u32) -> Room {
        let world = World::new(30, 8).holding_seats_for(30);
        Room::new(world, slow_client_ticks, Arc::new(Metrics::default()), "testroom00".into())
    }

    fn seat(room: &mut Room, name: &str, token: u8) -> Seat {
        let newcomer = Newcomer { name: name.into(), color: 0, from: None };
        room.seat(newcomer, None, || Ok([token; 16])).expect("room has space")
    }

    async fn take_messages(outbox: &Outbox) -> Vec<ServerMsg> {
        let batch = outbox.next().await;
        batch.messages.iter().map(|b| decode_server(b).expect("server bytes decode")).collect()
    }

    fn last_frame(msgs: &[ServerMsg]) -> Frame {
        msgs.iter()
            .rev()
            .find_map(|m| if let ServerMsg::Frame(f) = m { Some(f.clone()) } else { None })
            .expect("should have sent a frame")
    }

    /// A room of a person and 19 fill bots recording 10-second rounds into a
    /// store whose rounds being recorded may hold `pool` bytes; after each
    /// tick, what the round being recorded holds and what the pool lends.
    async fn record_rounds(pool: usize, ticks: u32) -> (Arc<ReplayStore>, Vec<(usize, usize)>) {
        let store = Arc::new(ReplayStore::new(1 << 20, None).recording_in(pool));
        let world = World::new(30, 20).with_rounds(10, 1).filling_with_bots(20).recording();
        let mut room = Room::new(world, 100_000, Arc::new(Metrics::default()), "recorder00".into())
            .keeping_replays_in(store.clone());
        let _ada = seat(&mut room, "ada", 1);
        let mut held = Vec::new();
        for _ in 0..ticks {
            room.tick(1);
            held.push((room.world.recording_held(), store.recording_bytes()));
        }
        (store, held)
    }

    #[tokio::test]
    async fn a_round_being_recorded_holds_memory_from_the_pool_and_gives_it_back() {
        // Two rounds and their podiums, and the start of a third.
        let (store, held) = record_rounds(1 << 20, 670).await;
        let most = held.iter().map(|&(recorder, _)| recorder).max().unwrap_or(0);
        assert!(most > 20 * 1024, "20 players' round holds some memory: {most}");
        assert!(held.iter().all(|&(recorder, lent)| lent >= recorder), "the pool lends all a round holds");
        assert!(
            held.iter().any(|&(recorder, lent)| recorder == 0 && lent == 0),
            "a finished round gives back what it held"
        );
        assert_eq!(store.figures().recordings_cut, 0);
        // Two rounds kept (deflated off the tick).
        for _ in 0..100 {
            if store.rounds() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(store.rounds(), 2, "both rounds recorded whole and kept");
    }

    #[tokio::test]
    async fn a_round_that_outgrows_the_pool_stops_being_recorded_and_the_next_one_is_recorded_anew() {
        let pool = 32 << 10;
        let (store, held) = record_rounds(pool, 670).await;
        assert!(held.iter().all(|&(_, lent)| lent <= pool), "the pool never lends past its cap");
        assert!(
            held.iter().all(|&(recorder, lent)| recorder <= lent),
            "no round holds more than it was lent"
        );
        // Each round starts being recorded, is cut once the pool is full,
        // and records nothing more until the next round starts.
        let starts =
            usize::from(held[0].0 > 0) + held.windows(2).filter(|w| w[0].0 == 0 && w[1].0 > 0).count();
        assert_eq!(starts, 3, "recorded from the start of each of the three rounds, once");
        assert_eq!(store.figures().recordings_cut, 2, "the two full rounds were cut");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(store.rounds(), 0, "a cut round is not kept");
    }

    #[tokio::test]
    async fn a_watcher_takes_no_seat_follows_the_leader_or_whom_it_asks_and_is_counted() {
        let mut room = room(3).watched_by_at_most(1);
        let ada = seat(&mut room, "ada", 1);
        let bob = seat(&mut room, "bob", 2);
        take_messages(&ada.ends.outbox).await;
        let (watcher, ends) = room.watch(None).expect("a watcher fits");
        let Some(ServerMsg::Welcome(welcome)) = take_messages(&ends.outbox).await.into_iter().next() else {
            panic!("a watcher's first message is its Welcome");
        };
        assert!(welcome.watching);
        assert_eq!((welcome.you, welcome.watchers, welcome.players.len()), (0, 1, 2));
        assert_eq!(room.world.player_count(), 2, "a watcher is no player");
        assert!(take_messages(&ada.ends.outbox).await.contains(&ServerMsg::Watchers { count: 1 }));
        let refused = room.watch(None).expect_err("one watcher is the cap");
        assert_eq!(refused.reason, arena_shared::protocol::RejectReason::WatchersFull { max: 1 });

        // Equal scores: the leader is the longest here.
        room.tick(1);
        let frame = last_frame(&take_messages(&ends.outbox).await);
        assert_eq!((frame.you.id, frame.ack_seq), (ada.id, 0));
        assert!(frame.near.is_empty(), "a watcher predicts nobody");
        let others: Vec<PlayerId> = frame.others.iter().map(|u| u.id_gap).collect();
        assert_eq!(others, vec![bob.id], "the followed player's view");
        ends.inbound.push(Inbound::Follow(bob.id)).expect("queued");
        room.tick(1);
        assert_eq!(last_frame(&take_messages(&ends.outbox).await).you.id, bob.id);
        // Someone who is not there: the leader again.
        ends.inbound.push(Inbound::Follow(99)).expect("queued");
        room.tick(1);
        assert_eq!(last_frame(&take_messages(&ends.outbox).await).you.id, ada.id);

        take_messages(&ada.ends.outbox).await;
        let departure = Departure { id: watcher, epoch: 0, abrupt: true, hold: None, watcher: true };
        assert!(room.depart(departure, true));
        assert!(ends.outbox.is_closed());
        assert_eq!(room.world.player_count(), 2);
        assert!(take_messages(&ada.ends.outbox).await.contains(&ServerMsg::Watchers { count: 0 }));
        room.watch(None).expect("its place is free again");
    }

    #[tokio::test]
    async fn host_commands_ride_the_inbound_queue_and_close_kicked_and_moved_players_with_their_codes() {
        use arena_shared::protocol::{CommandRefusal, HostCommand};
        let world = World::new(30, 8).in_room("private000".into(), true);
        let mut room = Room::new(world, 3, Arc::new(Metrics::default()), "private000".into());
        let ada = seat(&mut room, "ada", 1);
        let bob = seat(&mut room, "bob", 2);
        let cy = seat(&mut room, "cy", 3);
        room.tick(1);
        take_messages(&bob.ends.outbox).await;
        bob.ends.inbound.push(Inbound::Host(HostCommand::Kick { id: ada.id })).expect("queued");
        room.tick(1);
        let answer = take_messages(&bob.ends.outbox).await;
        assert!(answer.contains(&ServerMsg::Refused(CommandRefusal::NotHost)), "{answer:?}");
        assert!(!ada.ends.outbox.is_closed());

        ada.ends.inbound.push(Inbound::Host(HostCommand::Kick { id: bob.id })).expect("queued");
        ada.ends.inbound.push(Inbound::Host(HostCommand::ToWatchers { id: cy.id })).expect("queued");
        room.tick(1);
        let kicked = bob.ends.outbox.next().await.close.expect("closed");
        assert_eq!(kicked.code, close::KICKED);
        assert!(kicked.reason.contains("10 min"), "{}", kicked.reason);
        assert_eq!(cy.ends.outbox.next().await.close.expect("closed").code, close::TO_WATCHERS);
        assert_eq!(room.world.player_count(), 1);
        let news = take_messages(&ada.ends.outbox).await;
        assert!(
            news.contains(&ServerMsg::Left { id: bob.id }) && news.contains(&ServerMsg::Left { id: cy.id })
        );
    }

    #[tokio::test]
    async fn a_seat_gets_its_welcome_first_then_news_then_frames_that_ack_its_inputs() {
        let mut room = room(3);
        let ada = seat(&mut room, "ada", 1);
        for seq in 1..=2 {
            ada.ends
                .inbound
                .push(Inbound::Input(QueuedInput { seq, input: Input::stick(127, 0) }))
                .expect("room in queue");
        }
        room.tick(1);
        let msgs = take_messages(&ada.ends.outbox).await;
        assert!(matches!(&msgs[0], ServerMsg::Welcome(w) if w.you == ada.id), "welcome first: {msgs:?}");
        assert!(matches!(&msgs[1], ServerMsg::Joined(p) if p.id == ada.id && p.name == "ada"));
        assert_eq!((last_frame(&msgs).tick, last_frame(&msgs).ack_seq), (1, 2));
    }

    #[tokio::test]
    async fn a_client_that_never_reads_is_dropped_without_stopping_others() {
        let mut room = room(3);
        let reader = seat(&mut room, "reader", 1);
        let stuck = seat(&mut room, "stuck", 2);
        let mut last = Vec::new();
        for _ in 0..5 {
            room.tick(1);
            last = take_messages(&reader.ends.outbox).await;
        }
        assert!(stuck.ends.outbox.is_closed(), "stuck client should be closed after slow_client_ticks");
        assert_eq!(room.world.player_count(), 1);
        assert_eq!(last_frame(&last).tick, 5, "the reader should get every tick's frame");
        let frame = last_frame(&last);
        assert!(
            frame.others.is_empty() && frame.gone == [stuck.id],
            "the stuck player left the view: {frame:?}"
        );
    }

    #[tokio::test]
    async fn resuming_a_connected_player_closes_its_old_socket() {
        let mut room = room(3);
        let first = seat(&mut room, "ada", 1);
        let newcomer = Newcomer { name: "ignored".into(), color: 0, from: None };
        let second = room.seat(newcomer, Some([1; 16]), || Ok([9; 16])).expect("held");
        assert_eq!(second.id, first.id);
        let closed = first.ends.outbox.next().await.close.expect("the old socket is told to close");
        assert_eq!(closed.code, close::RESUMED_ELSEWHERE);
        // The old connection's late end leaves the new one alone.
        assert!(!room.depart(
            Departure { id: first.id, epoch: first.epoch, abrupt: false, hold: None, watcher: false },
            true
        ));
        assert!(!second.ends.outbox.is_closed());
    }

    #[tokio::test]
    async fn a_departure_closes_the_link_and_everyone_hears() {
        let mut room = room(3);
        let ada = seat(&mut room, "ada", 1);
        let bob = seat(&mut room, "bob", 2);
        let _ = take_messages(&bob.ends.outbox).await;
        assert!(room.depart(
            Departure { id: ada.id, epoch: ada.epoch, abrupt: true, hold: None, watcher: false },
            true
        ));
        assert!(ada.ends.outbox.is_closed(), "the link goes with the connection");
        assert_eq!(take_messages(&bob.ends.outbox).await, [ServerMsg::Away { id: ada.id }]);
    }

    #[tokio::test]
    async fn with_an_input_log_a_new_player_hears_nothing_until_the_tick_that_logged_its_seat_is_out() {
        let world = World::new(30, 8).holding_seats_for(30).journaling();
        let mut room =
            Room::new(world, 8, Arc::new(Metrics::default()), "loggedroom".into()).holding_welcomes();
        let ada = seat(&mut room, "ada", 1);
        assert!(
            futures_util::FutureExt::now_or_never(ada.ends.outbox.next()).is_none(),
            "no Welcome before the log has the seat"
        );
        let frames = room.play(1);
        let record = room.world.take_record().expect("journaling");
        assert!(
            record
                .entries
                .iter()
                .any(|e| matches!(e, crate::room::world::journal::Entry::Seat(s) if s.id() == ada.id)),
            "the tick's record has the seat"
        );
        room.publish(frames);
        let msgs = take_messages(&ada.ends.outbox).await;
        assert!(
            matches!(&msgs[0], ServerMsg::Welcome(w) if w.you == ada.id),
            "then the Welcome first: {msgs:?}"
        );
        assert_eq!(last_frame(&msgs).tick, 1, "and the tick's frame");
        // A resume gets its seat back at once: nothing new to log.
        let newcomer = Newcomer { name: "ignored".into(), color: 0, from: None };
        let again = room.seat(newcomer, Some([1; 16]), || Ok([9; 16])).expect("held");
        assert!(matches!(take_messages(&again.ends.outbox).await[0], ServerMsg::Welcome(ref w) if w.resumed));
    }
}
