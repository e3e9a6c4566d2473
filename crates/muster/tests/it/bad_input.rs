//! Bad input gets a clear problem-details error of the right status, and the
//! database is exactly as it was.

use crate::*;
use axum::body::Body;
use axum::http::Request;

async fn refused(t: &TestApp, req: Request<Body>, status: u16, needle: &str) {
    let before = t.fingerprint().await;
    let (s, p) = t.send(req).await;
    assert_eq!(s.as_u16(), status, "{p}");
    assert!(p.to_string().contains(needle), "expected '{needle}' in {p}");
    assert!(
        p["type"]
            .as_str()
            .is_some_and(|k| k.starts_with("urn:muster:problem:")),
        "{p}"
    );
    assert_eq!(
        t.fingerprint().await,
        before,
        "a refused request changed the database"
    );
}

fn post(path: &str, token: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn bad_bodies_are_refused_and_change_nothing(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let users = "/api/v1/orgs/acme/users";
    refused(&t, post(users, &owner, "{\"email\": "), 400, "EOF").await;
    refused(
        &t,
        post(users, &owner, r#"{"email":"a@b.io","admin":true}"#),
        422,
        "unknown field `admin`",
    )
    .await;
    refused(
        &t,
        post(users, &owner, r#"{"email":"not-an-email"}"#),
        422,
        "not a valid email",
    )
    .await;
    refused(
        &t,
        post(
            users,
            &owner,
            r#"{"email":"a@b.io","profile":{"title":"x\u0000"}}"#,
        ),
        422,
        "title",
    )
    .await;
    refused(
        &t,
        post(users, &owner, r#"{"email":"a@b.io","roles":["emperor"]}"#),
        422,
        "no role 'emperor'",
    )
    .await;
    refused(
        &t,
        post(users, &owner, r#"{"email":"a@b.io","password":"weak"}"#),
        422,
        "password",
    )
    .await;
    let big = format!(
        r#"{{"email":"a@b.io","profile":{{"custom_attributes":{{"x":"{}"}}}}}}"#,
        "a".repeat(300 * 1024)
    );
    refused(&t, post(users, &owner, &big), 413, "too-large").await;
    let no_type = Request::post(users)
        .header("authorization", format!("Bearer {owner}"))
        .body(Body::from(r#"{"email":"a@b.io"}"#))
        .unwrap();
    refused(&t, no_type, 415, "application/json").await;
}
both!(bad_bodies_are_refused_and_change_nothing);

async fn a_duplicate_email_differing_only_in_case_conflicts(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/users",
            Some(&owner),
            Some(json!({"email": "Ann@Acme.example"})),
        )
        .await;
    assert_eq!(s, 201);
    let req = post(
        "/api/v1/orgs/acme/users",
        &owner,
        r#"{"email":"aNN@acme.EXAMPLE"}"#,
    );
    refused(&t, req, 409, "already exists").await;
    // The failed insert left no transaction open: the next one goes through.
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/users",
            Some(&owner),
            Some(json!({"email": "bea@acme.example"})),
        )
        .await;
    assert_eq!(s, 201);
    // The same address in another organization is a different person.
    let other = t.org_with_owner("other").await;
    assert_eq!(
        t.call(
            "POST",
            "/api/v1/orgs/other/users",
            Some(&other),
            Some(json!({"email": "ann@acme.example"}))
        )
        .await
        .0,
        201
    );
}
both!(a_duplicate_email_differing_only_in_case_conflicts);

async fn an_illegal_transition_is_refused_with_the_reason(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (_, u) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/users",
            Some(&owner),
            Some(json!({"email": "p@acme.example"})),
        )
        .await;
    let id = u["id"].as_str().unwrap();
    let r = post(&format!("/api/v1/orgs/acme/users/{id}/suspend"), &owner, "");
    refused(&t, r, 409, "cannot suspend a user who is provisioned").await;
    let r = Request::delete(format!("/api/v1/orgs/acme/users/{id}"))
        .header("authorization", format!("Bearer {owner}"))
        .body(Body::empty())
        .unwrap();
    refused(&t, r, 409, "deactivate the account before deleting it").await;
    let r = post(&format!("/api/v1/orgs/acme/users/{id}/explode"), &owner, "");
    refused(&t, r, 404, "not found").await;
}
both!(an_illegal_transition_is_refused_with_the_reason);

async fn forged_expired_and_revoked_tokens_are_refused(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (s, created) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/api-tokens",
            Some(&owner),
            Some(json!({"name": "ci", "expires_in_days": 1})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&secret), None).await.0,
        200
    );
    // Forged: right id, wrong secret; and garbage.
    let forged = format!(
        "{}{}",
        &secret[..secret.len() - 3],
        if secret.ends_with("AAA") {
            "BBB"
        } else {
            "AAA"
        }
    );
    for bad in [forged.as_str(), "mst_nope", "", "Bearer"] {
        let (s, p) = t
            .call("GET", "/api/v1/orgs/acme/users", Some(bad), None)
            .await;
        assert_eq!(s, 401, "{bad}: {p}");
    }
    assert_eq!(
        t.call("GET", "/api/v1/orgs/acme/users", None, None).await.0,
        401
    );
    // Expired: one day and a second later.
    t.clock
        .advance(time::Duration::days(1) + time::Duration::seconds(1));
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&secret), None).await.0,
        401
    );
    // Revoked: the very next request.
    let (_, c2) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/api-tokens",
            Some(&owner),
            Some(json!({"name": "ci2"})),
        )
        .await;
    let s2 = c2["secret"].as_str().unwrap();
    let (s, _) = t
        .call(
            "DELETE",
            &format!(
                "/api/v1/orgs/acme/api-tokens/{}",
                c2["id"].as_str().unwrap()
            ),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, p) = t.call("GET", "/api/v1/me", Some(s2), None).await;
    assert_eq!(s, 401);
    assert_eq!(p["type"], "urn:muster:problem:unauthenticated");
    // The token list never shows a secret.
    let (_, list) = t
        .call("GET", "/api/v1/orgs/acme/api-tokens", Some(&owner), None)
        .await;
    assert!(!list.to_string().contains(&secret[20..]));
}
both!(forged_expired_and_revoked_tokens_are_refused);

