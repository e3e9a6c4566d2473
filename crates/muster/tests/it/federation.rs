//! Issue 4 §5: Google sign-up and sign-in over OpenID Connect, against a real
//! provider on loopback (`muster_testkit::oidc`): the account made on first
//! sign-in, the password it is asked for, matching on the subject, linking
//! to an existing account with its password, and every way an answer from
//! the provider can be wrong.

use crate::pages::{CSRF, post_form, shot, wait_for_url};
use crate::signin::{PW, login, signed_up};
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::browser::Driver;
use muster_testkit::oidc::{OidcProvider, Person, Tamper};
use muster_testkit::smtp::SmtpSink;
use std::collections::HashMap;

pub(crate) async fn with_google(t: &mut TestApp) -> OidcProvider {
    let p = OidcProvider::start(t.clock.clone(), "muster-web", "g00gle-secret").await;
    t.with_google(&p.issuer, &p.client_id, &p.client_secret);
    p
}

pub(crate) async fn me(t: &TestApp, session: &str) -> (StatusCode, serde_json::Value) {
    t.call("GET", "/api/v1/me", Some(session), None).await
}

/// The value of a hidden field in a page.
pub(crate) fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        .to_owned()
}

async fn first_sign_in_creates_the_account_then_matches_the_subject(mut t: TestApp) {
    let google = with_google(&mut t).await;
    google.sign_in_as(Person::new("g-100", "gina@gmail.example"));
    let landing = t.federated("/auth/google?next=/account").await;
    assert_eq!(landing.status, StatusCode::SEE_OTHER, "{:?}", landing.body);
    // A new Google account has no password yet: the account page asks for one.
    assert_eq!(
        landing.location.as_deref(),
        Some("/account?done=create_password")
    );
    let session = landing.session().expect("a session cookie").to_owned();
    let (s, u) = me(&t, &session).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["email"], "gina@gmail.example");
    assert_eq!(u["state"], "active");
    assert_eq!(u["source"], "google");
    let id = u["id"].as_str().unwrap().to_owned();

    // The authorization request carried PKCE (S256), state and nonce.
    let req = &google.requests()[0];
    assert_eq!(req["code_challenge_method"], "S256");
    assert_eq!(req["code_challenge"].len(), 43);
    assert_eq!(req["state"].len(), 43);
    assert_eq!(req["nonce"].len(), 43);
    assert!(req["scope"].split(' ').any(|s| s == "openid"));
    assert_eq!(req["redirect_uri"], "http://muster.test/auth/oidc/callback");

    // The account page asks for a first password; without one, password sign-in fails.
    let (s, _, page) = t
        .call_with(
            "GET",
            "/account?done=create_password",
            &[("cookie", &format!("muster_session={session}"))],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("Create a password"));
    assert_eq!(
        login(&t, "gina@gmail.example", PW).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&session),
            Some(json!({"new_password": "weak"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "the policy holds: {b}");
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&session),
            Some(json!({"new_password": PW})),
        )
        .await;
    assert!(s.is_success(), "{s} {b}");
    assert_eq!(login(&t, "gina@gmail.example", PW).await.0, StatusCode::OK);
    // Once set, changing it needs the current one.
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&session),
            Some(json!({"new_password": "An0ther!pass"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Later sign-ins find the account by subject, even after the address
    // changed at Google, and go where they were asked to.
    google.sign_in_as(Person::new("g-100", "gina.new@gmail.example"));
    let again = t.federated("/auth/google?next=/account%3Ftab%3D1").await;
    assert_eq!(again.location.as_deref(), Some("/account?tab=1"));
    let (_, u2) = me(&t, again.session().unwrap()).await;
    assert_eq!(u2["id"].as_str(), Some(id.as_str()));
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM users WHERE source = 'google'")
            .await,
        1
    );

    // Another Google subject with Gina's address does not get her account:
    // the email alone never signs anyone in.
    google.sign_in_as(Person::new("g-999", "gina@gmail.example"));
    let other = t.federated("/auth/google").await;
    assert_eq!(other.status, StatusCode::OK, "asked for the password");
    assert!(other.session().is_none());
    assert!(other.body.as_str().unwrap().contains("already exists"));

    // The audit log has the account's creation, the link and the sign-ins.
    for (action, n) in [("user.identity_linked", 1), ("user.password_set", 1)] {
        let sql = format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'");
        assert_eq!(t.scalar(&sql).await, n, "{action}");
    }
    let logins = t.audit_count("auth.login", "google").await;
    assert_eq!(logins, 2);
}

async fn attaching_google_to_an_existing_account_needs_its_password(mut t: TestApp) {
    let sink = SmtpSink::start().await;
    let google = with_google(&mut t).await;
    signed_up(&t, &sink, "paul@mail.example").await;
    google.sign_in_as(Person::new("g-200", "paul@mail.example"));
    let landing = t.federated("/auth/google").await;
    assert_eq!(landing.status, StatusCode::OK);
    let html = landing.body.as_str().unwrap().to_owned();
    assert!(html.contains("paul@mail.example"), "{html}");
    let ticket = hidden(&html, "ticket");
    let csrf = hidden(&html, "csrf");
    let flow = landing.cookies["muster_oidc"].clone();
    let cookie = format!("muster_oidc={flow}; muster_csrf={csrf}");
    let identities = "SELECT COUNT(*) FROM identities";

    // A wrong password links nothing and says so on the page.
    let (s, _, page) = post_form(
        &t,
        "/auth/link",
        Some(&cookie),
        &format!("csrf={csrf}&ticket={ticket}&password=Wrong!pass1"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(page.contains("form-error"), "{page}");
    assert_eq!(t.scalar(identities).await, 0);
    // Another browser (without the flow's cookie) cannot use the ticket.
    let (s, _, _) = post_form(
        &t,
        "/auth/link",
        Some(&format!("muster_csrf={CSRF}")),
        &format!("csrf={CSRF}&ticket={ticket}&password={}", "Str0ng%21pass"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(t.scalar(identities).await, 0);

    let (s, h, _) = post_form(
        &t,
        "/auth/link",
        Some(&cookie),
        &format!("csrf={csrf}&ticket={ticket}&password={}", "Str0ng%21pass"),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/account?done=google_linked");
    assert_eq!(t.scalar(identities).await, 1);
    // The ticket works once.
    let (s, _, _) = post_form(
        &t,
        "/auth/link",
        Some(&cookie),
        &format!("csrf={csrf}&ticket={ticket}&password={}", "Str0ng%21pass"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(t.scalar(identities).await, 1);

    // From now on Google signs Paul in directly, to his existing account.
    let again = t.federated("/auth/google").await;
    assert_eq!(again.location.as_deref(), Some("/account"));
    let (_, u) = me(&t, again.session().unwrap()).await;
    assert_eq!(u["email"], "paul@mail.example");
    assert_eq!(u["source"], "signup");
}

/// Every refusal: a clear error, no session, no account, and an audit record.
async fn wrong_answers_from_the_provider_are_refused(mut t: TestApp) {
    let google = with_google(&mut t).await;
    google.sign_in_as(Person::new("g-300", "tess@gmail.example"));
    let refused = "SELECT COUNT(*) FROM audit_events WHERE action = 'auth.refused'";
    let cases = [
        (Tamper::WrongAudience, "another application"),
        (Tamper::WrongIssuer, "another issuer"),
        (Tamper::AlgNone, "not a signed JWT"),
        (Tamper::Hs256, "not accepted"),
        (Tamper::BadSignature, "signature"),
        (Tamper::UnknownKey, "does not publish"),
        (Tamper::Expired, "expired"),
        (Tamper::WrongNonce, "nonce"),
    ];
    for (i, (tamper, words)) in cases.into_iter().enumerate() {
        google.tamper(tamper);
        let l = t.federated("/auth/google").await;
        assert_eq!(l.status, StatusCode::FORBIDDEN, "{tamper:?}");
        let page = l.body.as_str().unwrap();
        assert!(page.contains(words), "{tamper:?}: {page}");
        assert!(l.session().is_none(), "{tamper:?}");
        assert_eq!(t.scalar(refused).await, i as i64 + 1, "{tamper:?} audited");
    }
    let after_tampering = t.scalar(refused).await;

    // An address Google has not verified does not make an account.
    google.sign_in_as(Person {
        email_verified: Some(false),
        ..Person::new("g-301", "unverified@gmail.example")
    });
    let l = t.federated("/auth/google").await;
    assert_eq!(l.status, StatusCode::FORBIDDEN);
    assert!(l.body.as_str().unwrap().contains("verified email"));
    // The person declines at the provider.
    google.deny_next();
    let l = t.federated("/auth/google").await;
    assert_eq!(l.status, StatusCode::FORBIDDEN);
    assert!(l.body.as_str().unwrap().contains("access_denied"));
    assert_eq!(t.scalar(refused).await, after_tampering + 2);
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM users WHERE source = 'google'")
            .await,
        0
    );
    assert_eq!(t.scalar("SELECT COUNT(*) FROM sessions").await, 0);

    // A replayed callback (the same state and code) is refused.
    google.sign_in_as(Person::new("g-302", "rita@gmail.example"));
    let (first, callback) = t.federated_parts("/auth/google").await;
    let callback = callback.unwrap();
    // Without the cookie of the browser that started it: refused, not spent.
    let stranger = t.follow(&callback, HashMap::new()).await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN);
    assert!(stranger.body.as_str().unwrap().contains("another browser"));
    let ok = t.follow(&callback, first.cookies.clone()).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert!(ok.session().is_some());
    let replay = t.follow(&callback, first.cookies.clone()).await;
    assert_eq!(replay.status, StatusCode::FORBIDDEN);
    assert!(replay.body.as_str().unwrap().contains("already used"));
    assert!(replay.session().is_none());

    // A flow that comes back after ten minutes has expired.
    google.sign_in_as(Person::new("g-303", "late@gmail.example"));
    let (first, callback) = t.federated_parts("/auth/google").await;
    t.clock.advance(time::Duration::minutes(11));
    let late = t.follow(&callback.unwrap(), first.cookies).await;
    assert_eq!(late.status, StatusCode::FORBIDDEN);
    // A made-up state, and none at all.
    for path in [
        "/auth/oidc/callback?state=xyz&code=abc",
        "/auth/oidc/callback",
    ] {
        let l = t.follow(path, HashMap::new()).await;
        assert_eq!(l.status, StatusCode::FORBIDDEN, "{path}");
    }

    // A return path to another host is dropped.
    google.sign_in_as(Person::new("g-302", "rita@gmail.example"));
    for next in [
        "//evil.example/x",
        "https://evil.example",
        "/%5Cevil.example",
    ] {
        let l = t
            .federated(&format!("/auth/google?next={}", next.replace('/', "%2F")))
            .await;
        let to = l.location.unwrap();
        assert!(
            to.starts_with("/account") && !to.contains("evil"),
            "{next}: {to}"
        );
    }
}

async fn google_off_and_closed_sign_up_are_refused(mut t: TestApp) {
    // Without MUSTER_GOOGLE_*, the start link explains itself.
    let l = t.federated("/auth/google").await;
    assert_eq!(l.status, StatusCode::FORBIDDEN);
    assert!(l.body.as_str().unwrap().contains("not set up"));
    let (s, _, page) = t.call_with("GET", "/login", &[], None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!page.as_str().unwrap().contains("google-signin"));

    let google = with_google(&mut t).await;
    let (_, _, page) = t.call_with("GET", "/login", &[], None).await;
    assert!(page.as_str().unwrap().contains("Continue with Google"));
    // The personal directory closed to sign-ups: no account from Google either.
    t.raw("UPDATE orgs SET settings = '{\"signup\":{\"open\":false}}' WHERE slug = 'personal'")
        .await;
    google.sign_in_as(Person::new("g-400", "closed@gmail.example"));
    let l = t.federated("/auth/google").await;
    assert_eq!(l.status, StatusCode::FORBIDDEN);
    assert!(
        l.body
            .as_str()
            .unwrap()
            .contains("does not accept sign-ups")
    );
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM users WHERE source = 'google'")
            .await,
        0
    );

    // The JSON start answers the provider's URL and the binding cookie.
    let (s, h, b) = t
        .call_with(
            "POST",
            "/api/v1/auth/federated/start",
            &[],
            Some(json!({"provider": "google", "next": "/account"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["authorization_url"]
            .as_str()
            .unwrap()
            .starts_with(&google.issuer)
    );
    assert!(
        h["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("muster_oidc=")
    );
    let (s, _, b) = t
        .call_with(
            "POST",
            "/api/v1/auth/federated/start",
            &[],
            Some(json!({"provider": "facebook"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
}

/// In Chromium: "Continue with Google" → the provider → back signed in,
/// asked for a password → created → the account shows both ways in.
async fn google_sign_up_in_a_browser(mut t: TestApp) {
    let Some(driver) = Driver::start(module_path!()).await else {
        return;
    };
    let google = with_google(&mut t).await;
    let base = t.serve_public().await;
    google.sign_in_as(Person::new("g-b1", "bea@gmail.example"));
    let b = driver.browser().await;
    b.goto(&format!("{base}/login")).await;
    b.screenshot(&shot("sign-in-with-google")).await;
    b.click("#google-signin").await;
    wait_for_url(&b, "done=create_password").await;
    b.wait_for("Create a password").await;
    assert!(b.source().await.contains("bea@gmail.example"));
    b.fill("#new_password", "Str0ng!pass").await;
    b.click("form[action='/account/password'] button").await;
    b.wait_for("Your password is set").await;
    assert_eq!(b.text("#sign-in-methods").await, "Password · Google");
    b.screenshot(&shot("account-google")).await;
    b.quit().await;
    assert_eq!(login(&t, "bea@gmail.example", PW).await.0, StatusCode::OK);
}

both!(
    google_sign_up_in_a_browser,
    first_sign_in_creates_the_account_then_matches_the_subject,
    attaching_google_to_an_existing_account_needs_its_password,
    wrong_answers_from_the_provider_are_refused,
    google_off_and_closed_sign_up_are_refused,
);
