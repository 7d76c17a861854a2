//! Who may open `/ws`, and who is asking: the [`OriginPolicy`] that keeps
//! other sites' pages out (while `trunk serve` on this machine gets in), and
//! the player's address behind a proxy we trust.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::http::{HeaderMap, header};

use crate::config::NetworkConfig;
use crate::limits::Cidr;

/// Which pages may open `/ws`. Browsers always send `Origin`; other clients
/// (bots) send none and are let in. A page may connect when:
/// - its origin is listed with `--allow-origin` (or `*` is);
/// - it was served from this machine (localhost, 127.0.0.0/8, [::1]), e.g.
///   by `trunk serve` on another port: DNS rebinding cannot forge those;
/// - it was served by this server: its host is a name the server answers to
///   (`--public-host`, its own addresses, `localhost`) and equals the
///   request's `Host` (`X-Forwarded-Host` only from a proxy we trust,
///   since anything else can set that header).
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Normalised origins (`scheme://host[:port]`) or `*`.
    pub allowed: Vec<String>,
    /// Lower-case host names and addresses (IPv6 in brackets), no port.
    pub public_hosts: Vec<String>,
    /// Whose `X-Forwarded-Host` is believed.
    pub proxies: ProxyTrust,
}

impl OriginPolicy {
    /// The policy for a server bound to `bound`: its addresses (or, bound to
    /// all interfaces, loopback and every LAN address) and `localhost`,
    /// plus the configured names.
    pub fn new(config: &NetworkConfig, addresses: &[IpAddr]) -> Self {
        let mut public_hosts = vec!["localhost".to_owned()];
        public_hosts.extend(addresses.iter().map(|ip| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        }));
        public_hosts.extend(config.public_hosts.iter().cloned());
        public_hosts.dedup();
        OriginPolicy { allowed: config.allow_origins.clone(), public_hosts, proxies: ProxyTrust::new(config) }
    }

    /// Whether a request from socket peer `peer` with `headers` may open `/ws`.
    pub fn allows(&self, headers: &HeaderMap, peer: IpAddr) -> bool {
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
        let Ok(url) = url::Url::parse(&origin) else { return false };
        let (Some(host), "http" | "https") = (url.host(), url.scheme()) else { return false };
        let host = match host {
            url::Host::Domain(name) => name.to_owned(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => format!("[{ip}]"),
        };
        if is_loopback_host(&host) {
            return true;
        }
        if !self.public_hosts.contains(&host) {
            return false;
        }
        // What the page's Host header said: the origin after its scheme.
        let authority = origin.split_once("://").map_or("", |(_, authority)| authority);
        let forwarded = self.proxies.trusts(peer).then(|| headers.get("x-forwarded-host")).flatten();
        let request_host = forwarded.or_else(|| headers.get(header::HOST)).and_then(|v| v.to_str().ok());
        // A proxy chain lists hosts comma-separated, the client's first.
        let request_host = request_host.and_then(|h| h.split(',').next()).map(str::trim);
        request_host.is_some_and(|h| h.eq_ignore_ascii_case(authority))
    }
}

/// Whom the forwarded headers are believed from: nobody without
/// `--behind-proxy`, else peers inside a `--trusted-proxy` block.
#[derive(Debug, Clone, Default)]
pub struct ProxyTrust {
    proxies: Vec<Cidr>,
}

impl ProxyTrust {
    pub fn new(config: &NetworkConfig) -> Self {
        ProxyTrust { proxies: if config.behind_proxy { config.trusted_proxies.clone() } else { Vec::new() } }
    }

