//! `/scim/v2`: tokens, errors with their scimType, tenant isolation, ETags,
//! filters and paging; the helpers the other SCIM test modules share.

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

pub fn assert_scim_error(s: StatusCode, v: &Value, status: u16, scim_type: Option<&str>) {
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
