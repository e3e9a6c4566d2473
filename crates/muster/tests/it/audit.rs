//! The audit log: written with every change, sealed into a hash chain, and any
//! tampering with the stored rows found and named by `verify`.

use crate::*;
use muster_testkit::muster_app::audit::verify;

async fn seeded(t: &TestApp) -> (String, String) {
    let admin = t.org_with_owner("acme").await;
    for i in 0..4 {
        let (s, _) = t
            .call(
                "POST",
                "/api/v1/orgs/acme/users",
                Some(&admin),
                Some(json!({ "email": format!("u{i}@acme.example") })),
            )
            .await;
        assert_eq!(s, 201);
    }
    t.app.seal_all().await.unwrap();
    let org = muster_testkit::muster_store::orgs::by_slug(&t.app.db, "acme")
        .await
        .unwrap()
        .unwrap();
    let v = verify(&t.app, &org.id, "acme").await.unwrap();
    assert!(v.findings.is_empty(), "{:?}", v.findings);
    assert!(v.events_checked >= 7, "{}", v.events_checked);
    (org.id, admin)
}

/// Lets the test write where the triggers forbid it, as an attacker with
/// database access would.
async fn disable_guards(t: &TestApp) {
    match t.backend() {
        muster_testkit::muster_app::Backend::Sqlite => {
            for trg in [
                "audit_events_no_update",
                "audit_events_no_delete",
                "audit_chain_no_update",
                "audit_chain_no_delete",
            ] {
                t.raw(&format!("DROP TRIGGER {trg}")).await;
            }
        }
        muster_testkit::muster_app::Backend::Postgres => {
            t.raw("ALTER TABLE audit_events DISABLE TRIGGER USER").await;
            t.raw("ALTER TABLE audit_chain DISABLE TRIGGER USER").await;
        }
    }
}

async fn event_at(t: &TestApp, org: &str, seq: i64) -> String {
    let sql = "SELECT event_id FROM audit_chain WHERE org_id = $1 AND seq = $2";
    match &t.app.db {
        muster_testkit::muster_store::Db::Sqlite { read, .. } => sqlx::query_scalar(sql)
            .bind(org)
            .bind(seq)
            .fetch_one(read)
            .await
            .unwrap(),
        muster_testkit::muster_store::Db::Postgres(p, ..) => sqlx::query_scalar(sql)
            .bind(org)
            .bind(seq)
            .fetch_one(p)
            .await
            .unwrap(),
    }
}

async fn third_event(t: &TestApp, org: &str) -> String {
    event_at(t, org, 3).await
}

async fn findings(t: &TestApp, org: &str) -> Vec<String> {
    verify(&t.app, org, "acme").await.unwrap().findings
}

async fn a_modified_event_is_named(t: TestApp) {
    let (org, _) = seeded(&t).await;
    disable_guards(&t).await;
    let ev = third_event(&t, &org).await;
    t.raw(&format!(
        "UPDATE audit_events SET changes = '{{}}' WHERE id = '{ev}'"
    ))
    .await;
    let f = findings(&t, &org).await;
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].contains(&ev) && f[0].contains("does not match"),
        "{f:?}"
    );
}
both!(a_modified_event_is_named);

async fn a_deleted_event_is_named(t: TestApp) {
    let (org, _) = seeded(&t).await;
    disable_guards(&t).await;
    let ev = third_event(&t, &org).await;
    t.raw(&format!("DELETE FROM audit_events WHERE id = '{ev}'"))
        .await;
    let f = findings(&t, &org).await;
    assert!(
        f.iter().any(|m| m.contains(&ev) && m.contains("missing")),
        "{f:?}"
    );
}
both!(a_deleted_event_is_named);

async fn an_inserted_event_is_named(t: TestApp) {
    let (org, _) = seeded(&t).await;
    t.raw(&format!(
        "INSERT INTO audit_events (id, org_id, occurred_at, actor_kind, action, severity, changes, context)
         VALUES ('forged-1', '{org}', 1, 'system', 'user.created', 'INFO', '{{}}', '{{}}')"
    ))
    .await;
    let f = findings(&t, &org).await;
    assert!(
        f.iter()
            .any(|m| m.contains("forged-1") && m.contains("inserted")),
        "{f:?}"
    );
}
both!(an_inserted_event_is_named);

async fn reordered_events_are_detected(t: TestApp) {
    let (org, _) = seeded(&t).await;
    disable_guards(&t).await;
    let (ev3, ev4) = (event_at(&t, &org, 3).await, event_at(&t, &org, 4).await);
    // Swap which events links 3 and 4 point at (event ids are unique: go via a placeholder).
    t.raw(&format!(
        "UPDATE audit_chain SET event_id = 'swap' WHERE org_id = '{org}' AND seq = 3"
    ))
    .await;
    t.raw(&format!(
        "UPDATE audit_chain SET event_id = '{ev3}' WHERE org_id = '{org}' AND seq = 4"
    ))
    .await;
    t.raw(&format!(
        "UPDATE audit_chain SET event_id = '{ev4}' WHERE org_id = '{org}' AND seq = 3"
    ))
    .await;
    let f = findings(&t, &org).await;
    assert!(
        f.iter().any(|m| m.contains(&ev4) && m.contains("link 3")),
        "{f:?}"
    );
}
both!(reordered_events_are_detected);

