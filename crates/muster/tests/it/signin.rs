//! Issue 4: sign-up with email verification, sign-in, sessions, lockout,
//! password reset and change, email change — over the JSON sign-in API, with
//! every email going through a real SMTP conversation.

use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::smtp::SmtpSink;
use serde_json::Value;

const PW: &str = "Str0ng!pass";

/// The code and link token of the newest email to `to`.
fn code_for(sink: &SmtpSink, to: &str) -> (String, String) {
    let m = sink
        .messages()
        .into_iter()
        .rev()
        .find(|m| m.to.iter().any(|t| t.contains(to)))
        .unwrap_or_else(|| panic!("no email to {to}"));
    let text = m.text();
    let code = text
        .split("Your code: ")
        .nth(1)
        .and_then(|r| r.get(..6))
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_owned();
    let token = text
        .split("?token=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no link in {text}"))
        .to_owned();
    (code, token)
}

fn emails_to(sink: &SmtpSink, to: &str) -> usize {
    sink.messages()
        .iter()
        .filter(|m| m.to.iter().any(|t| t.contains(to)))
        .count()
}

async fn signup(t: &TestApp, email: &str) -> (StatusCode, Value) {
    t.call(
        "POST",
        "/api/v1/auth/signup",
        None,
        Some(json!({"email": email, "password": PW, "name": "Ann"})),
    )
    .await
}

async fn login(t: &TestApp, email: &str, pw: &str) -> (StatusCode, Value) {
    t.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": email, "password": pw})),
    )
    .await
}

/// Signs up, verifies by code and signs in: the session token.
async fn signed_up(t: &TestApp, sink: &SmtpSink, email: &str) -> String {
    assert_eq!(signup(t, email).await.0, StatusCode::ACCEPTED);
    t.deliver_mail(sink).await;
    let (code, _) = code_for(sink, email);
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"email": email, "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = login(t, email, PW).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["session_token"].as_str().unwrap().to_owned()
}

