//! The page's reconnect policy, engine-free: where to connect next (back
//! to the seat it had, the invite link's room, a new private room, or
//! quick-join), how long to wait after a close (exponential backoff with
//! jitter, so pages that lost the same server do not come back in step), and
//! what to tell the player meanwhile; and, in a cluster, which node: the
//! one a `Moved` named (followed at once, once per attempt), else the one
//! the page came from, and when a node does not answer at all (it died),
//! the next of the cluster's nodes the page learned from `/api/cluster`. The browser app keeps one
//! [`Reconnect`] and asks it after every close; the tests below drive it
//! natively.

use arena_shared::protocol::{Moved, RejectReason, Rejection, ResumeToken, RoomRequest};

use crate::session::{JoinRequest, websocket_url};

/// First wait before reconnecting, and the most it grows to.
pub const BACKOFF_START_SECS: f64 = 0.5;
pub const BACKOFF_MAX_SECS: f64 = 10.0;

/// What the status line says besides the state itself: why we are waiting.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The server refused us; `retry_at` is when we try again, if ever.
    Rejected {
        message: String,
        retry_at: Option<f64>,
    },
    Disconnected {
        reason: String,
        retry_at: f64,
    },
    /// The invite link's room is gone.
    RoomGone {
        message: String,
    },
}

/// What the page does after a close.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum After {
    /// Wait, and connect again at the given local time (or never).
    Wait { retry_at: Option<f64> },
    /// The invite link's room is gone for good: offer a new room instead.
    RoomGone,
}

/// Where the page connects next, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnect {
    /// The room an invite link (`/r/<code>`) leads to, if the page is one.
    link_room: Option<String>,
    /// The room we were last welcomed into and the seat's resume token:
    /// reconnects go back to it.
    seat: Option<(String, ResumeToken)>,
    /// Open a new private room on the next connect.
    create_private: bool,
    backoff_secs: f64,
    retry_at: Option<f64>,
    notice: Option<Notice>,
    /// The node a `Moved` sent us to (its WebSocket URL), while we play
    /// there; `None`: the page's own server.
    away: Option<String>,
    /// The room a `Moved` named before we had a seat (a quick-join sent on).
    moved_room: Option<String>,
    /// Where following a `Moved` is.
    follow: Follow,
    /// Whether the current attempt got a `Welcome`.
    welcomed_now: bool,
    /// Watch the link's room instead of playing in it (`?watch`).
    watch: bool,
    /// The cluster's nodes' WebSocket URLs, as last learned.
    nodes: Vec<String>,
    /// Where the current attempt went.
    attempted: Option<String>,
    /// The jitter's random state (splitmix64), seeded by the page from the
    /// browser's randomness.
    jitter: u64,
}

/// Following a `Moved`, once per attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    Idle,
    /// A `Moved` came: connect there as soon as its close comes.
    Due,
    /// Connecting there; another `Moved` now is not followed.
    Trying,
}

impl Reconnect {
    /// The policy for a page opened at an invite link's room (if any), with
    /// a seat this tab held before (if any), asked to open a private room
    /// (`?create`) or not; `seed` starts the backoff's jitter (each page its
    /// own random one).
    pub fn new(
        link_room: Option<String>,
        seat: Option<(String, ResumeToken)>,
        create_private: bool,
        seed: u64,
    ) -> Self {
        Reconnect {
            link_room,
            seat,
            create_private,
            backoff_secs: BACKOFF_START_SECS,
            retry_at: None,
            notice: None,
            away: None,
            moved_room: None,
            follow: Follow::Idle,
            welcomed_now: false,
            watch: false,
            nodes: Vec::new(),
            attempted: None,
            jitter: seed,
        }
    }

    /// The cluster's nodes (WebSocket URLs, `/api/cluster`'s), tried in
    /// turn when the node an attempt went to does not answer.
    pub fn learn_nodes(&mut self, nodes: Vec<String>) {
        self.nodes = nodes;
    }

    /// The node after `failed` among the known ones, if another is known.
    fn node_after(&self, failed: &str) -> Option<String> {
        let at = self.nodes.iter().position(|node| node == failed).map_or(0, |i| i + 1);
        let count = self.nodes.len();
        (0..count).map(|k| &self.nodes[(at + k) % count]).find(|node| *node != failed).cloned()
    }

