//! The revocation primitive: every transition that removes access ends every
//! grant of the user, and a token issued before it is refused on the very next
//! request — through REST, the CLI and the app function itself.

use crate::*;
use muster_testkit::muster_app::{Caller, users};
use muster_testkit::muster_core::LifecycleEvent;
use muster_testkit::muster_store::access::{GrantKind, insert_grant};

/// A member with a token plus a session, an invitation and an email token.
async fn victim(t: &TestApp, n: u32) -> (String, String) {
    let (id, token) = t
        .user_with_token("acme", &format!("v{n}@acme.example"), &["member"])
        .await;
    let mut tx = t.app.db.begin().await.unwrap();
    for (i, kind) in [
        GrantKind::Session,
        GrantKind::Invitation,
        GrantKind::EmailToken,
    ]
    .into_iter()
    .enumerate()
    {
        insert_grant(
            &mut tx,
            kind,
            &format!("{id}-g{i}"),
            &org_id(t).await,
            &id,
            0,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let (s, me) = t.call("GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(live(t, &id).await, 4);
    (id, token)
}

async fn org_id(t: &TestApp) -> String {
    muster_testkit::muster_store::orgs::by_slug(&t.app.db, "acme")
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn live(t: &TestApp, id: &str) -> i64 {
    let mut tx = t.app.db.begin().await.unwrap();
    muster_testkit::muster_store::access::live_grants(&mut tx, id)
        .await
        .unwrap()
}

async fn rest_transitions_revoke_every_grant(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    for (n, action) in ["suspend", "deactivate"].into_iter().enumerate() {
        let (id, token) = victim(&t, n as u32).await;
        let (s, body) = t
            .call(
                "POST",
                &format!("/api/v1/orgs/acme/users/{id}/{action}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, 200, "{body}");
        let (s, _) = t.call("GET", "/api/v1/me", Some(&token), None).await;
        assert_eq!(
            s, 401,
            "{action}: the token must be refused on the very next request"
        );
        assert_eq!(live(&t, &id).await, 0, "{action}");
    }
    // Delete: deactivate first, then delete; the token is gone with the user.
    let (id, token) = victim(&t, 9).await;
    t.call(
        "POST",
        &format!("/api/v1/orgs/acme/users/{id}/deactivate"),
        Some(&admin),
        None,
    )
    .await;
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(t.call("GET", "/api/v1/me", Some(&token), None).await.0, 401);
    assert_eq!(
        t.scalar(&format!(
            "SELECT COUNT(*) FROM api_tokens WHERE user_id = '{id}'"
        ))
        .await,
        0
    );
    assert_eq!(
        t.call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(&admin),
            None
        )
        .await
        .0,
        404
    );
}
both!(rest_transitions_revoke_every_grant);

/// Lock is a system trigger (lockout, risk): it goes through the same function.
async fn lock_by_the_system_revokes_every_grant(t: TestApp) {
    t.org_with_owner("acme").await;
    let (id, token) = victim(&t, 1).await;
    users::transition(
        &t.app,
        &Caller::operator("system"),
        "acme",
        &id,
        LifecycleEvent::Lock,
    )
    .await
    .unwrap();
    assert_eq!(t.call("GET", "/api/v1/me", Some(&token), None).await.0, 401);
    assert_eq!(live(&t, &id).await, 0);
    // Unlocking restores the account, not the revoked token.
    users::transition(
        &t.app,
        &Caller::operator("system"),
        "acme",
        &id,
        LifecycleEvent::Unlock,
    )
    .await
    .unwrap();
    assert_eq!(t.call("GET", "/api/v1/me", Some(&token), None).await.0, 401);
}
both!(lock_by_the_system_revokes_every_grant);

async fn cli_transitions_revoke_every_grant(t: TestApp) {
    t.org_with_owner("acme").await;
    for (n, action) in ["suspend", "deactivate"].into_iter().enumerate() {
        let (id, token) = victim(&t, n as u32).await;
        let out = crate::cli::muster(
            &t,
            &[
                "user",
                action,
                "--org",
                "acme",
                "--email",
                &format!("v{n}@acme.example"),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            t.call("GET", "/api/v1/me", Some(&token), None).await.0,
            401,
            "{action} via CLI"
        );
        assert_eq!(live(&t, &id).await, 0);
    }
    let out = crate::cli::muster(
        &t,
        &[
            "user",
            "delete",
            "--org",
            "acme",
            "--email",
            "v1@acme.example",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM users WHERE email = 'v1@acme.example'")
            .await,
        0
    );
}
both!(cli_transitions_revoke_every_grant);

async fn deactivation_event_carries_the_revocation_receipt(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (id, _) = victim(&t, 1).await;
    t.call(
        "POST",
        &format!("/api/v1/orgs/acme/users/{id}/deactivate"),
        Some(&admin),
        None,
    )
    .await;
    let (s, page) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?target={id}&action=user.deactivate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let ev = &page["items"][0];
    assert_eq!(ev["severity"], "SECURITY");
    assert_eq!(ev["changes"]["state"], json!(["active", "deactivated"]));
    let r = &ev["changes"]["revoked"];
    assert_eq!(r["api_tokens"].as_array().unwrap().len(), 1);
    assert_eq!(r["sessions"], json!([format!("{id}-g0")]));
    assert_eq!(r["invitations"], json!([format!("{id}-g1")]));
    assert_eq!(r["email_tokens"], json!([format!("{id}-g2")]));
    assert_eq!(
        r["counts"],
        json!({"sessions": 1, "api_tokens": 1, "invitations": 1, "email_tokens": 1, "total": 4})
    );
    // When: the moment of the revoking transaction, the event's own time.
    assert_eq!(r["at"], ev["occurred_at"]);
    assert_eq!(ev["actor_kind"], "api_token");
}
both!(deactivation_event_carries_the_revocation_receipt);

async fn reactivation_restores_the_account_but_no_old_token(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (id, token) = victim(&t, 1).await;
    t.call(
        "POST",
        &format!("/api/v1/orgs/acme/users/{id}/deactivate"),
        Some(&admin),
        None,
    )
    .await;
    let (s, u) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/users/{id}/reactivate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((s.as_u16(), u["state"].as_str()), (200, Some("active")));
    assert_eq!(t.call("GET", "/api/v1/me", Some(&token), None).await.0, 401);
}
both!(reactivation_restores_the_account_but_no_old_token);
