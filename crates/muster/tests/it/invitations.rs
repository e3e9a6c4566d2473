//! Issue 4 §7: invitations — invite many with roles and groups, the email's
//! link, acceptance (API and browser), resend, revoke, expiry.

use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::browser::Driver;
use muster_testkit::smtp::SmtpSink;

/// The token of the newest invitation email to `to`.
pub(crate) fn link_token(sink: &SmtpSink, to: &str) -> String {
    let m = sink
        .messages()
        .into_iter()
        .rev()
        .find(|m| m.to.iter().any(|t| t.contains(to)))
        .unwrap_or_else(|| panic!("no email to {to}"));
    m.text()
        .split("/invitations/accept?token=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("a link")
        .to_owned()
}

async fn invite_accept_resend_revoke_expire(t: TestApp) {
    let sink = SmtpSink::start().await;
    let admin = t.org_with_owner("inv").await;
    t.user_with_token("inv", "old@inv.example", &["member"])
        .await;
    let (s, g) = t
        .call(
            "POST",
            "/api/v1/orgs/inv/groups",
            Some(&admin),
            Some(json!({"name": "Sales"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let group = g["id"].as_str().unwrap().to_owned();
    let (s, r) = t
        .call(
            "POST",
            "/api/v1/orgs/inv/invitations",
            Some(&admin),
            Some(json!({
            "emails": ["ann@inv.example", "bob@inv.example", "OLD@inv.example", "ann@inv.example"],
            "roles": ["admin"], "groups": [group]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["invited"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["skipped"][0]["email"], "OLD@inv.example");
    let ann_inv = r["invited"][0]["id"].as_str().unwrap().to_owned();
    let bob_inv = r["invited"][1]["id"].as_str().unwrap().to_owned();
    t.deliver_mail(&sink).await;
    let token = link_token(&sink, "ann@inv.example");
    // An invited account cannot sign in, and has no password to guess.
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "ann@inv.example", "password": "Str0ng!pass", "org": "inv"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // The password policy first; a forged token changes nothing.
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": token, "password": "weak"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let forged = crate::forge(&token);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": forged, "password": "Str0ng!pass"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": token, "password": "Str0ng!pass", "name": "Ann"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let session = b["session_token"].as_str().unwrap().to_owned();
    let (_, me) = t.call("GET", "/api/v1/me", Some(&session), None).await;
    assert_eq!(me["state"], "active");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["source"], "invitation");
    // The invitation's role and group hold: the new admin lists users.
    let (s, _) = t
        .call("GET", "/api/v1/orgs/inv/users", Some(&session), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, members) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/inv/groups/{group}/members"),
            Some(&admin),
            None,
        )
        .await;
    assert!(
        members.to_string().contains(me["id"].as_str().unwrap()),
        "{members}"
    );
    // Used: terminal.
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": token, "password": "Other!pass1"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/inv/invitations/{ann_inv}/resend"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "accepted is terminal");

    // Re-sent: the first link dies, the new one works... until revoked.
    let first = link_token(&sink, "bob@inv.example");
    let (s, _) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/inv/invitations/{bob_inv}/resend"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    t.deliver_mail(&sink).await;
    let second = link_token(&sink, "bob@inv.example");
    assert_ne!(first, second);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": first, "password": "Str0ng!pass"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "the old link is dead");
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/inv/invitations/{bob_inv}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": second, "password": "Str0ng!pass"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "revoked");
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/inv/invitations/{bob_inv}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "revoked is terminal");
    let still = t
        .scalar("SELECT COUNT(*) FROM users WHERE email = 'bob@inv.example' AND state = 'invited'")
        .await;
    assert_eq!(still, 1, "the account stays invited, unable to sign in");

    // Expired: after its days, the link is refused.
    let (_, r) = t
        .call(
            "POST",
            "/api/v1/orgs/inv/invitations",
            Some(&admin),
            Some(json!({"emails": ["cy@inv.example"], "expires_in_days": 1})),
        )
        .await;
    t.deliver_mail(&sink).await;
    let cy = link_token(&sink, "cy@inv.example");
    t.clock.advance(time::Duration::hours(25));
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": cy, "password": "Str0ng!pass"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, list) = t
        .call("GET", "/api/v1/orgs/inv/invitations", Some(&admin), None)
        .await;
    let state_of = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state_of(&ann_inv), "accepted");
    assert_eq!(state_of(&bob_inv), "revoked");
    assert_eq!(state_of(r["invited"][0]["id"].as_str().unwrap()), "expired");
    // Expired is terminal; inviting the address again makes a new one.
    let (s, r2) = t
        .call(
            "POST",
            "/api/v1/orgs/inv/invitations",
            Some(&admin),
            Some(json!({"emails": ["cy@inv.example"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(r2["invited"].as_array().unwrap().len(), 1, "{r2}");
}

async fn invitations_respect_permissions_and_tenants(t: TestApp) {
    let admin = t.org_with_owner("one").await;
    let other = t.org_with_owner("two").await;
    let (_, member) = t.user_with_token("one", "m@one.example", &["member"]).await;
    let body = json!({"emails": ["x@one.example"]});
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/one/invitations",
            Some(&member),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/one/invitations",
            Some(&other),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, r) = t
        .call(
            "POST",
            "/api/v1/orgs/one/invitations",
            Some(&admin),
            Some(body),
        )
        .await;
    let id = r["invited"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = t
        .call(
            "DELETE",
            &format!("/api/v1/orgs/two/invitations/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another org's invitation does not exist for it"
    );
    let before = t.fingerprint().await;
    for bad in [
        json!({"emails": []}),
        json!({"emails": ["not-an-address"]}),
        json!({"emails": ["a@one.example"], "roles": ["no-such-role"]}),
        json!({"emails": ["a@one.example"], "groups": ["no-such-group"]}),
        json!({"emails": ["a@one.example"], "expires_in_days": 31}),
        json!({"emails": vec!["a@one.example"; 501]}),
    ] {
        let (s, b) = t
            .call(
                "POST",
                "/api/v1/orgs/one/invitations",
                Some(&admin),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
    }
    assert_eq!(t.fingerprint().await, before);
}

async fn an_invitation_is_accepted_in_a_browser(t: TestApp) {
    let Some(driver) = Driver::start(module_path!()).await else {
        return;
    };
    let sink = SmtpSink::start().await;
    let admin = t.org_with_owner("web").await;
    t.call(
        "POST",
        "/api/v1/orgs/web/invitations",
        Some(&admin),
        Some(json!({"emails": ["dee@web.example"]})),
    )
    .await;
    t.deliver_mail(&sink).await;
    let token = link_token(&sink, "dee@web.example");
    let base = t.listen().await;
    let b = driver.browser().await;
    b.goto(&format!("{base}/invitations/accept?token={token}"))
        .await;
    assert_eq!(b.text("#invited-email").await, "dee@web.example");
    assert!(b.source().await.contains("Join Org web"));
    b.fill("#name", "Dee").await;
    b.fill("#password", "Str0ng!pass").await;
    b.click("button[type=submit]").await;
    for _ in 0..100 {
        if b.current_url().await.ends_with("/account") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    b.wait_for("id=\"account-email\"").await;
    assert_eq!(b.text("#account-email").await, "dee@web.example");
    // The same link again: a clear message, no form.
    b.goto(&format!("{base}/invitations/accept?token={token}"))
        .await;
    assert!(
        b.text("#form-error")
            .await
            .contains("used, revoked or expired")
    );
    b.quit().await;
}

both!(
    invite_accept_resend_revoke_expire,
    invitations_respect_permissions_and_tenants,
    an_invitation_is_accepted_in_a_browser,
);
