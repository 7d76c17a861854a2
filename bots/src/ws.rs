//! A native WebSocket client for arena's protocol.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arena_shared::codec::{DecodeError, decode_server, encode_client};
use arena_shared::protocol::{ClientMsg, Rejection, ResumeToken, RoomRequest, ServerMsg, Welcome, close};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use arena_client_core::session::{ClientSession, JoinRequest, color_for};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("server answered HTTP {0}")]
    Http(u16),
    #[error("rejected: {}", .0.message)]
    Rejected(Rejection),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("closed by server ({code}: {reason})")]
    Closed { code: u16, reason: String },
    #[error("connection lost: {0}")]
    Lost(String),
    /// The room is on another node of the cluster: go there.
    #[error("the room is on {}", .0.url)]
    Moved(arena_shared::protocol::Moved),
}

impl From<DecodeError> for ClientError {
    fn from(e: DecodeError) -> Self {
        ClientError::Protocol(e.to_string())
    }
}

/// What the server sent next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Msg(ServerMsg),
    /// A close frame (code, reason), or `None` if the socket just ended.
    Closed(Option<(u16, String)>),
}

/// A byte stream a WebSocket runs over: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// A connected client; [`WsClient::split`] gives halves that can be used
/// from two branches of one `select!`.
pub struct WsClient {
    pub tx: WsSender,
    pub rx: WsReceiver,
}

/// The sending half.
pub struct WsSender {
    sink: SplitSink<Socket, Message>,
    /// Payload bytes sent, for the bots' bandwidth figures.
    pub bytes_up: u64,
}

/// The receiving half.
pub struct WsReceiver {
    stream: SplitStream<Socket>,
    /// Payload bytes received.
    pub bytes_down: u64,
    /// The size of the last message received, bytes.
    pub last_message_bytes: usize,
}

impl WsClient {
    pub async fn connect(url: &str) -> Result<Self, ClientError> {
        Self::connect_with_origin(url, None).await
    }

    /// Connects as a browser on page `origin` would (bots send no Origin).
    pub async fn connect_with_origin(url: &str, origin: Option<&str>) -> Result<Self, ClientError> {
        let origin: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        Self::connect_with_headers(url, &origin).await
    }

    /// Connects with extra request headers (`host` replaces the URL's), as a
    /// browser behind a proxy, or a forger, would.
    pub async fn connect_with_headers(url: &str, headers: &[(&str, &str)]) -> Result<Self, ClientError> {
        Self::connect_with(url, headers, None).await
    }

