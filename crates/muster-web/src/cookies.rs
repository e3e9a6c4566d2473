//! The session cookie (DESIGN.md §1, Sessions). Over https it is
//! `__Host-muster_session` — Secure, host-only, Path=/ — so that no other
//! subdomain or plain-http page can set or read it; over plain http (local
//! development) the `__Host-` prefix is not allowed, so it is `muster_session`.

use axum::http::{HeaderValue, header, request::Parts};

const SECURE_NAME: &str = "__Host-muster_session";
const PLAIN_NAME: &str = "muster_session";

fn name(secure: bool) -> &'static str {
    if secure { SECURE_NAME } else { PLAIN_NAME }
}

/// Whether links and cookies are for https (`MUSTER_PUBLIC_URL`).
pub fn secure(public_url: &str) -> bool {
    public_url.starts_with("https://")
}

/// The `Set-Cookie` value that opens a session.
pub fn set(public_url: &str, token: &str, max_age_s: i64) -> Option<HeaderValue> {
    let secure = secure(public_url);
    let flags = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{flags}",
        name(secure)
    ))
    .ok()
}

/// `res` with the cookie of a session that just started (the one way both
/// the JSON API and the pages hand a session to a browser).
pub fn with_session(
    public_url: &str,
    signed: &muster_app::signin::SignedIn,
    mut res: axum::response::Response,
) -> axum::response::Response {
    if let Some(c) = set(public_url, &signed.session_token, signed.cookie.max_age_s) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `res` with the session cookie when the first factor was enough; an MFA
/// challenge is answered in the body only, with no cookie yet.
pub fn with_entry(
    public_url: &str,
    entry: &muster_app::signin::Entry,
    res: axum::response::Response,
) -> axum::response::Response {
    match entry {
        muster_app::signin::Entry::SignedIn(s) => with_session(public_url, s, res),
        muster_app::signin::Entry::Mfa(_) => res,
    }
}

/// The `Set-Cookie` value that removes it.
pub fn clear(public_url: &str) -> HeaderValue {
    let secure = secure(public_url);
    let flags = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{flags}",
        name(secure)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session token a request's cookies carry, under either name.
pub fn session(parts: &Parts) -> Option<String> {
    session_in(&parts.headers)
}

pub fn session_in(headers: &axum::http::HeaderMap) -> Option<String> {
    named(headers, SECURE_NAME, PLAIN_NAME)
}

/// The value of the cookie called `secure` (https) or `plain` (http).
fn named(headers: &axum::http::HeaderMap, secure: &str, plain: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == secure || *k == plain)
        .map(|(_, v)| v.trim().to_owned())
}

/// The CSRF cookie of the double-submit check on pages: a random value the
/// page's forms repeat in a hidden field. Another site can make a browser
/// send the cookie but cannot read it to fill in the field.
pub fn csrf(headers: &axum::http::HeaderMap) -> Option<String> {
    named(headers, "__Host-muster_csrf", "muster_csrf").filter(|v| v.len() == 43)
}

pub fn set_csrf(public_url: &str, value: &str) -> Option<HeaderValue> {
    set_named(public_url, ("__Host-muster_csrf", "muster_csrf"), value, "")
}

/// `Set-Cookie` for `value` under the `__Host-` name over https (Secure),
/// or the plain name over http; always HttpOnly, SameSite=Lax, Path=/.
fn set_named(
    public_url: &str,
    (secure_name, plain_name): (&str, &str),
    value: &str,
    extra: &str,
) -> Option<HeaderValue> {
    let (name, flags) = if secure(public_url) {
        (secure_name, "; Secure")
    } else {
        (plain_name, "")
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax{extra}{flags}"
    ))
    .ok()
}

/// The cookie that binds a federated sign-in to the browser that started it
/// (`muster_app::federation`). SameSite=Lax: the provider's redirect back is
/// a top-level GET from another site, which Lax lets through.
const FLOW_SECURE: &str = "__Host-muster_oidc";
const FLOW_PLAIN: &str = "muster_oidc";

pub fn set_flow(public_url: &str, binding: &str) -> Option<HeaderValue> {
    set_named(
        public_url,
        (FLOW_SECURE, FLOW_PLAIN),
        binding,
        "; Max-Age=600",
    )
}

pub fn flow(headers: &axum::http::HeaderMap) -> Option<String> {
    named(headers, FLOW_SECURE, FLOW_PLAIN)
}

/// The cookie that carries a sign-in's MFA challenge between the password
/// and the second factor (`muster_app::mfa::challenge`); ten minutes.
const MFA_SECURE: &str = "__Host-muster_mfa";
const MFA_PLAIN: &str = "muster_mfa";

pub fn set_mfa(public_url: &str, challenge: &str) -> Option<HeaderValue> {
    set_named(
        public_url,
        (MFA_SECURE, MFA_PLAIN),
        challenge,
        "; Max-Age=600",
    )
}

pub fn clear_mfa(public_url: &str) -> Option<HeaderValue> {
    set_named(public_url, (MFA_SECURE, MFA_PLAIN), "", "; Max-Age=0")
}

pub fn mfa(headers: &axum::http::HeaderMap) -> Option<String> {
    named(headers, MFA_SECURE, MFA_PLAIN).filter(|v| !v.is_empty())
}

/// The long-lived device cookie (`muster_app::risk`): how a browser is
/// recognized at its next sign-in. 400 days, the longest browsers keep one.
const DEVICE_SECURE: &str = "__Host-muster_device";
const DEVICE_PLAIN: &str = "muster_device";

pub fn set_device(public_url: &str, token: &str) -> Option<HeaderValue> {
    set_named(
        public_url,
        (DEVICE_SECURE, DEVICE_PLAIN),
        token,
        "; Max-Age=34560000",
    )
}

pub fn device(headers: &axum::http::HeaderMap) -> Option<String> {
    named(headers, DEVICE_SECURE, DEVICE_PLAIN).filter(|v| !v.is_empty() && v.len() <= 128)
}
