//! Issue 7 §1 and §3: organizational units — the tree and its refusals,
//! policies inherited down it and enforced where users are, and roles
//! scoped to a unit that reach its subtree and nothing else.

use crate::{TestApp, both, json};
use axum::http::StatusCode;
use serde_json::Value;

pub(crate) async fn unit(t: &TestApp, token: &str, name: &str, parent: Option<&str>) -> String {
    let (s, v) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/org-units",
            Some(token),
            Some(json!({"name": name, "parent_id": parent})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn user_in(
    t: &TestApp,
    token: &str,
    email: &str,
    ou: &str,
    pw: Option<&str>,
) -> (StatusCode, Value) {
    t.call(
        "POST",
        "/api/v1/orgs/acme/users",
        Some(token),
        Some(json!({"email": email, "org_unit_id": ou, "password": pw})),
    )
    .await
}

pub(crate) async fn root_id(t: &TestApp, owner: &str) -> String {
    let (_, org) = t.call("GET", "/api/v1/orgs/acme", Some(owner), None).await;
    org["id"].as_str().unwrap().to_owned()
}

async fn ou_tree_with_its_refusals(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let root = root_id(&t, &owner).await;
    let a = unit(&t, &owner, "Sales", None).await;
    let b = unit(&t, &owner, "EMEA", Some(&a)).await;
    let c = unit(&t, &owner, "Berlin", Some(&b)).await;
    let (s, v) = t
        .call("GET", "/api/v1/orgs/acme/org-units", Some(&owner), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Org acme", "Sales", "EMEA", "Berlin"],
        "parents first"
    );
    assert_eq!(v[3]["path"], json!([root, a, b, c]));

    // Another organization, with a unit of its own.
    let other = t.org_with_owner("other").await;
    let (_, theirs) = t
        .call(
            "POST",
            "/api/v1/orgs/other/org-units",
            Some(&other),
            Some(json!({"name": "Theirs"})),
        )
        .await;
    let theirs = theirs["id"].as_str().unwrap().to_owned();

    // Bad input, each refused with nothing changed.
    let before = t.fingerprint().await;
    let (s, p) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/org-units",
            Some(&owner),
            Some(json!({"name": "sales"})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "sibling names are unique, case-insensitively: {p}"
    );
    for (target, parent, want) in [
        (&a, &c, StatusCode::CONFLICT), // under its own grandchild: a cycle
        (&a, &a, StatusCode::CONFLICT), // under itself
        (&root, &a, StatusCode::UNPROCESSABLE_ENTITY), // the root does not move
        (&b, &"nope".to_owned(), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (s, p) = t
            .call(
                "PATCH",
                &format!("/api/v1/orgs/acme/org-units/{target}"),
                Some(&owner),
                Some(json!({"parent_id": parent})),
            )
            .await;
        assert_eq!(s, want, "{p}");
        assert!(p["detail"].is_string(), "a problem document: {p}");
    }
    // Another organization's unit is as unknown as a made-up one.
    let (s, _) = t
        .call(
            "PATCH",
            &format!("/api/v1/orgs/acme/org-units/{b}"),
            Some(&owner),
            Some(json!({"parent_id": theirs})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/org-units/{theirs}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/other/org-units/{theirs}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant answers 404");
    assert_eq!(t.fingerprint().await, before, "refusals change nothing");

    // A unit with a user, or with units, is not deleted; the root never is.
    let (s, u) = user_in(&t, &owner, "carl@acme.example", &c, None).await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    assert_eq!(u["org_unit_id"], c.as_str());
    let uid = u["id"].as_str().unwrap().to_owned();
    let before = t.fingerprint().await;
    let (s, p) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/org-units/{c}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(p["detail"].as_str().unwrap().contains("1 user(s)"), "{p}");
    let (s, p) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/org-units/{b}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(p["detail"].as_str().unwrap().contains("1 unit(s)"), "{p}");
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/org-units/{root}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(t.fingerprint().await, before, "refusals change nothing");

    // Moving a subtree rewrites its paths; the user moves with it.
    let (s, v) = t
        .call(
            "PATCH",
            &format!("/api/v1/orgs/acme/org-units/{b}"),
            Some(&owner),
            Some(json!({"parent_id": root, "name": "Europe"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["path"], json!([root, b]));
    assert_eq!(v["name"], "Europe");
    let (_, cv) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/org-units/{c}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(cv["path"], json!([root, b, c]));
    let (_, listed) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users?org_unit={b}"),
            Some(&owner),
            None,
        )
        .await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [uid.as_str()], "the subtree filter follows the move");
    let (_, listed) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users?org_unit={a}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0);

    // Emptied, the unit goes.
    let (s, v) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/users/{uid}/org-unit"),
            Some(&owner),
            Some(json!({"org_unit_id": root})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["org_unit_id"], root.as_str());
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/org-units/{c}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(t.audit_count("org_unit.created", "").await, 4);
    assert_eq!(t.audit_count("org_unit.updated", "").await, 1);
    assert_eq!(t.audit_count("user.moved", "").await, 1);
    assert_eq!(t.audit_count("org_unit.deleted", "").await, 1);
}
both!(ou_tree_with_its_refusals);

async fn policies_are_inherited_down_the_tree_and_enforced(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let root = root_id(&t, &owner).await;
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/password-policy",
            Some(&owner),
            Some(json!({"rule": "length", "min_length": 12})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let sales = unit(&t, &owner, "Sales", None).await;
    let emea = unit(&t, &owner, "EMEA", Some(&sales)).await;
    let (s, v) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/org-units/{sales}/policies/password"),
            Some(&owner),
            Some(json!({"rule": "length", "min_length": 16})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["org_unit"]["policies_set"], json!(["password"]));

    // Enforced below the unit that sets it, not beside it.
    let (s, p) = user_in(
        &t,
        &owner,
        "short@acme.example",
        &emea,
        Some("velvet-harbor9"),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (s, r) = user_in(
        &t,
        &owner,
        "root@acme.example",
        &root,
        Some("velvet-harbor9"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let root_user = r["id"].as_str().unwrap().to_owned();
    let (s, e) = user_in(
        &t,
        &owner,
        "eve@acme.example",
        &emea,
        Some("velvet-harbor-nine"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let eve = e["id"].as_str().unwrap().to_owned();

    // Each value with the level it comes from.
    let (s, v) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{eve}/effective-policy"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["org_unit"]["id"], emea.as_str());
    assert_eq!(v["policies"]["password"]["value"]["min_length"], 16);
    assert_eq!(
        v["policies"]["password"]["source"],
        json!({"level": "org_unit", "org_unit_id": sales, "org_unit_name": "Sales"})
    );
    assert_eq!(v["policies"]["session"]["source"]["level"], "default");
    assert_eq!(v["policies"]["session"]["value"]["idle_minutes"], 120);
    let (_, v) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{root_user}/effective-policy"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(v["policies"]["password"]["source"]["level"], "organization");
    assert_eq!(v["policies"]["password"]["value"]["min_length"], 12);

    // Bad policies are refused, audited, and change nothing.
    let before = t.fingerprint().await;
    for (path, body) in [
        (
            format!("{sales}/policies/password"),
            json!({"rule": "length", "min_length": 3}),
        ),
        (
            format!("{sales}/policies/password"),
            json!({"min_length": 16, "colour": "red"}),
        ),
        (
            format!("{sales}/policies/session"),
            json!({"idle_minutes": 1}),
        ),
        (
            format!("{sales}/policies/access"),
            json!({"networks": {"deny": ["300.1.1.1"]}}),
        ),
        (format!("{sales}/policies/signup"), json!({"open": true})),
        (
            format!("{root}/policies/password"),
            json!({"rule": "length", "min_length": 20}),
        ),
    ] {
        let (s, p) = t
            .call(
                "PUT",
                &format!("/api/v1/orgs/acme/org-units/{path}"),
                Some(&owner),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path} {body}: {p}");
        assert!(!p["detail"].as_str().unwrap().is_empty());
    }
    let mut after = t.fingerprint().await;
    let audited = |f: &mut Vec<(String, i64)>| {
        f.retain(|(k, _)| k != "audit_events" && !k.starts_with("webhook"))
    };
    let mut before = before;
    audited(&mut before);
    audited(&mut after);
    assert_eq!(after, before);
    assert!(t.audit_count("policy.password_policy_rejected", "").await >= 1);

    // A unit's session policy holds for sessions already open, and only
    // for the people in it.
    let session = json!({"idle_minutes": 120, "absolute_hours": 1});
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/org-units/{sales}/policies/session"),
            Some(&owner),
            Some(session),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let login = |email: &'static str, pw: &'static str| {
        let t = &t;
        async move {
            let (s, b) = t
                .call(
                    "POST",
                    "/api/v1/auth/login",
                    None,
                    Some(json!({"email": email, "password": pw, "org": "acme"})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            b["session_token"].as_str().unwrap().to_owned()
        }
    };
    let eve_session = login("eve@acme.example", "velvet-harbor-nine").await;
    let root_session = login("root@acme.example", "velvet-harbor9").await;
    t.clock.advance(time::Duration::minutes(61));
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&eve_session), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&root_session), None)
            .await
            .0,
        StatusCode::OK
    );

    // Removing the unit's own policy makes it inherit again.
    let (s, v) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/org-units/{sales}/policies/password"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["policies"]["password"]["source"]["level"], "organization");
    let (_, v) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/org-units/{emea}/policies"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(v["policies"]["password"]["value"]["min_length"], 12);
    assert_eq!(v["policies"]["session"]["source"]["org_unit_name"], "Sales");
    assert_eq!(
        t.audit_count("policy.password_policy_inherited", "").await,
        1
    );
}
both!(policies_are_inherited_down_the_tree_and_enforced);

async fn access_rules_of_a_unit_hold_on_every_request_of_its_people(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let lab = unit(&t, &owner, "Lab", None).await;
    let (in_lab, lab_token) = t
        .user_with_token("acme", "lab@acme.example", &["member"])
        .await;
    let (_, out_token) = t
        .user_with_token("acme", "out@acme.example", &["member"])
        .await;
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/users/{in_lab}/org-unit"),
            Some(&owner),
            Some(json!({"org_unit_id": lab})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let deny = json!({"networks": {"deny": ["198.51.100.0/24"]}});
    let (s, v) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/org-units/{lab}/policies/access"),
            Some(&owner),
            Some(deny),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let from = ("198.51.100.7", "curl/8");
    let (s, p) = t
        .call_from(from, "GET", "/api/v1/me", Some(&lab_token), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{p}");
    let (s, _) = t
        .call_from(from, "GET", "/api/v1/me", Some(&out_token), None)
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the rule is the unit's, not the organization's"
    );
    // Moved back to the root, the person is out of the rule at once.
    let root = root_id(&t, &owner).await;
    t.call(
        "PUT",
        &format!("/api/v1/orgs/acme/users/{in_lab}/org-unit"),
        Some(&owner),
        Some(json!({"org_unit_id": root})),
    )
    .await;
    let (s, _) = t
        .call_from(from, "GET", "/api/v1/me", Some(&lab_token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
}
both!(access_rules_of_a_unit_hold_on_every_request_of_its_people);