async fn bad_queries_are_refused(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    for (q, field) in [
        ("state=zombie", "state"),
        ("limit=0", "limit"),
        ("limit=9999", "limit"),
        ("cursor=xyz", "cursor"),
    ] {
        let (s, p) = t
            .call(
                "GET",
                &format!("/api/v1/orgs/acme/users?{q}"),
                Some(&owner),
                None,
            )
            .await;
        assert_eq!(s, 422, "{q}: {p}");
        assert_eq!(p["errors"][0]["field"], field, "{q}");
    }
    let (s, _) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/users?limit=abc",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, 422);
}
both!(bad_queries_are_refused);

async fn users_search_and_paginate(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    for (e, n) in [
        ("ann@acme.example", "Ann Lee"),
        ("bob@acme.example", "Bob Stone"),
        ("carl@acme.example", "Carl 100%"),
    ] {
        let (s, _) = t
            .call(
                "POST",
                "/api/v1/orgs/acme/users",
                Some(&owner),
                Some(json!({"email": e, "profile": {"display_name": n}})),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (_, p) = t
        .call("GET", "/api/v1/orgs/acme/users?q=LEE", Some(&owner), None)
        .await;
    assert_eq!(p["items"].as_array().unwrap().len(), 1);
    assert_eq!(p["items"][0]["email"], "ann@acme.example");
    let (_, p) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/users?q=100%25",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(
        p["items"].as_array().unwrap().len(),
        1,
        "LIKE wildcards are literal"
    );
    let (_, p) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/users?state=provisioned&limit=2",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(p["items"].as_array().unwrap().len(), 2);
    let c = p["next_cursor"].as_str().unwrap();
    let (_, p2) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users?state=provisioned&limit=2&cursor={c}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert!(p2["next_cursor"].is_null());
}
both!(users_search_and_paginate);

async fn merge_patch_edits_and_guards_versions(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (_, u) = t.call("POST", "/api/v1/orgs/acme/users", Some(&owner), Some(json!({"email": "d@acme.example", "profile": {"title": "Eng", "enterprise": {"department": "R&D"}}}))).await;
    let id = u["id"].as_str().unwrap();
    let patch = json!({"profile": {"title": null, "given_name": "Dee", "enterprise": {"cost_center": "42"}}});
    let (s, u2) = t
        .call(
            "PATCH",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&owner),
            Some(patch),
        )
        .await;
    assert_eq!(s, 200, "{u2}");
    assert!(u2["profile"].get("title").is_none());
    assert_eq!(
        u2["profile"]["enterprise"],
        json!({"department": "R&D", "cost_center": "42"})
    );
    assert_eq!(u2["version"], 2);
    let stale = Request::patch(format!("/api/v1/orgs/acme/users/{id}"))
        .header("authorization", format!("Bearer {owner}"))
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "\"1\"")
        .body(Body::from(r#"{"profile":{"title":"CTO"}}"#))
        .unwrap();
    refused(&t, stale, 409, "changed since").await;
    let bad = Request::patch(format!("/api/v1/orgs/acme/users/{id}"))
        .header("authorization", format!("Bearer {owner}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"profile":{"shoe":1}}"#))
        .unwrap();
    refused(&t, bad, 422, "unknown field").await;
    let (_, ev) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?target={id}&action=user.updated"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(
        ev["items"][0]["changes"]["profile.given_name"],
        json!([null, "Dee"])
    );
}
both!(merge_patch_edits_and_guards_versions);
