//! Who may open `/ws`, and who is asking: the [`OriginPolicy`] that keeps
//! other sites' pages out (while `trunk serve` on this machine gets in), and
//! the player's address behind a proxy we trust.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};

use crate::config::ServerConfig;

/// Which pages may open `/ws`. Browsers always send `Origin`; other clients
/// (bots) send none and are let in. A page may connect when:
/// - its origin is listed with `--allow-origin` (or `*` is);
/// - it was served from this machine (localhost, 127.0.0.0/8, [::1]), e.g.
///   by `trunk serve` on another port: DNS rebinding cannot forge those;
/// - it was served by this server: its host is a name the server answers to
///   (`--public-host`, its own addresses, `localhost`) and equals the
///   request's `Host` (`X-Forwarded-Host` only with `--behind-proxy`, since
///   anything but a proxy we trust can set that header).
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Normalised origins (`scheme://host[:port]`) or `*`.
    pub allowed: Vec<String>,
    /// Lower-case host names and addresses (IPv6 in brackets), no port.
    pub public_hosts: Vec<String>,
    pub behind_proxy: bool,
}

impl OriginPolicy {
    /// The policy for a server bound to `bound`: its addresses (or, bound to
    /// all interfaces, loopback and every LAN address) and `localhost`,
    /// plus the configured names.
    pub fn new(config: &ServerConfig, addresses: &[IpAddr]) -> Self {
        let mut public_hosts = vec!["localhost".to_owned()];
        public_hosts.extend(addresses.iter().map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        }));
        public_hosts.extend(config.public_hosts.iter().cloned());
        public_hosts.dedup();
        OriginPolicy {
            allowed: config.allow_origins.clone(),
            public_hosts,
            behind_proxy: config.behind_proxy,
        }
    }

    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.allowed.iter().any(|a| a == "*" || *a == origin) {
            return true;
        }
        let Some(("http" | "https", authority)) = origin.split_once("://") else {
            return false;
        };
        let host = host_of(authority);
        if is_loopback_host(host) {
            return true;
        }
        if !self.public_hosts.iter().any(|h| h == host) {
            return false;
        }
        let forwarded = self.behind_proxy.then(|| headers.get("x-forwarded-host")).flatten();
        let request_host = forwarded.or_else(|| headers.get(header::HOST)).and_then(|v| v.to_str().ok());
        // A proxy chain lists hosts comma-separated, the client's first.
        let request_host = request_host.and_then(|h| h.split(',').next()).map(str::trim);
        request_host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
    }
}

/// The player's address, for the per-address budgets: the socket's peer, or,
/// behind a proxy we trust (`--behind-proxy`), the last address in
/// `X-Forwarded-For`: the one the proxy itself appended (nginx's
/// `$proxy_add_x_forwarded_for`, Caddy's default). Entries before it are
/// whatever the client wrote, so they are never believed.
pub fn client_address(behind_proxy: bool, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !behind_proxy {
        return peer;
    }
    let last = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .rfind(|entry| !entry.is_empty());
    let parsed = last.and_then(|entry| {
        entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
    });
    parsed.unwrap_or(peer)
}

