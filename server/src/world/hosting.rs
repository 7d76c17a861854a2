//! A private room's host: who it is (whoever created the room, then
//! whoever has been in it longest), and what it may do ([`HostCommand`]):
//! set the next rounds' rules, lock the room, kick a player (its address
//! stays out for [`KICK_BAN_SECS`]), make a player a watcher, and start the
//! next round now. Every command is checked here, and a refused one says
//! why ([`CommandRefusal`]). It all travels with the room's snapshot.

use arena_shared::protocol::{
    CommandRefusal, HostCommand, Hosting, KICK_BAN_SECS, PlayerId, RejectReason, Rejection, Rules, ServerMsg,
};

use super::{NOBODY, World};
use crate::limits::AddressKey;

/// Kicked addresses a room remembers at once; past it, the oldest ban goes.
const MAX_BANS: usize = 64;

/// What a room's host has set, and whom it kicked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hosted {
    /// 0: nobody (a public room, or nobody sat down yet).
    pub host: PlayerId,
    pub locked: bool,
    pub rules: Rules,
    /// Kicked addresses, each with the tick its ban ends, oldest first.
    bans: Vec<(AddressKey, u32)>,
}

impl Hosted {
    /// No host yet, the room open, rounds of `round_secs`.
    pub fn new(round_secs: u32) -> Self {
        let round_secs = u16::try_from(round_secs).unwrap_or(u16::MAX);
        Hosted {
            host: NOBODY,
            locked: false,
            rules: Rules { round_secs, points_to_win: 0 },
            bans: Vec::new(),
        }
    }
}

/// What a host's command did that the room must carry out on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEffect {
    /// Only the world changed (its news says what).
    Done,
    /// The player left: close its connection with `close::KICKED`.
    Kicked(PlayerId),
    /// The player left: close its connection with `close::TO_WATCHERS`.
    ToWatchers(PlayerId),
}

impl World {
    /// Who hosts this room, and how it is set.
    pub fn hosting(&self) -> Hosting {
        let Hosted { host, locked, rules, .. } = self.hosted;
        Hosting { host, rules, locked }
    }

    pub(super) fn tell_hosting(&mut self) {
        self.news.push(ServerMsg::Hosting(self.hosting()));
    }

    /// The host left: whoever has been here longest (the lowest id) hosts now.
    pub(super) fn pass_hosting_on(&mut self) {
        self.hosted.host = self.players.iter().find(|(_, p)| !p.is_bot()).map_or(NOBODY, |(&id, _)| id);
        self.tell_hosting();
    }

    /// Whether someone from `from` may come in (to play or to watch): not
    /// while a kick keeps that address out, and, to play, not into a
    /// locked room (see [`World::join`]).
    pub fn admits(&mut self, from: Option<AddressKey>) -> Result<(), Rejection> {
        let tick = self.game.tick();
        self.hosted.bans.retain(|&(_, until)| until > tick);
        let until = from.and_then(|from| self.hosted.bans.iter().find(|(key, _)| *key == from).map(|b| b.1));
        if let Some(until) = until {
            let secs = (until - tick).div_ceil(u32::from(self.tick_rate.max(1)));
            let retry_after_secs = u16::try_from(secs).unwrap_or(u16::MAX);
            return Err(Rejection::new(RejectReason::Banned { retry_after_secs }));
        }
        Ok(())
    }

    /// Whether a new player may sit down (watchers and resumes may).
    pub(super) fn admits_players(&mut self, from: Option<AddressKey>) -> Result<(), Rejection> {
        self.admits(from)?;
        if self.private && self.hosted.locked {
            return Err(Rejection::new(RejectReason::RoomLocked));
        }
        Ok(())
    }

