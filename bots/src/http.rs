//! The one HTTP client of arena's native side (`--verify-replay`'s
//! download, and the end-to-end tests): reqwest over rustls with ring, the
//! TLS the rest of arena uses, trusting the public roots or a given
//! certificate ([`crate::tls`]). Bodies are read to a cap, and every
//! request has a deadline.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// An HTTP answer read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why there is no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
}

/// A client: no redirects followed, no proxy from the environment, no
/// body decoded on the way (a test sees what the server sent).
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    /// Bodies longer than this are refused.
    max_body: usize,
}

impl Http {
    /// Trusts `tls` for `https:` (the public roots when `None`); gives up
    /// after `deadline`; reads bodies up to `max_body` bytes.
    pub fn new(
        tls: Option<Arc<rustls::ClientConfig>>,
        deadline: Duration,
        max_body: usize,
    ) -> Result<Self, HttpError> {
        Self::from_address(None, tls, deadline, max_body)
    }

    /// [`Http::new`], connecting from `source` (a loopback address of its
    /// own, so one machine can be many peers).
    pub fn from_address(
        source: Option<IpAddr>,
        tls: Option<Arc<rustls::ClientConfig>>,
        deadline: Duration,
        max_body: usize,
    ) -> Result<Self, HttpError> {
        let tls = tls.unwrap_or_else(crate::tls::public_roots);
        let client = reqwest::Client::builder()
            .local_address(source)
            .use_preconfigured_tls((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(deadline)
            .build()?;
        Ok(Http { client, max_body })
    }

    /// `method url` with `headers` and `body`, the answer read whole.
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, HttpError> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut request = self.client.request(method, url).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.max_body {
                return Err(HttpError::TooLarge(self.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, headers, body })
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Response, HttpError> {
        self.request("GET", url, &[], Vec::new()).await
    }
}