    /// The next wait after a failure: the backoff with equal jitter, a
    /// random point in its upper half (never less than half of it, so
    /// the backoff still backs off).
    fn next_wait(&mut self) -> f64 {
        self.jitter = self.jitter.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.jitter;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // 53 random bits: a fraction in [0, 1).
        let fraction = (z >> 11) as f64 / (1u64 << 53) as f64;
        let wait = self.backoff_secs * (0.5 + 0.5 * fraction);
        self.backoff_secs = (self.backoff_secs * 2.0).min(BACKOFF_MAX_SECS);
        wait
    }

    /// Watches the link's room (`/r/<code>?watch`) rather than taking a
    /// seat; without a link this changes nothing.
    pub fn watching(mut self, watch: bool) -> Self {
        self.watch = watch && self.link_room.is_some();
        self
    }

    /// Whether the page watches.
    pub fn is_watching(&self) -> bool {
        self.watch
    }

    /// The WebSocket URL to connect to: where a `Moved` sent us, else
    /// `home` (the page's own server). Call once per attempt.
    pub fn connecting(&mut self, home: &str) -> String {
        self.welcomed_now = false;
        if self.follow == Follow::Due {
            self.follow = Follow::Trying;
        }
        let url = self.away.clone().unwrap_or_else(|| home.to_owned());
        self.attempted = Some(url.clone());
        url
    }

    /// The server says the room is played at another node: follow at once
    /// (keeping the seat and its token), unless this attempt was itself
    /// the follow of a `Moved` (then its close backs off and goes home).
    pub fn moved(&mut self, moved: &Moved) -> bool {
        if self.follow == Follow::Trying && !self.welcomed_now {
            return false;
        }
        let Some(url) = websocket_url(&moved.url) else { return false };
        self.away = Some(url);
        if self.seat.is_none() && !moved.room.is_empty() {
            self.moved_room = Some(moved.room.clone());
        }
        self.follow = Follow::Due;
        true
    }

    /// Whether the page knows where to play without the join screen.
    pub fn knows_where(&self) -> bool {
        self.seat.is_some() || self.link_room.is_some() || self.create_private
    }

    /// The join screen's choice: Play (quick or the link's room) or Create.
    pub fn choose(&mut self, create_private: bool) {
        self.create_private = create_private;
    }

    /// What to ask for: back to the seat we had, else the link's room,
    /// else a new private room if asked, else quick-join.
    pub fn join_request(&self, name: &str, color: u8) -> JoinRequest {
        let named = self.moved_room.as_ref().or(self.link_room.as_ref());
        if let Some(code) = named.filter(|_| self.watch) {
            let room = RoomRequest::Watch { code: code.clone() };
            return JoinRequest { name: name.to_owned(), color, room, resume: None };
        }
        let (room, resume) = match (&self.seat, named) {
            (Some((code, token)), _) => (RoomRequest::Join { code: code.clone() }, Some(*token)),
            (None, Some(code)) => (RoomRequest::Join { code: code.clone() }, None),
            (None, None) if self.create_private => (RoomRequest::CreatePrivate, None),
            (None, None) => (RoomRequest::Quick, None),
        };
        JoinRequest { name: name.to_owned(), color, room, resume }
    }

    /// A `Welcome` into room `code` holding seat `resume`: later connects
    /// come back to it, and the backoff starts over.
    pub fn welcomed(&mut self, code: &str, resume: ResumeToken) {
        if self.watch {
            // A watcher holds no seat: it comes back to watch the room.
            self.link_room = Some(code.to_owned());
        } else {
            self.seat = Some((code.to_owned(), resume));
        }
        self.create_private = false;
        self.moved_room = None;
        self.welcomed_now = true;
        self.follow = Follow::Idle;
        self.backoff_secs = BACKOFF_START_SECS;
        self.retry_at = None;
        self.notice = None;
    }

    /// Whether a retry is due at local time `now`.
    pub fn due(&self, now: f64) -> bool {
        self.retry_at.is_some_and(|at| now >= at)
    }

