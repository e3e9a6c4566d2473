//! SCIM and the lifecycle: `active` and DELETE through the one transition
//! function, the organization's SCIM policy, pushed passwords, and drift of
//! IdP-managed attributes.

use crate::scim::{PATCH, assert_scim_error, new_user, scim, scim_token};
use crate::*;
use axum::http::StatusCode;

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
    // Written first as a new user, the document conflicted on its
    // externalId: that write left nothing behind.
    only_written_users_were_created(&t, &admin).await;
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
    only_written_users_were_created(&t, &admin).await;
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

/// Every `user.created` event of acme names a user that exists, and every
/// user has exactly one: a creation that conflicted and was settled another
/// way (re-provisioning, linking, refusal) wrote neither user nor event.
async fn only_written_users_were_created(t: &TestApp, admin: &str) {
    t.app.seal_all().await.unwrap();
    // The sorted values of `field` in the items of the list at `path`.
    let listed = |path: &'static str, field: &'static str| async move {
        let (s, v) = t.call("GET", path, Some(admin), None).await;
        assert_eq!(s, 200, "{v}");
        let mut out: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i[field].as_str().unwrap().to_owned())
            .collect();
        out.sort();
        out
    };
    let events = "/api/v1/orgs/acme/audit-events?action=user.created&limit=100";
    let created = listed(events, "target_id").await;
    let users = listed("/api/v1/orgs/acme/users?limit=100", "id").await;
    assert!(!users.is_empty());
    assert_eq!(created, users, "user.created events against users");
}

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
    // A bad policy is refused and changes nothing.
    for bad in [
        json!({"rule": "length", "min_length": 4}),
        json!({"rule": "none"}),
        json!({"min_length": "8"}),
    ] {
        let (s, v) = t
            .call(
                "PUT",
                "/api/v1/orgs/acme/password-policy",
                Some(&admin),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, 422, "{bad}: {v}");
    }
    let (_, p) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/password-policy",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(p, json!({"rule": "complexity", "min_length": 8}));
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
