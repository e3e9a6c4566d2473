//! Issue 5 §1–§3: second factors (TOTP, email codes, recovery codes), the
//! MFA policy, the sign-in challenge, assurance levels and step-up — over
//! the JSON API, with codes computed by an independent TOTP implementation
//! (`totp-rs`) from the `otpauth://` URI Muster hands out, and email codes
//! read from a real SMTP conversation.

use crate::signin::PW;
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::smtp::SmtpSink;
use serde_json::Value;

/// The code an authenticator app holding `uri` shows at the app's time,
/// `steps` 30-second steps later.
pub(crate) fn totp_code(t: &TestApp, uri: &str, steps: i64) -> String {
    let app = totp_rs::Totp::from_url(uri).expect("a well-formed otpauth URI");
    use muster_core::clock::Clock;
    let secs = t.clock.now().unix_timestamp() + steps * 30;
    app.generate(u64::try_from(secs).unwrap()).to_string()
}

fn wrong(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

pub(crate) async fn login_org(t: &TestApp, org: &str, email: &str) -> (StatusCode, Value) {
    t.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": email, "password": PW, "org": org})),
    )
    .await
}

async fn mfa(t: &TestApp, challenge: &str, method: &str, code: &str) -> (StatusCode, Value) {
    t.call(
        "POST",
        "/api/v1/auth/mfa",
        None,
        Some(json!({"challenge_id": challenge, "method": method, "code": code})),
    )
    .await
}