async fn a_truncated_chain_tail_is_detected(t: TestApp) {
    let (org, _) = seeded(&t).await;
    disable_guards(&t).await;
    t.raw(&format!("DELETE FROM audit_chain WHERE org_id = '{org}' AND seq = (SELECT MAX(seq) FROM audit_chain WHERE org_id = '{org}')")).await;
    assert!(!findings(&t, &org).await.is_empty());
}
both!(a_truncated_chain_tail_is_detected);

async fn the_database_refuses_to_alter_the_log(t: TestApp) {
    let (org, _) = seeded(&t).await;
    let ev = third_event(&t, &org).await;
    let e = t
        .try_raw(&format!(
            "UPDATE audit_events SET action = 'x' WHERE id = '{ev}'"
        ))
        .await
        .unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    let e = t
        .try_raw(&format!("DELETE FROM audit_events WHERE id = '{ev}'"))
        .await
        .unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    let e = t
        .try_raw(&format!("DELETE FROM audit_chain WHERE event_id = '{ev}'"))
        .await
        .unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    assert!(findings(&t, &org).await.is_empty());
}
both!(the_database_refuses_to_alter_the_log);

async fn audit_events_filter_and_paginate(t: TestApp) {
    let (_, admin) = seeded(&t).await;
    let (s, p) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/audit-events?action=user.created&limit=2",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["items"].as_array().unwrap().len(), 2);
    let cursor = p["next_cursor"].as_str().unwrap().to_owned();
    let (_, p2) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?action=user.created&limit=2&cursor={cursor}"),
            Some(&admin),
            None,
        )
        .await;
    let (_, p3) = t
        .call(
            "GET",
            &format!(
                "/api/v1/orgs/acme/audit-events?action=user.created&limit=2&cursor={}",
                p2["next_cursor"].as_str().unwrap()
            ),
            Some(&admin),
            None,
        )
        .await;
    // owner + 4 users = 5 creations, in order, no repeats.
    let all: Vec<_> = [&p, &p2, &p3]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().clone())
        .collect();
    assert_eq!(all.len(), 5);
    assert!(p3["next_cursor"].is_null());
    assert!(
        all.windows(2)
            .all(|w| w[0]["id"].as_str() < w[1]["id"].as_str())
    );
    assert!(
        all.iter().all(|e| e["seq"].is_i64()),
        "sealed events carry their seq"
    );
    // By prefix, by target, by time.
    let (_, p) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/audit-events?action=org.",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(p["items"][0]["action"], "org.created");
    let target = all[1]["target_id"].as_str().unwrap();
    let (_, p) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?target={target}"),
            Some(&admin),
            None,
        )
        .await;
    assert!(
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["target_id"] == target)
    );
    let (_, p) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/audit-events?until=2000-01-01T00:00:00Z",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(p["items"].as_array().unwrap().len(), 0);
    let (s, p) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/audit-events?since=yesterday",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "since");
}
both!(audit_events_filter_and_paginate);

async fn audit_reading_needs_the_permission(t: TestApp) {
    t.org_with_owner("acme").await;
    let (_, member) = t
        .user_with_token("acme", "m@acme.example", &["member"])
        .await;
    let (s, p) = t
        .call("GET", "/api/v1/orgs/acme/audit-events", Some(&member), None)
        .await;
    assert_eq!(s, 403, "{p}");
    let (_, auditor) = t
        .user_with_token("acme", "a@acme.example", &["auditor"])
        .await;
    assert_eq!(
        t.call(
            "GET",
            "/api/v1/orgs/acme/audit-events",
            Some(&auditor),
            None
        )
        .await
        .0,
        200
    );
}
both!(audit_reading_needs_the_permission);

async fn the_http_export_streams_exactly_what_the_filters_select(t: TestApp) {
    let (_, admin) = seeded(&t).await;
    let (_, member) = t
        .user_with_token("acme", "viewer@acme.example", &["member"])
        .await;
    let (_, page) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/audit-events?action=user.&limit=500",
            Some(&admin),
            None,
        )
        .await;
    let listed: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(listed.len() >= 2);

    let get = |q: &str| {
        axum::http::Request::builder()
            .uri(format!("/api/v1/orgs/acme/audit-events/export{q}"))
            .header("authorization", format!("Bearer {admin}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let (s, h, body) = t.send_full(get("?action=user.")).await;
    assert_eq!(s, 200);
    assert_eq!(h["content-type"], "application/jsonl");
    let ids: Vec<String> = body
        .as_str()
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, listed, "the same events as the list, in order");

    let (s, h, body) = t.send_full(get("?format=csv&action=user.")).await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = body.as_str().unwrap().to_owned();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(muster_testkit::muster_app::audit::CSV_HEADER)
    );
    assert_eq!(lines.count(), listed.len());

    // Refused before anything is streamed, as problem details.
    for (q, status) in [
        ("?format=xml", 422),
        ("?since=yesterday", 422),
        ("?cursor=x", 422),
    ] {
        let (s, h, v) = t.send_full(get(q)).await;
        assert_eq!(s.as_u16(), status, "{q}: {v}");
        assert_eq!(h["content-type"], "application/problem+json", "{q}");
    }
    let (s, _) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/audit-events/export",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(s, 403);
}
both!(the_http_export_streams_exactly_what_the_filters_select);
