//! A stub resolver for TXT records (RFC 1035), enough to check domain
//! ownership: one question to a recursive resolver over UDP (§4.2.1),
//! again over TCP when the answer is truncated (§4.2.2). The resolver is
//! `MUSTER_DNS_SERVER` when set, else the first `nameserver` of
//! `/etc/resolv.conf`. Nothing is cached: a verification asks afresh.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TXT: u16 = 16;
const IN: u16 = 1;
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct Resolver {
    pub server: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("no DNS resolver is configured (set MUSTER_DNS_SERVER)")]
    NoServer,
    #[error("the DNS resolver did not answer in time")]
    Timeout,
    #[error("the DNS resolver could not be reached")]
    Io(#[from] std::io::Error),
    #[error("the DNS resolver answered with an error (rcode {0})")]
    Failed(u8),
    #[error("the DNS answer could not be read")]
    Malformed,
}

impl Resolver {
    /// `MUSTER_DNS_SERVER` (`ip` or `ip:port`) if given, else the system's.
    pub fn from_config(server: Option<&str>) -> Result<Self, DnsError> {
        let text = match server {
            Some(s) => s.to_owned(),
            None => std::fs::read_to_string("/etc/resolv.conf")
                .ok()
                .and_then(|c| {
                    c.lines()
                        .filter_map(|l| l.trim().strip_prefix("nameserver"))
                        .map(|s| s.trim().to_owned())
                        .next()
                })
                .ok_or(DnsError::NoServer)?,
        };
        let server = text
            .parse::<SocketAddr>()
            .or_else(|_| {
                text.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 53))
            })
            .map_err(|_| DnsError::NoServer)?;
        Ok(Self { server })
    }

    /// The TXT strings at `name` (each record's character-strings joined,
    /// as RFC 7208 §3.3 does); empty when the name does not exist.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let id: u16 = rand::random();
        let query = encode_query(id, name).ok_or(DnsError::Malformed)?;
        let sock = tokio::net::UdpSocket::bind(if self.server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })
        .await?;
        sock.connect(self.server).await?;
        sock.send(&query).await?;
        let mut buf = vec![0u8; 4096];
        let n = loop {
            let n = tokio::time::timeout(TIMEOUT, sock.recv(&mut buf))
                .await
                .map_err(|_| DnsError::Timeout)??;
            // A stray datagram with another id is not our answer (§7.3).
            if buf.get(..2) == Some(&id.to_be_bytes()[..]) {
                break n;
            }
        };
        let answer = buf.get(..n).ok_or(DnsError::Malformed)?;
        match parse(answer, id)? {
            Parsed::Truncated => self.txt_tcp(&query, id).await,
            Parsed::Records(r) => Ok(r),
        }
    }

    async fn txt_tcp(&self, query: &[u8], id: u16) -> Result<Vec<String>, DnsError> {
        let work = async {
            let mut s = tokio::net::TcpStream::connect(self.server).await?;
            let len = u16::try_from(query.len()).map_err(|_| DnsError::Malformed)?;
            s.write_all(&len.to_be_bytes()).await?;
            s.write_all(query).await?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await?;
            let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut msg).await?;
            match parse(&msg, id)? {
                Parsed::Records(r) => Ok(r),
                Parsed::Truncated => Err(DnsError::Malformed),
            }
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .map_err(|_| DnsError::Timeout)?
    }
}

/// A query for `name`'s TXT records, recursion desired (§4.1.1).
pub fn encode_query(id: u16, name: &str) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..=63).contains(l))?;
        q.push(len);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&TXT.to_be_bytes());
    q.extend_from_slice(&IN.to_be_bytes());
    Some(q)
}

enum Parsed {
    Truncated,
    Records(Vec<String>),
}

