//! When a player's frames arrive: the pause a player sees while a room is
//! fenced, moved or failed over.

use std::time::Duration;

use arena_bots::ws::Incoming;
use arena_shared::protocol::ServerMsg;

/// Frames a player received: when, and for which tick.
pub type Arrivals = std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, u32)>>>;

/// Reads `client`'s frames into the returned list until its socket ends.
pub fn record_frames(mut client: arena_bots::ws::WsClient) -> Arrivals {
    let arrivals = Arrivals::default();
    let recorded = arrivals.clone();
    tokio::spawn(async move {
        while let Ok(incoming) = client.recv().await {
            match incoming {
                Incoming::Msg(ServerMsg::Frame(frame)) => {
                    recorded.lock().expect("not poisoned").push((std::time::Instant::now(), frame.tick))
                }
                Incoming::Msg(_) => {}
                Incoming::Closed(_) => return,
            }
        }
    });
    arrivals
}

/// The longest wait between two frames received after `since`, and the
/// largest step in tick numbers between them.
pub fn worst_gap(arrivals: &Arrivals, since: std::time::Instant) -> (Duration, u32) {
    let arrivals = arrivals.lock().expect("not poisoned");
    let after: Vec<_> = arrivals.iter().filter(|(at, _)| *at >= since).collect();
    after.windows(2).fold((Duration::ZERO, 0), |(gap, step), pair| {
        (gap.max(pair[1].0 - pair[0].0), step.max(pair[1].1.wrapping_sub(pair[0].1)))
    })
}
