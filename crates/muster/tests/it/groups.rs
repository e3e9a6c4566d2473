//! Groups: nesting without cycles.

use crate::*;

async fn nesting_that_would_make_a_cycle_is_refused(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let mut ids = Vec::new();
    for n in ["a", "b", "c"] {
        let (_, g) = t
            .call(
                "POST",
                "/api/v1/orgs/acme/groups",
                Some(&owner),
                Some(json!({"name": n})),
            )
            .await;
        ids.push(g["id"].as_str().unwrap().to_owned());
    }
    let nest = |p: &str, c: &str| format!("/api/v1/orgs/acme/groups/{p}/members/groups/{c}");
    assert_eq!(
        t.call("PUT", &nest(&ids[0], &ids[1]), Some(&owner), None)
            .await
            .0,
        201
    );
    assert_eq!(
        t.call("PUT", &nest(&ids[1], &ids[2]), Some(&owner), None)
            .await
            .0,
        201
    );
    assert_eq!(
        t.call("PUT", &nest(&ids[1], &ids[2]), Some(&owner), None)
            .await
            .0,
        204,
        "idempotent"
    );
    let before = t.fingerprint().await;
    for (p, c) in [(2, 0), (2, 1), (1, 0), (0, 0)] {
        let (s, body) = t
            .call("PUT", &nest(&ids[p], &ids[c]), Some(&owner), None)
            .await;
        assert_eq!(s, 409, "{p}->{c}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("cycle"));
    }
    assert_eq!(t.fingerprint().await, before);
    let (_, m) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/groups/{}/members", ids[0]),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(m, json!([{"kind": "group", "id": ids[1], "display": "b"}]));
    let (s, p) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&owner),
            Some(json!({"name": "A"})),
        )
        .await;
    assert_eq!(s, 409, "group names are unique case-insensitively: {p}");
}
both!(nesting_that_would_make_a_cycle_is_refused);