struct Reader<'a> {
    msg: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, DnsError> {
        let b = *self.msg.get(self.at).ok_or(DnsError::Malformed)?;
        self.at += 1;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16, DnsError> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn skip(&mut self, n: usize) -> Result<(), DnsError> {
        self.at = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.msg.len())
            .ok_or(DnsError::Malformed)?;
        Ok(())
    }
    /// Skips a name: labels ending in a zero or in a compression pointer
    /// (§4.1.4), which ends the name where it stands.
    fn skip_name(&mut self) -> Result<(), DnsError> {
        loop {
            let len = self.u8()?;
            match len {
                0 => return Ok(()),
                l if l & 0xC0 == 0xC0 => return self.skip(1),
                l => self.skip(usize::from(l))?,
            }
        }
    }
}

fn parse(msg: &[u8], id: u16) -> Result<Parsed, DnsError> {
    let mut r = Reader { msg, at: 0 };
    if r.u16()? != id {
        return Err(DnsError::Malformed);
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err(DnsError::Malformed); // not a response
    }
    if flags & 0x0200 != 0 {
        return Ok(Parsed::Truncated);
    }
    match (flags & 0x000F) as u8 {
        0 => {}
        3 => return Ok(Parsed::Records(Vec::new())), // NXDOMAIN
        code => return Err(DnsError::Failed(code)),
    }
    let questions = r.u16()?;
    let answers = r.u16()?;
    r.skip(4)?; // authority and additional counts
    for _ in 0..questions {
        r.skip_name()?;
        r.skip(4)?;
    }
    let mut out = Vec::new();
    for _ in 0..answers {
        r.skip_name()?;
        let kind = r.u16()?;
        let class = r.u16()?;
        r.skip(4)?; // TTL
        let len = usize::from(r.u16()?);
        let end =
            r.at.checked_add(len)
                .filter(|e| *e <= msg.len())
                .ok_or(DnsError::Malformed)?;
        if kind == TXT && class == IN {
            let mut text = Vec::new();
            while r.at < end {
                let n = usize::from(r.u8()?);
                let part = msg
                    .get(r.at..r.at + n)
                    .filter(|_| r.at + n <= end)
                    .ok_or(DnsError::Malformed)?;
                text.extend_from_slice(part);
                r.at += n;
            }
            out.push(String::from_utf8_lossy(&text).into_owned());
        }
        r.at = end; // CNAMEs and the like, passed over
    }
    Ok(Parsed::Records(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `encode_query(id, "example.com")` with these TXT records.
    fn response(id: u16, records: &[&[&str]]) -> Vec<u8> {
        let mut m = encode_query(id, "example.com").unwrap();
        m[2] = 0x81; // QR, RD
        m[3] = 0x80; // RA
        m[7] = u8::try_from(records.len()).unwrap();
        for parts in records {
            m.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60]);
            let data: Vec<u8> = parts
                .iter()
                .flat_map(|p| std::iter::once(u8::try_from(p.len()).unwrap()).chain(p.bytes()))
                .collect();
            m.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
            m.extend_from_slice(&data);
        }
        m
    }

    #[test]
    fn reads_txt_records_joining_their_strings() {
        let r = response(7, &[&["muster-verification=", "abc"], &["v=spf1 -all"]]);
        match parse(&r, 7).unwrap() {
            Parsed::Records(t) => assert_eq!(t, ["muster-verification=abc", "v=spf1 -all"]),
            Parsed::Truncated => panic!("not truncated"),
        }
        assert!(parse(&r, 8).is_err(), "another query's answer");
        let mut nx = response(7, &[]);
        nx[3] |= 3;
        assert!(matches!(parse(&nx, 7), Ok(Parsed::Records(v)) if v.is_empty()));
        let mut servfail = response(7, &[]);
        servfail[3] |= 2;
        assert!(matches!(parse(&servfail, 7), Err(DnsError::Failed(2))));
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        let q = encode_query(7, "example.com").unwrap();
        assert!(parse(&q, 7).is_err(), "a query is not a response");
        let r = response(7, &[&["muster-verification=abc"]]);
        for cut in 0..r.len() {
            assert!(parse(&r[..cut], 7).is_err(), "cut at {cut}");
        }
        assert!(encode_query(1, "a..b").is_none());
        assert!(encode_query(1, &"x".repeat(64)).is_none());
    }
}
