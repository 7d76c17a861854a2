//! The swarm: every bot as its own task on one runtime, their records
//! gathered at the end.

use std::sync::Arc;

use tokio::time::Instant;

use crate::bot::{Live, run_bot};
use crate::config::{RoomTicket, SwarmConfig};
use crate::nodes::KnownNodes;
use crate::record::{BotRecord, Outcome};

/// Runs the swarm to the end and returns every bot's record.
pub async fn run_swarm(config: SwarmConfig, live: Arc<Live>) -> Vec<BotRecord> {
    let config = Arc::new(config);
    let clock = Instant::now();
    // Only a swarm that reconnects needs to know where else to go.
    let (nodes, reading) = match config.reconnect {
        Some(_) => KnownNodes::learn(&config.url, config.tls.clone()),
        None => (Arc::default(), tokio::spawn(async {})),
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (index, ticket) in RoomTicket::plan(&config).into_iter().enumerate() {
        tasks.spawn(run_bot(index, ticket, (config.clone(), nodes.clone()), live.clone(), clock));
    }
    let mut records = Vec::with_capacity(config.count);
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(record) => records.push(record),
            Err(e) => records.push(BotRecord::new(
                usize::MAX,
                Outcome::ConnectFailed { error: format!("bot task died: {e}") },
            )),
        }
    }
    reading.abort();
    records.sort_by_key(|r| r.index);
    records
}
