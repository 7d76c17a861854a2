//! A private room's host: who it is (whoever created the room, then
//! whoever has been in it longest), what it has set (the next rounds'
//! rules, the lock), whom it kicked (each address kept out for
//! [`KICK_BAN_SECS`]), and what it may ask ([`HostCommand`]): [`HostControls`]
//! checks a command and answers with a typed refusal ([`CommandRefusal`]);
//! the world carries out the rest ([`World::host_command`]). It all
//! travels with the room's snapshot.
//!
//! [`World::host_command`]: super::World::host_command

use arena_shared::protocol::{
    CommandRefusal, HostCommand, Hosting, KICK_BAN_SECS, MIN_SECS_BETWEEN_NEXT_ROUNDS, PlayerId,
    RejectReason, Rejection,
};

use crate::limits::AddressKey;

/// Kicked addresses a room remembers at once; past it, the oldest ban goes.
const MAX_BANS: usize = 64;

/// What a room's host has set, and whom it kicked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostControls {
    /// Who hosts (0: nobody, in a public room or before anyone sat down),
    /// the rules set and the lock: what everyone is told.
    pub hosting: Hosting,
    /// Kicked addresses, each with the tick its ban ends, oldest first.
    bans: Vec<(AddressKey, u32)>,
    /// The game tick before which another `NextRound` is refused.
    next_round_from: u32,
}

/// The room's clock, for a host's bans and pauses.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// The game's tick.
    pub tick: u32,
    pub tick_rate: u16,
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

impl HostControls {
    /// No host yet, the room open, rounds of `round_secs`.
    pub fn new(round_secs: u32) -> Self {
        let round_secs = u16::try_from(round_secs).unwrap_or(u16::MAX);
        HostControls { hosting: Hosting::nobody(round_secs), bans: Vec::new(), next_round_from: 0 }
    }

    /// Whether someone from `from` may come in at game tick `tick` (to
    /// play or to watch): not while a kick keeps that address out.
    pub fn admits(&mut self, from: Option<AddressKey>, tick: u32, tick_rate: u16) -> Result<(), Rejection> {
        self.bans.retain(|&(_, until)| until > tick);
        let until = from.and_then(|from| self.bans.iter().find(|(key, _)| *key == from).map(|b| b.1));
        if let Some(until) = until {
            let secs = (until - tick).div_ceil(u32::from(tick_rate.max(1)));
            let retry_after_secs = u16::try_from(secs).unwrap_or(u16::MAX);
            return Err(Rejection::new(RejectReason::Banned { retry_after_secs }));
        }
        Ok(())
    }

    /// Whether player `by` may give `command` at game tick `tick` in a
    /// room that is `private` (only its host, with values in bounds, never
    /// kicking itself, a next round at most every
    /// [`MIN_SECS_BETWEEN_NEXT_ROUNDS`]).
    pub fn check(
        &self,
        private: bool,
        by: PlayerId,
        command: &HostCommand,
        now: Now,
    ) -> Result<(), CommandRefusal> {
        if !private {
            return Err(CommandRefusal::PublicRoom);
        }
        if by != self.hosting.host {
            return Err(CommandRefusal::NotHost);
        }
        match command {
            HostCommand::SetRules(rules) if !rules.in_bounds() => Err(CommandRefusal::OutOfRange),
            HostCommand::Kick { id } if *id == by => Err(CommandRefusal::Yourself),
            HostCommand::NextRound if now.tick < self.next_round_from => {
                let secs = (self.next_round_from - now.tick).div_ceil(u32::from(now.tick_rate.max(1)));
                Err(CommandRefusal::TooSoon { retry_after_secs: u16::try_from(secs).unwrap_or(u16::MAX) })
            }
            _ => Ok(()),
        }
    }

    /// A next round started at `now`: the next may start
    /// [`MIN_SECS_BETWEEN_NEXT_ROUNDS`] later.
    pub fn started_next_round(&mut self, now: Now) {
        let gap = MIN_SECS_BETWEEN_NEXT_ROUNDS * u32::from(now.tick_rate);
        self.next_round_from = now.tick.saturating_add(gap);
    }

    /// Keeps `from` out until game tick `tick` plus [`KICK_BAN_SECS`].
    pub fn ban(&mut self, from: AddressKey, tick: u32, tick_rate: u16) {
        let until = tick.saturating_add(KICK_BAN_SECS * u32::from(tick_rate));
        self.bans.retain(|(key, _)| *key != from);
        if self.bans.len() >= MAX_BANS {
            self.bans.remove(0);
        }
        self.bans.push((from, until));
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use arena_shared::protocol::{RoundPhase, Rules, ServerMsg, close};

    use super::*;
    use crate::room::world::{Newcomer, World};

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
        assert_eq!(
            world.host_command(ada, HostCommand::NextRound),
            Err(CommandRefusal::TooSoon { retry_after_secs: 10 }),
            "each round is recorded: one next round every 10 s at most"
        );
        world.let_time_pass(9 * 30 + 1);
        assert_eq!(
            world.host_command(ada, HostCommand::NextRound),
            Err(CommandRefusal::TooSoon { retry_after_secs: 1 })
        );
        world.let_time_pass(29);
        assert_eq!(world.host_command(ada, HostCommand::NextRound), Ok(HostEffect::Done));
        assert_eq!(world.game().round().number, 3);

        let mut public = World::new(30, 8).in_room("public0000".into(), false);
        let cy = join(&mut public, "cy", 3).expect("space");
        assert_eq!(public.hosting().host, 0, "a public room has no host");
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

        world.let_time_pass(KICK_BAN_SECS * 30);
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
