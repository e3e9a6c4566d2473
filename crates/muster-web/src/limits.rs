//! Per-address rate limit on the public endpoints that create something or
//! send an email without any credential: sign-up, a new verification code,
//! a password reset, and the start of a Google or SSO sign-in. It keeps one
//! address from mailing strangers or filling tables.
//!
//! Failed sign-ins have their own counters, in the database and shared by
//! every instance (`signin::throttle`); these are in memory, per instance —
//! a limit on abuse, not on guessing, so several instances may each allow it.

use crate::AppState;
use crate::error::page_message;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use muster_app::AppError;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Requests an address may make at once, and how many it earns back a minute.
const BURST: f64 = 10.0;
const PER_MINUTE: f64 = 10.0;
/// Addresses remembered at most; past this, the ones full again are forgotten.
const MAX_ADDRESSES: usize = 100_000;

/// A token bucket per client address.
#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl Limiter {
    /// `None` when `ip` may go on; else the seconds until it may.
    fn take(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let Ok(mut b) = self.buckets.lock() else {
            return None;
        };
        if b.len() >= MAX_ADDRESSES {
            b.retain(|_, (tokens, at)| refill(*tokens, *at, now) < BURST);
        }
        let (tokens, at) = b.get(&ip).copied().unwrap_or((BURST, now));
        let tokens = refill(tokens, at, now);
        if tokens >= 1.0 {
            b.insert(ip, (tokens - 1.0, now));
            None
        } else {
            b.insert(ip, (tokens, now));
            Some(((1.0 - tokens) * 60.0 / PER_MINUTE).ceil().max(1.0) as u64)
        }
    }
}

fn refill(tokens: f64, at: Instant, now: Instant) -> f64 {
    let earned = now.saturating_duration_since(at).as_secs_f64() * PER_MINUTE / 60.0;
    (tokens + earned).min(BURST)
}

/// Whether a request is one the limit applies to.
fn limited(method: &Method, path: &str) -> bool {
    let posts = [
        "/api/v1/auth/signup",
        "/api/v1/auth/resend-verification",
        "/api/v1/auth/password-reset",
        "/api/v1/auth/federated/start",
        "/api/v1/auth/passkey/start",
        "/signup",
        "/signup/business",
        "/verify-email/resend",
        "/forgot-password",
    ];
    match *method {
        Method::POST => posts.contains(&path),
        Method::GET => {
            path == "/auth/google"
                || path
                    .strip_prefix("/o/")
                    .is_some_and(|r| r.ends_with("/sso") && r.matches('/').count() == 1)
        }
        _ => false,
    }
}

pub async fn middleware(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<crate::client::ClientIp>()
        .map(|c| c.0);
    if let Some(ip) = ip
        && limited(req.method(), req.uri().path())
        && let Some(secs) = s.limiter.take(ip, Instant::now())
    {
        metrics::counter!("muster_rate_limited_total").increment(1);
        if req.uri().path().starts_with("/api/") {
            return crate::ApiError::from(AppError::RateLimited(secs)).into_response();
        }
        let (status, text) = page_message(AppError::RateLimited(secs));
        return crate::pages::message(status, "Please wait", &text);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_one_every_six_seconds_per_address() {
        let l = Limiter::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(l.take(a, t0), None);
        }
        assert_eq!(l.take(a, t0), Some(6), "the eleventh waits");
        assert_eq!(l.take(b, t0), None, "another address is not held back");
        assert_eq!(l.take(a, t0 + Duration::from_secs(3)), Some(3));
        assert_eq!(
            l.take(a, t0 + Duration::from_secs(7)),
            None,
            "a token earned back"
        );
        assert!(l.take(a, t0 + Duration::from_secs(7)).is_some());
    }

    #[test]
    fn only_the_public_writes_are_limited() {
        assert!(limited(&Method::POST, "/api/v1/auth/signup"));
        assert!(limited(&Method::GET, "/o/acme/sso"));
        assert!(limited(&Method::GET, "/auth/google"));
        assert!(!limited(&Method::GET, "/o/acme/login"));
        assert!(!limited(&Method::GET, "/o/a/b/sso"));
        assert!(!limited(&Method::POST, "/api/v1/auth/login"));
        assert!(!limited(&Method::GET, "/api/v1/auth/signup"));
    }
}