    /// Whether `peer` is a proxy whose forwarded headers we believe.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.proxies.iter().any(|block| block.contains(peer))
    }

    /// The player's address, for the per-address budgets: the socket's
    /// peer, or, when that peer is a trusted proxy, the last address in
    /// `X-Forwarded-For` that is not itself a trusted proxy (nginx's
    /// `$proxy_add_x_forwarded_for` and Caddy append the address they saw;
    /// entries before it are whatever the client wrote, so the search stops
    /// at the first stranger).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect();
        let mut nearest = peer;
        for entry in entries.iter().rev() {
            let parsed = entry
                .parse::<IpAddr>()
                .ok()
                .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()));
            let Some(address) = parsed else { break };
            nearest = address;
            if !self.trusts(address) {
                break;
            }
        }
        nearest
    }
}

/// The addresses a server bound to `addr` answers on: that one, or, bound to
/// all interfaces, loopback and every interface's address.
pub fn local_addresses(addr: SocketAddr) -> Vec<IpAddr> {
    if !addr.ip().is_unspecified() {
        return vec![addr.ip()];
    }
    let mut addresses = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    let interfaces = if_addrs::get_if_addrs().unwrap_or_default();
    addresses.extend(interfaces.iter().filter(|i| !i.is_loopback()).map(|i| i.ip()));
    addresses
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use axum::http::HeaderValue;

    use super::*;
    use crate::config::ServerConfig;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("valid host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("valid origin"));
        }
        h
    }

    /// A peer on the LAN, not a proxy.
    const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 77));
    /// A proxy on this machine (trusted by default).
    const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A LAN server at 192.168.1.20 that also answers to game.example.com.
    fn policy(allowed: &[&str], behind_proxy: bool) -> OriginPolicy {
        let config = ServerConfig::default().with(|c| {
            c.net.allow_origins = allowed.iter().map(|s| s.to_string()).collect();
            c.net.public_hosts = vec!["game.example.com".into()];
            c.net.behind_proxy = behind_proxy;
        });
        OriginPolicy::new(
            &config.net,
            &["127.0.0.1".parse().expect("ip"), "192.168.1.20".parse().expect("ip")],
        )
    }

    #[test]
    fn pages_this_server_serves_and_listed_origins_are_allowed() {
        let p = policy(&[], false);
        assert!(p.allows(&headers(None, "a:1"), STRANGER), "no Origin (a bot) should pass");
        assert!(
            p.allows(&headers(Some("http://192.168.1.20:7777"), "192.168.1.20:7777"), STRANGER),
            "the LAN page"
        );
        assert!(
            p.allows(&headers(Some("https://game.example.com"), "GAME.example.com"), STRANGER),
            "a public name"
        );
        let p = policy(&["http://dev:8080"], false);
        assert!(
            p.allows(&headers(Some("http://dev:8080"), "192.168.1.20:7777"), STRANGER),
            "a listed origin"
        );
        assert!(policy(&["*"], false).allows(&headers(Some("https://x.y"), "a:1"), STRANGER), "* allows any");
    }

    #[test]
    fn pages_from_this_machine_are_allowed_so_trunk_serve_works() {
        // trunk serve: the page is on :8080, its proxy rewrites Host to the server's.
        let p = policy(&[], false);
        for origin in
            ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080", "http://127.0.0.2"]
        {
            assert!(p.allows(&headers(Some(origin), "127.0.0.1:7777"), STRANGER), "{origin} should pass");
        }
    }

    #[test]
    fn dns_rebinding_and_forged_forwarded_hosts_are_refused() {
        let p = policy(&[], false);
        // evil.example resolved to the server's LAN address: Host matches Origin.
        assert!(
            !p.allows(&headers(Some("http://evil.example:7777"), "evil.example:7777"), STRANGER),
            "rebinding"
        );
        let mut h = headers(Some("http://evil.example"), "192.168.1.20:7777");
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        assert!(!p.allows(&h, STRANGER), "X-Forwarded-Host from a client that is not a trusted proxy");
        let mut h = headers(Some("http://game.example.com"), "192.168.1.20:7777");
        h.insert("x-forwarded-host", HeaderValue::from_static("game.example.com"));
        assert!(!p.allows(&h, STRANGER), "without --behind-proxy the forwarded host is ignored");
        assert!(
            !p.allows(&headers(Some("http://192.168.1.20:9999"), "192.168.1.20:7777"), STRANGER),
            "another port"
        );
        assert!(!p.allows(&headers(Some("null"), "a:1"), STRANGER), "an opaque origin");
        assert!(!p.allows(&headers(Some("file://x"), "a:1"), STRANGER), "a file page");
        assert!(
            !p.allows(&headers(Some("http://localhost.evil.example"), "a:1"), STRANGER),
            "not a loopback name"
        );
    }

    #[test]
    fn behind_a_proxy_the_forwarded_host_is_the_pages_host_when_the_proxy_is_trusted() {
        let p = policy(&[], true);
        let mut h = headers(Some("https://game.example.com"), "127.0.0.1:7777");
        assert!(!p.allows(&h, PROXY), "without the forwarded host it looks foreign");
        h.insert("x-forwarded-host", HeaderValue::from_static("game.example.com, inner.proxy"));
        assert!(p.allows(&h, PROXY), "the forwarded host is the page's host");
        assert!(!p.allows(&h, STRANGER), "but not from a peer that is no trusted proxy");
        let mut h = headers(Some("https://evil.example"), "127.0.0.1:7777");
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        assert!(!p.allows(&h, PROXY), "a name the server does not answer to is still refused");
    }

    fn trust(behind_proxy: bool, proxies: &[&str]) -> ProxyTrust {
        let trusted_proxies = proxies.iter().map(|p| p.parse().expect("a block")).collect();
        let config = ServerConfig::default().with(|c| {
            c.net.behind_proxy = behind_proxy;
            c.net.trusted_proxies = trusted_proxies;
        });
        ProxyTrust::new(&config.net)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn behind_a_trusted_proxy_the_address_it_appended_is_the_players() {
        let local = trust(true, &["127.0.0.0/8", "::1/128"]);
        let mut h = HeaderMap::new();
        assert_eq!(local.client_address(PROXY, &h), PROXY, "no header: the socket's peer");
        h.insert("x-forwarded-for", HeaderValue::from_static("10.1.1.1, 203.0.113.7"));
        assert_eq!(
            trust(false, &["127.0.0.0/8"]).client_address(PROXY, &h),
            PROXY,
            "off without --behind-proxy"
        );
        assert_eq!(local.client_address(PROXY, &h), ip("203.0.113.7"), "the last entry: what the proxy saw");
        assert_eq!(local.client_address(ip("::ffff:127.0.0.1"), &h), ip("203.0.113.7"), "IPv4-mapped");
        h.append("x-forwarded-for", HeaderValue::from_static("[2001:db8::1]:4711"));
        assert_eq!(local.client_address(PROXY, &h), ip("2001:db8::1"), "the last header's");
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(local.client_address(PROXY, &h), PROXY, "unparseable: the socket's peer");
    }

    #[test]
    fn a_peer_that_is_no_trusted_proxy_cannot_choose_its_address() {
        let local = trust(true, &["127.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.9"));
        let direct = ip("203.0.113.50");
        assert_eq!(local.client_address(direct, &h), direct, "a direct client's header is ignored");
        let lan = trust(true, &["10.0.0.0/8"]);
        assert_eq!(lan.client_address(ip("10.9.8.7"), &h), ip("198.51.100.9"), "a proxy in the block");
        assert_eq!(lan.client_address(PROXY, &h), PROXY, "loopback is not trusted unless listed");
    }

    #[test]
    fn through_a_chain_of_trusted_proxies_the_first_stranger_is_the_player() {
        let chain = trust(true, &["10.0.0.0/8", "127.0.0.1"]);
        let mut h = HeaderMap::new();
        // The client forged 1.2.3.4; the edge proxy saw 203.0.113.7; an inner one saw the edge.
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4, 203.0.113.7, 10.0.0.2"));
        assert_eq!(chain.client_address(PROXY, &h), ip("203.0.113.7"));
    }
}