    /// Why the page is waiting, if it is.
    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }

    /// An operator removed us (close 4010, `close::KICKED`): the seat is gone and
    /// the page does not come back by itself.
    pub fn kicked(&mut self, reason: String) -> After {
        self.seat = None;
        self.away = None;
        self.follow = Follow::Idle;
        self.retry_at = None;
        self.notice = Some(Notice::Rejected { message: reason, retry_at: None });
        After::Wait { retry_at: None }
    }

    /// The room's host made us a watcher (close 4012, `close::TO_WATCHERS`)
    /// at local time `now`: the seat is gone; watch the same room at once.
    pub fn made_watcher(&mut self, now: f64) -> After {
        if let Some((code, _)) = self.seat.take() {
            self.link_room = Some(code);
        }
        self.watch = self.link_room.is_some();
        self.follow = Follow::Idle;
        self.retry_at = Some(now);
        let reason = "the host made you a watcher".to_owned();
        self.notice = Some(Notice::Disconnected { reason, retry_at: now });
        After::Wait { retry_at: Some(now) }
    }

    /// The connection closed at local time `now`, after `rejection` (the
    /// server's typed refusal, if it sent one) or for `reason`.
    pub fn closed(&mut self, rejection: Option<Rejection>, reason: String, now: f64) -> After {
        if self.follow == Follow::Due {
            // The close after a Moved: go there now.
            self.retry_at = Some(now);
            self.notice =
                Some(Notice::Disconnected { reason: "the room moved; following it".into(), retry_at: now });
            return After::Wait { retry_at: Some(now) };
        }
        if !self.welcomed_now {
            // That node did not take us: ask the page's own server next,
            // which knows where the room went; but a node that did not
            // answer at all may be dead (the page's own too): the next one.
            let silent = rejection.is_none();
            self.away = match &self.attempted {
                Some(failed) if silent => self.node_after(failed),
                _ => None,
            };
            self.follow = Follow::Idle;
        }
        self.welcomed_now = false;
        let backoff_at = now + self.next_wait();
        let still_rejected = match &self.notice {
            Some(Notice::Rejected { message, .. }) => Some(message.clone()),
            _ => None,
        };
        let (notice, retry_at) = match rejection.map(|r| (r.reason, r.message)) {
            // Version and name will not fix themselves; full and shutting down might.
            Some((RejectReason::VersionMismatch { .. } | RejectReason::BadName, message)) => {
                (Notice::Rejected { message, retry_at: None }, None)
            }
            // The link's room is gone for good; a room we were in that closed
            // (the server restarted, say) means: find another.
            Some((RejectReason::RoomNotFound, message)) if self.link_room.is_some() => {
                self.notice = Some(Notice::RoomGone { message });
                self.retry_at = None;
                return After::RoomGone;
            }
            Some((RejectReason::RoomNotFound, _)) => {
                self.seat = None;
                let reason = "the room closed; finding another".to_owned();
                (Notice::Disconnected { reason, retry_at: now }, Some(now))
            }
            Some((_, message)) => {
                (Notice::Rejected { message, retry_at: Some(backoff_at) }, Some(backoff_at))
            }
            // A retry after a rejection keeps the reason up until it succeeds.
            None => match still_rejected {
                Some(message) => (Notice::Rejected { message, retry_at: Some(backoff_at) }, Some(backoff_at)),
                None => (Notice::Disconnected { reason, retry_at: backoff_at }, Some(backoff_at)),
            },
        };
        self.notice = Some(notice);
        self.retry_at = retry_at;
        After::Wait { retry_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asks_again() -> JoinRequest {
        let room = RoomRequest::Watch { code: "zzzzzzzzzz".into() };
        JoinRequest { name: "eve".into(), color: 1, room, resume: None }
    }

    fn rejected(reason: RejectReason) -> Option<Rejection> {
        Some(Rejection::new(reason))
    }

    #[test]
    fn the_first_connect_goes_where_the_page_says_and_reconnects_go_back_to_the_seat() {
        let quick = Reconnect::new(None, None, false, 7);
        assert!(!quick.knows_where(), "the join screen first");
        assert_eq!(quick.join_request("ada", 2), JoinRequest::quick("ada", 2));
        let mut create = Reconnect::new(None, None, true, 7);
        assert_eq!(create.join_request("ada", 2).room, RoomRequest::CreatePrivate);
        create.welcomed("abcdefghjk", [4; 16]);
        let back = create.join_request("ada", 2);
        assert_eq!(back.room, RoomRequest::Join { code: "abcdefghjk".into() }, "not a second new room");
        assert_eq!(back.resume, Some([4; 16]));
        let mut watch = Reconnect::new(Some("zzzzzzzzzz".into()), None, false, 7).watching(true);
        let asks = watch.join_request("eve", 1);
        assert_eq!((asks.room, asks.resume), (RoomRequest::Watch { code: "zzzzzzzzzz".into() }, None));
        watch.welcomed("zzzzzzzzzz", [0; 16]);
        assert_eq!(watch.join_request("eve", 1), asks_again(), "a watcher comes back to watch");
        assert!(!Reconnect::new(None, None, false, 7).watching(true).is_watching(), "watching needs a link");
        let link = Reconnect::new(Some("zzzzzzzzzz".into()), None, false, 7);
        assert!(link.knows_where());
        assert_eq!(link.join_request("ada", 2).room, RoomRequest::Join { code: "zzzzzzzzzz".into() });
    }

    #[test]
    fn drops_back_off_exponentially_and_a_welcome_starts_over() {
        let mut policy = Reconnect::new(None, None, false, 7);
        let waits: Vec<f64> = (0..7)
            .map(|_| match policy.closed(None, "lost".into(), 100.0) {
                After::Wait { retry_at: Some(at) } => at - 100.0,
                other => panic!("should retry: {other:?}"),
            })
            .collect();
        let backoffs = [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0];
        for (wait, backoff) in waits.iter().zip(backoffs) {
            assert!(
                (backoff / 2.0..backoff).contains(wait),
                "{wait} s should be in the upper half of {backoff} s"
            );
        }
        let last = 100.0 + waits[6];
        assert!(!policy.due(last - 0.01) && policy.due(last));
        assert!(matches!(policy.notice(), Some(Notice::Disconnected { .. })));
        policy.welcomed("abcdefghjk", [1; 16]);
        assert_eq!(policy.notice(), None);
        let After::Wait { retry_at: Some(again) } = policy.closed(None, "lost".into(), 0.0) else {
            panic!("should retry")
        };
        assert!((0.25..0.5).contains(&again), "the backoff starts over: {again}");
    }

    #[test]
    fn pages_that_lost_the_same_server_come_back_spread_out_not_in_step() {
        // A thousand pages dropped at the same instant, each with its own seed.
        let mut firsts: Vec<f64> = (0..1_000u64)
            .map(|seed| {
                let mut page = Reconnect::new(None, None, false, seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
                match page.closed(None, "lost".into(), 0.0) {
                    After::Wait { retry_at: Some(at) } => at,
                    other => panic!("should retry: {other:?}"),
                }
            })
            .collect();
        firsts.sort_by(f64::total_cmp);
        // Over the first retry's window (0.25 to 0.5 s), in ten slices of 25 ms.
        let mut slices = [0usize; 10];
        for at in &firsts {
            slices[(((at - 0.25) / 0.025) as usize).min(9)] += 1;
        }
        assert!(slices.iter().all(|&n| (50..=150).contains(&n)), "spread evenly: {slices:?}");
        let distinct = firsts.windows(2).filter(|w| w[1] - w[0] > 1e-9).count();
        assert!(distinct > 990, "no two pages in step: {distinct} distinct times");
    }

    #[test]
    fn what_will_not_fix_itself_is_not_retried_and_a_gone_link_offers_a_new_room() {
        let mut policy = Reconnect::new(None, None, false, 7);
        let bad_name = policy.closed(rejected(RejectReason::BadName), String::new(), 1.0);
        assert_eq!(bad_name, After::Wait { retry_at: None });
        assert!(!policy.due(1e9), "never");
        let full = RejectReason::ServerFull { max_players: 8 };
        assert!(matches!(
            policy.closed(rejected(full), String::new(), 1.0),
            After::Wait { retry_at: Some(_) }
        ));
        // The reason stays up through retries that merely fail to connect.
        policy.closed(None, "refused".into(), 2.0);
        assert!(matches!(policy.notice(), Some(Notice::Rejected { .. })));

        let mut link = Reconnect::new(Some("zzzzzzzzzz".into()), None, false, 7);
        assert_eq!(link.closed(rejected(RejectReason::RoomNotFound), String::new(), 1.0), After::RoomGone);
        assert!(matches!(link.notice(), Some(Notice::RoomGone { .. })));

        let mut was_in = Reconnect::new(None, Some(("abcdefghjk".into(), [1; 16])), false, 7);
        let after = was_in.closed(rejected(RejectReason::RoomNotFound), String::new(), 5.0);
        assert_eq!(after, After::Wait { retry_at: Some(5.0) }, "at once");
        assert_eq!(was_in.join_request("ada", 0), JoinRequest::quick("ada", 0), "somewhere else");
    }

    #[test]
    fn a_moved_room_is_followed_at_once_and_only_once_per_attempt() {
        let home = "ws://a.example.com/ws";
        let mut policy = Reconnect::new(None, None, false, 7);
        assert_eq!(policy.connecting(home), home);
        let moved = Moved { url: "https://b.example.com".into(), room: "abcdefghjk".into() };
        assert!(policy.moved(&moved), "a quick-join sent to another node's room");
        assert_eq!(policy.closed(None, "moved".into(), 3.0), After::Wait { retry_at: Some(3.0) }, "at once");
        assert_eq!(policy.connecting(home), "wss://b.example.com/ws");
        assert_eq!(policy.join_request("ada", 1).room, RoomRequest::Join { code: "abcdefghjk".into() });
        // Sent on again by the node it was sent to: not followed; back home.
        assert!(!policy.moved(&Moved { url: "https://c.example.com".into(), room: "abcdefghjk".into() }));
        assert!(
            matches!(policy.closed(None, "moved".into(), 4.0), After::Wait { retry_at: Some(at) } if at > 4.0)
        );
        assert_eq!(policy.connecting(home), home);

        // Playing on B, B drains: follow with the seat to C, and stay there.
        let mut playing = Reconnect::new(None, None, false, 7);
        playing.connecting(home);
        playing.welcomed("abcdefghjk", [3; 16]);
        assert!(playing.moved(&Moved { url: "http://c.example.com:7777".into(), room: "abcdefghjk".into() }));
        playing.closed(None, "moved".into(), 10.0);
        assert_eq!(playing.connecting(home), "ws://c.example.com:7777/ws");
        assert_eq!(playing.join_request("ada", 1).resume, Some([3; 16]));
        playing.welcomed("abcdefghjk", [3; 16]);
        // C crashes: back to C first, and if it does not answer, home.
        playing.closed(None, "lost".into(), 20.0);
        assert_eq!(playing.connecting(home), "ws://c.example.com:7777/ws");
        playing.closed(None, "refused".into(), 21.0);
        assert_eq!(playing.connecting(home), home);
    }

    #[test]
    fn a_kicked_page_stays_out_until_its_player_chooses() {
        let home = "ws://a.example.com/ws";
        let mut policy = Reconnect::new(None, None, false, 7);
        policy.connecting(home);
        policy.welcomed("abcdefghjk", [3; 16]);
        let after = policy.kicked("removed by the server's operator".into());
        assert_eq!(after, After::Wait { retry_at: None }, "no retry by itself");
        assert!(!policy.due(1e9));
        assert!(
            matches!(policy.notice(), Some(Notice::Rejected { retry_at: None, message }) if message.contains("operator"))
        );
        // Playing again is a new seat: the old token is forgotten.
        assert_eq!(policy.join_request("ada", 1).resume, None);
        assert_eq!(policy.connecting(home), home);
    }

    #[test]
    fn a_player_the_host_made_a_watcher_comes_back_at_once_watching_the_same_room() {
        let mut policy = Reconnect::new(None, None, true, 7);
        policy.welcomed("abcdefghjk", [3; 16]);
        assert_eq!(policy.made_watcher(50.0), After::Wait { retry_at: Some(50.0) });
        assert!(policy.due(50.0) && policy.is_watching());
        let asks = policy.join_request("ada", 1);
        assert_eq!((asks.room, asks.resume), (RoomRequest::Watch { code: "abcdefghjk".into() }, None));
    }

    #[test]
    fn a_page_whose_node_died_tries_the_clusters_other_nodes_in_turn() {
        let (a, b, c) = ("ws://a.example.com/ws", "ws://b.example.com/ws", "ws://c.example.com/ws");
        let mut policy = Reconnect::new(None, None, true, 7);
        assert_eq!(policy.connecting(b), b, "the page's own node first");
        policy.welcomed("abcdefghjk", [3; 16]);
        policy.learn_nodes(vec![a.into(), b.into(), c.into()]);
        // B dies: its socket drops, and B does not answer again.
        policy.closed(None, "closed (1006)".into(), 1.0);
        assert_eq!(policy.connecting(b), b, "the node it played on is tried once more");
        policy.closed(None, "closed (1006)".into(), 2.0);
        assert_eq!(policy.connecting(b), c, "then the next node");
        policy.closed(None, "closed (1006)".into(), 3.0);
        assert_eq!(policy.connecting(b), a, "and the next, round the list");
        assert_eq!(policy.join_request("ada", 1).resume, Some([3; 16]), "always for the same seat");
        // A node that answers (here: not yet) is left for the page's own,
        // which knows where the room went.
        let unavailable = rejected(RejectReason::Unavailable { retry_after_secs: 5 });
        policy.closed(unavailable, "try again".into(), 4.0);
        assert_eq!(policy.connecting(b), b);
        // Without a list, a silent node is followed by the page's own, as before.
        let mut alone = Reconnect::new(None, None, true, 7);
        alone.connecting(b);
        alone.closed(None, "closed (1006)".into(), 1.0);
        assert_eq!(alone.connecting(b), b);
    }
}
