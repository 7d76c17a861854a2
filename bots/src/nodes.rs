//! The nodes of the cluster the swarm plays on, as `GET /api/cluster` on
//! its `--url` lists them, re-read every few seconds while the swarm runs:
//! a bot whose node died tries the others instead of waiting for that one
//! (any live node sends it on to wherever its room runs now).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use arena_client_core::session::websocket_url;

use crate::http::Http;

/// How often the list is read again.
const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// The largest `/api/cluster` answer read.
const MAX_CLUSTER_BYTES: usize = 256 * 1024;

/// The cluster's nodes' WebSocket URLs, as last read.
#[derive(Default)]
pub struct KnownNodes {
    urls: RwLock<Vec<String>>,
}

impl KnownNodes {
    /// Starts reading `/api/cluster` from the node `ws_url` names, every
    /// [`REFRESH_EVERY`], until the returned task is aborted.
    pub fn learn(
        ws_url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let nodes = Arc::new(KnownNodes::default());
        let Some(endpoint) = cluster_endpoint(ws_url) else {
            return (nodes, tokio::spawn(async {}));
        };
        let reader = nodes.clone();
        let task = tokio::spawn(async move {
            let Ok(http) = Http::new(tls, Duration::from_secs(2), MAX_CLUSTER_BYTES) else { return };
            loop {
                if let Ok(response) = http.get(&endpoint).await
                    && response.status == 200
                    && let Some(urls) = node_urls(&response.body)
                {
                    *reader.urls.write().unwrap_or_else(std::sync::PoisonError::into_inner) = urls;
                }
                tokio::time::sleep(REFRESH_EVERY).await;
            }
        });
        (nodes, task)
    }

    /// Where to try, in turn, after `failed` did not answer: `start` (the
    /// swarm's `--url`), then every other known node; never empty.
    pub fn after(&self, failed: &str, start: &str) -> Vec<String> {
        let known = self.urls.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let mut order: Vec<String> = Vec::with_capacity(known.len() + 1);
        for url in std::iter::once(start.to_owned()).chain(known) {
            if url != failed && !order.contains(&url) {
                order.push(url);
            }
        }
        if order.is_empty() {
            order.push(start.to_owned());
        }
        order
    }
}

/// `http(s)://host:port/api/cluster` for `ws(s)://host:port/...`.
fn cluster_endpoint(ws_url: &str) -> Option<String> {
    let mut url = url::Url::parse(ws_url).ok()?;
    let scheme = match url.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return None,
    };
    url.set_scheme(scheme).ok()?;
    url.set_path("/api/cluster");
    url.set_query(None);
    Some(url.to_string())
}

/// The WebSocket URL of every node in an `/api/cluster` answer.
fn node_urls(body: &[u8]) -> Option<Vec<String>> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    let nodes = answer.get("nodes")?.as_array()?;
    Some(nodes.iter().filter_map(|node| websocket_url(node.get("url")?.as_str()?)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_is_asked_where_the_socket_is_and_its_nodes_become_socket_urls() {
        assert_eq!(
            cluster_endpoint("ws://127.0.0.1:7777/ws").as_deref(),
            Some("http://127.0.0.1:7777/api/cluster")
        );
        assert_eq!(
            cluster_endpoint("wss://eu1.example.com/ws?x=1").as_deref(),
            Some("https://eu1.example.com/api/cluster")
        );
        assert_eq!(cluster_endpoint("http://nope"), None);
        let body = br#"{"nodes":[{"node":"a","url":"http://127.0.0.1:1"},{"node":"b","url":"https://b.example.com"}]}"#;
        assert_eq!(
            node_urls(body),
            Some(vec!["ws://127.0.0.1:1/ws".to_owned(), "wss://b.example.com/ws".to_owned()])
        );
        assert_eq!(node_urls(b"not json"), None);
    }

    #[test]
    fn after_a_failure_the_start_then_every_other_node_is_tried() {
        let nodes = KnownNodes::default();
        assert_eq!(
            nodes.after("ws://a/ws", "ws://a/ws"),
            ["ws://a/ws"],
            "nothing else known: the start again"
        );
        *nodes.urls.write().expect("not poisoned") =
            vec!["ws://a/ws".into(), "ws://b/ws".into(), "ws://c/ws".into()];
        assert_eq!(
            nodes.after("ws://a/ws", "ws://a/ws"),
            ["ws://b/ws", "ws://c/ws"],
            "the dead start is skipped"
        );
        assert_eq!(nodes.after("ws://b/ws", "ws://a/ws"), ["ws://a/ws", "ws://c/ws"]);
    }
}
