//! The operators' view of the cluster (`/admin`): every node and room
//! (players, each seat, tick p50/p99 over the last minute, the node's
//! bandwidth), and
//! three orders: drain a node, close a room, kick a player.
//!
//! Each node samples itself every second ([`crate::telemetry::history`]). In cluster
//! mode, while someone has the page open, each node also publishes a
//! report (its rooms and their rosters included) to Redis, and any node
//! answers for the whole cluster from those reports; an order for another
//! node is queued in Redis and carried out by that node within a second.
//! Outside cluster mode the page shows this node alone. The HTTP side,
//! and who may see it, is in [`crate::edge::http`].

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use arena_shared::protocol::{PlayerId, close};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cluster::lease::{LeaseStore, Leases};
use crate::cluster::orders::Orders;
use crate::edge::state::AppState;
use crate::room::outbox::CloseReason;
use crate::room::world::RosterLine;
use crate::telemetry::history::Sample;

/// How often each node samples itself, takes its orders and (while
/// watched) reports.
const PERIOD: Duration = Duration::from_secs(1);
/// How long the page counts as open after its last read.
const OPEN_FOR: Duration = Duration::from_secs(10);

/// One room, for operators.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoomReport {
    pub code: String,
    pub private: bool,
    pub players: u64,
    pub tick: u64,
    /// Over the last minute, µs (bucket bounds).
    pub tick_p50: Option<u64>,
    pub tick_p99: Option<u64>,
    pub roster: Vec<RosterLine>,
}

/// One node, for operators.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeReport {
    pub node: String,
    pub url: String,
    pub draining: bool,
    pub players: u64,
    /// Over the last minute, µs (bucket bounds).
    pub tick_p50: Option<u64>,
    pub tick_p99: Option<u64>,
    /// The last second's.
    pub bytes_out_per_sec: f64,
    /// The last minute, a sample a second, oldest first.
    pub samples: Vec<Sample>,
    pub rooms: Vec<RoomReport>,
}

/// What an operator asks of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum Order {
    /// Hand every room to other nodes and take no new ones (the node stays
    /// up, serving pages and sending players on, until it is restarted).
    Drain { node: String },
    /// Close the room: every player is disconnected and it is forgotten.
    Close { room: String },
    /// Remove one player from a room (no resume).
    Kick { room: String, player: PlayerId },
}

/// Why an order was not carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderError {
    /// No such node, room or player.
    NotFound(String),
    /// The cluster's Redis does not answer.
    Unavailable(String),
}

/// This node's report, rooms and rosters included.
pub async fn report(state: &AppState) -> NodeReport {
    let mut rooms = Vec::new();
    for (code, entry) in state.rooms.list() {
        // A room that stopped meanwhile is left out.
        let Some(roster) = entry.handle.roster().await else { continue };
        let stats = &entry.stats;
        // The last minute's, or since it opened for a room younger than a sample.
        let lifetime = || (stats.ticks.quantile(0.5), stats.ticks.quantile(0.99));
        let (tick_p50, tick_p99) = state.history.room_minute(&code).unwrap_or_else(lifetime);
        rooms.push(RoomReport {
            code,
            private: entry.private,
            players: stats.players.load(Relaxed),
            tick: stats.tick.load(Relaxed),
            tick_p50,
            tick_p99,
            roster,
        });
    }
    rooms.sort_by(|a, b| b.players.cmp(&a.players).then_with(|| a.code.cmp(&b.code)));
    let samples = state.history.samples();
    let (tick_p50, tick_p99) = state.history.minute();
    NodeReport {
        node: state.cluster.node.clone(),
        url: state.cluster.url.clone(),
        draining: state.cluster.is_draining(),
        players: rooms.iter().map(|room| room.players).sum(),
        tick_p50,
        tick_p99,
        bytes_out_per_sec: samples.last().map_or(0.0, |sample| sample.bytes_out_per_sec),
        samples,
        rooms,
    }
}

