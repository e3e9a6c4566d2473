//! Issue 7 §2 and §4: workspaces — created, renamed (the code stays),
//! deleted; members with roles, managed by a workspace's own admin and no
//! further; a SCIM group linked to a workspace whose members the IdP moves
//! in and out, effective on the next request.

use crate::{TestApp, both, json};
use axum::http::StatusCode;
use serde_json::Value;

async fn workspace(t: &TestApp, token: &str, name: &str) -> Value {
    let (s, v) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/workspaces",
            Some(token),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["workspace"]["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn workspaces_members_and_their_admins(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (s, v) = t
        .call("GET", "/api/v1/orgs/acme/workspaces", Some(&owner), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v[0]["code"], "default",
        "a default workspace comes with the organization: {v}"
    );
    assert_eq!(v[0]["is_default"], true);
    let design = workspace(&t, &owner, "Design").await;
    let ops = workspace(&t, &owner, "Ops").await;
    let code = design["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("ws-") && code.len() == 9, "{code}");
    let ws = design["id"].as_str().unwrap().to_owned();

    // Renamed, it keeps its code; the code itself cannot be changed.
    let (s, v) = t
        .call(
            "PATCH",
            &format!("/api/v1/orgs/acme/workspaces/{code}"),
            Some(&owner),
            Some(json!({"name": "Product design"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["code"], code.as_str());
    let (u1, u1t) = t
        .user_with_token("acme", "u1@acme.example", &["member"])
        .await;
    let (u2, u2t) = t
        .user_with_token("acme", "u2@acme.example", &["member"])
        .await;
    let (u3, _) = t
        .user_with_token("acme", "u3@acme.example", &["member"])
        .await;
    let other = t.org_with_owner("other").await;
    let (_, theirs) = t
        .call(
            "POST",
            "/api/v1/orgs/other/workspaces",
            Some(&other),
            Some(json!({"name": "Theirs"})),
        )
        .await;
    let theirs = theirs["id"].as_str().unwrap().to_owned();
    // The old name is free again after the rename.
    workspace(&t, &owner, "design").await;
    let before = t.fingerprint().await;
    for (method, path, body, want) in [
        (
            "POST",
            "/api/v1/orgs/acme/workspaces".to_owned(),
            json!({"name": "product DESIGN"}),
            StatusCode::CONFLICT,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/workspaces".to_owned(),
            json!({"name": "X", "code": "ws-mine"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "PATCH",
            format!("/api/v1/orgs/acme/workspaces/{ws}"),
            json!({"name": "D", "code": "ws-other"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/workspaces".to_owned(),
            json!({"name": " "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "PUT",
            format!("/api/v1/orgs/acme/workspaces/{theirs}/members/{u1}"),
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        (
            "PUT",
            format!("/api/v1/orgs/acme/workspaces/default/members/{u1}"),
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/role-assignments".to_owned(),
            json!({"role": "member", "user_id": u1, "scope": {"type": "workspace", "id": theirs}}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "PUT",
            format!("/api/v1/orgs/acme/workspaces/{ws}/members/nobody"),
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        (
            "PUT",
            format!("/api/v1/orgs/acme/workspaces/{ws}/members/{u1}"),
            json!({"role": "nope"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, p) = t
            .call(method, &path, Some(&owner), Some(body.clone()))
            .await;
        assert_eq!(s, want, "{method} {path} {body}: {p}");
    }
    let (s, _) = t
        .call(
            "DELETE",
            "/api/v1/orgs/acme/workspaces/default",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let mut after = t.fingerprint().await;
    let mut before = before;
    for f in [&mut before, &mut after] {
        f.retain(|(k, _)| k != "audit_events" && !k.starts_with("webhook"));
    }
    assert_eq!(after, before, "refusals add no role and no member");

    // Everyone is in the default workspace; a member added is in the other.
    let (_, mine) = t
        .call("GET", "/api/v1/me/workspaces", Some(&u1t), None)
        .await;
    assert_eq!(names(&mine), ["Default"]);
    let (s, v) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/members/{u1}"),
            Some(&owner),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, mine) = t
        .call("GET", "/api/v1/me/workspaces", Some(&u1t), None)
        .await;
    assert_eq!(names(&mine), ["Default", "Product design"]);
    assert_eq!(mine[1]["roles"], json!([{"role": "member"}]));

    // A workspace admin manages that workspace, and nothing else.
    t.call(
        "PUT",
        &format!("/api/v1/orgs/acme/workspaces/{ws}/members/{u2}"),
        Some(&owner),
        Some(json!({"role": "admin"})),
    )
    .await;
    let (s, v) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/members/{u3}"),
            Some(&u2t),
            Some(json!({"role": "auditor"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/members"),
            Some(&u2t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let emails: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["u1@acme.example", "u2@acme.example", "u3@acme.example"]
    );
    let ops_id = ops["id"].as_str().unwrap();
    let before = t.fingerprint().await;
    for (method, path, body, want) in [
        (
            "PUT",
            format!("/api/v1/orgs/acme/workspaces/{ops_id}/members/{u3}"),
            Some(json!({})),
            StatusCode::FORBIDDEN,
        ),
        (
            "PUT",
            format!("/api/v1/orgs/acme/workspaces/{ws}/members/{u1}"),
            Some(json!({"role": "owner"})),
            StatusCode::FORBIDDEN,
        ),
        (
            "GET",
            "/api/v1/orgs/acme/users".to_owned(),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "DELETE",
            format!("/api/v1/orgs/acme/workspaces/{ws}"),
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "POST",
            "/api/v1/orgs/acme/role-assignments".to_owned(),
            Some(json!({"role": "admin", "user_id": u3})),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (s, p) = t.call(method, &path, Some(&u2t), body).await;
        assert_eq!(s, want, "{method} {path}: {p}");
    }
    assert_eq!(t.fingerprint().await, before);

    // Access in the workspace, as an application asks for it.
    let (s, a) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/{code}/access/{u3}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["member"], true);
    assert_eq!(a["permissions"], json!(["users.read", "audit.read"]));
    // Taken out: no access on the next request.
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/members/{u1}"),
            Some(&u2t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, a) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/access/{u1}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(
        (a["member"].clone(), a["permissions"].clone()),
        (json!(false), json!([]))
    );
    let (_, mine) = t
        .call("GET", "/api/v1/me/workspaces", Some(&u1t), None)
        .await;
    assert_eq!(names(&mine), ["Default"]);

    // Deleted, the workspace takes its roles with it.
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/workspaces/{ws}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/members"),
            Some(&u2t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, mine) = t
        .call("GET", "/api/v1/me/workspaces", Some(&u2t), None)
        .await;
    assert_eq!(names(&mine), ["Default"]);
    assert_eq!(
        t.audit_count("workspace.created", "").await,
        4,
        "three here, one in the other organization"
    );
    assert_eq!(t.audit_count("workspace.deleted", "").await, 1);
    assert_eq!(t.audit_count("workspace.member_removed", "").await, 1);
}
both!(workspaces_members_and_their_admins);

async fn a_scim_group_linked_to_a_workspace_follows_the_idp(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let tok = crate::scim::scim_token(&t, &owner, "acme").await;
    let (ann, ann_t) = t
        .user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (s, _, g) = crate::scim::scim(
        &t,
        "POST",
        "/Groups",
        &tok,
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Support agents"})),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    let support = workspace(&t, &owner, "Support").await;
    let ws = support["id"].as_str().unwrap().to_owned();
    let (s, v) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/groups/{gid}"),
            Some(&owner),
            Some(json!({"role": "auditor"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let patch = |op: &str| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": [{"op": op, "path": "members", "value": [{"value": ann}]}]})
    };
    let access = || async {
        t.call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/access/{ann}"),
            Some(&owner),
            None,
        )
        .await
        .1
    };
    assert_eq!(access().await["member"], false);
    // The IdP adds her to the group: she is in the workspace with its role.
    let (s, _, v) = crate::scim::scim(
        &t,
        "PATCH",
        &format!("/Groups/{gid}"),
        &tok,
        Some(patch("add")),
        &[],
    )
    .await;
    assert!(s.is_success(), "{v}");
    let a = access().await;
    assert_eq!(a["member"], true, "{a}");
    assert_eq!(a["roles"], json!([{"role": "auditor", "via_group": gid}]));
    let (_, mine) = t
        .call("GET", "/api/v1/me/workspaces", Some(&ann_t), None)
        .await;
    assert_eq!(names(&mine), ["Default", "Support"]);
    let (_, m) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/members"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(m[0]["roles"][0]["via_group"], gid.as_str());
    // The IdP takes her out (Entra ID's capitalised op): gone on the next request.
    let (s, _, v) = crate::scim::scim(
        &t,
        "PATCH",
        &format!("/Groups/{gid}"),
        &tok,
        Some(patch("Remove")),
        &[],
    )
    .await;
    assert!(s.is_success(), "{v}");
    assert_eq!(access().await["member"], false);
    let (_, mine) = t
        .call("GET", "/api/v1/me/workspaces", Some(&ann_t), None)
        .await;
    assert_eq!(names(&mine), ["Default"]);
    assert_eq!(t.audit_count("group.member_added", "").await, 1);
    assert_eq!(t.audit_count("group.member_removed", "").await, 1);

    // Another organization's workspace is not there to link to.
    let other = t.org_with_owner("other").await;
    let (_, theirs) = t
        .call(
            "POST",
            "/api/v1/orgs/other/workspaces",
            Some(&other),
            Some(json!({"name": "Theirs"})),
        )
        .await;
    let before = t.fingerprint().await;
    let theirs = theirs["id"].as_str().unwrap();
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/workspaces/{theirs}/groups/{gid}"),
            Some(&owner),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/other/workspaces/{theirs}/groups/{gid}"),
            Some(&owner),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "nor through the other organization's path"
    );
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/other/workspaces/{theirs}/groups/{gid}"),
            Some(&other),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "acme's group is not the other organization's"
    );
    assert_eq!(t.fingerprint().await, before);
    // Unlinked, the group gives no access.
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/groups/{gid}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/groups/{gid}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
both!(a_scim_group_linked_to_a_workspace_follows_the_idp);