    /// Carries out `command` from player `by`, if `by` hosts this room and
    /// the command makes sense; everyone is told what changed.
    pub fn host_command(&mut self, by: PlayerId, command: HostCommand) -> Result<HostEffect, CommandRefusal> {
        if !self.private {
            return Err(CommandRefusal::PublicRoom);
        }
        if by != self.hosted.host {
            return Err(CommandRefusal::NotHost);
        }
        match command {
            HostCommand::SetRules(rules) => {
                if !rules.in_bounds() {
                    return Err(CommandRefusal::OutOfRange);
                }
                self.hosted.rules = rules;
                self.game.set_next_rules(u32::from(rules.round_secs), u32::from(rules.points_to_win));
                self.tell_hosting();
                Ok(HostEffect::Done)
            }
            HostCommand::Lock(locked) => {
                self.hosted.locked = locked;
                self.tell_hosting();
                Ok(HostEffect::Done)
            }
            HostCommand::Kick { id } => {
                if id == by {
                    return Err(CommandRefusal::Yourself);
                }
                let from = self.players.get(&id).ok_or(CommandRefusal::NoSuchPlayer)?.from;
                if let Some(from) = from {
                    self.ban(from);
                }
                self.leave(id);
                Ok(HostEffect::Kicked(id))
            }
            HostCommand::ToWatchers { id } => {
                if !self.leave(id) {
                    return Err(CommandRefusal::NoSuchPlayer);
                }
                Ok(HostEffect::ToWatchers(id))
            }
            HostCommand::NextRound => {
                self.next_round_now();
                Ok(HostEffect::Done)
            }
        }
    }

    /// Keeps `from` out for [`KICK_BAN_SECS`].
    fn ban(&mut self, from: AddressKey) {
        let until = self.game.tick().saturating_add(KICK_BAN_SECS * u32::from(self.tick_rate));
        self.hosted.bans.retain(|(key, _)| *key != from);
        if self.hosted.bans.len() >= MAX_BANS {
            self.hosted.bans.remove(0);
        }
        self.hosted.bans.push((from, until));
    }

    /// The round being played ends here (its recording too, cut short) and
    /// the next one starts.
    fn next_round_now(&mut self) {
        if let Some(recorder) = self.recorder.take() {
            self.replays.push(recorder.finish());
        }
        for event in self.game.next_round_now() {
            if let arena_shared::game::GameEvent::Round(round) = event {
                self.news.push(ServerMsg::Round(round));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use arena_shared::protocol::{RoundPhase, close};

    use super::*;
    use crate::world::Newcomer;

    fn from(last: u8) -> Option<AddressKey> {
        Some(AddressKey::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)), 64))
    }

    fn private_room() -> World {
        World::new(30, 8).in_room("hosted0000".into(), true).with_rounds(180, 10)
    }

    fn join(world: &mut World, name: &str, last: u8) -> Result<PlayerId, Rejection> {
        let newcomer = Newcomer { name: name.into(), color: 0, from: from(last) };
        world.join(newcomer, [last; 16]).map(|seated| seated.id)
    }

    fn hosting_news(world: &mut World) -> Vec<Hosting> {
        world
            .take_news()
            .into_iter()
            .filter_map(|m| if let ServerMsg::Hosting(h) = m { Some(h) } else { None })
            .collect()
    }

