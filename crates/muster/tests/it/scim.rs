//! `/scim/v2`: tokens, errors with their scimType, tenant isolation, ETags,
//! filters and paging, lifecycle through `active` and DELETE, and what the
//! organization's SCIM policy decides.

use crate::*;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::Value;

pub const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A SCIM token of `slug`, made through the REST API by its owner.
pub async fn scim_token(t: &TestApp, admin: &str, slug: &str) -> String {
    let (s, v) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/{slug}/scim-tokens"),
            Some(admin),
            Some(json!({"name": "idp"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["secret"].as_str().unwrap().to_owned()
}

/// One SCIM request: (status, headers, body).
pub async fn scim(
    t: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("/scim/v2{path}"))
        .header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/scim+json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    t.send_full(req).await
}

pub async fn new_user(t: &TestApp, tok: &str, user_name: &str, extra: Value) -> Value {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "emails": [{"value": format!("{}@example.com", user_name.to_lowercase()), "type": "work", "primary": true}],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (s, _, v) = scim(t, "POST", "/Users", tok, Some(body), &[]).await;
    assert_eq!(s, 201, "{v}");
    v
}

fn assert_scim_error(s: StatusCode, v: &Value, status: u16, scim_type: Option<&str>) {
    assert_eq!(s.as_u16(), status, "{v}");
    assert_eq!(
        v["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{v}"
    );
    assert_eq!(v["status"], json!(status.to_string()), "{v}");
    match scim_type {
        Some(st) => assert_eq!(v["scimType"], st, "{v}"),
        None => assert!(v.get("scimType").is_none(), "{v}"),
    }
    let text = v.to_string().to_lowercase();
    for leak in ["select ", "insert ", "sqlx", "panicked", "mss_"] {
        assert!(!text.contains(leak), "{leak} leaked: {v}");
    }
}

async fn tokens_are_refused_once_revoked_expired_or_off_their_network(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let (s, h, v) = scim(&t, "GET", "/Users", &tok, None, &[]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h["content-type"], "application/scim+json");

    // Not a SCIM token at all: an API token, garbage, nothing.
    for bad in [admin.as_str(), "mss_nope", ""] {
        let (s, h, v) = scim(&t, "GET", "/Users", bad, None, &[]).await;
        assert_scim_error(s, &v, 401, None);
        assert_eq!(h["www-authenticate"], "Bearer");
    }

    // Revocation: refused from the very next request.
    let (_, list) = t
        .call("GET", "/api/v1/orgs/acme/scim-tokens", Some(&admin), None)
        .await;
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert!(list[0].get("secret").is_none() && !list.to_string().contains(&tok));
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/scim-tokens/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, _, v) = scim(&t, "GET", "/Users", &tok, None, &[]).await;
    assert_scim_error(s, &v, 401, None);

    // Expiry.
    let (_, v) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/scim-tokens",
            Some(&admin),
            Some(json!({"name": "short", "expires_in_days": 1})),
        )
        .await;
    let short = v["secret"].as_str().unwrap().to_owned();
    assert_eq!(scim(&t, "GET", "/Users", &short, None, &[]).await.0, 200);
    t.clock.advance(time::Duration::days(2));
    assert_eq!(scim(&t, "GET", "/Users", &short, None, &[]).await.0, 401);

    // An IP allow-list refuses a request that does not come from it.
    let (_, v) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/scim-tokens",
            Some(&admin),
            Some(json!({"name": "fenced", "ip_allow": ["10.0.0.0/8"]})),
        )
        .await;
    let fenced = v["secret"].as_str().unwrap().to_owned();
    assert_eq!(v["ip_allow"], json!(["10.0.0.0/8"]));
    assert_eq!(scim(&t, "GET", "/Users", &fenced, None, &[]).await.0, 401);
    let (s, v) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/scim-tokens",
            Some(&admin),
            Some(json!({"name": "bad", "ip_allow": ["not-a-network"]})),
        )
        .await;
    assert_eq!(s, 422, "{v}");

    // Rotation: both work during the overlap, the old one not after it.
    let (_, v) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/scim-tokens",
            Some(&admin),
            Some(json!({"name": "rot"})),
        )
        .await;
    let (old, old_id) = (
        v["secret"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    );
    let (s, v) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/scim-tokens/{old_id}/rotate"),
            Some(&admin),
            Some(json!({"overlap_hours": 1})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let new = v["secret"].as_str().unwrap().to_owned();
    assert_eq!(scim(&t, "GET", "/Users", &old, None, &[]).await.0, 200);
    assert_eq!(scim(&t, "GET", "/Users", &new, None, &[]).await.0, 200);
    t.clock.advance(time::Duration::hours(2));
    assert_eq!(scim(&t, "GET", "/Users", &old, None, &[]).await.0, 401);
    assert_eq!(scim(&t, "GET", "/Users", &new, None, &[]).await.0, 200);

    // Members cannot manage SCIM tokens.
    let (_, member) = t
        .user_with_token("acme", "m@acme.example", &["member"])
        .await;
    let (s, _) = t
        .call("GET", "/api/v1/orgs/acme/scim-tokens", Some(&member), None)
        .await;
    assert_eq!(s, 403);
}
both!(tokens_are_refused_once_revoked_expired_or_off_their_network);

async fn bad_input_gets_the_right_scim_type_and_changes_nothing(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let u = new_user(&t, &tok, "alice", json!({"externalId": "E-1"})).await;
    let id = u["id"].as_str().unwrap().to_owned();
    let before = t.fingerprint().await;
    let patch = |ops: Value| json!({"schemas": [PATCH], "Operations": ops});
    // (method, path, body, status, scimType)
    type Case<'a> = (&'a str, String, Option<Value>, u16, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/Users?filter=userName%20xx%20%22a%22".into(),
            None,
            400,
            Some("invalidFilter"),
        ),
        (
            "GET",
            "/Users?filter=(userName%20eq%20%22a%22".into(),
            None,
            400,
            Some("invalidFilter"),
        ),
        (
            "GET",
            "/Users?filter=nope%20eq%20%22a%22".into(),
            None,
            400,
            Some("invalidFilter"),
        ),
        (
            "GET",
            "/Users?filter=password%20eq%20%22x%22".into(),
            None,
            400,
            Some("sensitive"),
        ),
        (
            "GET",
            "/Users?count=abc".into(),
            None,
            400,
            Some("invalidValue"),
        ),
        (
            "GET",
            "/Users?sortBy=nope".into(),
            None,
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/Users".into(),
            Some(json!({"userName": "ALICE", "emails": [{"value": "x@example.com"}]})),
            409,
            Some("uniqueness"),
        ),
        (
            "POST",
            "/Users".into(),
            Some(
                json!({"userName": "bob", "externalId": "E-1", "emails": [{"value": "b@example.com"}]}),
            ),
            409,
            Some("uniqueness"),
        ),
        (
            "POST",
            "/Users".into(),
            Some(json!({"userName": "bob", "emails": [{"value": "Alice@Example.com"}]})),
            409,
            Some("uniqueness"),
        ),
        (
            "POST",
            "/Users".into(),
            Some(json!({"emails": [{"value": "c@example.com"}]})),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/Users".into(),
            Some(
                json!({"userName": "c", "active": "perhaps", "emails": [{"value": "c@example.com"}]}),
            ),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/Users".into(),
            Some(
                json!({"userName": "c", "password": "weak", "emails": [{"value": "c@example.com"}]}),
            ),
            400,
            Some("invalidValue"),
        ),
        (
            "POST",
            "/Users".into(),
            Some(json!([1, 2])),
            400,
            Some("invalidSyntax"),
        ),
        (
            "PATCH",
            format!("/Users/{id}"),
            Some(patch(
                json!([{"op": "replace", "path": "id", "value": "x"}]),
            )),
            400,
            Some("mutability"),
        ),
        (
            "PATCH",
            format!("/Users/{id}"),
            Some(patch(
                json!([{"op": "replace", "path": "nope.x", "value": "x"}]),
            )),
            400,
            Some("invalidPath"),
        ),
        (
            "PATCH",
            format!("/Users/{id}"),
            Some(patch(
                json!([{"op": "remove", "path": "emails[type eq \"fax\"]"}]),
            )),
            400,
            Some("noTarget"),
        ),
        (
            "PATCH",
            format!("/Users/{id}"),
            Some(patch(json!([{"op": "remove"}]))),
            400,
            Some("noTarget"),
        ),
        (
            "PATCH",
            format!("/Users/{id}"),
            Some(json!({"Operations": []})),
            400,
            Some("invalidSyntax"),
        ),
        (
            "PATCH",
            format!("/Users/{id}"),
            Some(patch(Value::Array(vec![
                json!({"op": "add", "path": "title", "value": "x"});
                1001
            ]))),
            400,
            Some("tooMany"),
        ),
        (
            "PUT",
            format!("/Users/{id}"),
            Some(
                json!({"userName": "alice", "emails": [{"value": "a@example.com"}], "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "no-such-user"}}),
            ),
            400,
            Some("invalidValue"),
        ),
        ("GET", "/Users/no-such-id".into(), None, 404, None),
        ("DELETE", "/Users/no-such-id".into(), None, 404, None),
        ("GET", "/Nope".into(), None, 404, None),
        ("PUT", "/Users".into(), Some(json!({})), 405, None),
        ("POST", "/.search".into(), Some(json!({})), 501, None),
    ];
    for (method, path, body, status, st) in cases {
        let (s, _, v) = scim(&t, method, &path, &tok, body, &[]).await;
        assert_scim_error(s, &v, status, st);
    }
    // Wrong content type, malformed JSON, another SCIM version.
    let req = Request::builder()
        .method("POST")
        .uri("/scim/v2/Users")
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let (s, _, v) = t.send_full(req).await;
    assert_scim_error(s, &v, 400, Some("invalidSyntax"));
    let req = Request::builder()
        .method("POST")
        .uri("/scim/v2/Users")
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/json")
        .body(Body::from("{\"userName\": "))
        .unwrap();
    let (s, _, v) = t.send_full(req).await;
    assert_scim_error(s, &v, 400, Some("invalidSyntax"));
    let req = Request::builder()
        .method("GET")
        .uri("/scim/v1/Users")
        .body(Body::empty())
        .unwrap();
    let (s, _, v) = t.send_full(req).await;
    assert_scim_error(s, &v, 400, Some("invalidVers"));
    assert_eq!(
        t.fingerprint().await,
        before,
        "a refused request changed something"
    );
}
both!(bad_input_gets_the_right_scim_type_and_changes_nothing);

async fn one_organizations_token_reaches_nothing_of_another(t: TestApp) {
    let admin_a = t.org_with_owner("org-a").await;
    let admin_b = t.org_with_owner("org-b").await;
    let tok_a = scim_token(&t, &admin_a, "org-a").await;
    let tok_b = scim_token(&t, &admin_b, "org-b").await;
    let ub = new_user(&t, &tok_b, "bob", json!({"externalId": "B1"})).await;
    let bid = ub["id"].as_str().unwrap().to_owned();
    let (_, _, gb) = scim(
        &t,
        "POST",
        "/Groups",
        &tok_b,
        Some(json!({"displayName": "B team"})),
        &[],
    )
    .await;
    let gbid = gb["id"].as_str().unwrap().to_owned();
    let ua = new_user(&t, &tok_a, "amy", json!({})).await;
    let aid = ua["id"].as_str().unwrap().to_owned();
    let before = t.fingerprint().await;
    for (method, path, body) in [
        ("GET", format!("/Users/{bid}"), None),
        (
            "PUT",
            format!("/Users/{bid}"),
            Some(json!({"userName": "x", "emails": [{"value": "x@x.io"}]})),
        ),
        (
            "PATCH",
            format!("/Users/{bid}"),
            Some(
                json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": false}}]}),
            ),
        ),
        ("DELETE", format!("/Users/{bid}"), None),
        ("GET", format!("/Groups/{gbid}"), None),
        (
            "PATCH",
            format!("/Groups/{gbid}"),
            Some(
                json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": aid}]}]}),
            ),
        ),
        ("DELETE", format!("/Groups/{gbid}"), None),
    ] {
        let (s, _, v) = scim(&t, method, &path, &tok_a, body, &[]).await;
        assert_scim_error(s, &v, 404, None);
    }
    for filter in [
        "userName%20eq%20%22bob%22",
        "externalId%20eq%20%22B1%22",
        &format!("id%20eq%20%22{bid}%22"),
        "userName%20pr",
    ] {
        let (s, _, v) = scim(
            &t,
            "GET",
            &format!("/Users?filter={filter}"),
            &tok_a,
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200);
        assert!(!v.to_string().contains(&bid), "{filter}: {v}");
    }
    let (_, _, v) = scim(&t, "GET", "/Groups", &tok_a, None, &[]).await;
    assert_eq!(v["totalResults"], 0);
    // B's ids as members or manager in A: refused as unknown.
    let (s, _, v) = scim(
        &t,
        "POST",
        "/Groups",
        &tok_a,
        Some(json!({"displayName": "A", "members": [{"value": bid}]})),
        &[],
    )
    .await;
    assert_scim_error(s, &v, 400, Some("invalidValue"));
    let (s, _, v) = scim(&t, "PATCH", &format!("/Users/{aid}"), &tok_a,
        Some(json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": format!("{ENT}:manager"), "value": bid}]})), &[]).await;
    assert_scim_error(s, &v, 400, Some("invalidValue"));
    assert_eq!(t.fingerprint().await, before);
    // And the REST API of A cannot see B's SCIM tokens.
    let (s, _) = t
        .call(
            "GET",
            "/api/v1/orgs/org-b/scim-tokens",
            Some(&admin_a),
            None,
        )
        .await;
    assert_eq!(s, 404);
}
both!(one_organizations_token_reaches_nothing_of_another);

async fn etags_make_writes_conditional_and_concurrent_patches_all_land(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let u = new_user(&t, &tok, "alice", json!({})).await;
    let id = u["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    let (s, h, v) = scim(&t, "GET", &path, &tok, None, &[]).await;
    assert_eq!(s, 200);
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(v["meta"]["version"], etag.as_str());
    let (s, _, _) = scim(&t, "GET", &path, &tok, None, &[("if-none-match", &etag)]).await;
    assert_eq!(s, 304);
    let body =
        json!({"userName": "alice", "title": "Boss", "emails": [{"value": "alice@example.com"}]});
    let (s, h, v) = scim(
        &t,
        "PUT",
        &path,
        &tok,
        Some(body.clone()),
        &[("if-match", &etag)],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_ne!(h["etag"].to_str().unwrap(), etag);
    // The old version no longer matches: 412, and nothing changes.
    let before = t.fingerprint().await;
    for method in ["PUT", "PATCH", "DELETE"] {
        let b = match method {
            "PATCH" => Some(
                json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}),
            ),
            "PUT" => Some(body.clone()),
            _ => None,
        };
        let (s, _, v) = scim(&t, method, &path, &tok, b, &[("if-match", &etag)]).await;
        assert_scim_error(s, &v, 412, None);
    }
    assert_eq!(t.fingerprint().await, before);
    // Eight writers at once, each adding its own phone number: all land.
    let futs = (0..8).map(|i| {
        let (t, tok, path) = (&t, &tok, &path);
        async move {
            let b = json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "phoneNumbers", "value": [{"value": format!("+1 555 000{i}")}]}]});
            scim(t, "PATCH", path, tok, Some(b), &[]).await.0
        }
    });
    for s in futures::future::join_all(futs).await {
        assert_eq!(s, 200);
    }
    let (_, _, v) = scim(&t, "GET", &path, &tok, None, &[]).await;
    assert_eq!(v["phoneNumbers"].as_array().unwrap().len(), 8, "{v}");
}
both!(etags_make_writes_conditional_and_concurrent_patches_all_land);

