//! What a swarm is asked to do (how many bots, where, how long, how they
//! steer, what the network does to them), and each bot's way to its room.

use std::time::Duration;

use arena_shared::protocol::RoomRequest;

use crate::brain::Behaviour;
use crate::ws::ClientError;
use arena_client_core::conditioner::LinkConditions;

#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub url: String,
    pub count: usize,
    pub duration: Duration,
    pub behaviour: Behaviour,
    /// Bot `i` is named `{name_prefix}{i}`.
    pub name_prefix: String,
    /// Whom `wss://` trusts ([`crate::tls`]); `None`: the public CAs.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    /// What the network does to every bot's messages (nothing by default).
    pub conditions: LinkConditions,
    /// Which rooms the bots join.
    pub rooms: RoomPlan,
    /// Resume a dropped connection within this long (cluster drills);
    /// `None`: a drop ends the bot's run. A `Moved` is always followed.
    pub reconnect: Option<Duration>,
    /// Light bots: nobody draws them, so they keep no interpolation
    /// tracks and skip the renderer's bookkeeping (the report then has no
    /// interpolation figures), and wake 30 times a second for two inputs
    /// instead of 60 times for one. The protocol, prediction and the brain
    /// are the same.
    pub light: bool,
}

/// Where a swarm's bots play.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RoomPlan {
    /// Each bot quick-joins (the fullest public room with space).
    #[default]
    Quick,
    /// Every bot joins the room with this code.
    Join(String),
    /// Bot `i` plays in private room `i % n`; the first bot of each opens it.
    Spread(usize),
}

/// How bot `index` finds its room: quick, a fixed code, or the code its
/// group's first bot announces once it has opened the room.
pub enum RoomTicket {
    Request(RoomRequest),
    Opens(tokio::sync::watch::Sender<Option<String>>),
    Follows(tokio::sync::watch::Receiver<Option<String>>),
}

impl RoomTicket {
    pub fn plan(config: &SwarmConfig) -> Vec<RoomTicket> {
        match &config.rooms {
            RoomPlan::Quick => (0..config.count).map(|_| RoomTicket::Request(RoomRequest::Quick)).collect(),
            RoomPlan::Join(code) => (0..config.count)
                .map(|_| RoomTicket::Request(RoomRequest::Join { code: code.clone() }))
                .collect(),
            RoomPlan::Spread(n) => {
                let n = (*n).clamp(1, config.count.max(1));
                let (senders, receivers): (Vec<_>, Vec<_>) =
                    (0..n).map(|_| tokio::sync::watch::channel(None)).unzip();
                let mut tickets: Vec<RoomTicket> = senders.into_iter().map(RoomTicket::Opens).collect();
                tickets.extend((n..config.count).map(|i| RoomTicket::Follows(receivers[i % n].clone())));
                tickets
            }
        }
    }

    /// The request to send, waiting for the group's code if need be.
    pub async fn request(&mut self) -> Result<RoomRequest, ClientError> {
        match self {
            RoomTicket::Request(request) => Ok(request.clone()),
            RoomTicket::Opens(_) => Ok(RoomRequest::CreatePrivate),
            RoomTicket::Follows(code) => {
                let code = code
                    .wait_for(Option::is_some)
                    .await
                    .map_err(|_| ClientError::Connect("the bot opening this room failed".into()))?;
                Ok(RoomRequest::Join { code: code.clone().unwrap_or_default() })
            }
        }
    }

    /// Tells the group where the room is, once this bot opened it.
    pub fn opened(&self, code: &str) {
        if let RoomTicket::Opens(sender) = self {
            let _ = sender.send(Some(code.to_owned()));
        }
    }
}
