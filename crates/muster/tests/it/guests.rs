//! Issue 7 §5: guests — invited into one workspace by a workspace admin,
//! with the inviter recorded, a limited role, no default workspace, masked
//! to members without `users.read`, and gone when their access ends.

use crate::invitations::link_token;
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::muster_app::scheduler::run_due;
use muster_testkit::smtp::SmtpSink;
use serde_json::Value;

fn emails(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap().to_owned())
        .collect()
}

async fn guests_join_one_workspace_for_a_while(t: TestApp) {
    let sink = SmtpSink::start().await;
    let owner = t.org_with_owner("acme").await;
    let long = json!({"idle_minutes": 43200, "absolute_hours": 8760});
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/session-policy",
            Some(&owner),
            Some(long),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, ws) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/workspaces",
            Some(&owner),
            Some(json!({"name": "Research"})),
        )
        .await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let (lead, lead_t) = t
        .user_with_token("acme", "lead@acme.example", &["member"])
        .await;
    let (mate, mate_t) = t
        .user_with_token("acme", "mate@acme.example", &["member"])
        .await;
    for (user, role) in [(&lead, "admin"), (&mate, "member")] {
        let (s, v) = t
            .call(
                "PUT",
                &format!("/api/v1/orgs/acme/workspaces/{ws}/members/{user}"),
                Some(&owner),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }

    // Refused, with nothing changed.
    let before = t.fingerprint().await;
    for (token, path, body, want) in [
        (
            &owner,
            "default".to_owned(),
            json!({"email": "g@partner.example"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            &lead_t,
            ws.clone(),
            json!({"email": "g@partner.example", "role": "owner"}),
            StatusCode::FORBIDDEN,
        ),
        (
            &lead_t,
            ws.clone(),
            json!({"email": "g@partner.example", "expires_in_days": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            &lead_t,
            ws.clone(),
            json!({"email": "g@partner.example", "expires_in_days": 366}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            &lead_t,
            ws.clone(),
            json!({"email": "not an address"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            &mate_t,
            ws.clone(),
            json!({"email": "g@partner.example"}),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (s, p) = t
            .call(
                "POST",
                &format!("/api/v1/orgs/acme/workspaces/{path}/guests"),
                Some(token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, want, "{body}: {p}");
    }
    assert_eq!(t.fingerprint().await, before);

    // The workspace's admin invites; the guest accepts.
    let (s, r) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/guests"),
            Some(&lead_t),
            Some(json!({"email": "gail@partner.example", "expires_in_days": 14})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let guest = r["invited"][0]["user_id"].as_str().unwrap().to_owned();
    t.deliver_mail(&sink).await;
    let token = link_token(&sink, "gail@partner.example");
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": token, "password": "Str0ng!pass"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let session = b["session_token"].as_str().unwrap().to_owned();
    let (_, me) = t.call("GET", "/api/v1/me", Some(&session), None).await;
    assert_eq!(
        (me["source"].as_str(), me["invited_by"].as_str()),
        (Some("guest"), Some(lead.as_str()))
    );

    // One workspace, a limited role, nothing organization-wide.
    let (_, mine) = t
        .call("GET", "/api/v1/me/workspaces", Some(&session), None)
        .await;
    let names: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["workspace"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Research"], "not the default workspace: {mine}");
    assert_eq!(mine[0]["roles"], json!([{"role": "member"}]));
    let (_, a) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/default/access/{guest}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(a["member"], false);
    assert_eq!(
        t.call("GET", "/api/v1/orgs/acme/users", Some(&session), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // Members see who is there; without users.read, the guest masked.
    let (s, v) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/members"),
            Some(&mate_t),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        emails(&v),
        [
            "g***@partner.example",
            "lead@acme.example",
            "mate@acme.example"
        ]
    );
    let (_, v) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/members"),
            Some(&owner),
            None,
        )
        .await;
    assert!(
        emails(&v).contains(&"gail@partner.example".to_owned()),
        "{v}"
    );
    let (_, v) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/members"),
            Some(&lead_t),
            None,
        )
        .await;
    assert!(
        emails(&v).contains(&"gail@partner.example".to_owned()),
        "the workspace's admin reads users there"
    );
    let (s, _) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/workspaces/default/members",
            Some(&session),
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a guest is not a member of the default workspace"
    );
    assert_eq!(t.audit_count("guest.invited", "").await, 1);

    // When the access ends, the scheduler deactivates the guest: every
    // session ends at once (sessions here last a month, so it is the
    // deactivation that ends this one).
    t.clock.advance(time::Duration::days(13));
    run_due(&t.app).await.unwrap();
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&session), None).await.0,
        StatusCode::OK
    );
    t.clock.advance(time::Duration::days(2));
    let report = run_due(&t.app).await.unwrap().unwrap();
    assert_eq!(report.deactivated, 1);
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&session), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, a) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/workspaces/{ws}/access/{guest}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(a["member"], false);
}
both!(guests_join_one_workspace_for_a_while);