async fn filters_sorting_and_both_kinds_of_paging(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    for (i, (name, dept, title)) in [
        ("Zoe", "Sales", "Lead"),
        ("adam", "Eng", "Dev"),
        ("Mia", "Eng", "Lead"),
        ("bob", "Ops", "Dev"),
        ("Eve", "Eng", "Security"),
    ]
    .iter()
    .enumerate()
    {
        new_user(&t, &tok, name, json!({"title": title, "externalId": format!("X{i}"),
            ENT: {"department": dept}, "emails": [
                {"value": format!("{}@corp.example", name.to_lowercase()), "type": "work", "primary": true},
                {"value": format!("{}@home.example", name.to_lowercase()), "type": "home"}]})).await;
        t.clock.advance(time::Duration::minutes(1));
    }
    let names = |v: &Value| -> Vec<String> {
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let q = |f: &str| {
        format!(
            "/Users?filter={}&sortBy=userName",
            f.replace(' ', "%20")
                .replace('"', "%22")
                .replace('[', "%5B")
                .replace(']', "%5D")
        )
    };
    for (filter, want) in [
        (r#"userName eq "ZOE""#, vec!["Zoe"]),
        (r#"title eq "Lead" and not (userName sw "z")"#, vec!["Mia"]),
        (
            r#"title eq "Dev" or title eq "Security""#,
            vec!["adam", "bob", "Eve"],
        ),
        (r#"emails[type eq "home" and value co "mia"]"#, vec!["Mia"]),
        (
            r#"emails.value ew "@corp.example" and userName co "o""#,
            vec!["bob", "Zoe"],
        ),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "eng""#,
            vec!["adam", "Eve", "Mia"],
        ),
        (r#"externalId eq "x1""#, vec![]),
        (r#"externalId eq "X1""#, vec!["adam"]),
        (r#"nickName pr"#, vec![]),
        (
            r#"meta.created gt "2026-11-25T12:02:30Z""#,
            vec!["bob", "Eve"],
        ),
    ] {
        let (s, _, v) = scim(&t, "GET", &q(filter), &tok, None, &[]).await;
        assert_eq!(s, 200, "{filter}: {v}");
        assert_eq!(names(&v), want, "{filter}");
        assert_eq!(v["totalResults"], want.len(), "{filter}");
    }
    let (_, _, v) = scim(
        &t,
        "GET",
        "/Users?sortBy=userName&sortOrder=descending&startIndex=0&count=2",
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(names(&v), ["Zoe", "owner@acme.example"]);
    assert_eq!(
        (
            v["startIndex"].clone(),
            v["itemsPerPage"].clone(),
            v["totalResults"].clone()
        ),
        (json!(1), json!(2), json!(6))
    );
    let (_, _, v) = scim(&t, "GET", "/Users?count=0", &tok, None, &[]).await;
    assert_eq!(
        (v["totalResults"].clone(), v["Resources"].clone()),
        (json!(6), json!([]))
    );
    let (_, _, v) = scim(&t, "GET", "/Users?startIndex=5&count=10", &tok, None, &[]).await;
    assert_eq!(v["Resources"].as_array().unwrap().len(), 2);
    // Cursor paging (RFC 9865) visits everyone once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, _, v) = scim(
            &t,
            "GET",
            &format!("/Users?count=2&cursor={cursor}"),
            &tok,
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200, "{v}");
        seen.extend(names(&v));
        match v["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6);
    // attributes / excludedAttributes, on GET and on POST /.search.
    let (_, _, v) = scim(
        &t,
        "GET",
        &format!(
            "{}&attributes=userName,name.givenName",
            q(r#"userName eq "bob""#)
        ),
        &tok,
        None,
        &[],
    )
    .await;
    let r = &v["Resources"][0];
    assert!(
        r.get("title").is_none()
            && r.get("emails").is_none()
            && r["id"].is_string()
            && r["userName"] == "bob",
        "{r}"
    );
    let (s, _, v) = scim(
        &t,
        "POST",
        "/Users/.search",
        &tok,
        Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "title eq \"Lead\"", "excludedAttributes": ["emails"], "sortBy": "userName"})),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(names(&v), ["Mia", "Zoe"]);
    assert!(v["Resources"][0].get("emails").is_none());
}
both!(filters_sorting_and_both_kinds_of_paging);

async fn deactivation_through_scim_ends_every_grant_before_the_response(t: TestApp) {
    use muster_testkit::muster_store::access::{GrantKind, insert_grant, live_grants};
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    // A local member with an API token and a session, later managed over SCIM.
    let (id, user_token) = t
        .user_with_token("acme", "carol@acme.example", &["member"])
        .await;
    let org = muster_testkit::muster_store::orgs::by_slug(&t.app.db, "acme")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut tx = t.app.db.begin().await.unwrap();
    insert_grant(&mut tx, GrantKind::Session, "s1", &org, &id, 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Entra ID sends the boolean as a string.
    let (s, _, v) = scim(&t, "PATCH", &format!("/Users/{id}"), &tok,
        Some(json!({"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})), &[]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["active"], false);
    let mut tx = t.app.db.begin().await.unwrap();
    assert_eq!(live_grants(&mut tx, &id).await.unwrap(), 0);
    drop(tx);
    let (s, _) = t.call("GET", "/api/v1/me", Some(&user_token), None).await;
    assert_eq!(s, 401);
    let (_, u) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(u["state"], "deactivated");
    // active:true brings the account back (its old sessions stay ended).
    let (s, _, v) = scim(&t, "PATCH", &format!("/Users/{id}"), &tok,
        Some(json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": true}}]})), &[]).await;
    assert_eq!((s, v["active"].clone()), (StatusCode::OK, json!(true)));
    let (_, u) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(u["state"], "active");
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&user_token), None).await.0,
        401
    );
    // The audit log names the SCIM token as the actor.
    t.app.seal_all().await.unwrap();
    let (_, events) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?target={id}"),
            Some(&admin),
            None,
        )
        .await;
    let deact = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.deactivate")
        .unwrap();
    assert_eq!(deact["actor_kind"], "scim_token", "{deact}");
}
both!(deactivation_through_scim_ends_every_grant_before_the_response);

async fn delete_follows_the_policy_and_reprovisioning_matches_external_id(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let u = new_user(&t, &tok, "dave", json!({"externalId": "D-1"})).await;
    let id = u["id"].as_str().unwrap().to_owned();
    // Default policy: deactivate; SCIM no longer sees the user, REST does.
    assert_eq!(
        scim(&t, "DELETE", &format!("/Users/{id}"), &tok, None, &[])
            .await
            .0,
        204
    );
    assert_eq!(
        scim(&t, "GET", &format!("/Users/{id}"), &tok, None, &[])
            .await
            .0,
        404
    );
    let (_, _, v) = scim(
        &t,
        "GET",
        "/Users?filter=userName%20eq%20%22dave%22",
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(v["totalResults"], 0);
    let (s, rest) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (s.as_u16(), rest["state"].clone()),
        (200, json!("deactivated"))
    );
    // The IdP assigns the user again: same externalId, same account.
    let again = new_user(
        &t,
        &tok,
        "dave",
        json!({"externalId": "D-1", "title": "Back"}),
    )
    .await;
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["active"], true);
    assert_eq!(again["title"], "Back");
    // Policy "delete": gone for good.
    let (s, v) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/scim-policy",
            Some(&admin),
            Some(json!({"delete": "delete"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        scim(&t, "DELETE", &format!("/Users/{id}"), &tok, None, &[])
            .await
            .0,
        204
    );
    let (s, _) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/scim-policy",
            Some(&admin),
            Some(json!({"delete": "shred"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
}
both!(delete_follows_the_policy_and_reprovisioning_matches_external_id);

async fn a_local_account_is_never_adopted_silently(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let (local_id, _) = t
        .user_with_token("acme", "erin@acme.example", &["member"])
        .await;
    let body =
        json!({"userName": "erin", "emails": [{"value": "ERIN@acme.example", "primary": true}]});
    let (s, _, v) = scim(&t, "POST", "/Users", &tok, Some(body.clone()), &[]).await;
    assert_scim_error(s, &v, 409, Some("uniqueness"));
    let (_, u) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{local_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(u["managed_by"], "local");
    t.call(
        "PUT",
        "/api/v1/orgs/acme/scim-policy",
        Some(&admin),
        Some(json!({"existing_email": "link"})),
    )
    .await;
    let (s, _, v) = scim(&t, "POST", "/Users", &tok, Some(body), &[]).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["id"], local_id.as_str());
    let (_, u) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{local_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (u["managed_by"].clone(), u["user_name"].clone()),
        (json!("scim"), json!("erin"))
    );
    t.app.seal_all().await.unwrap();
    let (_, events) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?target={local_id}"),
            Some(&admin),
            None,
        )
        .await;
    let actions: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"scim.user_refused") && actions.contains(&"scim.user_linked"),
        "{actions:?}"
    );
}
both!(a_local_account_is_never_adopted_silently);

async fn pushed_passwords_follow_the_policy_and_are_never_echoed(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let u = new_user(&t, &tok, "fay", json!({"password": "Sup3r!secret"})).await;
    assert!(u.get("password").is_none() && !u.to_string().contains("Sup3r"));
    let id = u["id"].as_str().unwrap();
    let (_, rest) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (rest["state"].clone(), rest["has_password"].clone()),
        (json!("active"), json!(true))
    );
    let (_, _, v) = scim(
        &t,
        "GET",
        &format!("/Users/{id}?attributes=password,userName"),
        &tok,
        None,
        &[],
    )
    .await;
    assert!(v.get("password").is_none(), "{v}");
    // A length-only policy accepts what the default refuses.
    let weak = json!({"userName": "gus", "password": "lowercase-only", "emails": [{"value": "gus@example.com"}]});
    let (s, _, v) = scim(&t, "POST", "/Users", &tok, Some(weak.clone()), &[]).await;
    assert_scim_error(s, &v, 400, Some("invalidValue"));
    let (s, v) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/password-policy",
            Some(&admin),
            Some(json!({"rule": "length", "min_length": 12})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, _) = scim(&t, "POST", "/Users", &tok, Some(weak), &[]).await;
    assert_eq!(s, 201);
}
both!(pushed_passwords_follow_the_policy_and_are_never_echoed);

async fn local_edits_of_idp_managed_attributes_show_as_drift_until_the_next_sync(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let u = new_user(
        &t,
        &tok,
        "hal",
        json!({"title": "Engineer", "name": {"givenName": "Hal"}}),
    )
    .await;
    let id = u["id"].as_str().unwrap().to_owned();
    let drift_path = format!("/api/v1/orgs/acme/users/{id}/drift");
    let (s, d) = t.call("GET", &drift_path, Some(&admin), None).await;
    assert_eq!((s.as_u16(), d.clone()), (200, json!([])));
    let (s, v) = t
        .call(
            "PATCH",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            Some(json!({"profile": {"title": "Local title", "given_name": "Hally"}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, d) = t.call("GET", &drift_path, Some(&admin), None).await;
    assert_eq!(
        d,
        json!([
            {"attribute": "name.givenName", "idp_value": "Hal", "local_value": "Hally"},
            {"attribute": "title", "idp_value": "Engineer", "local_value": "Local title"}
        ])
    );
    t.app.seal_all().await.unwrap();
    let (_, events) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?target={id}&action=user.updated"),
            Some(&admin),
            None,
        )
        .await;
    let local = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["actor_kind"] != "scim_token")
        .unwrap();
    assert!(local.to_string().contains("overridable_by_idp"), "{local}");
    // The IdP's next write wins, and the drift is gone.
    let (s, _, v) = scim(&t, "PATCH", &format!("/Users/{id}"), &tok, Some(json!({"schemas": [PATCH],
        "Operations": [{"op": "replace", "value": {"title": "Staff Engineer", "name.givenName": "Hal"}}]})), &[]).await;
    assert_eq!(
        (s.as_u16(), v["title"].clone()),
        (200, json!("Staff Engineer"))
    );
    let (_, d) = t.call("GET", &drift_path, Some(&admin), None).await;
    assert_eq!(d, json!([]));
    // Users that never came from an IdP have no drift; other tenants' users are not found.
    let (_, d) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{}/drift", "nope"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(d["status"], 404);
}
both!(local_edits_of_idp_managed_attributes_show_as_drift_until_the_next_sync);
