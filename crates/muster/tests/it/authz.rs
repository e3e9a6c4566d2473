//! Authorization is evaluated afresh on every request, and tenants are
//! isolated: another organization's resources answer 404, never 403.

use crate::*;

async fn removing_a_role_takes_effect_on_the_next_request(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (admin_id, admin) = t
        .user_with_token("acme", "admin@acme.example", &["admin"])
        .await;
    assert_eq!(
        t.call("GET", "/api/v1/orgs/acme/users", Some(&admin), None)
            .await
            .0,
        200
    );
    let (_, list) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/role-assignments?user_id={admin_id}"),
            Some(&owner),
            None,
        )
        .await;
    let admin_assignment = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role_key"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/role-assignments/{admin_assignment}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, p) = t
        .call("GET", "/api/v1/orgs/acme/users", Some(&admin), None)
        .await;
    assert_eq!(s, 403, "{p}");
    assert_eq!(p["type"], "urn:muster:problem:forbidden");
}
both!(removing_a_role_takes_effect_on_the_next_request);

async fn roles_reached_through_nested_groups_count(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (uid, user) = t
        .user_with_token("acme", "u@acme.example", &["member"])
        .await;
    assert_eq!(
        t.call("GET", "/api/v1/orgs/acme/users", Some(&user), None)
            .await
            .0,
        403
    );
    let (_, outer) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&owner),
            Some(json!({"name": "Auditors"})),
        )
        .await;
    let (_, inner) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&owner),
            Some(json!({"name": "EU auditors"})),
        )
        .await;
    let (o, i) = (outer["id"].as_str().unwrap(), inner["id"].as_str().unwrap());
    assert_eq!(
        t.call(
            "PUT",
            &format!("/api/v1/orgs/acme/groups/{o}/members/groups/{i}"),
            Some(&owner),
            None
        )
        .await
        .0,
        201
    );
    assert_eq!(
        t.call(
            "PUT",
            &format!("/api/v1/orgs/acme/groups/{i}/members/users/{uid}"),
            Some(&owner),
            None
        )
        .await
        .0,
        201
    );
    let (s, a) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/role-assignments",
            Some(&owner),
            Some(json!({"role": "auditor", "group_id": o})),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(
        t.call("GET", "/api/v1/orgs/acme/users", Some(&user), None)
            .await
            .0,
        200
    );
    // Taking the user out of the inner group takes the role away at once.
    t.call(
        "DELETE",
        &format!("/api/v1/orgs/acme/groups/{i}/members/users/{uid}"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(
        t.call("GET", "/api/v1/orgs/acme/users", Some(&user), None)
            .await
            .0,
        403
    );
}
both!(roles_reached_through_nested_groups_count);

async fn no_one_grants_more_than_they_hold(t: TestApp) {
    t.org_with_owner("acme").await;
    let (_, admin) = t
        .user_with_token("acme", "admin@acme.example", &["admin"])
        .await;
    let (mid, _) = t
        .user_with_token("acme", "m@acme.example", &["member"])
        .await;
    let before = t.fingerprint().await;
    let (s, p) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/role-assignments",
            Some(&admin),
            Some(json!({"role": "owner", "user_id": mid})),
        )
        .await;
    assert_eq!(s, 403, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("org.manage"));
    assert_eq!(t.fingerprint().await, before);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/role-assignments",
            Some(&admin),
            Some(json!({"role": "auditor", "user_id": mid})),
        )
        .await;
    assert_eq!(s, 201);
}
both!(no_one_grants_more_than_they_hold);

async fn admins_cannot_lock_themselves_out(t: TestApp) {
    t.org_with_owner("acme").await;
    let (id, admin) = t
        .user_with_token("acme", "admin@acme.example", &["admin"])
        .await;
    let (s, p) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/users/{id}/deactivate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 409, "{p}");
    assert_eq!(t.call("GET", "/api/v1/me", Some(&admin), None).await.0, 200);
}
both!(admins_cannot_lock_themselves_out);