async fn sign_up_verify_sign_in_and_out(t: TestApp) {
    let sink = SmtpSink::start().await;
    let (s, body) = signup(&t, "ann@example.com").await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // Not verified yet: the right password learns why it may not sign in.
    let (s, b) = login(&t, "ann@example.com", PW).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("verify your email"));
    t.deliver_mail(&sink).await;
    let (code, _) = code_for(&sink, "ann@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"email": "ann@example.com", "code": wrong})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"email": "ann@example.com", "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // A used code does not work twice.
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"email": "ann@example.com", "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let (s, headers, b) = t
        .call_with(
            "POST",
            "/api/v1/auth/login",
            &[],
            Some(json!({"email": "ANN@example.com", "password": PW})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let token = b["session_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("msn_"));
    let cookie = headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("muster_session=msn_"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let (s, me) = t.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["state"], "active");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["source"], "signup");
    assert_eq!(me["profile"]["display_name"], "Ann");
    // The organization's default role was applied at verification.
    let roles = t
        .scalar(&format!(
            "SELECT COUNT(*) FROM role_assignments a JOIN roles r ON r.id = a.role_id \
             WHERE a.user_id = '{}' AND r.role_key = 'member'",
            me["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(roles, 1);
    // The cookie alone authenticates too.
    let pair = cookie.split(';').next().unwrap().to_owned();
    let (s, _, _) = t
        .call_with("GET", "/api/v1/me", &[("cookie", &pair)], None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // Only the hash of the session secret is stored.
    let secret = token.rsplit('_').next().unwrap();
    let leaked = t
        .scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE secret_hash LIKE '%{secret}%'"
        ))
        .await;
    assert_eq!(leaked, 0);

    let (s, h, _) = t
        .call_with(
            "POST",
            "/api/v1/auth/logout",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (s, _) = t.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = t
        .call_with("GET", "/api/v1/me", &[("cookie", &pair)], None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let _ = body;
}

async fn answers_alike_for_known_and_unknown_addresses(t: TestApp) {
    let sink = SmtpSink::start().await;
    signed_up(&t, &sink, "known@example.com").await;
    let before = emails_to(&sink, "known@example.com");
    let known = signup(&t, "known@example.com").await;
    let unknown = signup(&t, "nobody-yet@example.com").await;
    assert_eq!(known, unknown, "sign-up must not tell");
    t.deliver_mail(&sink).await;
    // The owner of the address hears about the attempt instead.
    let notes = sink.messages();
    let note = notes
        .iter()
        .find(|m| m.text().contains("already has an account"))
        .expect("a note to the address's owner");
    assert!(note.to.iter().any(|a| a.contains("known@example.com")));
    assert_eq!(emails_to(&sink, "known@example.com"), before + 1);

    let a = login(&t, "known@example.com", "Wrong!pass1").await;
    let b = login(&t, "unknown@example.com", "Wrong!pass1").await;
    assert_eq!(a, b, "sign-in must not tell");
    assert_eq!(a.0, StatusCode::UNAUTHORIZED);

    let reset = |e: &'static str| {
        let t = &t;
        async move {
            t.call(
                "POST",
                "/api/v1/auth/password-reset",
                None,
                Some(json!({"email": e})),
            )
            .await
        }
    };
    assert_eq!(
        reset("known@example.com").await,
        reset("unknown@example.com").await
    );
    // Each refused attempt is in the audit log, the unknown address included.
    let refused = t
        .scalar("SELECT COUNT(*) FROM audit_events WHERE action IN ('auth.refused', 'auth.login_failed')")
        .await;
    assert!(refused >= 2, "{refused}");
}

async fn codes_expire_run_out_and_are_resent_once_a_minute(t: TestApp) {
    let sink = SmtpSink::start().await;
    let email = "bob@example.com";
    signup(&t, email).await;
    t.deliver_mail(&sink).await;
    let (code, token) = code_for(&sink, email);
    // Resending within the minute sends nothing.
    t.call(
        "POST",
        "/api/v1/auth/resend-verification",
        None,
        Some(json!({"email": email})),
    )
    .await;
    t.deliver_mail(&sink).await;
    assert_eq!(emails_to(&sink, email), 1);
    // Five minutes later the code and the link are dead.
    t.clock.advance(time::Duration::seconds(301));
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"email": email, "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/resend-verification",
            None,
            Some(json!({"email": email})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    t.deliver_mail(&sink).await;
    assert_eq!(emails_to(&sink, email), 2);
    let (code, token) = code_for(&sink, email);
    // Five wrong codes spend it: the right one no longer works.
    for i in 0..5 {
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000);
        let (s, _) = t
            .call(
                "POST",
                "/api/v1/auth/verify-email",
                None,
                Some(json!({"email": email, "code": wrong})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"email": email, "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Forged links: a wrong secret, a wrong shape.
    let forged = format!("{}AAAA", &token[..token.len() - 4]);
    for bad in [forged.as_str(), "mse_nope", ""] {
        let (s, _) = t
            .call(
                "POST",
                "/api/v1/auth/verify-email",
                None,
                Some(json!({"token": bad})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let state = t
        .scalar(
            "SELECT COUNT(*) FROM users WHERE email = 'bob@example.com' AND state = 'unverified'",
        )
        .await;
    assert_eq!(state, 1, "nothing changed");
    // A fresh code through the link works.
    t.clock.advance(time::Duration::seconds(61));
    t.call(
        "POST",
        "/api/v1/auth/resend-verification",
        None,
        Some(json!({"email": email})),
    )
    .await;
    t.deliver_mail(&sink).await;
    let (_, token) = code_for(&sink, email);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

async fn failures_slow_down_then_lock_and_the_cooldown_or_an_admin_unlocks(t: TestApp) {
    let sink = SmtpSink::start().await;
    let email = "cat@example.com";
    signed_up(&t, &sink, email).await;
    let mut locked_at = None;
    for i in 1..=10 {
        let (s, b) = login(&t, email, "Wrong!pass1").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {i}: {b}");
        if i >= 3 {
            // Too soon after the last failure: refused before the password is even checked.
            let (s, h, b) = t
                .call_with(
                    "POST",
                    "/api/v1/auth/login",
                    &[],
                    Some(json!({"email": email, "password": PW})),
                )
                .await;
            assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "attempt {i}: {b}");
            assert!(h.contains_key("retry-after"));
            t.clock.advance(time::Duration::seconds(61));
        }
        if i == 10 {
            locked_at = Some(());
        }
    }
    assert!(locked_at.is_some());
    let state = t
        .scalar("SELECT COUNT(*) FROM users WHERE email = 'cat@example.com' AND state = 'locked'")
        .await;
    assert_eq!(state, 1);
    let (s, b) = login(&t, email, PW).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("locked"));
    // After the cool-down the right password unlocks it.
    t.clock.advance(time::Duration::minutes(16));
    let (s, b) = login(&t, email, PW).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let lock_events = t
        .scalar("SELECT COUNT(*) FROM audit_events WHERE action IN ('user.lock', 'user.unlock') AND actor_kind = 'system'")
        .await;
    assert_eq!(lock_events, 2);
}

async fn an_admin_unlocks_and_deactivation_ends_sessions(t: TestApp) {
    let sink = SmtpSink::start().await;
    let admin = t.org_with_owner("acme").await;
    // Open the business org to sign-ups with an admin-set policy.
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/signup-policy",
            Some(&admin),
            Some(json!({"open": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/lockout-policy",
            Some(&admin),
            Some(json!({"delay_after": 3, "lock_after": 3, "cooldown_minutes": 60})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let email = "dan@acme.example";
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/signup",
            None,
            Some(json!({"email": email, "password": PW, "org": "acme"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    t.deliver_mail(&sink).await;
    let (code, _) = code_for(&sink, email);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"email": email, "code": code, "org": "acme"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let body = json!({"email": email, "password": PW, "org": "acme"});
    let (s, b) = t
        .call("POST", "/api/v1/auth/login", None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let session = b["session_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let wrong = json!({"email": email, "password": "Wrong!pass1", "org": "acme"});
        t.call("POST", "/api/v1/auth/login", None, Some(wrong))
            .await;
        t.clock.advance(time::Duration::seconds(61));
    }
    // Locking ended the session that was open.
    let (s, _) = t.call("GET", "/api/v1/me", Some(&session), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = t
        .call("POST", "/api/v1/auth/login", None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let id =
        muster_testkit::muster_app::users::id_by_email(&t.app, &org_id(&t, "acme").await, email)
            .await
            .unwrap();
    let (s, b) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/users/{id}/unlock"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t
        .call("POST", "/api/v1/auth/login", None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let session = b["session_token"].as_str().unwrap().to_owned();
    // Suspended: the session ends at once; the right password learns why.
    let (s, _) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/users/{id}/suspend"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&session), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, b) = t
        .call("POST", "/api/v1/auth/login", None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(b["detail"].as_str().unwrap().contains("suspended"), "{b}");
    let refused = t
        .scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'auth.login_failed' AND changes LIKE '%account suspended%'")
        .await;
    assert_eq!(refused, 1, "the attempt is audited");
    let (s, _) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/users/{id}/unsuspend"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = t
        .call("POST", "/api/v1/auth/login", None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let session = b["session_token"].as_str().unwrap().to_owned();
    // The org's admin deactivates: the session is refused on the very next request.
    let (s, _) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/users/{id}/deactivate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t.call("GET", "/api/v1/me", Some(&session), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = t.call("POST", "/api/v1/auth/login", None, Some(body)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(b["detail"].as_str().unwrap().contains("deactivated"));
    // A session of one org is nobody in another.
    let (s, _) = t
        .call("GET", "/api/v1/orgs/personal", Some(&session), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn org_id(t: &TestApp, slug: &str) -> String {
    muster_testkit::muster_store::orgs::by_slug(&t.app.db, slug)
        .await
        .unwrap()
        .unwrap()
        .id
}

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
    let forged = format!("{}AAAA", &other_user[..other_user.len() - 4]);
    for bad in [forged.as_str(), "msn_x", "msn_"] {
        let (s, _) = t.call("GET", "/api/v1/me", Some(bad), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bad}");
    }
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

async fn business_sign_up_waits_for_the_owner(t: TestApp) {
    let sink = SmtpSink::start().await;
    let email = "ivy@globex.example";
    let (s, b) = t
        .call("POST", "/api/v1/auth/signup", None, Some(json!({"email": email, "password": PW, "organization": {"slug": "globex", "name": "Globex"}})))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    // Until the owner verifies, the organization takes nobody in.
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/signup",
            None,
            Some(json!({"email": "x@globex.example", "password": PW, "org": "globex"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The slug is taken.
    let (s, _) = t
        .call("POST", "/api/v1/auth/signup", None, Some(json!({"email": "y@y.example", "password": PW, "organization": {"slug": "globex", "name": "Other"}})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    t.deliver_mail(&sink).await;
    let (code, _) = code_for(&sink, email);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"email": email, "code": code, "org": "globex"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": PW, "org": "globex"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let owner = b["session_token"].as_str().unwrap().to_owned();
    // The owner runs the organization with their session.
    let (s, b) = t
        .call("GET", "/api/v1/orgs/globex/users", Some(&owner), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = t
        .call(
            "GET",
            "/api/v1/orgs/globex/session-policy",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

async fn bad_input_changes_nothing(t: TestApp) {
    let before = t.fingerprint().await;
    let long = "a".repeat(300);
    for body in [
        json!({"email": "not-an-email", "password": PW}),
        json!({"email": "ok@example.com", "password": "weak"}),
        json!({"email": format!("{long}@example.com"), "password": PW}),
        json!({"email": "ok@example.com", "password": PW, "name": long}),
        json!({"email": "ok@example.com", "password": PW, "extra": 1}),
        json!({"email": "ok@example.com", "password": PW, "org": "no-such-org"}),
    ] {
        let (s, b) = t
            .call("POST", "/api/v1/auth/signup", None, Some(body.clone()))
            .await;
        assert!(s == StatusCode::UNPROCESSABLE_ENTITY, "{body}: {s} {b}");
        assert_eq!(
            b["type"]
                .as_str()
                .map(|t| t.starts_with("urn:muster:problem:")),
            Some(true)
        );
    }
    assert_eq!(t.fingerprint().await, before);
    // Business organizations take no self sign-up unless they say so.
    t.org_with_owner("closed").await;
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/signup",
            None,
            Some(json!({"email": "z@closed.example", "password": PW, "org": "closed"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
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

both!(
    sign_in_policies_are_checked,
    known_and_unknown_addresses_take_as_long,
    sign_up_verify_sign_in_and_out,
    answers_alike_for_known_and_unknown_addresses,
    codes_expire_run_out_and_are_resent_once_a_minute,
    failures_slow_down_then_lock_and_the_cooldown_or_an_admin_unlocks,
    an_admin_unlocks_and_deactivation_ends_sessions,
    sessions_are_listed_revoked_and_expire,
    password_reset_and_change_end_other_sessions,
    an_email_change_waits_for_the_new_address,
    business_sign_up_waits_for_the_owner,
    bad_input_changes_nothing,
);
