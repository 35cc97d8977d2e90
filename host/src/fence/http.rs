//! The `http` capability of fence agents: one HTTP/1.1 request to a
//! granted endpoint, checked before any connection is made, bounded in
//! size and time.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use tokio::time::Instant;

use super::grant::{self, Host, HttpGrant, Scheme};
use crate::caps::CapError;

/// Bytes of a request body an agent may send.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// Bytes of a response body the host reads; a longer one is `failed`.
pub const MAX_RESPONSE_BODY: usize = 256 * 1024;
/// Headers an agent may add to a request.
pub const MAX_REQUEST_HEADERS: usize = 32;
/// Headers of a response passed back (the rest are dropped).
pub const MAX_RESPONSE_HEADERS: usize = 64;
/// The longest a single request may take, whatever the agent asks.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// Requests one operation may send (a switch is asked a few times per
/// action; a loop hammering it is cut off).
pub const MAX_REQUESTS_PER_OPERATION: u32 = 64;

/// Methods an agent may use.
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"];

/// Headers the host sets itself: the agent cannot choose where a request
/// goes or how it is framed.
const HOST_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "expect",
];

/// What a server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// A device's HTTP capability for one operation.
#[derive(Clone)]
pub struct HttpCap {
    /// The device (for messages: `stonith_host * http-switch` at ha.cf:12).
    pub device: String,
    /// The agents.toml section that grants more (`[fence.NAME]`).
    pub section: String,
    /// Granted endpoints.
    pub grants: Arc<Vec<HttpGrant>>,
    /// The operation's deadline: no call outlives it.
    pub deadline: Instant,
    /// Requests sent (or refused) so far in this operation.
    pub sent: u32,
}

impl HttpCap {
    /// Check a request against the grant; the parsed URL if allowed.
    pub fn check(&self, method: &str, url: &str) -> Result<grant::Url, CapError> {
        let parsed = grant::parse(url)
            .map_err(|e| CapError::Denied(format!("{method} {url}: {e}; nothing was sent")))?;
        if let Some(g) = self.grants.iter().find(|g| g.allows(&parsed)) {
            g.usable()
                .map_err(|e| CapError::Denied(format!("{method} {url}: {e}")))?;
            return Ok(parsed);
        }
        let granted: Vec<&str> = self.grants.iter().map(|g| g.text.as_str()).collect();
        Err(CapError::Denied(format!(
            "{method} {url}: outside the HTTP grant of {} ({}); nothing was sent. To allow it, add the endpoint to {} http = [\"{}://{}/...\"] in agents.toml",
            self.device,
            if granted.is_empty() { "nothing granted".to_string() } else { format!("granted: {}", granted.join(", ")) },
            self.section,
            match parsed.scheme { Scheme::Http => "http", Scheme::Https => "https" },
            parsed.authority(),
        )))
    }

    /// Send one request (see the WIT `http.request`).
    pub async fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Response, CapError> {
        self.sent = self.sent.saturating_add(1);
        if self.sent > MAX_REQUESTS_PER_OPERATION {
            return Err(CapError::Denied(format!(
                "{} made more than {MAX_REQUESTS_PER_OPERATION} HTTP requests in one operation; nothing more is sent",
                self.device
            )));
        }
        let method_up = method.to_ascii_uppercase();
        if !METHODS.contains(&method_up.as_str()) {
            return Err(CapError::InvalidArgs(format!(
                "method {method:?}: one of {}",
                METHODS.join(", ")
            )));
        }
        if body.len() > MAX_REQUEST_BODY {
            return Err(CapError::Denied(format!(
                "the request body is {} bytes; at most {MAX_REQUEST_BODY} are sent; nothing was sent",
                body.len()
            )));
        }
        if headers.len() > MAX_REQUEST_HEADERS {
            return Err(CapError::InvalidArgs(format!(
                "{} request headers; at most {MAX_REQUEST_HEADERS}",
                headers.len()
            )));
        }
        for (k, v) in headers {
            let valid_name = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !valid_name {
                return Err(CapError::InvalidArgs(format!(
                    "header name {k:?} is not a token"
                )));
            }
            if HOST_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                return Err(CapError::Denied(format!(
                    "header {k}: the host sets it (from the granted URL and the body); nothing was sent"
                )));
            }
            if v.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
                return Err(CapError::InvalidArgs(format!(
                    "header {k}: the value holds a control character"
                )));
            }
        }
        let target = self.check(&method_up, url)?;
        let now = Instant::now();
        let left = self.deadline.saturating_duration_since(now);
        let limit = timeout.min(MAX_TIMEOUT).min(left);
        if limit.is_zero() {
            return Err(CapError::Timeout);
        }
        match tokio::time::timeout(limit, send(&method_up, &target, headers, body)).await {
            Ok(r) => r,
            Err(_) => Err(CapError::Timeout),
        }
    }
}

