//! `/scim/v2/Bulk`: bulkId references, failOnErrors, limits, isolation.

use crate::scim::{scim, scim_token};
use crate::*;
use axum::body::Body;
use axum::http::Request;
use serde_json::Value;

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn statuses(v: &Value) -> Vec<String> {
    v["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap().to_owned())
        .collect()
}

async fn bulk_resolves_references_in_any_order_and_reports_each_operation(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    // The group comes first and names users created later in the request.
    let (s, _, v) = scim(&t, "POST", "/Bulk", &tok, Some(json!({
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {
                "displayName": "Tour Guides", "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {
                "userName": "alice", "emails": [{"value": "alice@example.com"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u2", "data": {
                "userName": "bob", "emails": [{"value": "bob@example.com"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:u1"}}}},
            {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Guide"}]}},
            {"method": "DELETE", "path": "/Users/no-such-user"}
        ]
    })), &[]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    assert_eq!(statuses(&v), ["201", "201", "201", "200", "404"], "{v}");
    let ops = v["Operations"].as_array().unwrap();
    assert_eq!(ops[0]["bulkId"], "g");
    assert!(
        ops[0]["location"]
            .as_str()
            .unwrap()
            .contains("/scim/v2/Groups/")
    );
    assert_eq!(ops[4]["response"]["status"], "404");
    let gid = ops[0]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (_, _, g) = scim(&t, "GET", &format!("/Groups/{gid}"), &tok, None, &[]).await;
    assert_eq!(g["members"].as_array().unwrap().len(), 2, "{g}");
    let (_, _, u) = scim(
        &t,
        "GET",
        "/Users?filter=userName%20eq%20%22alice%22",
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(u["Resources"][0]["title"], "Guide");

    // failOnErrors: stops after the first error; later operations are not run.
    let (s, _, v) = scim(&t, "POST", "/Bulk", &tok, Some(json!({
        "schemas": [BULK], "failOnErrors": 1,
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "ALICE", "emails": [{"value": "x@example.com"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "never", "data": {"userName": "carol", "emails": [{"value": "c@example.com"}]}}
        ]
    })), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(statuses(&v), ["409"]);
    assert_eq!(v["Operations"][0]["response"]["scimType"], "uniqueness");
    let (_, _, u) = scim(
        &t,
        "GET",
        "/Users?filter=userName%20eq%20%22carol%22",
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(u["totalResults"], 0);

    // References to an unknown, a failed or a circular bulkId fail with 409.
    let (_, _, v) = scim(&t, "POST", "/Bulk", &tok, Some(json!({
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"displayName": "A", "members": [{"value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"displayName": "B", "members": [{"value": "bulkId:a"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "c", "data": {"displayName": "C", "members": [{"value": "bulkId:zzz"}]}}
        ]
    })), &[]).await;
    assert_eq!(statuses(&v), ["409", "409", "409"], "{v}");
}
both!(bulk_resolves_references_in_any_order_and_reports_each_operation);

async fn bulk_limits_and_isolation(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let other = t.org_with_owner("other").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let tok_other = scim_token(&t, &other, "other").await;
    let (_, _, u) = scim(
        &t,
        "POST",
        "/Users",
        &tok_other,
        Some(json!({"userName": "zed", "emails": [{"value": "zed@example.com"}]})),
        &[],
    )
    .await;
    let zed = u["id"].as_str().unwrap().to_owned();
    let before = t.fingerprint().await;
    // Another organization's user is not found from here.
    let (_, _, v) = scim(&t, "POST", "/Bulk", &tok, Some(json!({"schemas": [BULK], "Operations": [
        {"method": "DELETE", "path": format!("/Users/{zed}")},
        {"method": "PATCH", "path": format!("/Users/{zed}"), "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": false}}]}}
    ]})), &[]).await;
    assert_eq!(statuses(&v), ["404", "404"]);
    // Too many operations, too large a body: 413 in the SCIM error schema.
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
        .collect();
    let (s, _, v) = scim(
        &t,
        "POST",
        "/Bulk",
        &tok,
        Some(json!({"schemas": [BULK], "Operations": many})),
        &[],
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["status"].clone(), v["scimType"].clone()),
        (413, json!("413"), json!("tooMany")),
        "{v}"
    );
    for size in [1024 * 1024 + 10, 3 * 1024 * 1024] {
        let pad = "x".repeat(size);
        let req = Request::builder()
            .method("POST")
            .uri("/scim/v2/Bulk")
            .header("authorization", format!("Bearer {tok}"))
            .header("content-type", "application/scim+json")
            .body(Body::from(
                json!({"schemas": [BULK], "Operations": [], "pad": pad}).to_string(),
            ))
            .unwrap();
        let (s, _, v) = t.send_full(req).await;
        assert_eq!(
            (s.as_u16(), v["status"].clone()),
            (413, json!("413")),
            "{size}"
        );
    }
    let (s, _, v) = scim(
        &t,
        "POST",
        "/Bulk",
        &tok,
        Some(json!({"Operations": []})),
        &[],
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["scimType"].clone()),
        (400, json!("invalidSyntax"))
    );
    assert_eq!(t.fingerprint().await, before);
    let (_, _, spc) = scim(&t, "GET", "/ServiceProviderConfig", &tok, None, &[]).await;
    assert_eq!(
        spc["bulk"],
        json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576})
    );
}
both!(bulk_limits_and_isolation);

async fn a_run_of_creations_is_written_together_yet_fails_one_by_one(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let user = |name: &str, x: &str| {
        json!({"method": "POST", "path": "/Users", "bulkId": name, "data": {
            "userName": name, "externalId": x, "emails": [{"value": format!("{name}@example.com")}]}})
    };
    // A user the IdP created and then deleted: the same externalId in the
    // batch brings the account back instead of creating another.
    let (_, _, old) = scim(
        &t,
        "POST",
        "/Users",
        &tok,
        Some(user("dora", "X-D")["data"].clone()),
        &[],
    )
    .await;
    let dora = old["id"].as_str().unwrap().to_owned();
    let (s, _, _) = scim(&t, "DELETE", &format!("/Users/{dora}"), &tok, None, &[]).await;
    assert_eq!(s, 204);
    let (s, _, v) = scim(
        &t,
        "POST",
        "/Bulk",
        &tok,
        Some(json!({
            "schemas": [BULK],
            "Operations": [
                user("ann", "X-A"),
                user("ben", "X-B"),
                user("ANN", "X-A2"),        // userName taken earlier in this very batch
                user("dora", "X-D"),        // re-provisioned
                {"method": "POST", "path": "/Users", "bulkId": "boss", "data": { // a local account's email
                    "userName": "boss", "emails": [{"value": "owner@acme.example"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "nomail", "data": {"userName": "nomail"}},
                user("cy", "X-B"),          // externalId taken earlier in the batch
                user("eve", "X-E"),
            ]
        })),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        statuses(&v),
        ["201", "201", "409", "201", "409", "400", "409", "201"],
        "{v}"
    );
    let ops = v["Operations"].as_array().unwrap();
    assert_eq!(ops[2]["response"]["scimType"], "uniqueness");
    assert_eq!(ops[6]["response"]["scimType"], "uniqueness");
    assert!(ops[3]["location"].as_str().unwrap().ends_with(&dora));
    assert!(ops[0]["version"].is_string());
    assert_eq!(ops[4]["response"]["scimType"], "uniqueness");
    assert_eq!(ops[5]["response"]["scimType"], "invalidValue");
    // What the batch wrote is what single requests would have written: the
    // users with their role and their one event; nothing of the failures.
    let (_, _, list) = scim(&t, "GET", "/Users?count=0", &tok, None, &[]).await;
    assert_eq!(
        list["totalResults"], 5,
        "the owner, ann, ben, dora, eve: {list}"
    );
    for (name, x) in [("ann", "X-A"), ("ben", "X-B"), ("eve", "X-E")] {
        let q = format!("/Users?filter=userName%20eq%20%22{name}%22");
        let (_, _, u) = scim(&t, "GET", &q, &tok, None, &[]).await;
        assert_eq!(u["totalResults"], 1, "{name}: {u}");
        assert_eq!(u["Resources"][0]["externalId"], x);
        let id = u["Resources"][0]["id"].as_str().unwrap();
        let (_, roles) = t
            .call(
                "GET",
                &format!("/api/v1/orgs/acme/role-assignments?user_id={id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(roles.as_array().map(Vec::len), Some(1), "{name}: {roles}");
        assert_eq!(roles[0]["role_key"], "member", "{name}: {roles}");
        let (_, ev) = t
            .call(
                "GET",
                &format!("/api/v1/orgs/acme/audit-events?target={id}&action=user.created"),
                Some(&admin),
                None,
            )
            .await;
        let items = ev["items"].as_array().unwrap_or_else(|| panic!("{ev}"));
        assert_eq!(items.len(), 1, "{name}: {ev}");
        assert_eq!(items[0]["actor_kind"], "scim_token");
    }
    for x in ["X-A2", "X-O"] {
        let q = format!("/Users?filter=externalId%20eq%20%22{x}%22");
        let (_, _, u) = scim(&t, "GET", &q, &tok, None, &[]).await;
        assert_eq!(u["totalResults"], 0, "{x}: {u}");
    }
}
both!(a_run_of_creations_is_written_together_yet_fails_one_by_one);
