//! One room. A room is a task ([`task`]) that alone owns its [`World`]:
//! it ticks at the configured rate and takes joins, leaves and orders
//! over a channel from its [`RoomHandle`] ([`handle`]), so game state
//! needs no lock. What one tick does with the world and the players'
//! links, without a task or a clock, is [`Room`] ([`core`]); benches and
//! tests drive it directly.
//!
//! - [`handle`]: what other tasks hold: the [`RoomHandle`] they ask
//!   through, and a seat's [`Membership`], whose guard gives the seat back
//!   on every way out of a connection (a clean close, a reset, an early
//!   `select!` arm, a panic).
//! - [`core`]: [`Room`]: the world and its players' links; how news and
//!   frames reach them; admitting, seating, watchers, hosts' commands.
//! - [`task`]: [`spawn`]: the loop that owns a `Room`, its tick and idle
//!   close, and its fence (a room whose fence does not hold pauses).
//! - The room's parts, from the game out: [`world`] (the game state and
//!   one tick, no I/O), [`interest`] (what each player is sent),
//!   [`links`] (each player's inbound queue and outbox), [`outbox`] (the
//!   bounded outgoing queue), [`wire`] (a plain-TCP socket the outbox
//!   writes to from the tick), [`fence`] (its right to run), [`log`] (its
//!   end of the input log: each tick in Redis before its frames go out),
//!   and [`replays`] (where its recorded rounds are kept).
//!
//! Nothing here calls up into the rooms of a process or the cluster.

pub mod core;
pub mod fence;
pub mod handle;
pub mod input;
pub mod interest;
pub mod links;
pub mod log;
pub mod outbox;
pub mod replays;
pub mod task;
pub mod wire;
pub mod world;