/// Every resource of organization B, asked for by the owner of A: 404 each
/// time, for reads and writes, and nothing of B changes.
async fn another_tenants_resources_are_not_found(t: TestApp) {
    let a = t.org_with_owner("alpha").await;
    let b = t.org_with_owner("bravo").await;
    let (_, bu) = t
        .call(
            "POST",
            "/api/v1/orgs/bravo/users",
            Some(&b),
            Some(json!({"email": "x@bravo.example"})),
        )
        .await;
    let (_, bg) = t
        .call(
            "POST",
            "/api/v1/orgs/bravo/groups",
            Some(&b),
            Some(json!({"name": "G"})),
        )
        .await;
    let (_, br) = t
        .call(
            "POST",
            "/api/v1/orgs/bravo/roles",
            Some(&b),
            Some(json!({"key": "ops", "name": "Ops", "permissions": ["users.read"]})),
        )
        .await;
    let (_, bt) = t
        .call(
            "POST",
            "/api/v1/orgs/bravo/api-tokens",
            Some(&b),
            Some(json!({"name": "x"})),
        )
        .await;
    let (_, ba) = t
        .call("GET", "/api/v1/orgs/bravo/role-assignments", Some(&b), None)
        .await;
    let (u, g, r, tk, asg) = (
        bu["id"].as_str().unwrap(),
        bg["id"].as_str().unwrap(),
        br["id"].as_str().unwrap(),
        bt["id"].as_str().unwrap(),
        ba[0]["id"].as_str().unwrap(),
    );
    let before = t.fingerprint().await;
    let body = json!({});
    let cases: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("GET", "/api/v1/orgs/bravo".into(), None),
        (
            "PATCH",
            "/api/v1/orgs/bravo".into(),
            Some(json!({"name": "pwned"})),
        ),
        ("GET", "/api/v1/orgs/bravo/users".into(), None),
        (
            "POST",
            "/api/v1/orgs/bravo/users".into(),
            Some(json!({"email": "evil@alpha.example"})),
        ),
        ("GET", format!("/api/v1/orgs/bravo/users/{u}"), None),
        (
            "PATCH",
            format!("/api/v1/orgs/bravo/users/{u}"),
            Some(json!({"profile": {"title": "pwned"}})),
        ),
        (
            "POST",
            format!("/api/v1/orgs/bravo/users/{u}/suspend"),
            None,
        ),
        (
            "POST",
            format!("/api/v1/orgs/bravo/users/{u}/deactivate"),
            None,
        ),
        ("DELETE", format!("/api/v1/orgs/bravo/users/{u}"), None),
        ("GET", "/api/v1/orgs/bravo/groups".into(), None),
        (
            "POST",
            "/api/v1/orgs/bravo/groups".into(),
            Some(json!({"name": "evil"})),
        ),
        ("GET", format!("/api/v1/orgs/bravo/groups/{g}"), None),
        (
            "PATCH",
            format!("/api/v1/orgs/bravo/groups/{g}"),
            Some(json!({"name": "evil"})),
        ),
        ("DELETE", format!("/api/v1/orgs/bravo/groups/{g}"), None),
        (
            "GET",
            format!("/api/v1/orgs/bravo/groups/{g}/members"),
            None,
        ),
        (
            "PUT",
            format!("/api/v1/orgs/bravo/groups/{g}/members/users/{u}"),
            None,
        ),
        ("GET", "/api/v1/orgs/bravo/roles".into(), None),
        (
            "POST",
            "/api/v1/orgs/bravo/roles".into(),
            Some(json!({"key": "evil", "name": "e", "permissions": []})),
        ),
        ("GET", format!("/api/v1/orgs/bravo/roles/{r}"), None),
        (
            "PATCH",
            format!("/api/v1/orgs/bravo/roles/{r}"),
            Some(json!({"permissions": ["org.manage"]})),
        ),
        ("DELETE", format!("/api/v1/orgs/bravo/roles/{r}"), None),
        ("GET", "/api/v1/orgs/bravo/role-assignments".into(), None),
        (
            "POST",
            "/api/v1/orgs/bravo/role-assignments".into(),
            Some(json!({"role": "owner", "user_id": u})),
        ),
        (
            "DELETE",
            format!("/api/v1/orgs/bravo/role-assignments/{asg}"),
            None,
        ),
        ("GET", "/api/v1/orgs/bravo/api-tokens".into(), None),
        (
            "POST",
            "/api/v1/orgs/bravo/api-tokens".into(),
            Some(json!({"name": "evil"})),
        ),
        (
            "DELETE",
            format!("/api/v1/orgs/bravo/api-tokens/{tk}"),
            None,
        ),
        ("GET", "/api/v1/orgs/bravo/audit-events".into(), None),
        // B's ids through A's own paths: still not found.
        ("GET", format!("/api/v1/orgs/alpha/users/{u}"), None),
        (
            "POST",
            format!("/api/v1/orgs/alpha/users/{u}/deactivate"),
            None,
        ),
        ("GET", format!("/api/v1/orgs/alpha/groups/{g}"), None),
        (
            "PUT",
            format!("/api/v1/orgs/alpha/groups/{g}/members/users/{u}"),
            None,
        ),
        (
            "DELETE",
            format!("/api/v1/orgs/alpha/api-tokens/{tk}"),
            None,
        ),
        (
            "DELETE",
            format!("/api/v1/orgs/alpha/role-assignments/{asg}"),
            None,
        ),
        (
            "POST",
            "/api/v1/orgs/alpha/role-assignments".into(),
            Some(json!({"role": "admin", "user_id": u})),
        ),
    ];
    let _ = body;
    for (m, path, body) in cases {
        let (s, p) = t.call(m, &path, Some(&a), body).await;
        assert_eq!(s, 404, "{m} {path}: {p}");
    }
    assert_eq!(t.fingerprint().await, before);
    // A group of A cannot take a user of B as a member either.
    let (_, ag) = t
        .call(
            "POST",
            "/api/v1/orgs/alpha/groups",
            Some(&a),
            Some(json!({"name": "A"})),
        )
        .await;
    let (s, _) = t
        .call(
            "PUT",
            &format!(
                "/api/v1/orgs/alpha/groups/{}/members/users/{u}",
                ag["id"].as_str().unwrap()
            ),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, 404);
}
both!(another_tenants_resources_are_not_found);