async fn send(
    method: &str,
    url: &grant::Url,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Response, CapError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        CapError::Failed(format!("{}{}: {what}: {e}", url.origin(), url.target))
    };
    let stream = match &url.host {
        Host::Ip(ip) => tokio::net::TcpStream::connect((*ip, url.port)).await,
        Host::Name(n) => tokio::net::TcpStream::connect((n.as_str(), url.port)).await,
    }
    .map_err(|e| failed("cannot connect", &e))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| failed("HTTP handshake", &e))?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(url.target.as_str())
        .header(hyper::header::HOST, url.authority())
        .header(hyper::header::CONNECTION, "close");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| CapError::InvalidArgs(format!("cannot build the request: {e}")))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| failed("request failed", &e));
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            conn.abort();
            return Err(e);
        }
    };
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .take(MAX_RESPONSE_HEADERS)
        .map(|(k, v)| {
            let v = String::from_utf8_lossy(v.as_bytes());
            (k.as_str().to_string(), v.chars().take(4096).collect())
        })
        .collect();
    let body = Limited::new(resp.into_body(), MAX_RESPONSE_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                CapError::Failed(format!(
                    "{}{}: the response body is longer than {MAX_RESPONSE_BODY} bytes",
                    url.origin(),
                    url.target
                ))
            } else {
                failed("reading the response", &e)
            }
        });
    conn.abort();
    Ok(Response {
        status,
        headers,
        body: body?.to_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap() -> HttpCap {
        HttpCap {
            device: "ha.cf:9 stonith_host * acme".into(),
            section: "[fence.acme]".into(),
            grants: Arc::new(vec![HttpGrant::parse("http://127.0.0.1:9/pdu").unwrap()]),
            deadline: Instant::now() + Duration::from_secs(5),
            sent: 0,
        }
    }

    #[tokio::test]
    async fn methods_headers_and_bodies_are_checked_before_anything_is_sent() {
        let mut c = cap();
        let url = "http://127.0.0.1:9/pdu/nodes";
        let t = Duration::from_secs(1);
        let e = c.request("CONNECT", url, &[], vec![], t).await.unwrap_err();
        assert!(matches!(e, CapError::InvalidArgs(_)), "{e}");
        let h = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let e = c
            .request("GET", url, &h("x-a", "b\r\nHost: evil"), vec![], t)
            .await
            .unwrap_err();
        assert!(matches!(e, CapError::InvalidArgs(_)), "{e}");
        let e = c
            .request("GET", url, &h("x a", "b"), vec![], t)
            .await
            .unwrap_err();
        assert!(matches!(e, CapError::InvalidArgs(_)), "{e}");
        for k in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "connection",
            "Expect",
        ] {
            let e = c
                .request("GET", url, &h(k, "x"), vec![], t)
                .await
                .unwrap_err();
            assert!(
                matches!(&e, CapError::Denied(m) if m.contains("the host sets it")),
                "{k}: {e}"
            );
        }
        let e = c
            .request("POST", url, &[], vec![0; MAX_REQUEST_BODY + 1], t)
            .await
            .unwrap_err();
        assert!(matches!(e, CapError::Denied(_)), "{e}");
        let e = c
            .request("GET", "http://127.0.0.1:10/pdu/nodes", &[], vec![], t)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, CapError::Denied(m) if m.contains("granted: http://127.0.0.1:9/pdu")
                && m.contains("[fence.acme] http = [\"http://127.0.0.1:10/...\"]")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_passed_deadline_or_request_budget_sends_nothing() {
        let mut c = cap();
        c.deadline = Instant::now();
        let url = "http://127.0.0.1:9/pdu/nodes";
        let e = c
            .request("GET", url, &[], vec![], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e, CapError::Timeout);
        let mut c = cap();
        c.sent = MAX_REQUESTS_PER_OPERATION;
        let e = c
            .request("GET", url, &[], vec![], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, CapError::Denied(m) if m.contains("more than 64")),
            "{e}"
        );
    }
}