/// Every node's report (this one fresh), by node id. Marks the page as
/// open, so the other nodes report; the first read after a while waits a
/// period for them.
pub async fn cluster_report(state: &AppState) -> Result<Vec<NodeReport>, OrderError> {
    let here = report(state).await;
    let Some(connected) = state.cluster.connected().await else { return Ok(vec![here]) };
    let orders = Orders(connected.map_err(|e| OrderError::Unavailable(e.to_string()))?);
    let was_open = orders.page_opened(OPEN_FOR).await.map_err(|e| OrderError::Unavailable(e.to_string()))?;
    if !was_open {
        tokio::time::sleep(PERIOD + PERIOD / 2).await;
    }
    let published = orders.reports().await.map_err(|e| OrderError::Unavailable(e.to_string()))?;
    let mut nodes: Vec<NodeReport> = published
        .iter()
        .filter_map(|json| serde_json::from_str::<NodeReport>(json).ok())
        .filter(|node| node.node != here.node)
        .collect();
    nodes.push(here);
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(nodes)
}

/// Carries out `order` here, or queues it for the node it concerns.
pub async fn give(state: &AppState, order: Order) -> Result<(), OrderError> {
    if concerns_this_node(state, &order) {
        return carry_out(state, order).await;
    }
    let Some(Ok(redis)) = state.cluster.connected().await else {
        return Err(OrderError::NotFound(describe(&order)));
    };
    let node = match &order {
        Order::Drain { node } => {
            let known = state.cluster.known().iter().any(|info| &info.node == node);
            known.then(|| node.clone())
        }
        Order::Close { room } | Order::Kick { room, .. } => {
            let owner = Leases(redis.clone()).owner(room).await;
            let owner = owner.map_err(|e| OrderError::Unavailable(e.to_string()))?;
            owner.map(|lease| lease.node)
        }
    };
    let node = node.ok_or_else(|| OrderError::NotFound(describe(&order)))?;
    let json = serde_json::to_string(&order).unwrap_or_default();
    Orders(redis).send(&node, &json).await.map_err(|e| OrderError::Unavailable(e.to_string()))?;
    tracing::info!(?order, to = %node, "operator's order sent on");
    Ok(())
}

fn concerns_this_node(state: &AppState, order: &Order) -> bool {
    match order {
        Order::Drain { node } => *node == state.cluster.node,
        Order::Close { room } | Order::Kick { room, .. } => state.rooms.get(room).is_some(),
    }
}

fn describe(order: &Order) -> String {
    match order {
        Order::Drain { node } => format!("no live node {node}"),
        Order::Close { room } => format!("no room {room}"),
        Order::Kick { room, player } => format!("no player {player} in room {room}"),
    }
}

/// Does what `order` says, on this node.
async fn carry_out(state: &AppState, order: Order) -> Result<(), OrderError> {
    tracing::info!(?order, "operator's order");
    match &order {
        Order::Drain { .. } => {
            // The answer does not wait for the hand-overs.
            let placement = state.placement.clone();
            tokio::spawn(async move { placement.drain().await });
            Ok(())
        }
        Order::Close { room } => {
            let reason = CloseReason::new(close::GOING_AWAY, "the room was closed by the server's operator");
            match state.rooms.get(room) {
                Some(entry) if entry.handle.close(reason).await => Ok(()),
                _ => Err(OrderError::NotFound(describe(&order))),
            }
        }
        Order::Kick { room, player } => match state.rooms.get(room) {
            Some(entry) if entry.handle.kick(*player).await => Ok(()),
            _ => Err(OrderError::NotFound(describe(&order))),
        },
    }
}

/// Every second until `cancel`: samples this node; in cluster mode takes
/// this node's orders and, while the page is open somewhere, reports.
pub async fn run(state: AppState, cancel: CancellationToken) {
    let mut ticks = tokio::time::interval(PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let metrics = &state.metrics;
        let (_, players) = state.rooms.figures();
        state.history.sample(metrics.tick_histogram.counts(), metrics.bytes_out_total.get(), players);
        let rooms =
            state.rooms.list().into_iter().map(|(code, entry)| (code, entry.stats.ticks.counts())).collect();
        state.history.sample_rooms(rooms);
        // Outside cluster mode, or with Redis away, there is nothing to take.
        let Some(channel) = state.cluster.orders() else { continue };
        let Ok((orders, page_open)) = channel.take(&state.cluster.node).await else { continue };
        for json in orders {
            match serde_json::from_str::<Order>(&json) {
                Ok(order) => {
                    if let Err(refused) = carry_out(&state, order).await {
                        tracing::info!("an operator's order could not be carried out: {refused:?}");
                    }
                }
                Err(e) => tracing::warn!("an operator's order that does not parse: {e}"),
            }
        }
        if page_open {
            let json = serde_json::to_string(&report(&state).await).unwrap_or_default();
            let _ = channel.report(&state.cluster.node, &json, PERIOD * 3).await;
        }
    }
}
