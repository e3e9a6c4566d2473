//! SCIM tokens in the session cache (`signin::cache`): a token's
//! authentication is answered from a copy, and every change that could alter
//! it counts — one made through this process from the very next request, one
//! made by another process from the request after it is heard. (That a
//! token's own writes are counted is `muster_store::scim`'s unit test.)

use crate::session_cache::{elsewhere, heard_after};
use crate::*;
use axum::http::StatusCode;
use muster_testkit::muster_app::Backend;

const USERS: &str = "/scim/v2/Users";

/// Calls `/Users` with `token` until one call is answered from a copy
/// (tests running beside this one commit too, and some commits drop copies).
async fn warm(t: &TestApp, token: &str) {
    let before = t.app.sessions.scim_hits();
    for _ in 0..500 {
        let (s, b) = t.call("GET", USERS, Some(token), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        if t.app.sessions.scim_hits() > before {
            return;
        }
    }
    panic!("the SCIM token was never answered from the cache");
}

/// A SCIM token of `acme`: (its id, its secret).
async fn scim_token(t: &TestApp, admin: &str) -> (String, String) {
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/scim-tokens",
            Some(admin),
            Some(json!({"name": "IdP"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    (
        b["id"].as_str().unwrap().to_owned(),
        b["secret"].as_str().unwrap().to_owned(),
    )
}

async fn scim_token_changes_made_here_count_from_the_next_request(t: TestApp) {
    let admin = t.org_with_owner("acme").await;

    // Revoked: the next request is refused.
    let (id, scim) = scim_token(&t, &admin).await;
    warm(&t, &scim).await;
    let path = format!("/api/v1/orgs/acme/scim-tokens/{id}");
    let (s, _) = t.call("DELETE", &path, Some(&admin), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.call("GET", USERS, Some(&scim), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked SCIM token");

    // Rotated without overlap: the old token is refused at once, the new
    // one accepted.
    let (id, old) = scim_token(&t, &admin).await;
    warm(&t, &old).await;
    let (s, b) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/scim-tokens/{id}/rotate"),
            Some(&admin),
            Some(json!({"overlap_hours": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _) = t.call("GET", USERS, Some(&old), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a rotated SCIM token");
    let (s, _) = t.call("GET", USERS, b["secret"].as_str(), None).await;
    assert_eq!(s, StatusCode::OK, "the token it was rotated to");

    // A copy does not carry a secret: a wrong one is refused, the right one
    // still accepted.
    let new = b["secret"].as_str().unwrap().to_owned();
    warm(&t, &new).await;
    let other = if new.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{other}", &new[..new.len() - 1]);
    let (s, _) = t.call("GET", USERS, Some(&forged), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a forged secret");
    let (s, _) = t.call("GET", USERS, Some(&new), None).await;
    assert_eq!(s, StatusCode::OK, "the right secret after a forged one");
}
both!(scim_token_changes_made_here_count_from_the_next_request);

async fn scim_token_changes_made_elsewhere_are_heard(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (id, scim) = scim_token(&t, &admin).await;
    warm(&t, &scim).await;
    // On PostgreSQL the token's last use, recorded elsewhere, is not
    // announced (SQLite sees every commit); its revocation is.
    let before = t.app.sessions.heard();
    let pg = t.backend() == Backend::Postgres;
    if pg {
        elsewhere(
            &t,
            &format!(
                "UPDATE scim_tokens SET last_used_at = 1, last_used_ip = '192.0.2.1' \
                 WHERE id = '{id}'"
            ),
        )
        .await;
    }
    elsewhere(
        &t,
        &format!("UPDATE scim_tokens SET revoked_at = 1 WHERE id = '{id}'"),
    )
    .await;
    heard_after(&t, before).await;
    let (s, _) = t.call("GET", USERS, Some(&scim), None).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a SCIM token revoked elsewhere"
    );
    if pg {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(
            t.app.sessions.heard(),
            before + 1,
            "a SCIM token's last use was announced"
        );
    }
}
both!(scim_token_changes_made_elsewhere_are_heard);