/// Concurrent requests' API tokens are read together, one statement for
/// many (`muster_app::token_reads`): each request still gets exactly its own
/// token's answer — its user's roles (direct or through a group), its
/// organization, its secret, its revocation.
async fn tokens_read_together_each_get_their_own_answer(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let bravo = t.org_with_owner("bravo").await;
    let (_, member) = t
        .user_with_token("acme", "member@acme.example", &["member"])
        .await;
    let (uid, grouped) = t
        .user_with_token("acme", "grouped@acme.example", &["member"])
        .await;
    let (_, g) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&owner),
            Some(json!({"name": "Auditors"})),
        )
        .await;
    let g = g["id"].as_str().unwrap();
    let path = format!("/api/v1/orgs/acme/groups/{g}/members/users/{uid}");
    assert_eq!(t.call("PUT", &path, Some(&owner), None).await.0, 201);
    let (s, a) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/role-assignments",
            Some(&owner),
            Some(json!({"role": "auditor", "group_id": g})),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let (_, c) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/api-tokens",
            Some(&owner),
            Some(json!({"name": "revoked"})),
        )
        .await;
    let revoked = c["secret"].as_str().unwrap().to_owned();
    let gone = format!("/api/v1/orgs/acme/api-tokens/{}", c["id"].as_str().unwrap());
    assert_eq!(t.call("DELETE", &gone, Some(&owner), None).await.0, 204);
    // The owner's token id with another secret (its last character changed).
    let other_last = if owner.ends_with('A') { "B" } else { "A" };
    let forged = format!("{}{other_last}", &owner[..owner.len() - 1]);
    let expected: [(&str, u16); 6] = [
        (&owner, 200),
        (&grouped, 200),
        (&member, 403),
        (&bravo, 404),
        (&revoked, 401),
        (&forged, 401),
    ];
    let before = t.app.api_token_reads();
    let t = &t;
    let calls = (0..8)
        .flat_map(|_| expected.iter())
        .map(|&(token, want)| async move {
            let (s, p) = t
                .call("GET", "/api/v1/orgs/acme/users", Some(token), None)
                .await;
            (s.as_u16(), want, p)
        });
    let answers = futures::future::join_all(calls).await;
    for (got, want, p) in &answers {
        assert_eq!(got, want, "{p}");
    }
    let reads = t.app.api_token_reads() - before;
    assert!(
        reads < answers.len() as u64,
        "{} requests, {reads} reads: none were read together",
        answers.len()
    );
}
both!(tokens_read_together_each_get_their_own_answer);