    /// Connects to `url` with extra headers; `wss:` URLs trust `tls`
    /// (see [`crate::tls`]), or the public web's roots when it is `None`.
    pub async fn connect_with(
        url: &str,
        headers: &[(&str, &str)],
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Self, ClientError> {
        let mut request = url.into_client_request().map_err(|e| ClientError::Connect(e.to_string()))?;
        for &(name, value) in headers {
            let value = HeaderValue::from_str(value).map_err(|e| ClientError::Connect(e.to_string()))?;
            let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ClientError::Connect(e.to_string()))?;
            request.headers_mut().insert(name, value);
        }
        let uri = request.uri().clone();
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(ClientError::Connect(format!("{url} is not a ws:// or wss:// URL"))),
        };
        let host = uri.host().ok_or_else(|| ClientError::Connect(format!("{url} has no host")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tcp = TcpStream::connect((host, port)).await.map_err(|e| ClientError::Connect(e.to_string()))?;
        // Inputs are tiny and latency-bound.
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = if secure {
            let config = tls.unwrap_or_else(crate::tls::public_roots);
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| ClientError::Connect(format!("{host}: {e}")))?;
            let tls_stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| ClientError::Connect(format!("TLS: {e}")))?;
            Box::new(tls_stream)
        } else {
            Box::new(tcp)
        };
        let (ws, _response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config()))
            .await
            .map_err(refused_upgrade)?;
        Ok(Self::from_stream(ws))
    }

    /// Upgrades a connection the caller opened (tests and attacks use their
    /// own TCP settings) to a WebSocket at `url`.
    pub async fn over(url: &str, stream: impl Io + 'static) -> Result<Self, ClientError> {
        let boxed: Box<dyn Io> = Box::new(stream);
        let (ws, _response) = tokio_tungstenite::client_async_with_config(url, boxed, Some(config()))
            .await
            .map_err(refused_upgrade)?;
        Ok(Self::from_stream(ws))
    }

    /// Wraps an already-handshaken socket.
    pub fn from_stream(ws: Socket) -> Self {
        let (sink, stream) = ws.split();
        WsClient {
            tx: WsSender { sink, bytes_up: 0 },
            rx: WsReceiver { stream, bytes_down: 0, last_message_bytes: 0 },
        }
    }

    pub fn split(self) -> (WsSender, WsReceiver) {
        (self.tx, self.rx)
    }

    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), ClientError> {
        self.tx.send(msg).await
    }

    pub async fn send_raw(&mut self, message: Message) -> Result<(), ClientError> {
        self.tx.send_raw(message).await
    }

    pub async fn recv(&mut self) -> Result<Incoming, ClientError> {
        self.rx.recv().await
    }

    /// Sends `Hello` (quick-join) and waits for `Welcome`; a `Rejected`
    /// becomes an error.
    pub async fn handshake(&mut self, name: &str) -> Result<Welcome, ClientError> {
        self.handshake_in(name, RoomRequest::Quick).await
    }

    /// Sends `Hello` asking for `room` and waits for `Welcome`.
    pub async fn handshake_in(&mut self, name: &str, room: RoomRequest) -> Result<Welcome, ClientError> {
        self.handshake_resuming(name, room, None).await
    }

    /// Sends `Hello` with a resume token from an earlier `Welcome` (its room
    /// asked for by code): within the server's window that player comes back.
    pub async fn handshake_resuming(
        &mut self,
        name: &str,
        room: RoomRequest,
        resume: Option<ResumeToken>,
    ) -> Result<Welcome, ClientError> {
        let join = JoinRequest { name: name.to_owned(), color: color_for(name), room, resume };
        self.send(&join.hello()).await?;
        self.welcome().await
    }

    /// Runs `session`'s handshake: sends its `Hello` and hands it the
    /// `Welcome` (`now` reads the session's clock).
    pub async fn join(
        &mut self,
        session: &mut ClientSession,
        now: impl Fn() -> f64,
    ) -> Result<(), ClientError> {
        while let Some(msg) = session.poll_transmit(now()) {
            self.send(&msg).await?;
        }
        let welcome = self.welcome().await?;
        session.handle(ServerMsg::Welcome(welcome), now()).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// The answer to a `Hello`: the `Welcome`; a `Rejected` becomes
    /// [`ClientError::Rejected`], anything else a protocol error.
    async fn welcome(&mut self) -> Result<Welcome, ClientError> {
        match self.recv().await? {
            Incoming::Msg(ServerMsg::Welcome(welcome)) => Ok(welcome),
            Incoming::Msg(ServerMsg::Rejected(rejection)) => Err(ClientError::Rejected(rejection)),
            Incoming::Msg(ServerMsg::Moved(moved)) => Err(ClientError::Moved(moved)),
            Incoming::Msg(other) => Err(ClientError::Protocol(format!("expected Welcome, got {other:?}"))),
            Incoming::Closed(frame) => Err(closed(frame)),
        }
    }

    pub async fn close(&mut self) {
        self.tx.close().await;
    }
}

impl WsSender {
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), ClientError> {
        self.send_raw(Message::Binary(encode_client(msg).into())).await
    }

    /// Sends any WebSocket message, valid or not.
    pub async fn send_raw(&mut self, message: Message) -> Result<(), ClientError> {
        self.bytes_up += message.len() as u64;
        self.sink.send(message).await.map_err(lost)
    }

    /// Says goodbye with a normal close frame.
    pub async fn close(&mut self) {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
        let _ = self.sink.send(Message::Close(Some(frame))).await;
    }
}

