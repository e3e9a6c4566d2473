//! Issue 5 §5: access policies over networks (IPv4 and IPv6), countries and
//! device OS — at sign-in and on every authenticated request, for sessions
//! and API tokens — with countries from a real MaxMind-format database the
//! test writes and Muster's production reader loads.

use crate::signin::PW;
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::geoip;
use serde_json::Value;

const MAC: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15";
const ANDROID: &str =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile";

fn geo_db() -> Vec<u8> {
    geoip::build(&[
        ("81.0.0.0/8", "DE", Some((52.52, 13.40))),
        ("2a01:4f8::/32", "DE", None),
        ("8.0.0.0/8", "US", Some((37.77, -122.42))),
        ("203.0.113.0/24", "FR", None),
    ])
}

async fn login_from(t: &TestApp, ip: &str, ua: &str) -> (StatusCode, Value) {
    t.call_from(
        (ip, ua),
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "ann@acme.example", "password": PW, "org": "acme"})),
    )
    .await
}

async fn put_policy(
    t: &TestApp,
    owner: &str,
    from: &str,
    q: &str,
    body: Value,
) -> (StatusCode, Value) {
    t.call_from(
        (from, MAC),
        "PUT",
        &format!("/api/v1/orgs/acme/access-policy{q}"),
        Some(owner),
        Some(body),
    )
    .await
}

async fn setup(t: &TestApp) -> String {
    let owner = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    owner
}

async fn network_rules_hold_at_sign_in_and_on_every_request(t: TestApp) {
    let owner = setup(&t).await;
    let (s, b) = login_from(&t, "81.1.1.1", MAC).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ann = b["session_token"].as_str().unwrap().to_owned();
    let policy = json!({"networks": {"allow": ["81.0.0.0/8", "2a01:4f8::/32"]}});
    let (s, b) = put_policy(&t, &owner, "81.2.2.2", "", policy).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Requests minutes apart: rapid address changes would end the session
    // (a risk signal) before the network rule is reached.
    let me = async |ip: &str, tok: &str| {
        t.clock.advance(time::Duration::minutes(11));
        t.call_from((ip, MAC), "GET", "/api/v1/me", Some(tok), None)
            .await
    };
    assert_eq!(me("81.1.1.1", &ann).await.0, StatusCode::OK);
    assert_eq!(me("::ffff:81.1.1.1", &ann).await.0, StatusCode::OK);
    assert_eq!(me("2a01:4f8:1::9", &ann).await.0, StatusCode::OK);
    // The session's address moves out of the allowed networks: refused at once.
    let (s, b) = me("9.9.9.9", &ann).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["type"], "urn:muster:problem:access-denied");
    // (Spread out: rapid address changes would end the session first.)
    t.clock.advance(time::Duration::minutes(11));
    let (s, _) = t
        .call_from(
            ("2a02::1", MAC),
            "GET",
            "/api/v1/me/sessions",
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The same rules for API tokens.
    let users = "/api/v1/orgs/acme/users";
    assert_eq!(
        t.call_from(("9.9.9.9", MAC), "GET", users, Some(&owner), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.call_from(("81.3.3.3", MAC), "GET", users, Some(&owner), None)
            .await
            .0,
        StatusCode::OK
    );
    // Sign-in from outside: the right password opens nothing.
    let sessions = t.scalar("SELECT COUNT(*) FROM sessions").await;
    let (s, b) = login_from(&t, "9.9.9.9", MAC).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("network"));
    assert_eq!(t.scalar("SELECT COUNT(*) FROM sessions").await, sessions);
    assert_eq!(
        t.audit_count("auth.login_failed", "access policy (network)")
            .await,
        1
    );
    // A denied range inside an allowed one carves it out.
    let policy = json!({"networks": {"allow": ["81.0.0.0/8"], "deny": ["81.1.0.0/16"]}});
    let (s, _) = put_policy(&t, &owner, "81.2.2.2", "", policy).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me("81.1.1.1", &ann).await.0, StatusCode::FORBIDDEN);
    assert_eq!(me("81.9.1.1", &ann).await.0, StatusCode::OK);
    assert!(
        t.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'access.denied'")
            .await
            >= 4
    );
}

