//! A small authoritative DNS server on loopback for TXT records (RFC 1035),
//! over UDP and TCP on one port, written here independently of Muster's
//! resolver. Answers over 512 bytes are truncated on UDP (§4.2.1), so the
//! resolver's TCP fallback is exercised too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Zone = Arc<Mutex<HashMap<String, Vec<String>>>>;

pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Zone,
    queries: Arc<AtomicUsize>,
    tcp_queries: Arc<AtomicUsize>,
}

impl DnsServer {
    pub async fn start() -> Self {
        let (udp, tcp) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let zone: Zone = Arc::default();
        let queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let (z, q) = (zone.clone(), queries.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while let Ok((n, from)) = udp.recv_from(&mut buf).await {
                q.fetch_add(1, Ordering::SeqCst);
                if let Some(a) = answer(&buf[..n], &z, true) {
                    let _ = udp.send_to(&a, from).await;
                }
            }
        });
        let (z, q) = (zone.clone(), tcp_queries.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = tcp.accept().await {
                q.fetch_add(1, Ordering::SeqCst);
                let z = z.clone();
                tokio::spawn(async move {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut msg).await.is_err() {
                        return;
                    }
                    if let Some(a) = answer(&msg, &z, false) {
                        let _ = s.write_all(&(a.len() as u16).to_be_bytes()).await;
                        let _ = s.write_all(&a).await;
                    }
                });
            }
        });
        Self {
            addr,
            zone,
            queries,
            tcp_queries,
        }
    }

    /// Publishes (replaces) the TXT records of `name`.
    pub fn set_txt(&self, name: &str, records: &[&str]) {
        self.zone.lock().unwrap().insert(
            name.to_ascii_lowercase(),
            records.iter().map(|r| (*r).to_owned()).collect(),
        );
    }

    /// Questions asked so far: (over UDP, over TCP).
    pub fn queries(&self) -> (usize, usize) {
        (
            self.queries.load(Ordering::SeqCst),
            self.tcp_queries.load(Ordering::SeqCst),
        )
    }
}

/// The question's name (lower-cased) and where the question ends.
fn question(msg: &[u8]) -> Option<(String, usize)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*msg.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(msg.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    Some((labels.join("."), at + 4))
}

fn answer(msg: &[u8], zone: &Zone, udp: bool) -> Option<Vec<u8>> {
    let (name, end) = question(msg)?;
    let records = zone.lock().unwrap().get(&name).cloned();
    let mut out = msg.get(..end)?.to_vec();
    out[2] = 0x80 | (msg[2] & 0x01); // QR, and RD as asked
    out[3] = 0x80; // RA
    out[6] = 0;
    out[7] = 0;
    out[8..12].copy_from_slice(&[0, 0, 0, 0]);
    let Some(records) = records else {
        out[3] |= 3; // NXDOMAIN
        return Some(out);
    };
    out[7] = records.len() as u8;
    for r in &records {
        let mut data = Vec::new();
        for chunk in r.as_bytes().chunks(255) {
            data.push(chunk.len() as u8);
            data.extend_from_slice(chunk);
        }
        out.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    if udp && out.len() > 512 {
        out.truncate(end);
        out[2] |= 0x02; // TC
        out[7] = 0;
    }
    Some(out)
}
