//! Issue 5 §4 and §6: risk-based sign-in (unknown device, new country,
//! impossible travel from a real MaxMind-format city database, denylisted
//! networks, rapid address changes within a session) mapped to assurance by
//! the risk policy; devices remembered by their cookie, announced by email,
//! renamed, forgotten and cleared.

use crate::signin::PW;
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::geoip;
use muster_testkit::smtp::SmtpSink;
use serde_json::Value;

const MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15";

fn city_db() -> Vec<u8> {
    geoip::build(&[
        ("81.0.0.0/8", "DE", Some((52.52, 13.40))),
        ("8.0.0.0/8", "US", Some((37.77, -122.42))),
        ("203.0.113.0/24", "FR", Some((48.86, 2.35))),
    ])
}

/// A device cookie as a browser holds one after its first sign-in page.
fn new_device() -> String {
    muster_testkit::muster_core::tokens::format(
        "msd",
        uuid::Uuid::now_v7(),
        &muster_testkit::muster_app::secrets::random_secret(),
    )
}

/// Signs Ann in from `ip` through the JSON API with this device cookie
/// (none: a client that keeps no cookies): (status, body, the device cookie
/// the client holds after — the API never mints one).
async fn sign_in(
    t: &TestApp,
    ip: &str,
    device: Option<&str>,
) -> (StatusCode, Value, Option<String>) {
    let addr: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
    let mut b = axum::http::Request::post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .header("user-agent", MAC)
        .extension(axum::extract::ConnectInfo(addr));
    if let Some(d) = device {
        b = b.header("cookie", format!("muster_device={d}"));
    }
    let req = b
        .body(axum::body::Body::from(
            json!({"email": "ann@acme.example", "password": PW, "org": "acme"}).to_string(),
        ))
        .unwrap();
    let (s, h, v) = t.send_full(req).await;
    let minted = h
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find_map(|c| c.strip_prefix("muster_device="))
        .map(|c| c.split(';').next().unwrap().to_owned());
    (s, v, minted.or(device.map(str::to_owned)))
}

async fn setup(t: &TestApp) -> (String, String) {
    let owner = t.org_with_owner("acme").await;
    let (id, _) = t
        .user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    (owner, id)
}

fn last_login_risk(v: &Value) -> &Value {
    &v["changes"]["risk"]
}

async fn audit(t: &TestApp, owner: &str, action: &str) -> Vec<Value> {
    let (s, b) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?action={action}"),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["items"]
        .as_array()
        .or(b.as_array())
        .cloned()
        .unwrap_or_default()
}