impl WsReceiver {
    /// The next protocol message or the close; pings and pongs are skipped
    /// (tungstenite answers pings by itself). Cancel-safe.
    pub async fn recv(&mut self) -> Result<Incoming, ClientError> {
        loop {
            let Some(message) = self.stream.next().await else {
                return Ok(Incoming::Closed(None));
            };
            match message {
                Ok(Message::Binary(bytes)) => {
                    self.bytes_down += bytes.len() as u64;
                    self.last_message_bytes = bytes.len();
                    return Ok(Incoming::Msg(decode_server(&bytes)?));
                }
                Ok(Message::Close(frame)) => {
                    return Ok(Incoming::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string()))));
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Text(_)) => {
                    return Err(ClientError::Protocol("server sent text".into()));
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(Incoming::Closed(None));
                }
                Err(e) => return Err(lost(e)),
            }
        }
    }
}

fn lost(e: tungstenite::Error) -> ClientError {
    ClientError::Lost(e.to_string())
}

pub(crate) fn closed(frame: Option<(u16, String)>) -> ClientError {
    let (code, reason) = frame.unwrap_or((close::ABNORMAL, "no close frame".into()));
    ClientError::Closed { code, reason }
}

/// The socket's buffers. tungstenite's default read buffer (128 KiB) is
/// zeroed on every read: with hundreds of bots in one process that memset
/// was a fifth of their CPU. Frames are a few hundred bytes; 2 KiB reads
/// take nearly all of them whole (a bigger one takes a few reads). Nothing the server may send is over
/// `MAX_SERVER_MSG_BYTES`, so nothing bigger is buffered (64 MiB otherwise).
/// Why an upgrade failed: the server's HTTP status, if it answered one.
fn refused_upgrade(e: tungstenite::Error) -> ClientError {
    match e {
        tungstenite::Error::Http(response) => ClientError::Http(response.status().as_u16()),
        other => ClientError::Connect(other.to_string()),
    }
}

fn config() -> tungstenite::protocol::WebSocketConfig {
    let most = Some(arena_shared::protocol::MAX_SERVER_MSG_BYTES);
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .max_message_size(most)
        .max_frame_size(most)
}

/// A TCP connection from `source` (any local port) to the server.
pub async fn connect_tcp(
    addr: SocketAddr,
    source: Option<IpAddr>,
    reset_on_close: bool,
) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    if reset_on_close {
        // Linger 0: closing sends RST, as a dropped Wi-Fi or a killed process can.
        socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO))?;
    }
    socket.connect(addr).await
}

/// The server's address from a `ws://` or `wss://host[:port]/path` URL
/// (an IPv6 host in brackets, a name resolved).
pub async fn server_addr(url: &str) -> Result<SocketAddr, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(format!("expected a ws:// or wss:// URL, not {url}"));
    }
    let port = parsed.port_or_known_default().ok_or_else(|| format!("{url} has no port"))?;
    match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Ok(SocketAddr::new(ip.into(), port)),
        Some(url::Host::Ipv6(ip)) => Ok(SocketAddr::new(ip.into(), port)),
        Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| format!("cannot resolve {name}: {e}"))?
            .next()
            .ok_or_else(|| format!("{name} has no address")),
        None => Err(format!("{url} has no host")),
    }
}

/// A WebSocket client over a TCP connection from `source` (a loopback
/// address of its own, so one machine can be many peers), its socket
/// reset rather than closed when dropped if `reset_on_close`.
pub async fn connect_from(
    url: &str,
    source: Option<IpAddr>,
    reset_on_close: bool,
) -> Result<WsClient, String> {
    let addr = server_addr(url).await?;
    let tcp = connect_tcp(addr, source, reset_on_close).await.map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    WsClient::over(url, tcp).await.map_err(|e| format!("upgrade: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_address_comes_from_any_websocket_url_ipv6_included() {
        let at = |url: &'static str| async move { server_addr(url).await };
        assert_eq!(at("ws://127.0.0.1:7777/ws").await, Ok("127.0.0.1:7777".parse().expect("an address")));
        assert_eq!(at("ws://[::1]:7777/ws").await, Ok("[::1]:7777".parse().expect("an address")));
        assert_eq!(at("wss://[::1]/ws").await, Ok("[::1]:443".parse().expect("an address")));
        assert_eq!(at("ws://localhost:9/ws").await.map(|a| a.port()), Ok(9));
        assert!(at("http://127.0.0.1:7777/ws").await.is_err_and(|e| e.contains("ws://")));
        assert!(at("not a url").await.is_err_and(|e| e.contains("not a URL")));
    }
}