/// A creation may start from this instance's last read of its token, and is
/// then checked by its own write (`muster_app::caller::Unconfirmed`): any
/// change to what the token may do, committed before the write, refuses it
/// as a fresh read would — nothing written, and no conflict revealed to a
/// caller no longer allowed to create.
async fn a_creation_is_judged_by_the_authority_its_write_finds(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (uid, tok) = t
        .user_with_token("acme", "ada@acme.example", &["member"])
        .await;
    // `mst_<id>_<secret>`, the id a UUID in its simple form.
    let id = tok.split('_').nth(1).unwrap();
    let token_id = format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    );
    let (tok, owner) = (tok.as_str(), owner.as_str());
    let t = &t;
    let create = |email: &str| {
        let body = json!({ "email": email });
        async move {
            let (s, p) = t
                .call("POST", "/api/v1/orgs/acme/users", Some(tok), Some(body))
                .await;
            (s.as_u16(), p)
        }
    };
    let written = |email: &'static str| async move {
        t.scalar(&format!(
            "SELECT COUNT(*) FROM users WHERE email = '{email}'"
        ))
        .await
    };
    let grant = |body: serde_json::Value| async move {
        let (s, g) = t
            .call(
                "POST",
                "/api/v1/orgs/acme/role-assignments",
                Some(owner),
                Some(body),
            )
            .await;
        assert_eq!(s, 201, "{g}");
        g["id"].as_str().unwrap().to_owned()
    };
    let pg = t.backend() == muster_store::Backend::Postgres;

    // A role granted directly.
    let direct = grant(json!({"role": "admin", "user_id": uid})).await;
    assert_eq!(create("one@acme.example").await.0, 201);
    let (reads, refusals) = (t.app.api_token_reads(), t.app.api_token_refusals());
    assert_eq!(create("two@acme.example").await.0, 201);
    if pg {
        assert_eq!(
            t.app.api_token_reads(),
            reads,
            "the second creation should start from the token read before"
        );
    }
    let path = format!("/api/v1/orgs/acme/role-assignments/{direct}");
    assert_eq!(t.call("DELETE", &path, Some(owner), None).await.0, 204);
    assert_eq!(create("three@acme.example").await.0, 403);
    assert_eq!(written("three@acme.example").await, 0);
    if pg {
        assert_eq!(t.app.api_token_refusals(), refusals + 1);
    }
    let (s, p) = create("one@acme.example").await;
    assert_eq!(s, 403, "an existing email must not answer 409 now: {p}");

    // The same role through a group, then the membership removed.
    let (_, g) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(owner),
            Some(json!({"name": "Admins"})),
        )
        .await;
    let g = g["id"].as_str().unwrap();
    grant(json!({"role": "admin", "group_id": g})).await;
    let member = format!("/api/v1/orgs/acme/groups/{g}/members/users/{uid}");
    assert_eq!(t.call("PUT", &member, Some(owner), None).await.0, 201);
    assert_eq!(create("four@acme.example").await.0, 201);
    assert_eq!(create("five@acme.example").await.0, 201);
    assert_eq!(t.call("DELETE", &member, Some(owner), None).await.0, 204);
    assert_eq!(create("six@acme.example").await.0, 403);
    assert_eq!(written("six@acme.example").await, 0);

    // Back in the group; then the token revoked (suspending or deactivating
    // the user revokes it the same way).
    assert_eq!(t.call("PUT", &member, Some(owner), None).await.0, 201);
    assert_eq!(create("seven@acme.example").await.0, 201);
    assert_eq!(create("eight@acme.example").await.0, 201);
    // The same token id with another secret, while its row is kept: refused,
    // nothing written.
    let other_last = if tok.ends_with('A') { "B" } else { "A" };
    let forged = format!("{}{other_last}", &tok[..tok.len() - 1]);
    let body = Some(json!({"email": "forged@acme.example"}));
    let (s, _) = t
        .call("POST", "/api/v1/orgs/acme/users", Some(&forged), body)
        .await;
    assert_eq!(s, 401);
    assert_eq!(written("forged@acme.example").await, 0);
    let revoke = format!("/api/v1/orgs/acme/api-tokens/{token_id}");
    let (s, p) = t.call("DELETE", &revoke, Some(owner), None).await;
    assert_eq!(s, 204, "{p}");
    assert_eq!(create("nine@acme.example").await.0, 401);
    assert_eq!(written("nine@acme.example").await, 0);
}
both!(a_creation_is_judged_by_the_authority_its_write_finds);
