//! The client's address. Behind a reverse proxy the peer is the proxy, so the
//! address is taken from `X-Forwarded-For` — but only when the peer is one of
//! `MUSTER_TRUSTED_PROXIES`; anyone else could write any address there.

use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// Where a request comes from, as far as Muster can tell; every per-address
/// rule (throttling, rate limits, sessions' address, the audit log) reads this.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// The client of a request from `peer`: when `peer` is a trusted proxy, the
/// right-most address of `X-Forwarded-For` that is not itself a trusted
/// proxy (each proxy appends the address it saw; the left-most part is
/// whatever the client chose to send).
pub fn resolve(peer: IpAddr, forwarded: &[&str], trusted: &[IpNet]) -> IpAddr {
    // A server listening on `[::]` sees IPv4 peers as `::ffff:a.b.c.d`.
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for ip in forwarded
        .iter()
        .flat_map(|h| h.split(','))
        .rev()
        .map(str::trim)
    {
        match ip.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // A value that is not an address ends the chain we can believe.
            Err(_) => return client,
        }
    }
    client
}

/// The browser's device cookie, or the one this response gives it.
#[derive(Debug, Clone)]
pub struct DeviceCookie(pub String);

/// The pages where a browser's sign-in can finish: a browser without a
/// device cookie gets one there, so that its next sign-in is from a known
/// device. The JSON API reads a device cookie a client sends but mints none:
/// scripts that keep no cookies would otherwise be a "new device", with an
/// email, at every sign-in.
const SIGN_IN_PAGES: [(&str, &str); 5] = [
    ("POST", "/login"),
    ("POST", "/mfa"),
    ("GET", "/auth/oidc/callback"),
    ("POST", "/auth/link"),
    ("POST", "/invitations/accept"),
];

pub async fn middleware(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let mut minted = None;
    match crate::cookies::device(req.headers()) {
        Some(d) => {
            req.extensions_mut().insert(DeviceCookie(d));
        }
        None if SIGN_IN_PAGES.contains(&(req.method().as_str(), req.uri().path())) => {
            let t = muster_core::tokens::format(
                muster_app::risk::DEVICE_PREFIX,
                uuid::Uuid::now_v7(),
                &muster_app::secrets::random_secret(),
            );
            req.extensions_mut().insert(DeviceCookie(t.clone()));
            minted = Some(t);
        }
        None => {}
    }
    let mut res = with_client_ip(&s, req, next).await;
    if let Some(t) = minted
        && let Some(c) = crate::cookies::set_device(&s.public_url, &t)
    {
        res.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    res
}

async fn with_client_ip(s: &AppState, mut req: Request, next: Next) -> Response {
    if let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let ip = resolve(peer, &forwarded, &s.trusted_proxies);
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // A client that is not a proxy cannot choose its address.
        assert_eq!(
            resolve(ip("198.51.100.1"), &["1.2.3.4"], &trusted),
            ip("198.51.100.1")
        );
        // Behind two proxies: the right-most untrusted address.
        assert_eq!(
            resolve(
                ip("10.0.0.1"),
                &["6.6.6.6, 203.0.113.9, 10.0.0.2"],
                &trusted
            ),
            ip("203.0.113.9")
        );
        // Several headers are one list, in order.
        assert_eq!(
            resolve(ip("10.0.0.1"), &["6.6.6.6", "203.0.113.9"], &trusted),
            ip("203.0.113.9")
        );
        // Garbage ends what can be believed; no header leaves the proxy.
        assert_eq!(
            resolve(ip("10.0.0.1"), &["junk, 10.0.0.3"], &trusted),
            ip("10.0.0.3")
        );
        assert_eq!(resolve(ip("10.0.0.1"), &[], &trusted), ip("10.0.0.1"));
        assert_eq!(resolve(ip("10.0.0.1"), &["1.2.3.4"], &[]), ip("10.0.0.1"));
        // An IPv4 proxy seen through an IPv6 socket is still the proxy.
        assert_eq!(
            resolve(ip("::ffff:10.0.0.1"), &["203.0.113.9"], &trusted),
            ip("203.0.113.9")
        );
    }
}