async fn a_policy_that_shuts_out_its_author_must_be_confirmed(t: TestApp) {
    let owner = setup(&t).await;
    let policy = json!({"networks": {"allow": ["81.0.0.0/8"]}});
    let (s, b) = put_policy(&t, &owner, "9.9.9.9", "", policy.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["errors"][0]["field"], "confirm_lockout");
    let (_, now) = t
        .call_from(
            ("9.9.9.9", MAC),
            "GET",
            "/api/v1/orgs/acme/access-policy",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(now["networks"]["allow"], json!([]), "nothing saved");
    let (s, _) = put_policy(&t, &owner, "9.9.9.9", "?confirm_lockout=true", policy).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .call_from(
            ("9.9.9.9", MAC),
            "GET",
            "/api/v1/orgs/acme/access-policy",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "as confirmed");
}

async fn country_rules_use_the_geoip_database(mut t: TestApp) {
    let owner = setup(&t).await;
    let policy = json!({"countries": {"allow": ["DE"]}});
    let (s, b) = put_policy(&t, &owner, "81.2.2.2", "", policy.clone()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("MUSTER_GEOIP_DB"),
        "{b}"
    );
    t.with_geoip(geo_db());
    let (s, b) = put_policy(&t, &owner, "81.2.2.2", "", policy).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(login_from(&t, "81.1.1.1", MAC).await.0, StatusCode::OK);
    assert_eq!(
        login_from(&t, "2a01:4f8::7", MAC).await.0,
        StatusCode::OK,
        "DE over IPv6"
    );
    let (s, b) = login_from(&t, "8.8.8.8", MAC).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("country"));
    // An address the database does not know fails an allow list.
    assert_eq!(
        login_from(&t, "192.0.2.1", MAC).await.0,
        StatusCode::FORBIDDEN
    );
    // Deny lists: France out, everyone else in.
    let (s, _) = put_policy(
        &t,
        &owner,
        "81.2.2.2",
        "",
        json!({"countries": {"deny": ["FR"]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        login_from(&t, "203.0.113.5", MAC).await.0,
        StatusCode::FORBIDDEN
    );
    // A day later: Berlin to San Francisco is travel, not a risk.
    t.clock.advance(time::Duration::hours(24));
    assert_eq!(login_from(&t, "8.8.8.8", MAC).await.0, StatusCode::OK);
}

async fn device_rules_read_the_user_agent(t: TestApp) {
    let owner = setup(&t).await;
    let (s, _) = put_policy(
        &t,
        &owner,
        "81.2.2.2",
        "",
        json!({"device_os": {"deny": ["android"]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = login_from(&t, "81.1.1.1", ANDROID).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("device"));
    let (s, b) = login_from(&t, "81.1.1.1", MAC).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ann = b["session_token"].as_str().unwrap();
    let (s, _) = t
        .call_from(("81.1.1.1", ANDROID), "GET", "/api/v1/me", Some(ann), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn a_spoofed_forwarded_for_changes_nothing(mut t: TestApp) {
    let owner = setup(&t).await;
    let (s, _) = put_policy(
        &t,
        &owner,
        "81.2.2.2",
        "",
        json!({"networks": {"allow": ["81.0.0.0/8"]}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let login = |peer: &str| {
        let addr: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
        axum::http::Request::post("/api/v1/auth/login")
            .header("content-type", "application/json")
            .header("x-forwarded-for", "81.1.1.1")
            .extension(axum::extract::ConnectInfo(addr))
            .body(axum::body::Body::from(
                json!({"email": "ann@acme.example", "password": PW, "org": "acme"}).to_string(),
            ))
            .unwrap()
    };
    // An untrusted peer's header is ignored: the peer itself is refused.
    let (s, _, _) = t.send_full(login("9.9.9.9")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Through a trusted proxy, the client it names counts.
    t.with_trusted_proxies(&["10.0.0.0/8"]);
    let (s, _, b) = t.send_full(login("10.0.0.1")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

async fn bad_policies_are_refused_audited_and_change_nothing(t: TestApp) {
    let owner = setup(&t).await;
    let (_, before) = t
        .call_from(
            ("81.2.2.2", MAC),
            "GET",
            "/api/v1/orgs/acme/access-policy",
            Some(&owner),
            None,
        )
        .await;
    for (body, field) in [
        (
            json!({"networks": {"allow": ["10.0.0.0/33"]}}),
            "networks.allow",
        ),
        (
            json!({"networks": {"deny": ["300.1.1.1"]}}),
            "networks.deny",
        ),
        (
            json!({"networks": {"allow": ["10.1.0.0/16"], "deny": ["10.0.0.0/8"]}}),
            "networks",
        ),
        (json!({"countries": {"allow": ["de"]}}), "countries.allow"),
        (json!({"countries": {"deny": ["ZZ"]}}), "countries.deny"),
        (
            json!({"device_os": {"allow": ["ios"], "deny": ["ios"]}}),
            "device_os",
        ),
    ] {
        let (s, b) = put_policy(&t, &owner, "81.2.2.2", "", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert_eq!(b["errors"][0]["field"], field, "{body}: {b}");
    }
    for body in [
        json!({"device_os": {"allow": ["beos"]}}),
        json!({"networks": {"only": []}}),
    ] {
        let (s, b) = put_policy(&t, &owner, "81.2.2.2", "", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
    }
    let (_, after) = t
        .call_from(
            ("81.2.2.2", MAC),
            "GET",
            "/api/v1/orgs/acme/access-policy",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(before, after);
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'policy.access_rejected'")
            .await,
        6
    );
}

both!(
    network_rules_hold_at_sign_in_and_on_every_request,
    a_policy_that_shuts_out_its_author_must_be_confirmed,
    country_rules_use_the_geoip_database,
    device_rules_read_the_user_agent,
    a_spoofed_forwarded_for_changes_nothing,
    bad_policies_are_refused_audited_and_change_nothing,
);
