//! Deletion and the audit log (issue 6 §3, DESIGN.md §5): personal data in
//! events is sealed per person, deletion destroys the key, the chain still
//! verifies; legal holds block deletion; deleting needs deactivation first.

use crate::scim::{new_user, scim, scim_token};
use crate::*;
use muster_testkit::muster_app::{Caller, audit};
use serde_json::Value;

async fn org_id(t: &TestApp) -> String {
    muster_testkit::muster_store::orgs::by_slug(&t.app.db, "acme")
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Every event about `id`, as the export (JSON Lines) shows it.
async fn exported(t: &TestApp, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let q = audit::AuditQuery {
        target: Some(id.to_owned()),
        ..Default::default()
    };
    audit::export(&t.app, &Caller::operator("test"), "acme", q, |e| {
        out.push(serde_json::to_value(e).unwrap());
        Ok(())
    })
    .await
    .unwrap();
    out
}

/// Rows anywhere that still hold `needle` in clear.
async fn clear_audit_rows(t: &TestApp, needle: &str) -> i64 {
    t.scalar(&format!(
        "SELECT COUNT(*) FROM audit_events WHERE changes LIKE '%{needle}%' \
         OR actor_label LIKE '%{needle}%' OR context LIKE '%{needle}%'"
    ))
    .await
}

async fn deleting_a_user_keeps_a_verifiable_history_with_its_personal_data_unreadable(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (id, _) = t
        .user_with_token("acme", "erin@acme.example", &["member"])
        .await;
    // The user acts itself (a sign-in: its IP and browser go in the context)
    // and is acted upon (a profile edit, a deactivation).
    let (s, v) = t
        .call_from(
            ("203.0.113.77", "ErinBrowser/1.0"),
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "erin@acme.example", "password": "Str0ng!pass", "org": "acme"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t
        .call(
            "PATCH",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            Some(json!({"profile": {"title": "Night auditor"}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    t.app.seal_all().await.unwrap();

    // At rest, nothing personal is in clear; through the API, all of it reads.
    for needle in ["erin@acme", "203.0.113.77", "ErinBrowser", "Night auditor"] {
        assert_eq!(clear_audit_rows(&t, needle).await, 0, "{needle} at rest");
    }
    let before = exported(&t, &id).await;
    let text = Value::Array(before.clone()).to_string();
    for needle in ["erin@acme.example", "Night auditor"] {
        assert!(text.contains(needle), "{needle} readable before deletion");
    }
    let login = before.iter().find(|e| e["action"] == "auth.login").unwrap();
    assert_eq!(login["context"]["ip"], "203.0.113.77");
    assert_eq!(login["actor_label"], "erin@acme.example");
    assert!(before.iter().all(|e| e["erased"] == false));

    for (method, path) in [
        ("POST", format!("/api/v1/orgs/acme/users/{id}/deactivate")),
        ("DELETE", format!("/api/v1/orgs/acme/users/{id}")),
    ] {
        let (s, v) = t.call(method, &path, Some(&admin), None).await;
        assert!(s.is_success(), "{path}: {v}");
    }

    // The history is all there, in order, and the chain verifies.
    let after = exported(&t, &id).await;
    let ids = |v: &[Value]| v.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&after)[..before.len()], ids(&before)[..]);
    let v = audit::verify(&t.app, &org_id(&t).await, "acme")
        .await
        .unwrap();
    assert!(v.findings.is_empty(), "{:?}", v.findings);
    // Its personal data cannot be read any more, by anyone.
    let text = Value::Array(after.clone()).to_string();
    for needle in ["erin@acme", "Night auditor", "203.0.113.77", "ErinBrowser"] {
        assert!(!text.contains(needle), "{needle} readable after deletion");
    }
    let login = after.iter().find(|e| e["action"] == "auth.login").unwrap();
    assert_eq!(login["erased"], true);
    assert_eq!(
        (&login["actor_label"], &login["context"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(login["actor_id"], id.as_str(), "the pseudonymous id stays");
    // The admin's part stays readable: it is the admin's data, not Erin's.
    let edit = after
        .iter()
        .find(|e| e["action"] == "user.updated")
        .unwrap();
    assert_eq!(edit["changes"], Value::Null);
    assert_eq!(edit["actor_kind"], "api_token");
    assert!(edit["context"].is_object(), "{edit}");
    // The deletion's own record says what happened, readably.
    let del = after.iter().find(|e| e["action"] == "user.delete").unwrap();
    assert_eq!(del["erased"], false);
    assert_eq!(del["changes"]["state"], json!(["deactivated", "deleted"]));
    assert_eq!(del["severity"], "SECURITY");

    // Everything else of the user is gone.
    for table in [
        "users",
        "sessions",
        "api_tokens",
        "role_assignments",
        "group_user_members",
        "email_tokens",
        "mfa_factors",
        "sign_ins",
    ] {
        let n = t
            .scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE {} = '{id}'",
                if table == "users" { "id" } else { "user_id" }
            ))
            .await;
        assert_eq!(n, 0, "{table}");
    }
}
both!(deleting_a_user_keeps_a_verifiable_history_with_its_personal_data_unreadable);

async fn deleting_an_active_user_is_refused_and_changes_nothing(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (id, token) = t
        .user_with_token("acme", "fay@acme.example", &["member"])
        .await;
    let before = t.fingerprint().await;
    let (s, v) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("deactivate"), "{v}");
    assert_eq!(t.fingerprint().await, before);
    assert_eq!(t.call("GET", "/api/v1/me", Some(&token), None).await.0, 200);
}
both!(deleting_an_active_user_is_refused_and_changes_nothing);

async fn a_legal_hold_blocks_deletion_until_it_is_lifted(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (id, _) = t
        .user_with_token("acme", "gil@acme.example", &["member"])
        .await;
    let (_, member) = t
        .user_with_token("acme", "mo@acme.example", &["member"])
        .await;
    let hold = format!("/api/v1/orgs/acme/users/{id}/legal-hold");
    let body = json!({"reason": "Matter 2026-118"});
    // A member may not place a hold; bad reasons are refused.
    let (s, _) = t
        .call("PUT", &hold, Some(&member), Some(body.clone()))
        .await;
    assert_eq!(s, 403);
    for bad in [
        json!({"reason": "  "}),
        json!({"reason": "x".repeat(501)}),
        json!({}),
    ] {
        let (s, v) = t.call("PUT", &hold, Some(&admin), Some(bad)).await;
        assert_eq!(s, 422, "{v}");
    }
    let (s, v) = t.call("GET", &hold, Some(&admin), None).await;
    assert_eq!((s.as_u16(), &v["held"]), (200, &json!(false)));
    let (s, v) = t.call("PUT", &hold, Some(&admin), Some(body)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["held"], &v["reason"]),
        (&json!(true), &json!("Matter 2026-118"))
    );

    // Deactivation is allowed; deletion is not, and changes nothing.
    let (s, _) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/users/{id}/deactivate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let before = t.fingerprint().await;
    let user = format!("/api/v1/orgs/acme/users/{id}");
    let (s, v) = t.call("DELETE", &user, Some(&admin), None).await;
    assert_eq!(s, 409, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("legal hold"), "{v}");
    assert_eq!(t.fingerprint().await, before);

    // Lifted (audited both ways), the deletion goes through.
    let (s, v) = t.call("DELETE", &hold, Some(&admin), None).await;
    assert_eq!((s.as_u16(), &v["held"]), (200, &json!(false)));
    assert_eq!(t.call("DELETE", &user, Some(&admin), None).await.0, 204);
    let actions: Vec<Value> = exported(&t, &id)
        .await
        .into_iter()
        .map(|e| e["action"].clone())
        .collect();
    for a in [
        "user.legal_hold_placed",
        "user.legal_hold_lifted",
        "user.delete",
    ] {
        assert!(actions.contains(&json!(a)), "{a} in {actions:?}");
    }
}
both!(a_legal_hold_blocks_deletion_until_it_is_lifted);

/// An IdP whose DELETE fails retries it forever: under a hard-delete policy a
/// held account is deactivated and hidden instead, on the record.
async fn scim_hard_delete_of_a_held_account_deactivates_it_instead(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/scim-policy",
            Some(&admin),
            Some(json!({"delete": "delete"})),
        )
        .await;
    assert_eq!(s, 200);
    let u = new_user(&t, &tok, "hal", json!({"externalId": "H-1"})).await;
    let id = u["id"].as_str().unwrap().to_owned();
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/users/{id}/legal-hold"),
            Some(&admin),
            Some(json!({"reason": "Audit 7"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = scim(&t, "DELETE", &format!("/Users/{id}"), &tok, None, &[]).await;
    assert_eq!(s, 204);
    let (s, v) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s.as_u16(), &v["state"]), (200, &json!("deactivated")));
    let ev = exported(&t, &id).await;
    let withheld = ev
        .iter()
        .find(|e| e["action"] == "scim.user_deleted")
        .unwrap();
    assert!(
        withheld["changes"]["policy"]
            .as_str()
            .unwrap()
            .contains("legal hold")
    );
}
both!(scim_hard_delete_of_a_held_account_deactivates_it_instead);

/// Issue 6 §5: the actor's local time beside UTC, from their profile.
async fn events_show_the_actors_local_time_beside_utc(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (id, _) = t
        .user_with_token("acme", "kei@acme.example", &["member"])
        .await;
    let (s, _) = t
        .call(
            "PATCH",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            Some(json!({"profile": {"timezone": "Asia/Tokyo"}})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "kei@acme.example", "password": "Str0ng!pass", "org": "acme"})),
        )
        .await;
    assert_eq!(s, 200);
    let ev = exported(&t, &id).await;
    let login = ev.iter().find(|e| e["action"] == "auth.login").unwrap();
    assert_eq!(login["actor_time_zone"], "Asia/Tokyo");
    let local = login["occurred_at_local"].as_str().unwrap();
    assert!(local.ends_with("+09:00"), "{local}");
    let utc = time::OffsetDateTime::parse(
        login["occurred_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let there =
        time::OffsetDateTime::parse(local, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(utc, there, "the same instant");
    // The admin's edit: the admin has no time zone, so none is shown.
    let edit = ev.iter().find(|e| e["action"] == "user.updated").unwrap();
    assert_eq!(edit["occurred_at_local"], Value::Null);
}
both!(events_show_the_actors_local_time_beside_utc);
