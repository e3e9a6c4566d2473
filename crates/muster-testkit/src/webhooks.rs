//! A webhook receiver on loopback and an independent check of Standard
//! Webhooks signatures: HMAC-SHA256 written here from RFC 2104 over the
//! hash alone, so a mistake in the server's signing (aws-lc) cannot be
//! mirrored by the check.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

/// One request the receiver accepted.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
}

impl Message {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An HTTP server on loopback that records what it is sent and answers
/// with a chosen status; it can be stopped (connections refused) and
/// started again on the same port.
pub struct Receiver {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Message>>>,
    /// The status every request is answered with (204 at first).
    pub status: Arc<AtomicU16>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut r = Self {
            addr: listener.local_addr().unwrap(),
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(204)),
            task: None,
        };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (got, status) = (self.got.clone(), self.status.clone());
        let handler = move |headers: HeaderMap, body: Bytes| {
            let (got, status) = (got.clone(), status.clone());
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                got.lock().unwrap().push(Message {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp"),
                    signature: h("webhook-signature"),
                    body: body.to_vec(),
                });
                StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap()
            }
        };
        let router = axum::Router::new().route("/hook", axum::routing::post(handler));
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        }));
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Down: the port refuses connections.
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    pub async fn restart(&mut self) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    pub fn messages(&self) -> Vec<Message> {
        self.got.lock().unwrap().clone()
    }
}

/// HMAC-SHA256 (RFC 2104 §2) from the hash alone.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// Standard Webhooks verification: one of the space-separated `v1,` entries
/// is the HMAC of `id.timestamp.body` under the decoded `whsec_` secret, and
/// the timestamp is within five minutes of `now`.
pub fn verifies(m: &Message, secret: &str, now: i64) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut signed = format!("{}.{}.", m.id, m.timestamp).into_bytes();
    signed.extend_from_slice(&m.body);
    let expected = STANDARD.encode(hmac_sha256(&key, &signed));
    let fresh = m
        .timestamp
        .parse::<i64>()
        .is_ok_and(|ts| (ts - now).abs() <= 300);
    fresh
        && m.signature
            .split(' ')
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}
