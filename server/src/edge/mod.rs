//! Where the network meets the game, from the socket in:
//! - [`accept`]: the accept loop and each TCP connection's HTTP/1.1 life:
//!   request-head deadlines, connection caps (503), `accept` errors
//!   survived, TLS first when configured.
//! - [`tls`]: `--tls-cert`/`--tls-key` into a rustls acceptor, and the
//!   handshake thread that keeps handshakes off the tick.
//! - [`http`]: `app(state) -> Router`: `/ws` (upgrade with bounded
//!   buffers), `/healthz` and `/metrics`, `/api/rooms`, `/api/replays`,
//!   the operators' routes; `operator_app` for `--metrics-bind`.
//! - [`admin`] (and `admin.html`): the operators' page's data and orders
//!   (every node and room, the last minute; drain a node, close a room,
//!   kick a player), across the cluster through Redis.
//! - [`origin`]: which pages may open `/ws`, and the player's address
//!   behind a trusted proxy.
//! - [`web`], `embedded` (feature `embed-client`) and [`compress`]: the
//!   built client's files, from `--web-dir` or from inside the binary,
//!   with one cache policy, and the compressed forms made once.
//! - [`socket`]: the WebSocket upgrade, which keeps a plain-TCP socket's
//!   writing half as the player's wire (the tick writes frames to it).
//! - [`connection`]: one upgraded socket: the handshake, then its reader
//!   and writer, and the close frame that ends it.
//! - [`state`]: `AppState`, what every request and connection shares: the
//!   lobby, the rooms, the placement, the limits, the metrics.
//!
//! The edge may call everything below it (the lobby, the cluster, the
//! rooms); nothing below calls back up into it.

pub mod accept;
pub mod admin;
pub mod compress;
pub mod connection;
#[cfg(feature = "embed-client")]
pub mod embedded;
pub mod http;
pub mod origin;
pub mod socket;
pub mod state;
pub mod tls;
pub mod web;