/// Enrols an authenticator app from a session: its otpauth URI and the
/// recovery codes. The clock moves one step on, so the next code is fresh.
pub(crate) async fn enrol_totp(t: &TestApp, session: &str) -> (String, Vec<String>) {
    let (s, setup) = t
        .call(
            "POST",
            "/api/v1/me/mfa/totp",
            Some(session),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{setup}");
    let uri = setup["otpauth_uri"].as_str().unwrap().to_owned();
    let id = setup["factor_id"].as_str().unwrap();
    let (s, b) = t
        .call(
            "POST",
            &format!("/api/v1/me/mfa/totp/{id}/confirm"),
            Some(session),
            Some(json!({"code": totp_code(t, &uri, 0)})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let codes = b["recovery_codes"]
        .as_array()
        .map(|a| a.iter().map(|c| c.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    t.clock.advance(time::Duration::seconds(30));
    (uri, codes)
}

async fn totp_enrolment_sign_in_and_replay(t: TestApp) {
    let _ = t.org_with_owner("acme").await;
    let (uid, _) = t
        .user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (s, b) = login_org(&t, "acme", "ann@acme.example").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let session = b["session_token"].as_str().unwrap().to_owned();
    assert_eq!(b["session"]["level"], 1);

    let (s, setup) = t
        .call(
            "POST",
            "/api/v1/me/mfa/totp",
            Some(&session),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{setup}");
    let uri = setup["otpauth_uri"].as_str().unwrap().to_owned();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/Org%20acme:ann%40acme.example?secret="));
    assert!(
        setup["qr_svg"].as_str().unwrap().starts_with("<?xml")
            || setup["qr_svg"].as_str().unwrap().contains("<svg")
    );
    // The seed is sealed at rest: its base32 form is nowhere in the row.
    let stored = t
        .scalar(&format!(
            "SELECT COUNT(*) FROM mfa_factors WHERE user_id = '{uid}' AND secret_sealed LIKE '%{secret}%'"
        ))
        .await;
    assert_eq!(stored, 0);
    // A wrong code confirms nothing.
    let id = setup["factor_id"].as_str().unwrap();
    let good = totp_code(&t, &uri, 0);
    let (s, b) = t
        .call(
            "POST",
            &format!("/api/v1/me/mfa/totp/{id}/confirm"),
            Some(&session),
            Some(json!({"code": wrong(&good)})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (_, st) = t.call("GET", "/api/v1/me/mfa", Some(&session), None).await;
    assert_eq!(st["factors"].as_array().unwrap().len(), 0, "{st}");
    let (s, b) = t
        .call(
            "POST",
            &format!("/api/v1/me/mfa/totp/{id}/confirm"),
            Some(&session),
            Some(json!({"code": good})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let codes = b["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    // Recovery codes are stored hashed.
    let first = codes[0].as_str().unwrap().replace('-', "");
    assert_eq!(
        t.scalar(&format!(
            "SELECT COUNT(*) FROM recovery_codes WHERE code_hash LIKE '%{first}%'"
        ))
        .await,
        0
    );

    // Now the password alone opens no session.
    let (s, b) = login_org(&t, "acme", "ann@acme.example").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["mfa_required"], true);
    assert!(b.get("session_token").is_none(), "{b}");
    assert_eq!(b["methods"], json!(["totp", "recovery"]));
    let challenge = b["challenge_id"].as_str().unwrap().to_owned();
    // The challenge is no credential anywhere else.
    let (s, _) = t.call("GET", "/api/v1/me", Some(&challenge), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The code used to confirm the app is spent: replaying it is refused.
    let (s, b) = mfa(&t, &challenge, "totp", &good).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // One step of drift either way is accepted; two are not.
    t.clock.advance(time::Duration::seconds(90));
    let (s, _) = mfa(&t, &challenge, "totp", &totp_code(&t, &uri, -2)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let code = totp_code(&t, &uri, 1);
    let (s, b) = mfa(&t, &challenge, "totp", &code).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["session"]["level"], 2);
    let l2 = b["session_token"].as_str().unwrap().to_owned();
    let (s, _) = t.call("GET", "/api/v1/me", Some(&l2), None).await;
    assert_eq!(s, StatusCode::OK);
    // A completed challenge is spent; the same code on a new one is a replay.
    let (s, _) = mfa(&t, &challenge, "totp", &totp_code(&t, &uri, 0)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    let again = b["challenge_id"].as_str().unwrap().to_owned();
    let (s, _) = mfa(&t, &again, "totp", &code).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Five wrong codes end the challenge, even for the right code after.
    for _ in 0..4 {
        let (s, _) = mfa(&t, &again, "totp", "000000").await;
        assert!(
            s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::TOO_MANY_REQUESTS,
            "{s}"
        );
        t.clock.advance(time::Duration::seconds(70));
    }
    t.clock.advance(time::Duration::seconds(30));
    let (s, b) = mfa(&t, &again, "totp", &totp_code(&t, &uri, 0)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // Every refusal is audited.
    assert!(
        t.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'auth.mfa_failed'")
            .await
            >= 5
    );
}

async fn recovery_codes_work_once_and_can_be_replaced(t: TestApp) {
    let _ = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    let session = b["session_token"].as_str().unwrap().to_owned();
    let (uri, codes) = enrol_totp(&t, &session).await;
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    let ch = b["challenge_id"].as_str().unwrap().to_owned();
    // Case, dashes and spaces do not matter.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let (s, b) = mfa(&t, &ch, "recovery", &typed).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let l2 = b["session_token"].as_str().unwrap().to_owned();
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    let ch = b["challenge_id"].as_str().unwrap().to_owned();
    let (s, _) = mfa(&t, &ch, "recovery", &codes[0]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a used code");
    let (_, st) = t.call("GET", "/api/v1/me/mfa", Some(&l2), None).await;
    assert_eq!(st["recovery_codes_left"], 9);
    // New codes replace the old ones (from a session that just proved a factor).
    let (s, b) = t
        .call("POST", "/api/v1/me/mfa/recovery-codes", Some(&l2), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let fresh = b["recovery_codes"].as_array().unwrap().clone();
    let (s, _) = mfa(&t, &ch, "recovery", &codes[1]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "an old code");
    let (s, _) = mfa(&t, &ch, "recovery", fresh[0].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    // Past the step-up window, replacing them asks for a factor again.
    t.clock.advance(time::Duration::minutes(16));
    let (s, b) = t
        .call("POST", "/api/v1/me/mfa/recovery-codes", Some(&l2), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["type"], "urn:muster:problem:step-up-required");
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/me/step-up",
            Some(&l2),
            Some(json!({"method": "totp", "code": totp_code(&t, &uri, 0)})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .call("POST", "/api/v1/me/mfa/recovery-codes", Some(&l2), None)
        .await;
    assert_eq!(s, StatusCode::OK);
}

fn mfa_code(sink: &SmtpSink, to: &str) -> String {
    let m = sink
        .messages()
        .into_iter()
        .rev()
        .find(|m| m.to.iter().any(|t| t.contains(to)))
        .expect("an email");
    let text = m.text();
    assert!(!text.contains("token="), "a sign-in code has no link");
    text.split("Your code: ")
        .nth(1)
        .and_then(|r| r.get(..6))
        .expect("a code")
        .to_owned()
}

async fn email_codes_as_a_second_factor(t: TestApp) {
    let sink = SmtpSink::start().await;
    let _ = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    let session = b["session_token"].as_str().unwrap().to_owned();
    let (s, b) = t
        .call("POST", "/api/v1/me/mfa/email", Some(&session), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["recovery_codes"].as_array().unwrap().len(), 10);
    let (s, _) = t
        .call("POST", "/api/v1/me/mfa/email", Some(&session), None)
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a second change needs a step-up first"
    );

    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    assert_eq!(b["methods"], json!(["email", "recovery"]));
    let ch = b["challenge_id"].as_str().unwrap().to_owned();
    let send = json!({"challenge_id": ch});
    let (s, _) = t
        .call("POST", "/api/v1/auth/mfa/email", None, Some(send.clone()))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _) = t
        .call("POST", "/api/v1/auth/mfa/email", None, Some(send.clone()))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "one code a minute");
    t.deliver_mail(&sink).await;
    let code = mfa_code(&sink, "ann@acme.example");
    let (s, _) = mfa(&t, &ch, "email", &wrong(&code)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Codes last five minutes.
    t.clock.advance(time::Duration::minutes(6));
    let (s, _) = mfa(&t, &ch, "email", &code).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "an expired code");
    let (s, _) = t
        .call("POST", "/api/v1/auth/mfa/email", None, Some(send))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    t.deliver_mail(&sink).await;
    let code = mfa_code(&sink, "ann@acme.example");
    let (s, b) = mfa(&t, &ch, "email", &code).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["session"]["level"], 2);
}

async fn a_required_policy_enrols_before_any_session(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    t.user_with_token("acme", "bob@acme.example", &["member"])
        .await;
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/mfa-policy",
            Some(&owner),
            Some(json!({"mode": "required"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = login_org(&t, "acme", "bob@acme.example").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["enrolment_required"], true, "{b}");
    assert_eq!(b["methods"], json!(["totp", "email"]));
    let ch = b["challenge_id"].as_str().unwrap().to_owned();
    // No factor yet: nothing can answer.
    let (s, _) = mfa(&t, &ch, "totp", "123456").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = mfa(&t, &ch, "recovery", "abcde-fghjk").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, setup) = t
        .call(
            "POST",
            "/api/v1/auth/mfa/enrol",
            None,
            Some(json!({"challenge_id": ch, "method": "totp"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{setup}");
    let uri = setup["otpauth_uri"].as_str().unwrap();
    let (s, b) = mfa(&t, &ch, "totp", &totp_code(&t, uri, 0)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["recovery_codes"].as_array().unwrap().len(), 10);
    let session = b["session_token"].as_str().unwrap().to_owned();
    // While MFA is required, the last method cannot be removed.
    let (_, st) = t.call("GET", "/api/v1/me/mfa", Some(&session), None).await;
    assert_eq!(st["required"], true);
    let id = st["factors"][0]["id"].as_str().unwrap().to_owned();
    let (s, b) = t
        .call(
            "DELETE",
            &format!("/api/v1/me/mfa/{id}"),
            Some(&session),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    // With the policy back to optional, it can.
    t.call(
        "PUT",
        "/api/v1/orgs/acme/mfa-policy",
        Some(&owner),
        Some(json!({"mode": "optional"})),
    )
    .await;
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/me/mfa/{id}"),
            Some(&session),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, st) = t.call("GET", "/api/v1/me/mfa", Some(&session), None).await;
    assert_eq!(
        st["recovery_codes_left"], 0,
        "the codes went with the last factor"
    );
}

async fn mfa_for_admins_and_chosen_groups(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    t.user_with_token("acme", "adm@acme.example", &["admin"])
        .await;
    let (mid, _) = t
        .user_with_token("acme", "mem@acme.example", &["member"])
        .await;
    t.call(
        "PUT",
        "/api/v1/orgs/acme/mfa-policy",
        Some(&owner),
        Some(json!({"mode": "admins"})),
    )
    .await;
    let (_, b) = login_org(&t, "acme", "adm@acme.example").await;
    assert_eq!(b["enrolment_required"], true, "{b}");
    let (_, b) = login_org(&t, "acme", "mem@acme.example").await;
    assert!(b["session_token"].is_string(), "{b}");
    // Groups, nested: a member of a child of the chosen group must enrol.
    let (_, parent) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&owner),
            Some(json!({"name": "eng"})),
        )
        .await;
    let (_, child) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&owner),
            Some(json!({"name": "eng-db"})),
        )
        .await;
    let (pid, cid) = (
        parent["id"].as_str().unwrap(),
        child["id"].as_str().unwrap(),
    );
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/mfa-policy",
            Some(&owner),
            Some(json!({"mode": "groups", "groups": [pid]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = login_org(&t, "acme", "mem@acme.example").await;
    assert!(b["session_token"].is_string(), "not in the group yet: {b}");
    let (s, b) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/groups/{pid}/members/groups/{cid}"),
            Some(&owner),
            None,
        )
        .await;
    assert!(s.is_success(), "{s} {b}");
    let (s, b) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/groups/{cid}/members/users/{mid}"),
            Some(&owner),
            None,
        )
        .await;
    assert!(s.is_success(), "{s} {b}");
    let (_, b) = login_org(&t, "acme", "mem@acme.example").await;
    assert_eq!(b["enrolment_required"], true, "{b}");
}

async fn admin_actions_need_a_recent_second_factor(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    t.user_with_token("acme", "adm@acme.example", &["admin"])
        .await;
    let (_, b) = login_org(&t, "acme", "adm@acme.example").await;
    let session = b["session_token"].as_str().unwrap().to_owned();
    let change = json!({"delay_after": 3, "lock_after": 9, "cooldown_minutes": 15});
    let put = async |tok: &str| {
        t.call(
            "PUT",
            "/api/v1/orgs/acme/lockout-policy",
            Some(tok),
            Some(change.clone()),
        )
        .await
    };
    // Reading is fine at L1; changing is not, nor minting an API token.
    let (s, _) = t
        .call("GET", "/api/v1/orgs/acme/users", Some(&session), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = put(&session).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["type"], "urn:muster:problem:step-up-required");
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/api-tokens",
            Some(&session),
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // An API token is its own credential: unaffected.
    assert_eq!(put(&owner).await.0, StatusCode::OK);
    // Confirming an authenticator app proves a factor: L2 now.
    let (uri, _) = enrol_totp(&t, &session).await;
    let (s, b) = put(&session).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The window passes; a wrong step-up code changes nothing and is audited.
    t.clock.advance(time::Duration::minutes(16));
    assert_eq!(put(&session).await.0, StatusCode::FORBIDDEN);
    let before = t
        .scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'auth.mfa_failed'")
        .await;
    let code = totp_code(&t, &uri, 0);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/me/step-up",
            Some(&session),
            Some(json!({"method": "totp", "code": wrong(&code)})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'auth.mfa_failed'")
            .await,
        before + 1
    );
    assert_eq!(put(&session).await.0, StatusCode::FORBIDDEN);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/me/step-up",
            Some(&session),
            Some(json!({"method": "totp", "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(put(&session).await.0, StatusCode::OK);
    // With MFA off, admin actions need no second factor.
    t.call(
        "PUT",
        "/api/v1/orgs/acme/mfa-policy",
        Some(&owner),
        Some(json!({"mode": "off", "methods": []})),
    )
    .await;
    t.clock.advance(time::Duration::minutes(16));
    assert_eq!(put(&session).await.0, StatusCode::OK);
}

async fn an_admin_resets_mfa_and_ends_every_session(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (uid, _) = t
        .user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let other = t.org_with_owner("globex").await;
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    let session = b["session_token"].as_str().unwrap().to_owned();
    enrol_totp(&t, &session).await;
    let (s, st) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{uid}/mfa"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(st["factors"][0]["kind"], "totp");
    assert!(st["factors"][0].get("secret").is_none(), "{st}");
    // Another organization sees nothing, and cannot reset it.
    let (s, _) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{uid}/mfa"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/globex/users/{uid}/mfa/reset"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        t.scalar(&format!(
            "SELECT COUNT(*) FROM mfa_factors WHERE user_id = '{uid}'"
        ))
        .await,
        1
    );
    let (s, _) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/users/{uid}/mfa/reset"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.call("GET", "/api/v1/me", Some(&session), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the reset ended the session");
    let (_, b) = login_org(&t, "acme", "ann@acme.example").await;
    assert!(b["session_token"].is_string(), "no factor left: {b}");
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'mfa.reset'")
            .await,
        1
    );
}

async fn bad_mfa_policies_and_inputs_change_nothing(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (_, before) = t
        .call("GET", "/api/v1/orgs/acme/mfa-policy", Some(&owner), None)
        .await;
    for bad in [
        json!({"mode": "groups"}),
        json!({"mode": "groups", "groups": ["no-such-group"]}),
        json!({"mode": "required", "methods": []}),
        json!({"mode": "optional", "groups": ["x"]}),
        json!({"mode": "sometimes"}),
        json!({"step_up_minutes": 0}),
        json!({"methods": ["sms"]}),
        json!({"mode": "required", "extra": 1}),
    ] {
        let (s, b) = t
            .call(
                "PUT",
                "/api/v1/orgs/acme/mfa-policy",
                Some(&owner),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
        assert_eq!(b["status"], 422);
    }
    let (_, after) = t
        .call("GET", "/api/v1/orgs/acme/mfa-policy", Some(&owner), None)
        .await;
    assert_eq!(before, after);
    // Those the server understood (not the malformed bodies) are audited.
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'policy.mfa_rejected'")
            .await,
        5
    );
    // Garbage challenges, methods and codes: clear refusals.
    for (body, status) in [
        (
            json!({"challenge_id": "mfc_nope", "method": "totp", "code": "123456"}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"challenge_id": "", "method": "totp", "code": ""}),
            StatusCode::FORBIDDEN,
        ),
        (
            json!({"challenge_id": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, b) = t.call("POST", "/api/v1/auth/mfa", None, Some(body)).await;
        assert_eq!(s, status, "{b}");
    }
    // An API token cannot manage MFA.
    let (s, b) = t
        .call("POST", "/api/v1/me/mfa/totp", Some(&owner), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
}

both!(
    totp_enrolment_sign_in_and_replay,
    recovery_codes_work_once_and_can_be_replaced,
    email_codes_as_a_second_factor,
    a_required_policy_enrols_before_any_session,
    mfa_for_admins_and_chosen_groups,
    admin_actions_need_a_recent_second_factor,
    an_admin_resets_mfa_and_ends_every_session,
    bad_mfa_policies_and_inputs_change_nothing,
);
