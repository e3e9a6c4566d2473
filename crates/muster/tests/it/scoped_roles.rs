//! Issue 7 §3: roles scoped to an organizational unit reach its subtree —
//! directly or through a group — and nothing else: everything outside it
//! answers 404, organization-wide actions 403, on the very next request.

use crate::org_units::{root_id, unit, user_in};
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use serde_json::Value;

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

async fn roles_scoped_to_a_unit_reach_its_subtree_only(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let root = root_id(&t, &owner).await;
    let sales = unit(&t, &owner, "Sales", None).await;
    let emea = unit(&t, &owner, "EMEA", Some(&sales)).await;
    let eng = unit(&t, &owner, "Eng", None).await;
    let mut user = std::collections::HashMap::new();
    for (email, ou) in [
        ("s@acme.example", &sales),
        ("e@acme.example", &emea),
        ("g@acme.example", &eng),
    ] {
        let (s, v) = user_in(&t, &owner, email, ou, None).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        user.insert(email, v["id"].as_str().unwrap().to_owned());
    }
    let (x, xt) = t
        .user_with_token("acme", "x@acme.example", &["member"])
        .await;
    let assign = |principal: Value, role: &str, scope: Value| {
        let mut body = json!({"role": role, "scope": scope});
        if let (Some(b), Some(p)) = (body.as_object_mut(), principal.as_object()) {
            b.extend(p.clone());
        }
        body
    };
    let (s, v) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/role-assignments",
            Some(&owner),
            Some(assign(
                json!({"user_id": x}),
                "admin",
                json!({"type": "org_unit", "id": sales}),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Sees and manages the subtree; everyone else is not there at all.
    let (s, v) = t
        .call("GET", "/api/v1/orgs/acme/users", Some(&xt), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), ["e@acme.example", "s@acme.example"]);
    let (_, v) = t
        .call("GET", "/api/v1/orgs/acme/org-units", Some(&xt), None)
        .await;
    assert_eq!(v.as_array().unwrap().len(), 2, "Sales and EMEA: {v}");
    let g = &user["g@acme.example"];
    let e = &user["e@acme.example"];
    assert_eq!(
        t.call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{e}"),
            Some(&xt),
            None
        )
        .await
        .0,
        StatusCode::OK
    );
    let before = t.fingerprint().await;
    for (method, path, body) in [
        ("GET", format!("/api/v1/orgs/acme/users/{g}"), None),
        (
            "PATCH",
            format!("/api/v1/orgs/acme/users/{g}"),
            Some(json!({"profile": {"display_name": "G"}})),
        ),
        (
            "POST",
            format!("/api/v1/orgs/acme/users/{g}/deactivate"),
            None,
        ),
        ("DELETE", format!("/api/v1/orgs/acme/users/{g}"), None),
        (
            "GET",
            format!("/api/v1/orgs/acme/users/{g}/effective-policy"),
            None,
        ),
        (
            "PUT",
            format!("/api/v1/orgs/acme/users/{g}/org-unit"),
            Some(json!({"org_unit_id": sales})),
        ),
        (
            "GET",
            format!(
                "/api/v1/orgs/acme/users/{}",
                user["s@acme.example"].as_str().replace('-', "0")
            ),
            None,
        ),
        ("GET", format!("/api/v1/orgs/acme/org-units/{eng}"), None),
        (
            "PATCH",
            format!("/api/v1/orgs/acme/org-units/{eng}"),
            Some(json!({"name": "Mine"})),
        ),
    ] {
        let (s, p) = t.call(method, &path, Some(&xt), body).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {p}");
    }
    // Refusals that name the rule rather than hide a user.
    for (method, path, body, want) in [
        (
            "PUT",
            format!("/api/v1/orgs/acme/users/{e}/org-unit"),
            json!({"org_unit_id": eng}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/users".to_owned(),
            json!({"email": "n@acme.example"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/users".to_owned(),
            json!({"email": "n@acme.example", "org_unit_id": root}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/org-units".to_owned(),
            json!({"name": "Top"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "PUT",
            "/api/v1/orgs/acme/password-policy".to_owned(),
            json!({"min_length": 9}),
            StatusCode::FORBIDDEN,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/groups".to_owned(),
            json!({"name": "Mine"}),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (s, p) = t.call(method, &path, Some(&xt), Some(body)).await;
        assert_eq!(s, want, "{method} {path}: {p}");
    }
    assert_eq!(t.fingerprint().await, before, "refusals change nothing");
    let (s, v) = t
        .call(
            "PATCH",
            &format!("/api/v1/orgs/acme/users/{e}"),
            Some(&xt),
            Some(json!({"profile": {"display_name": "E"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/users/{e}/deactivate"),
            Some(&xt),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = user_in(&t, &xt, "n@acme.example", &emea, None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // The tree changes, and the next request follows it: a user moved out
    // is gone; a unit moved in brings its people.
    let s_id = &user["s@acme.example"];
    t.call(
        "PUT",
        &format!("/api/v1/orgs/acme/users/{s_id}/org-unit"),
        Some(&owner),
        Some(json!({"org_unit_id": root})),
    )
    .await;
    assert_eq!(
        t.call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{s_id}"),
            Some(&xt),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (s, _) = t
        .call(
            "PATCH",
            &format!("/api/v1/orgs/acme/org-units/{eng}"),
            Some(&owner),
            Some(json!({"parent_id": sales})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = t
        .call("GET", "/api/v1/orgs/acme/users", Some(&xt), None)
        .await;
    assert_eq!(
        ids(&v),
        ["e@acme.example", "g@acme.example", "n@acme.example"]
    );

    // Through a group: an auditor role scoped to Eng reads Eng only.
    let (y, yt) = t
        .user_with_token("acme", "y@acme.example", &["member"])
        .await;
    let (_, grp) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&owner),
            Some(json!({"name": "Eng readers"})),
        )
        .await;
    let grp = grp["id"].as_str().unwrap().to_owned();
    t.call(
        "PUT",
        &format!("/api/v1/orgs/acme/groups/{grp}/members/users/{y}"),
        Some(&owner),
        None,
    )
    .await;
    let (s, v) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/role-assignments",
            Some(&owner),
            Some(assign(
                json!({"group_id": grp}),
                "auditor",
                json!({"type": "org_unit", "id": eng}),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = t
        .call("GET", "/api/v1/orgs/acme/users", Some(&yt), None)
        .await;
    assert_eq!(ids(&v), ["g@acme.example"]);
    let (s, _) = t
        .call(
            "PATCH",
            &format!("/api/v1/orgs/acme/users/{g}"),
            Some(&yt),
            Some(json!({"profile": {"display_name": "no"}})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "an auditor reads, it does not write"
    );
    // Her roles: her own, and the group's shown as inherited.
    let (s, roles) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{y}/roles"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{roles}");
    assert_eq!(roles.as_array().unwrap().len(), 2, "{roles}");
    let auditor = &roles[0];
    assert_eq!(auditor["role_key"], "auditor");
    assert_eq!(auditor["inherited"], true);
    assert_eq!(
        auditor["via_group"],
        json!({"id": grp, "name": "Eng readers"})
    );
    assert_eq!(auditor["scope"], json!({"type": "org_unit", "id": eng}));
    assert_eq!(roles[1]["role_key"], "member");
    assert_eq!(roles[1]["inherited"], false);
    assert!(roles[1].get("via_group").is_none());
    // Outside the scoped admin's reach, the same question answers 404.
    let (s, _) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{y}/roles"),
            Some(&xt),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A scope from another organization, or one that does not exist yet.
    let other = t.org_with_owner("other").await;
    let (_, theirs) = t
        .call(
            "POST",
            "/api/v1/orgs/other/org-units",
            Some(&other),
            Some(json!({"name": "Theirs"})),
        )
        .await;
    let before = t.fingerprint().await;
    for scope in [
        json!({"type": "org_unit", "id": theirs["id"]}),
        json!({"type": "org_unit", "id": "nope"}),
        json!({"type": "workspace", "id": "w"}),
    ] {
        let (s, p) = t
            .call(
                "POST",
                "/api/v1/orgs/acme/role-assignments",
                Some(&owner),
                Some(assign(json!({"user_id": y}), "admin", scope.clone())),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{scope}: {p}");
        assert_eq!(p["errors"][0]["field"], "scope", "{p}");
    }
    assert_eq!(t.fingerprint().await, before);
    // A unit that roles are scoped to is not deleted under them.
    let (s, p) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/org-units/{eng}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
}
both!(roles_scoped_to_a_unit_reach_its_subtree_only);