async fn a_new_device_is_remembered_announced_and_forgettable(t: TestApp) {
    let sink = SmtpSink::start().await;
    let (owner, ann_id) = setup(&t).await;
    // A client without cookies is never "remembered" (and never mailed).
    let (s, b, none) = sign_in(&t, "81.1.1.1", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(none, None, "the API mints no device cookie");
    let laptop = new_device();
    let (s, b, _) = sign_in(&t, "81.1.1.1", Some(&laptop)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The same browser again: known, nothing to announce.
    let (s, b, _) = sign_in(&t, "81.1.1.1", Some(&laptop)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let session = b["session_token"].as_str().unwrap().to_owned();
    t.deliver_mail(&sink).await;
    // One email: the laptop's first sign-in (the account had signed in
    // before, cookie-less); none for its second, nor for the cookie-less one.
    assert_eq!(crate::signin::emails_to(&sink, "ann@acme.example"), 1);
    // A new browser: remembered, and its owner is told.
    let phone = new_device();
    let (s, _, _) = sign_in(&t, "81.1.1.1", Some(&phone)).await;
    assert_eq!(s, StatusCode::OK);
    t.deliver_mail(&sink).await;
    assert_eq!(crate::signin::emails_to(&sink, "ann@acme.example"), 2);
    let mail = sink
        .messages()
        .into_iter()
        .rev()
        .find(|m| {
            m.header("subject")
                .is_some_and(|s| s.contains("New sign-in"))
        })
        .expect("a new-device email");
    assert!(
        mail.text().contains("Safari on macOS, from 81.1.1.1"),
        "{}",
        mail.text()
    );
    // A forged device cookie is just an unknown device.
    let (s, _, _) = sign_in(&t, "81.1.1.1", Some(&crate::forge(&laptop))).await;
    assert_eq!(s, StatusCode::OK);
    let logins = audit(&t, &owner, "auth.login").await;
    let unknown = logins
        .iter()
        .filter(|e| {
            last_login_risk(e)["reasons"]
                .to_string()
                .contains("unknown_device")
        })
        .count();
    assert_eq!(
        unknown, 3,
        "the laptop's first time, the phone and the forgery: {logins:?}"
    );

    // The user sees, renames and forgets devices; the stored secret is a hash.
    let devices = async |tok: &str| {
        let (s, _, b) = t
            .call_with(
                "GET",
                "/api/v1/me/devices",
                &[
                    ("authorization", &format!("Bearer {tok}")),
                    ("cookie", &format!("muster_device={laptop}")),
                ],
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b.as_array().unwrap().clone()
    };
    let list = devices(&session).await;
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list.iter().filter(|d| d["current"] == true).count(), 1);
    assert_eq!(
        t.scalar(&format!(
            "SELECT COUNT(*) FROM devices WHERE secret_hash LIKE '%{}%'",
            &laptop[4..20]
        ))
        .await,
        0
    );
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let (s, _) = t
        .call(
            "PATCH",
            &format!("/api/v1/me/devices/{id}"),
            Some(&session),
            Some(json!({"name": "Work laptop"})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .call(
            "PATCH",
            &format!("/api/v1/me/devices/{id}"),
            Some(&session),
            Some(json!({"name": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        devices(&session)
            .await
            .iter()
            .any(|d| d["name"] == "Work laptop")
    );
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/me/devices/{id}"),
            Some(&session),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(devices(&session).await.len(), 2);
    // Another user's device is not found.
    let (_, bob) = t
        .user_with_token("acme", "bob@acme.example", &["member"])
        .await;
    let other = devices(&session).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/me/devices/{other}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // An admin sees them and clears them all.
    let (s, b) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{ann_id}/devices"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b.as_array().unwrap().len(), 2);
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/users/{ann_id}/devices"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(devices(&session).await.len(), 0);
    assert_eq!(audit(&t, &owner, "device.cleared").await.len(), 1);
}

async fn risk_levels_follow_the_policy(mut t: TestApp) {
    t.with_geoip(city_db());
    let (owner, _) = setup(&t).await;
    let laptop = new_device();
    let (s, _, _) = sign_in(&t, "81.1.1.1", Some(&laptop)).await;
    assert_eq!(s, StatusCode::OK);
    // An hour later from San Francisco: faster than any plane → high → refused.
    t.clock.advance(time::Duration::hours(1));
    let (s, b, _) = sign_in(&t, "8.8.8.8", Some(&laptop)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["type"], "urn:muster:problem:sign-in-denied");
    let failed = audit(&t, &owner, "auth.risk_denied").await;
    let risk = failed[0]["changes"]["risk"].clone();
    assert_eq!(risk["level"], "high", "{failed:?}");
    assert!(
        risk["reasons"].to_string().contains("impossible_travel"),
        "{risk}"
    );
    // Half a day later, Paris: a new country → medium → a second factor,
    // enrolled now since Ann has none.
    t.clock.advance(time::Duration::hours(12));
    let (s, b, _) = sign_in(&t, "203.0.113.5", Some(&laptop)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["mfa_required"], true, "{b}");
    assert_eq!(b["enrolment_required"], true);
    // The organization decides medium is fine with a password.
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/risk-policy",
            Some(&owner),
            Some(json!({"medium": "l1", "deny_networks": ["198.51.100.0/24"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b, _) = sign_in(&t, "203.0.113.5", Some(&laptop)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b["session_token"].is_string(), "{b}");
    // A denylisted network is high on its own.
    let (s, _, _) = sign_in(&t, "198.51.100.7", Some(&laptop)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Contradictions and bad entries are refused; nothing changes.
    for bad in [
        json!({"low": "l2", "medium": "l1"}),
        json!({"high": "l1"}),
        json!({"deny_networks": ["nope"]}),
        json!({"medium": "maybe"}),
    ] {
        let (s, b) = t
            .call(
                "PUT",
                "/api/v1/orgs/acme/risk-policy",
                Some(&owner),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
    }
    let (_, p) = t
        .call("GET", "/api/v1/orgs/acme/risk-policy", Some(&owner), None)
        .await;
    assert_eq!(p["medium"], "l1");
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'policy.risk_rejected'")
            .await,
        3,
        "the three the server understood"
    );
}

async fn rapid_address_changes_end_a_session(t: TestApp) {
    let (owner, _) = setup(&t).await;
    let (s, b, _) = sign_in(&t, "81.1.1.1", None).await;
    assert_eq!(s, StatusCode::OK);
    let session = b["session_token"].as_str().unwrap().to_owned();
    let me = async |ip: &str| {
        t.call_from((ip, MAC), "GET", "/api/v1/me", Some(&session), None)
            .await
            .0
    };
    assert_eq!(me("81.1.1.1").await, StatusCode::OK);
    assert_eq!(me("81.1.1.2").await, StatusCode::OK);
    assert_eq!(me("81.1.1.3").await, StatusCode::OK);
    // The third change within ten minutes: high risk, and the session ends.
    assert_eq!(me("81.1.1.4").await, StatusCode::UNAUTHORIZED);
    assert_eq!(me("81.1.1.4").await, StatusCode::UNAUTHORIZED);
    let ended = audit(&t, &owner, "session.ended_by_risk").await;
    assert_eq!(ended.len(), 1);
    assert!(
        ended[0]["changes"]["risk"]["reasons"]
            .to_string()
            .contains("rapid_ip_changes")
    );
    // Changes spread out over time are travel, not a hijack.
    let (_, b, _) = sign_in(&t, "81.1.1.1", None).await;
    let calm = b["session_token"].as_str().unwrap().to_owned();
    for ip in ["81.2.0.1", "81.2.0.2", "81.2.0.3", "81.2.0.4"] {
        t.clock.advance(time::Duration::minutes(11));
        let (s, _) = t
            .call_from((ip, MAC), "GET", "/api/v1/me", Some(&calm), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{ip}");
    }
}

/// A sign-in's writes go together (on PostgreSQL as one statement): the
/// device, the history row pointing at it, the history past the retention
/// forgotten, the failures forgiven, the session, the last sign-in time and
/// the audit event.
async fn a_sign_in_writes_its_device_history_session_and_event_together(t: TestApp) {
    let (_owner, ann_id) = setup(&t).await;
    let (s, b, _) = sign_in(&t, "81.1.1.1", None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // That sign-in is now past the 90 days the history keeps.
    t.raw(&format!(
        "UPDATE sign_ins SET at = at - {} WHERE user_id = '{ann_id}'",
        91 * 86_400_000_i64
    ))
    .await;
    // A wrong password first: a failure to forgive.
    let (s, _) = t
        .call_from(
            ("81.1.1.1", MAC),
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "ann@acme.example", "password": "Wrong-pass1!", "org": "acme"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM auth_failures").await, 2);
    let laptop = new_device();
    let (s, b, _) = sign_in(&t, "81.1.1.1", Some(&laptop)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let session = b["session"]["id"].as_str().unwrap();
    // The old row is gone; the new one names the device just recorded.
    let q = |sql: &str| sql.replace("ANN", &ann_id);
    assert_eq!(
        t.scalar(&q("SELECT COUNT(*) FROM sign_ins WHERE user_id = 'ANN'"))
            .await,
        1
    );
    assert_eq!(
        t.scalar(&q(
            "SELECT COUNT(*) FROM sign_ins s JOIN devices d ON d.id = s.device_id WHERE s.user_id = 'ANN'"
        ))
        .await,
        1
    );
    // The account's counter is forgiven; the address's stays.
    assert_eq!(t.scalar("SELECT COUNT(*) FROM auth_failures").await, 1);
    assert_eq!(
        t.scalar(&format!(
            "SELECT COUNT(*) FROM sessions WHERE id = '{session}' AND user_id = '{ann_id}'"
        ))
        .await,
        1
    );
    assert_eq!(
        t.scalar(&q(
            "SELECT COUNT(*) FROM users WHERE id = 'ANN' AND last_sign_in_at IS NOT NULL"
        ))
        .await,
        1
    );
    assert_eq!(t.audit_count("auth.login", session).await, 1);
}

/// A device used again within a minute from the same address and country is
/// not rewritten (its history rows still name it), nor is the user's last
/// sign-in time; a new address, or a minute later, is recorded.
async fn a_device_used_again_within_a_minute_is_not_rewritten(t: TestApp) {
    let (_owner, ann_id) = setup(&t).await;
    let laptop = new_device();
    let device = async |col: &str| {
        t.scalar(&format!(
            "SELECT {col} FROM devices WHERE user_id = '{ann_id}'"
        ))
        .await
    };
    let signed_in_at = async || {
        t.scalar(&format!(
            "SELECT last_sign_in_at FROM users WHERE id = '{ann_id}'"
        ))
        .await
    };
    let named = async || {
        t.scalar(&format!(
            "SELECT COUNT(*) FROM sign_ins s JOIN devices d ON d.id = s.device_id \
             WHERE s.user_id = '{ann_id}'"
        ))
        .await
    };
    let (s, b, _) = sign_in(&t, "81.1.1.1", Some(&laptop)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (seen, at) = (device("last_seen_at").await, signed_in_at().await);
    t.clock.advance(time::Duration::seconds(10));
    let (s, b, _) = sign_in(&t, "81.1.1.1", Some(&laptop)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(device("last_seen_at").await, seen, "not rewritten");
    assert_eq!(signed_in_at().await, at, "within the grain");
    assert_eq!(named().await, 2, "both history rows name the device");
    // Another address: recorded at once.
    t.clock.advance(time::Duration::seconds(10));
    let (s, b, _) = sign_in(&t, "81.1.1.2", Some(&laptop)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(device("last_seen_at").await, seen + 20_000);
    assert_eq!(
        device("COUNT(*) FILTER (WHERE last_ip = '81.1.1.2')").await,
        1
    );
    // The same address a minute later: recorded, and so is the sign-in.
    t.clock.advance(time::Duration::seconds(61));
    let (s, b, _) = sign_in(&t, "81.1.1.2", Some(&laptop)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(device("last_seen_at").await, seen + 81_000);
    assert_eq!(signed_in_at().await, at + 81_000);
    assert_eq!(named().await, 4);
    assert_eq!(device("COUNT(*)").await, 1);
}

/// The risk engine's baseline is summarised by the database from the last
/// fifty sign-ins only: their number and oldest time (for pruning), the
/// newest one with a location (rows without one are skipped), and each
/// country once. A sign-in further back than fifty counts for nothing.
async fn the_risk_baseline_summarises_the_last_fifty_sign_ins(t: TestApp) {
    use muster_testkit::muster_store::devices::{Baseline, SeenDevice, baseline};
    use muster_testkit::muster_store::failures;
    let (_owner, ann_id) = setup(&t).await;
    let org = muster_testkit::muster_store::orgs::by_slug(&t.app.db, "acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        baseline(&t.app.db, &ann_id, 50).await.unwrap(),
        Baseline::default()
    );
    let row = |n: i64, country: &str, coords: &str| {
        format!(
            "INSERT INTO sign_ins (id, org_id, user_id, at, ip, country, latitude, longitude) \
             VALUES ('s{n:03}', '{}', '{ann_id}', {n}, '81.1.1.1', {country}, {coords})",
            org.id
        )
    };
    // Sign-in 1, the oldest, is the only one from Japan: beyond the last 50.
    t.raw(&row(1, "'JP'", "35.0, 139.0")).await;
    for n in 2..=49 {
        t.raw(&row(n, "'DE'", "52.5, 13.4")).await;
    }
    t.raw(&row(50, "'FR'", "48.8, 2.3")).await;
    // The newest two: one from an address without a place, one with a
    // country but no coordinates.
    t.raw(&row(51, "NULL", "NULL, NULL")).await;
    t.raw(&row(52, "'NL'", "NULL, NULL")).await;
    let mut b = baseline(&t.app.db, &ann_id, 50).await.unwrap();
    b.countries.sort();
    assert_eq!(
        b,
        Baseline {
            sign_ins: 50,
            oldest_at: Some(3),
            last_located: Some((50, 48.8, 2.3)),
            countries: vec!["DE".into(), "FR".into(), "NL".into()],
        }
    );
    // Another user's history is not Ann's.
    assert_eq!(
        baseline(&t.app.db, "someone-else", 50).await.unwrap(),
        Baseline::default()
    );
    // A password sign-in reads the same baseline, and whether the client's
    // device is known, in its first query (before the hash).
    t.raw(&format!(
        "INSERT INTO devices (id, org_id, user_id, secret_hash, name, created_at, last_seen_at) \
         VALUES ('d1', '{}', '{ann_id}', 'ann-device', 'Firefox', 1, 1)",
        org.id
    ))
    .await;
    let first = |email: &'static str, device: Option<&'static str>| {
        let (db, org_id) = (t.app.db.clone(), org.id.clone());
        async move {
            failures::attempt(
                &db,
                failures::Lookup {
                    org_id: &org_id,
                    email_key: Some(email),
                    account_key: "account:x",
                    ip_key: None,
                    device_hash: device,
                    history: 50,
                },
            )
            .await
            .unwrap()
        }
    };
    let a = first("ann@acme.example", Some("ann-device")).await;
    assert_eq!(a.user.map(|u| u.id), Some(ann_id.clone()));
    assert_eq!(a.baseline, b);
    // The device as stored, so that a sign-in can tell whether its use
    // changes the row; and the user's last sign-in time (none recorded yet).
    assert_eq!(
        a.device,
        Some(SeenDevice {
            id: "d1".into(),
            last_seen_at: 1,
            last_ip: None,
            last_country: None,
        })
    );
    assert_eq!(a.last_sign_in_at, None);
    let a = first("ann@acme.example", Some("another-device")).await;
    assert!(a.device.is_none());
    assert_eq!(a.baseline, b);
    assert!(first("ann@acme.example", None).await.device.is_none());
    t.raw(&format!(
        "UPDATE users SET last_sign_in_at = 77 WHERE id = '{ann_id}'"
    ))
    .await;
    assert_eq!(
        first("ann@acme.example", None).await.last_sign_in_at,
        Some(77)
    );
    // An unknown address: no user, no history, no device.
    let a = first("nobody@acme.example", Some("ann-device")).await;
    assert!(a.user.is_none());
    assert_eq!(a.baseline, Baseline::default());
    assert!(a.device.is_none());
    assert_eq!(a.last_sign_in_at, None);
}

both!(
    a_new_device_is_remembered_announced_and_forgettable,
    a_sign_in_writes_its_device_history_session_and_event_together,
    a_device_used_again_within_a_minute_is_not_rewritten,
    risk_levels_follow_the_policy,
    rapid_address_changes_end_a_session,
    the_risk_baseline_summarises_the_last_fifty_sign_ins,
);