/// The host part of `host[:port]` or `[v6][:port]`.
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        authority.find(']').map_or(authority, |end| &authority[..=end])
    } else {
        authority.split(':').next().unwrap_or(authority)
    }
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("valid host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("valid origin"));
        }
        h
    }

    /// A LAN server at 192.168.1.20 that also answers to game.example.com.
    fn policy(allowed: &[&str], behind_proxy: bool) -> OriginPolicy {
        let config = ServerConfig {
            allow_origins: allowed.iter().map(|s| s.to_string()).collect(),
            public_hosts: vec!["game.example.com".into()],
            behind_proxy,
            ..ServerConfig::default()
        };
        OriginPolicy::new(&config, &["127.0.0.1".parse().expect("ip"), "192.168.1.20".parse().expect("ip")])
    }

    #[test]
    fn pages_this_server_serves_and_listed_origins_are_allowed() {
        let p = policy(&[], false);
        assert!(p.allows(&headers(None, "a:1")), "no Origin (a bot) should pass");
        assert!(p.allows(&headers(Some("http://192.168.1.20:7777"), "192.168.1.20:7777")), "the LAN page");
        assert!(p.allows(&headers(Some("https://game.example.com"), "GAME.example.com")), "a public name");
        let p = policy(&["http://dev:8080"], false);
        assert!(p.allows(&headers(Some("http://dev:8080"), "192.168.1.20:7777")), "a listed origin");
        assert!(policy(&["*"], false).allows(&headers(Some("https://x.y"), "a:1")), "* allows any");
    }

    #[test]
    fn pages_from_this_machine_are_allowed_so_trunk_serve_works() {
        // trunk serve: the page is on :8080, its proxy rewrites Host to the server's.
        let p = policy(&[], false);
        for origin in
            ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "http://127.0.0.2"]
        {
            assert!(p.allows(&headers(Some(origin), "127.0.0.1:7777")), "{origin} should pass");
        }
    }

    #[test]
    fn dns_rebinding_and_forged_forwarded_hosts_are_refused() {
        let p = policy(&[], false);
        // evil.example resolved to the server's LAN address: Host matches Origin.
        assert!(!p.allows(&headers(Some("http://evil.example:7777"), "evil.example:7777")), "rebinding");
        let mut h = headers(Some("http://evil.example"), "192.168.1.20:7777");
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        assert!(!p.allows(&h), "X-Forwarded-Host from a client that is not a trusted proxy");
        let mut h = headers(Some("http://game.example.com"), "192.168.1.20:7777");
        h.insert("x-forwarded-host", HeaderValue::from_static("game.example.com"));
        assert!(!p.allows(&h), "without --behind-proxy the forwarded host is ignored");
        assert!(!p.allows(&headers(Some("http://192.168.1.20:9999"), "192.168.1.20:7777")), "another port");
        assert!(!p.allows(&headers(Some("null"), "a:1")), "an opaque origin");
        assert!(!p.allows(&headers(Some("file://x"), "a:1")), "a file page");
        assert!(!p.allows(&headers(Some("http://localhost.evil.example"), "a:1")), "not a loopback name");
    }

    #[test]
    fn behind_a_proxy_the_forwarded_host_is_the_pages_host() {
        let p = policy(&[], true);
        let mut h = headers(Some("https://game.example.com"), "127.0.0.1:7777");
        assert!(!p.allows(&h), "without the forwarded host it looks foreign");
        h.insert("x-forwarded-host", HeaderValue::from_static("game.example.com, inner.proxy"));
        assert!(p.allows(&h), "the forwarded host is the page's host");
        let mut h = headers(Some("https://evil.example"), "127.0.0.1:7777");
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        assert!(!p.allows(&h), "a name the server does not answer to is still refused");
    }

    #[test]
    fn behind_a_proxy_the_address_it_appended_is_the_players() {
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut h = HeaderMap::new();
        assert_eq!(client_address(true, proxy, &h), proxy, "no header: the socket's peer");
        h.insert("x-forwarded-for", HeaderValue::from_static("10.1.1.1, 203.0.113.7"));
        assert_eq!(client_address(false, proxy, &h), proxy, "ignored without --behind-proxy");
        let player: IpAddr = "203.0.113.7".parse().expect("ip");
        assert_eq!(client_address(true, proxy, &h), player, "the last entry: what the proxy saw");
        h.append("x-forwarded-for", HeaderValue::from_static("[2001:db8::1]:4711"));
        assert_eq!(
            client_address(true, proxy, &h),
            "2001:db8::1".parse::<IpAddr>().expect("ip"),
            "last header"
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_address(true, proxy, &h), proxy, "unparseable: the socket's peer");
    }
}