    #[test]
    fn the_creator_hosts_and_only_the_host_s_bounded_commands_are_carried_out() {
        let mut world = private_room();
        let ada = join(&mut world, "ada", 1).expect("space");
        let bob = join(&mut world, "bob", 2).expect("space");
        assert_eq!(world.hosting().host, ada);
        let rules = Rules { round_secs: 60, points_to_win: 5 };
        assert_eq!(world.host_command(bob, HostCommand::SetRules(rules)), Err(CommandRefusal::NotHost));
        assert_eq!(world.host_command(bob, HostCommand::Kick { id: ada }), Err(CommandRefusal::NotHost));
        let too_long = Rules { round_secs: 901, points_to_win: 5 };
        assert_eq!(world.host_command(ada, HostCommand::SetRules(too_long)), Err(CommandRefusal::OutOfRange));
        let too_many = Rules { round_secs: 60, points_to_win: 100 };
        assert_eq!(world.host_command(ada, HostCommand::SetRules(too_many)), Err(CommandRefusal::OutOfRange));
        assert_eq!(world.host_command(ada, HostCommand::Kick { id: ada }), Err(CommandRefusal::Yourself));
        assert_eq!(world.host_command(ada, HostCommand::Kick { id: 99 }), Err(CommandRefusal::NoSuchPlayer));
        world.take_news();
        assert_eq!(world.host_command(ada, HostCommand::SetRules(rules)), Ok(HostEffect::Done));
        assert_eq!(hosting_news(&mut world), [Hosting { host: ada, rules, locked: false }]);
        assert!(
            matches!(world.game().round().phase, RoundPhase::Playing { ends_at } if ends_at == 180 * 30),
            "the round being played keeps its length"
        );
        assert_eq!(world.host_command(ada, HostCommand::NextRound), Ok(HostEffect::Done));
        assert_eq!(world.game().round().number, 2);
        assert_eq!(world.game().settings().round_ticks, 60 * 30, "the next round has the host's length");
        assert_eq!(world.game().settings().points_to_win, 5);

        let mut public = World::new(30, 8).in_room("public0000".into(), false);
        let cy = join(&mut public, "cy", 3).expect("space");
        assert_eq!(public.hosting().host, NOBODY, "a public room has no host");
        assert_eq!(public.host_command(cy, HostCommand::Lock(true)), Err(CommandRefusal::PublicRoom));
    }

    #[test]
    fn a_kicked_player_s_address_is_kept_out_for_ten_minutes_and_a_lock_keeps_newcomers_out() {
        let mut world = private_room();
        let ada = join(&mut world, "ada", 1).expect("space");
        let bob = join(&mut world, "bob", 2).expect("space");
        assert_eq!(world.host_command(ada, HostCommand::Kick { id: bob }), Ok(HostEffect::Kicked(bob)));
        assert!(world.roster().iter().all(|line| line.id != bob), "the seat is gone");
        let refused = join(&mut world, "bob again", 2).expect_err("banned");
        assert_eq!(refused.reason, RejectReason::Banned { retry_after_secs: 600 });
        assert_eq!(refused.reason.close_code(), close::KICKED);
        assert!(world.admits(from(2)).is_err(), "nor may it watch");
        join(&mut world, "cy", 3).expect("another address comes in");

        for _ in 0..KICK_BAN_SECS * 30 {
            world.game.advance();
        }
        join(&mut world, "bob", 2).expect("the ban is over");

        assert_eq!(world.host_command(ada, HostCommand::Lock(true)), Ok(HostEffect::Done));
        assert_eq!(join(&mut world, "dee", 4).expect_err("locked").reason, RejectReason::RoomLocked);
        assert!(world.admits(from(4)).is_ok(), "watchers still come in");
        world.host_command(ada, HostCommand::Lock(false)).expect("host");
        join(&mut world, "dee", 4).expect("open again");
    }

    #[test]
    fn the_host_role_passes_to_the_longest_present_and_travels_with_the_snapshot() {
        let mut world = private_room();
        let ada = join(&mut world, "ada", 1).expect("space");
        let bob = join(&mut world, "bob", 2).expect("space");
        let cy = join(&mut world, "cy", 3).expect("space");
        assert_eq!(
            world.host_command(ada, HostCommand::ToWatchers { id: bob }),
            Ok(HostEffect::ToWatchers(bob))
        );
        world.take_news();
        world.leave(ada);
        assert_eq!(hosting_news(&mut world).last().map(|h| h.host), Some(cy), "bob left first; cy is next");
        let eve = join(&mut world, "eve", 5).expect("space");
        world.host_command(cy, HostCommand::Kick { id: eve }).expect("cy hosts");
        world.host_command(cy, HostCommand::Lock(true)).expect("cy hosts");
        let restored = World::new(30, 8).restored(world.snapshot());
        assert_eq!(restored.hosting(), world.hosting(), "host, rules and lock travel");
        let mut restored = restored;
        assert!(restored.admits(from(5)).is_err(), "and so do the bans");
    }
}
