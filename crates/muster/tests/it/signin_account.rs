//! Issue 4, continued: a signed-in person's sessions, password reset and
//! change, email change, the sign-in policies, and no enumeration by timing.

use super::signin::{PW, code_for, login, signed_up};
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::smtp::SmtpSink;
use serde_json::Value;

async fn sessions_are_listed_revoked_and_expire(t: TestApp) {
    let sink = SmtpSink::start().await;
    let email = "eve@example.com";
    let first = signed_up(&t, &sink, email).await;
    let (_, b) = login(&t, email, PW).await;
    let second = b["session_token"].as_str().unwrap().to_owned();
    let (s, list) = t
        .call("GET", "/api/v1/me/sessions", Some(&first), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let other = list.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/me/sessions/{other}"),
            Some(&first),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.call("GET", "/api/v1/me", Some(&second), None).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "revoked on the very next request"
    );
    // Someone else's session is not found, and stays alive.
    let other_user = signed_up(&t, &sink, "fay@example.com").await;
    let (_, theirs) = t
        .call("GET", "/api/v1/me/sessions", Some(&other_user), None)
        .await;
    let their_id = theirs[0]["id"].as_str().unwrap().to_owned();
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/me/sessions/{their_id}"),
            Some(&first),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t.call("GET", "/api/v1/me", Some(&other_user), None).await;
    assert_eq!(s, StatusCode::OK);
    // Idle for longer than the policy's two hours: gone.
    t.clock.advance(time::Duration::minutes(121));
    let (s, _) = t.call("GET", "/api/v1/me", Some(&first), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Forged and malformed session tokens.
    let forged = crate::forge(&other_user);
    for bad in [forged.as_str(), "msn_x", "msn_"] {
        let (s, _) = t.call("GET", "/api/v1/me", Some(bad), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bad}");
    }
    // A tightened session policy applies to sessions already open.
    let (_, b) = login(&t, email, PW).await;
    let fresh = b["session_token"].as_str().unwrap().to_owned();
    t.clock.advance(time::Duration::minutes(61));
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&fresh), None).await.0,
        StatusCode::OK
    );
    use muster_testkit::muster_app::{Caller, signin};
    let short = signin::SessionPolicy {
        idle_minutes: 120,
        absolute_hours: 1,
    };
    signin::set_policy(
        &t.app,
        &Caller::operator("test"),
        "personal",
        "session",
        short,
    )
    .await
    .unwrap();
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&fresh), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn password_reset_and_change_end_other_sessions(t: TestApp) {
    let sink = SmtpSink::start().await;
    let email = "gus@example.com";
    let old = signed_up(&t, &sink, email).await;
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/password-reset",
            None,
            Some(json!({"email": email})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // The reset is queued after the answer; wait for it to land.
    for _ in 0..100 {
        if t.scalar("SELECT COUNT(*) FROM email_tokens WHERE purpose = 'reset_password'")
            .await
            > 0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    t.deliver_mail(&sink).await;
    let (code, _) = code_for(&sink, email);
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(json!({"email": email, "code": code, "password": "short"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "policy first: {b}");
    let new_pw = "N3w!password";
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(json!({"email": email, "code": code, "password": new_pw})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (s, _) = t.call("GET", "/api/v1/me", Some(&old), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the reset ended every session");
    assert_eq!(login(&t, email, PW).await.0, StatusCode::UNAUTHORIZED);
    let (s, b) = login(&t, email, new_pw).await;
    assert_eq!(s, StatusCode::OK);
    let a = b["session_token"].as_str().unwrap().to_owned();
    let (_, b) = login(&t, email, new_pw).await;
    let other = b["session_token"].as_str().unwrap().to_owned();

    let (s, b) = t
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&a),
            Some(json!({"current_password": "Wrong!pass1", "new_password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&a),
            Some(json!({"current_password": new_pw, "new_password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&a), None).await.0,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&other), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(&t, email, PW).await.0, StatusCode::OK);
}

async fn an_email_change_waits_for_the_new_address(t: TestApp) {
    let sink = SmtpSink::start().await;
    let s1 = signed_up(&t, &sink, "hal@example.com").await;
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/me/email",
            Some(&s1),
            Some(json!({"new_email": "hal@new.example", "password": "Wrong!pass1"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the password is required"
    );
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/me/email",
            Some(&s1),
            Some(json!({"new_email": "hal@new.example", "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (_, me) = t.call("GET", "/api/v1/me", Some(&s1), None).await;
    assert_eq!(
        me["email"], "hal@example.com",
        "nothing changes before verification"
    );
    t.deliver_mail(&sink).await;
    let (code, _) = code_for(&sink, "hal@new.example");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/me/email/confirm",
            Some(&s1),
            Some(json!({"code": wrong})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a wrong code changes nothing"
    );
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/me/email/confirm",
            Some(&s1),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (_, me) = t.call("GET", "/api/v1/me", Some(&s1), None).await;
    assert_eq!(me["email"], "hal@new.example");
    assert_eq!(login(&t, "hal@new.example", PW).await.0, StatusCode::OK);
}

async fn sign_in_policies_are_checked(t: TestApp) {
    let owner = t.org_with_owner("pol").await;
    let (_, admin) = t
        .user_with_token("pol", "adm@pol.example", &["admin"])
        .await;
    // Whoever sets the defaults must be able to grant them.
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/orgs/pol/signup-policy",
            Some(&admin),
            Some(json!({"open": true, "default_roles": ["owner"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/pol/signup-policy",
            Some(&owner),
            Some(json!({"default_roles": ["nope"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    for (path, body) in [
        ("session-policy", json!({"idle_minutes": 1})),
        ("session-policy", json!({"absolute_hours": 0})),
        ("lockout-policy", json!({"delay_after": 5, "lock_after": 3})),
        ("lockout-policy", json!({"cooldown_minutes": 0})),
        ("lockout-policy", json!({"unknown": 1})),
    ] {
        let (s, b) = t
            .call(
                "PUT",
                &format!("/api/v1/orgs/pol/{path}"),
                Some(&owner),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {b}");
    }
    let (_, got) = t
        .call("GET", "/api/v1/orgs/pol/lockout-policy", Some(&owner), None)
        .await;
    assert_eq!(
        got,
        json!({"delay_after": 3, "lock_after": 10, "cooldown_minutes": 15}),
        "nothing changed"
    );
    // A length-only policy refuses breached passwords.
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/pol/signup-policy",
            Some(&owner),
            Some(json!({"open": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .call("PUT", "/api/v1/orgs/pol/password-policy", Some(&owner), Some(json!({"rule": "length", "min_length": 8, "breached_passwords": ["acme-spring-2026"]})))
        .await;
    assert_eq!(s, StatusCode::OK);
    for pw in ["Password123", "ACME-SPRING-2026"] {
        let (s, b) = t
            .call(
                "POST",
                "/api/v1/auth/signup",
                None,
                Some(json!({"email": "new@pol.example", "password": pw, "org": "pol"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{pw}");
        assert!(b["detail"].as_str().unwrap().contains("breaches"), "{b}");
    }
    let (s, _) = t
        .call("POST", "/api/v1/auth/signup", None, Some(json!({"email": "new@pol.example", "password": "correct horse battery", "org": "pol"})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

/// Milliseconds `req` takes, in process (no network in the way).
async fn timed(t: &TestApp, path: &str, body: Value) -> f64 {
    let start = std::time::Instant::now();
    let (s, _) = t.call("POST", path, None, Some(body)).await;
    assert!(s.is_client_error() || s.is_success(), "{path}: {s}");
    start.elapsed().as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// No enumeration by timing (issue 4): sign-in, sign-up and reset take as
/// long for a known address as for an unknown one. Each pair is timed
/// interleaved, so both see the same noise, and medians are compared with a
/// wide margin: what this catches is a path that skips the password hash
/// (ten times faster or more), not the machine's jitter.
async fn known_and_unknown_addresses_take_as_long(t: TestApp) {
    use muster_testkit::muster_app::{Caller, signin};
    let relaxed = signin::LockoutPolicy {
        delay_after: 100,
        lock_after: 100,
        cooldown_minutes: 1,
    };
    signin::set_policy(
        &t.app,
        &Caller::operator("test"),
        "personal",
        "lockout",
        relaxed,
    )
    .await
    .unwrap();
    let sink = SmtpSink::start().await;
    signed_up(&t, &sink, "timed@example.com").await;
    let close = |what: &str, known: Vec<f64>, unknown: Vec<f64>| {
        let (k, u) = (median(known), median(unknown));
        let (hi, lo) = (k.max(u), k.min(u));
        assert!(
            hi <= lo * 3.0 + 2.0,
            "{what}: known {k:.2} ms, unknown {u:.2} ms"
        );
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..9 {
        let wrong = json!({"email": "timed@example.com", "password": "Wrong!pass1"});
        let nobody = json!({"email": format!("nobody{i}@example.com"), "password": "Wrong!pass1"});
        known.push(timed(&t, "/api/v1/auth/login", wrong).await);
        unknown.push(timed(&t, "/api/v1/auth/login", nobody).await);
    }
    close("sign-in", known, unknown);
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..9 {
        let again = json!({"email": "timed@example.com", "password": PW});
        let fresh = json!({"email": format!("new{i}@example.com"), "password": PW});
        known.push(timed(&t, "/api/v1/auth/signup", again).await);
        unknown.push(timed(&t, "/api/v1/auth/signup", fresh).await);
    }
    close("sign-up", known, unknown);
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..9 {
        let me = json!({"email": "timed@example.com"});
        let nobody = json!({"email": format!("nobody{i}@example.com")});
        known.push(timed(&t, "/api/v1/auth/password-reset", me).await);
        unknown.push(timed(&t, "/api/v1/auth/password-reset", nobody).await);
    }
    close("password reset", known, unknown);
}

/// A request from `ip`, as the server sees a real client.
fn from(
    ip: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> axum::http::Request<axum::body::Body> {
    let addr: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
    let b = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .extension(axum::extract::ConnectInfo(addr));
    match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(axum::body::Body::from(v.to_string())),
        None => b.body(axum::body::Body::empty()),
    }
    .unwrap()
}

/// Sign-up, new codes, resets and federated starts: ten at once per client
/// address, then one every six seconds; other addresses are not held back.
async fn public_writes_are_rate_limited_per_address(t: TestApp) {
    let resend = |ip: &str, n: usize| {
        from(
            ip,
            "POST",
            "/api/v1/auth/resend-verification",
            Some(json!({"email": format!("nobody{n}@example.com")})),
        )
    };
    for n in 0..10 {
        let (s, _, b) = t.send_full(resend("198.51.100.7", n)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{n}: {b}");
    }
    let (s, h, b) = t.send_full(resend("198.51.100.7", 10)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert_eq!(h["retry-after"], "6");
    assert_eq!(b["type"], "urn:muster:problem:rate-limited");
    // The same address is held back on the pages and the other public writes too.
    let (s, h, page) = t
        .send_full(from("198.51.100.7", "GET", "/auth/google", None))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        h.contains_key("content-security-policy"),
        "sent like every page"
    );
    assert!(
        page.as_str()
            .unwrap()
            .contains("Too many requests from your address")
    );
    let (s, _, _) = t.send_full(resend("198.51.100.8", 0)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "another address");
    // Sign-in is not limited here: it has its own failure counters.
    let (s, _, _) = t
        .send_full(from(
            "198.51.100.7",
            "POST",
            "/api/v1/auth/login",
            Some(json!({"email": "nobody@example.com", "password": PW})),
        ))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// Behind a trusted proxy the client is the address it forwards; from
/// anyone else, `X-Forwarded-For` is ignored (it could say anything).
async fn forwarded_addresses_are_believed_only_from_trusted_proxies(mut t: TestApp) {
    t.with_trusted_proxies(&["10.0.0.0/8"]);
    let login = |peer: &str, forwarded: &str| {
        let mut r = from(
            peer,
            "POST",
            "/api/v1/auth/login",
            Some(json!({"email": "nobody@example.com", "password": "Wrong!pass1"})),
        );
        r.headers_mut()
            .insert("x-forwarded-for", forwarded.parse().unwrap());
        r
    };
    let (s, _, _) = t.send_full(login("10.0.0.1", "6.6.6.6, 203.0.113.9")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = t.send_full(login("198.51.100.1", "203.0.113.77")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let seen = |ip: &str| format!("\"{ip}\"");
    assert_eq!(
        t.audit_count("auth.refused", &seen("203.0.113.9")).await,
        1,
        "the proxy's client"
    );
    assert_eq!(
        t.audit_count("auth.refused", &seen("6.6.6.6")).await,
        0,
        "what the client wrote"
    );
    assert_eq!(
        t.audit_count("auth.refused", &seen("10.0.0.1")).await,
        0,
        "not the proxy"
    );
    assert_eq!(
        t.audit_count("auth.refused", &seen("198.51.100.1")).await,
        1,
        "an untrusted peer"
    );
    assert_eq!(
        t.audit_count("auth.refused", &seen("203.0.113.77")).await,
        0,
        "its forged header"
    );

    // Two clients behind one proxy have a rate limit each.
    let resend = |client: &str| {
        let mut r = from(
            "10.0.0.1",
            "POST",
            "/api/v1/auth/resend-verification",
            Some(json!({"email": "nobody@example.com"})),
        );
        r.headers_mut()
            .insert("x-forwarded-for", client.parse().unwrap());
        r
    };
    for _ in 0..10 {
        assert_eq!(
            t.send_full(resend("203.0.113.1")).await.0,
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(
        t.send_full(resend("203.0.113.1")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        t.send_full(resend("203.0.113.2")).await.0,
        StatusCode::ACCEPTED
    );
}

both!(
    forwarded_addresses_are_believed_only_from_trusted_proxies,
    public_writes_are_rate_limited_per_address,
    sessions_are_listed_revoked_and_expire,
    password_reset_and_change_end_other_sessions,
    an_email_change_waits_for_the_new_address,
    sign_in_policies_are_checked,
    known_and_unknown_addresses_take_as_long,
);
