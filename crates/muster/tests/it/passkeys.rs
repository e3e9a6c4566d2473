//! Issue 5 §1: passkeys through WebAuthn — registration, a passkey as the
//! second step of a sign-in and of a step-up, and passwordless sign-in — with
//! the software authenticator of `webauthn-authenticator-rs` doing the
//! authenticator's half of every ceremony.

use crate::mfa::login_org;
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use serde_json::Value;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

fn origin(t: &TestApp) -> Url {
    Url::parse(&t.public_url).unwrap()
}

/// Registers a passkey on `auth` from a session: the finish answer.
async fn register(t: &TestApp, session: &str, auth: &mut SoftPasskey) -> (StatusCode, Value) {
    let (s, c) = t
        .call(
            "POST",
            "/api/v1/me/passkeys/register/start",
            Some(session),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let options: CreationChallengeResponse = serde_json::from_value(c["options"].clone()).unwrap();
    let cred = auth
        .do_registration(origin(t), options)
        .expect("the authenticator registers");
    t.call(
        "POST",
        "/api/v1/me/passkeys/register/finish",
        Some(session),
        Some(json!({"ceremony_id": c["ceremony_id"], "name": "Laptop", "credential": cred})),
    )
    .await
}

fn answer(t: &TestApp, auth: &mut SoftPasskey, options: &Value) -> Value {
    let options: RequestChallengeResponse = serde_json::from_value(options.clone()).unwrap();
    serde_json::to_value(
        auth.do_authentication(origin(t), options)
            .expect("the authenticator answers"),
    )
    .unwrap()
}

async fn session_level(t: &TestApp, session: &str) -> i64 {
    let (_, b) = t
        .call("GET", "/api/v1/me/sessions", Some(session), None)
        .await;
    b.as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .map(|s| s["level"].as_i64().unwrap())
        .unwrap()
}

async fn register_then_sign_in_with_and_without_a_password(mut t: TestApp) {
    t.with_public_url("https://id.muster.test");
    let _ = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    let session = b["session_token"].as_str().unwrap().to_owned();
    let mut auth = SoftPasskey::new(true);
    let (s, b) = register(&t, &session, &mut auth).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b["recovery_codes"].as_array().unwrap().len(),
        10,
        "the first factor"
    );
    assert_eq!(
        session_level(&t, &session).await,
        3,
        "registering proved the passkey"
    );
    let (_, st) = t.call("GET", "/api/v1/me/mfa", Some(&session), None).await;
    assert_eq!(st["factors"][0]["kind"], "passkey");
    assert_eq!(st["factors"][0]["name"], "Laptop");

    // The password now leads to a challenge a passkey answers: L3.
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    assert_eq!(b["methods"], json!(["passkey", "recovery"]), "{b}");
    let ch = b["challenge_id"].as_str().unwrap().to_owned();
    let (s, c) = t
        .call(
            "POST",
            "/api/v1/auth/mfa/passkey",
            None,
            Some(json!({"challenge_id": ch})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let assertion = answer(&t, &mut auth, &c["options"]);
    let body = json!({"challenge_id": ch, "method": "passkey", "ceremony_id": c["ceremony_id"], "assertion": assertion});
    let (s, b) = t
        .call("POST", "/api/v1/auth/mfa", None, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["session"]["level"], 3);

    // Passwordless: the passkey alone.
    let (s, c) = t
        .call(
            "POST",
            "/api/v1/auth/passkey/start",
            None,
            Some(json!({"org": "acme", "email": "ann@acme.example"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let assertion = answer(&t, &mut auth, &c["options"]);
    let finish = json!({"ceremony_id": c["ceremony_id"], "credential": assertion});
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/passkey/finish",
            None,
            Some(finish.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["session"]["level"], 3);
    let l3 = b["session_token"].as_str().unwrap().to_owned();
    let (s, me) = t.call("GET", "/api/v1/me", Some(&l3), None).await;
    assert_eq!(
        (s, me["email"].as_str()),
        (StatusCode::OK, Some("ann@acme.example"))
    );
    // Replayed: the ceremony is spent.
    let (s, _) = t
        .call("POST", "/api/v1/auth/passkey/finish", None, Some(finish))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // An old answer to a new ceremony: its challenge is not this one's.
    let (_, c2) = t
        .call(
            "POST",
            "/api/v1/auth/passkey/start",
            None,
            Some(json!({"org": "acme", "email": "ann@acme.example"})),
        )
        .await;
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/passkey/finish",
            None,
            Some(json!({"ceremony_id": c2["ceremony_id"], "credential": assertion})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // An address without a passkey (or without an account) gets options of
    // the same shape, with a stable stand-in credential: nothing to learn.
    let start = async |email: &str| {
        let (s, c) = t
            .call(
                "POST",
                "/api/v1/auth/passkey/start",
                None,
                Some(json!({"org": "acme", "email": email})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        c["options"]["publicKey"]["allowCredentials"].clone()
    };
    let real = start("ann@acme.example").await;
    let nobody = start("nobody@acme.example").await;
    assert_eq!(real.as_array().unwrap().len(), 1);
    assert_eq!(nobody.as_array().unwrap().len(), 1);
    assert_eq!(nobody, start("NOBODY@acme.example").await, "stable");
    assert_ne!(nobody, real);
    // Another organization's passkey signs nobody in here: Eve's good answer
    // to her own ceremony, sent against one of acme's.
    let _ = t.org_with_owner("globex").await;
    t.user_with_token("globex", "eve@globex.example", &["member"])
        .await;
    let (_, b) = login_org(&t, "globex", "eve@globex.example").await;
    let eve = b["session_token"].as_str().unwrap().to_owned();
    let mut eves = SoftPasskey::new(true);
    assert_eq!(register(&t, &eve, &mut eves).await.0, StatusCode::OK);
    let (_, own) = t
        .call(
            "POST",
            "/api/v1/auth/passkey/start",
            None,
            Some(json!({"org": "globex", "email": "eve@globex.example"})),
        )
        .await;
    let (_, c3) = t
        .call(
            "POST",
            "/api/v1/auth/passkey/start",
            None,
            Some(json!({"org": "acme", "email": "ann@acme.example"})),
        )
        .await;
    let assertion = answer(&t, &mut eves, &own["options"]);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/passkey/finish",
            None,
            Some(json!({"ceremony_id": c3["ceremony_id"], "credential": assertion})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "tenant isolation");
    assert!(t.audit_count("auth.refused", "passkey sign-in").await >= 1);
}

async fn malformed_and_replayed_registrations_change_nothing(mut t: TestApp) {
    t.with_public_url("https://id.muster.test");
    let _ = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    let session = b["session_token"].as_str().unwrap().to_owned();
    let (_, c) = t
        .call(
            "POST",
            "/api/v1/me/passkeys/register/start",
            Some(&session),
            None,
        )
        .await;
    for bad in [
        json!({}),
        json!("nope"),
        json!({"id": "x", "rawId": "x", "type": "public-key", "response": {}}),
    ] {
        let (s, b) = t
            .call(
                "POST",
                "/api/v1/me/passkeys/register/finish",
                Some(&session),
                Some(json!({"ceremony_id": c["ceremony_id"], "credential": bad})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    }
    // A valid answer to a ceremony already spent (by the first bad try).
    let mut auth = SoftPasskey::new(true);
    let options: CreationChallengeResponse = serde_json::from_value(c["options"].clone()).unwrap();
    let cred = auth.do_registration(origin(&t), options).unwrap();
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/me/passkeys/register/finish",
            Some(&session),
            Some(json!({"ceremony_id": c["ceremony_id"], "credential": cred})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM mfa_factors").await, 0);
    // Someone else's ceremony is not yours to finish.
    t.user_with_token("acme", "bob@acme.example", &["member"])
        .await;
    let (_, b) = crate::mfa::login_org(&t, "acme", "ann@acme.example").await;
    let ann = b["session_token"].as_str().unwrap().to_owned();
    let (_, c) = t
        .call(
            "POST",
            "/api/v1/me/passkeys/register/start",
            Some(&ann),
            None,
        )
        .await;
    let options: CreationChallengeResponse = serde_json::from_value(c["options"].clone()).unwrap();
    let cred = auth.do_registration(origin(&t), options).unwrap();
    let bob_session = {
        let (_, b) = t
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"email": "bob@acme.example", "password": crate::signin::PW, "org": "acme"})),
            )
            .await;
        b["session_token"].as_str().unwrap().to_owned()
    };
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/me/passkeys/register/finish",
            Some(&bob_session),
            Some(json!({"ceremony_id": c["ceremony_id"], "credential": cred})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM mfa_factors").await, 0);
    assert!(
        t.audit_count("auth.mfa_failed", "passkey registration")
            .await
            >= 4
    );
}

async fn a_high_risk_sign_in_needs_the_passkey(mut t: TestApp) {
    t.with_public_url("https://id.muster.test");
    let owner = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    let session = b["session_token"].as_str().unwrap().to_owned();
    let mut auth = SoftPasskey::new(true);
    assert_eq!(register(&t, &session, &mut auth).await.0, StatusCode::OK);
    let (uri, _) = crate::mfa::enrol_totp(&t, &session).await;
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/risk-policy",
            Some(&owner),
            Some(json!({"high": "l3", "deny_networks": ["0.0.0.0/0", "::/0"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Every address is denylisted now: high risk, only the passkey will do.
    let (s, b) = t
        .call_from(
            ("198.51.100.7", "curl/8"),
            "POST",
            "/api/v1/auth/login",
            None,
            Some(
                json!({"email": "ann@acme.example", "password": crate::signin::PW, "org": "acme"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["methods"], json!(["passkey"]), "{b}");
    let ch = b["challenge_id"].as_str().unwrap().to_owned();
    let (s, b) = t
        .call_from(
            ("198.51.100.7", "curl/8"),
            "POST",
            "/api/v1/auth/mfa",
            None,
            Some(json!({"challenge_id": ch, "method": "totp", "code": crate::mfa::totp_code(&t, &uri, 0)})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (_, c) = t
        .call(
            "POST",
            "/api/v1/auth/mfa/passkey",
            None,
            Some(json!({"challenge_id": ch})),
        )
        .await;
    let assertion = answer(&t, &mut auth, &c["options"]);
    let (s, b) = t
        .call_from(
            ("198.51.100.7", "curl/8"),
            "POST",
            "/api/v1/auth/mfa",
            None,
            Some(json!({"challenge_id": ch, "method": "passkey", "ceremony_id": c["ceremony_id"], "assertion": assertion})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["session"]["level"], 3);
}

both!(
    register_then_sign_in_with_and_without_a_password,
    malformed_and_replayed_registrations_change_nothing,
    a_high_risk_sign_in_needs_the_passkey,
);
