//! Issue 8's admin console, request by request: what each caller is
//! refused (not signed in, no administrative role, a role that may read but
//! not change, another organization, a forged form, a stale second factor),
//! that bad input re-renders with the message and changes nothing, and the
//! users' CSV export.

use crate::admin_console::{cookie, page, session_of, stepped_up};
use crate::mfa::totp_code;
use crate::pages::{CSRF, post_form};
use crate::signin::PW;
use crate::{TestApp, both, json};
use axum::http::StatusCode;

async fn console_refuses_what_the_caller_may_not_do(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (ann, _) = t
        .user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/roles",
            Some(&owner),
            Some(json!({"key": "viewer", "name": "Viewer", "permissions": ["users.read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    t.user_with_token("acme", "val@acme.example", &["viewer"])
        .await;
    t.org_with_owner("bravo").await;
    let (owner_s, uri) = stepped_up(&t, "acme", "owner@acme.example").await;
    let member_s = session_of(&t, "acme", "ann@acme.example").await;
    let viewer_s = session_of(&t, "acme", "val@acme.example").await;
    let (bravo_s, _) = stepped_up(&t, "bravo", "owner@bravo.example").await;

    // Not signed in: sent to sign in, coming back here.
    let (s, to) = page(&t, "/admin/users", None).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(to, "/login?next=%2Fadmin%2Fusers");
    // A member administers nothing: refused outright.
    let (s, html) = page(&t, "/admin", Some(&member_s)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(html.contains("No access to the admin console"), "{html}");
    // A viewer sees users but not the audit charts, and the lifecycle
    // actions disabled.
    let (s, html) = page(&t, "/admin", Some(&viewer_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("id=\"state-counts\""));
    assert!(!html.contains("id=\"chart-signups\""), "no audit.read");
    let (s, html) = page(&t, &format!("/admin/users/{ann}"), Some(&viewer_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("disabled id=\"action-deactivate\""), "{html}");
    assert!(!html.contains(&format!("/admin/users/{ann}/confirm/deactivate")));

    let before = t.fingerprint().await;
    let deactivate = format!("/admin/users/{ann}/do/deactivate");
    // Posted anyway by the viewer: refused by the use case, nothing changed.
    let (s, _, html) = post_form(
        &t,
        &deactivate,
        Some(&cookie(&viewer_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(html.contains("You may not do that."), "{html}");
    // The owner without the form's CSRF token: refused.
    let (s, _, html) = post_form(&t, &deactivate, Some(&cookie(&owner_s)), "csrf=wrong").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(html.contains("This form has expired"));
    // Another organization's owner learns nothing of Ann, and cannot act.
    let (s, _) = page(&t, &format!("/admin/users/{ann}"), Some(&bravo_s)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post_form(
        &t,
        &deactivate,
        Some(&cookie(&bravo_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, html) = page(&t, "/admin/users", Some(&bravo_s)).await;
    assert!(!html.contains("ann@acme.example"));
    // Invitations and roles: the viewer is refused, bad input re-renders.
    let (s, _, html) = post_form(
        &t,
        "/admin/invitations",
        Some(&cookie(&viewer_s)),
        &format!("csrf={CSRF}&emails=zed%40acme.example&roles=member"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(html.contains("You may not do that."), "{html}");
    let (s, _, html) = post_form(
        &t,
        "/admin/invitations",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&emails=email%2Cname%0Anobody"),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Paste at least one email address."), "{html}");
    assert!(html.contains("nobody</textarea>"), "the input is kept");
    let add_role = format!("/admin/users/{ann}/roles");
    let (s, _, _) = post_form(
        &t,
        &add_role,
        Some(&cookie(&viewer_s)),
        &format!("csrf={CSRF}&role=admin"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = post_form(
        &t,
        &add_role,
        Some(&cookie(&bravo_s)),
        &format!("csrf={CSRF}&role=admin"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Another user's assignment through Ann's page: not found, not removed.
    let owners = t
        .scalar_text(&format!(
            "SELECT id FROM role_assignments WHERE user_id <> '{ann}' ORDER BY id LIMIT 1"
        ))
        .await;
    let (s, _, _) = post_form(
        &t,
        &format!("/admin/users/{ann}/roles/{owners}/remove"),
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Deleting needs the user deactivated, then the email typed exactly.
    let delete = format!("/admin/users/{ann}/do/delete");
    let (s, _, html) = post_form(
        &t,
        &delete,
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&confirm_email=ann%40acme.example"),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "an active user is not deleted");
    assert!(
        html.contains("deactivate the account before deleting it"),
        "{html}"
    );
    // An unknown action, a bad filter: clear messages.
    let (s, _) = page(
        &t,
        &format!("/admin/users/{ann}/confirm/explode"),
        Some(&owner_s),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, html) = page(&t, "/admin/users?state=bogus", Some(&owner_s)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Unknown state &#39;bogus&#39;"), "{html}");
    assert_eq!(t.fingerprint().await, before, "nothing changed");
    // SCIM tokens are for `scim.manage`: hidden from the viewer, refused if asked.
    let (_, html) = page(&t, "/admin", Some(&viewer_s)).await;
    assert!(
        !html.contains("href=\"/admin/scim\""),
        "no SCIM in the viewer's menu"
    );
    let (s, _) = page(&t, "/admin/scim", Some(&viewer_s)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = post_form(
        &t,
        "/admin/scim/tokens",
        Some(&cookie(&viewer_s)),
        &format!("csrf={CSRF}&name=x"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, html) = post_form(
        &t,
        "/admin/scim/tokens",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&name=Okta&expires_in_days=soon"),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Give a number of days"), "{html}");
    assert!(html.contains("value=\"Okta\""), "the name is kept");
    assert!(!html.contains("id=\"scim-secret\""));
    // Another organization's token cannot be revoked from here.
    let (_, tok) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/scim-tokens",
            Some(&owner),
            Some(json!({"name": "IdP"})),
        )
        .await;
    let before = t.fingerprint().await;
    let revoke = format!("/admin/scim/tokens/{}/revoke", tok["id"].as_str().unwrap());
    let (s, _, _) = post_form(
        &t,
        &revoke,
        Some(&cookie(&bravo_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(t.fingerprint().await, before, "nothing changed");
    let (s, _) = t
        .call("GET", "/scim/v2/Users", tok["secret"].as_str(), None)
        .await;
    assert_eq!(s, StatusCode::OK, "the token still works");

    // The access policy: the viewer reads it disabled and cannot save it;
    // bad rules re-render with the message and save nothing.
    let (s, html) = page(&t, "/admin/policies/access", Some(&viewer_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("<fieldset disabled>") && !html.contains("id=\"save-access\""));
    let save = "/admin/policies/access";
    let (s, _, _) = post_form(
        &t,
        save,
        Some(&cookie(&viewer_s)),
        &format!("csrf={CSRF}&networks_deny=10.0.0.0%2F8"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for (body, says) in [
        ("networks_deny=not-a-network", "not-a-network"),
        ("os_deny=plan9", "Unknown operating system"),
    ] {
        let (s, _, html) = post_form(
            &t,
            save,
            Some(&cookie(&owner_s)),
            &format!("csrf={CSRF}&{body}"),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(html.contains(says), "{body}: {html}");
    }
    let (_, policy) = t
        .call("GET", "/api/v1/orgs/acme/access-policy", Some(&owner), None)
        .await;
    assert_eq!(
        policy["networks"]["deny"],
        json!([]),
        "nothing saved: {policy}"
    );

    let (s, _, _) = post_form(
        &t,
        &deactivate,
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, html) = post_form(
        &t,
        &delete,
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&confirm_email=someone%40else.example"),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("Type the user&#x27;s email address exactly")
            || html.contains("Type the user&#39;s email address exactly"),
        "{html}"
    );
    assert_eq!(
        t.scalar(&format!("SELECT COUNT(*) FROM users WHERE id = '{ann}'"))
            .await,
        1
    );
    let (s, _, _) = post_form(
        &t,
        &delete,
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&confirm_email=ANN%40acme.example"),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(
        t.scalar(&format!("SELECT COUNT(*) FROM users WHERE id = '{ann}'"))
            .await,
        0
    );

    // Changes need the second factor proved in the last 15 minutes (the
    // default MFA policy): after that, refused with a way to prove it.
    let (bob, _) = t
        .user_with_token("acme", "bob@acme.example", &["member"])
        .await;
    t.clock.advance(time::Duration::minutes(16));
    let (_, html) = page(&t, "/admin", Some(&owner_s)).await;
    assert!(html.contains("/admin/step-up?next=%2Fadmin"), "{html}");
    let bob_deactivate = format!("/admin/users/{bob}/do/deactivate");
    let (s, _, html) = post_form(
        &t,
        &bob_deactivate,
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        html.contains("Confirm it is you with your second factor first."),
        "{html}"
    );
    let bob_state = format!("SELECT COUNT(*) FROM users WHERE id = '{bob}' AND state = 'active'");
    assert_eq!(t.scalar(&bob_state).await, 1);
    let next = format!("next=%2Fadmin%2Fusers%2F{bob}");
    let (s, _, html) = post_form(
        &t,
        "/admin/step-up",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&{next}&method=totp&code=000000"),
    )
    .await;
    assert!(s.is_client_error(), "{s}");
    assert!(html.contains("id=\"form-error\""), "{html}");
    let (s, h, _) = post_form(
        &t,
        "/admin/step-up",
        Some(&cookie(&owner_s)),
        &format!(
            "csrf={CSRF}&{next}&method=totp&code={}",
            totp_code(&t, &uri, 0)
        ),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], format!("/admin/users/{bob}"));
    let (s, _, _) = post_form(
        &t,
        &bob_deactivate,
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(t.scalar(&bob_state).await, 0, "deactivated once stepped up");

    // Sign out everywhere needs `sessions.revoke`; it ends every session.
    let (cyd, _) = t
        .user_with_token("acme", "cyd@acme.example", &["member"])
        .await;
    let cyd_s = session_of(&t, "acme", "cyd@acme.example").await;
    let (_, html) = page(&t, &format!("/admin/users/{cyd}"), Some(&viewer_s)).await;
    assert!(html.contains("disabled id=\"action-sign-out\""), "{html}");
    let sign_out = format!("/admin/users/{cyd}/do/sign-out");
    let (s, _, _) = post_form(
        &t,
        &sign_out,
        Some(&cookie(&viewer_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t.call("GET", "/api/v1/me", Some(&cyd_s), None).await;
    assert_eq!(s, StatusCode::OK, "the viewer ended nothing");
    let (s, h, _) = post_form(
        &t,
        &sign_out,
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], format!("/admin/users/{cyd}?done=sign-out"));
    let (s, _) = t.call("GET", "/api/v1/me", Some(&cyd_s), None).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "refused on its very next request"
    );
    let audited = format!(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'session.revoked_all' AND target_id = '{cyd}'"
    );
    assert_eq!(t.scalar(&audited).await, 1);
}

async fn console_exports_users_as_csv_without_secrets(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/users",
            Some(&owner),
            Some(json!({"email": "eve@acme.example", "password": PW,
                "profile": {"display_name": "=HYPERLINK(\"http://evil.example\")", "family_name": "Smith, Jr."}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let owner_s = session_of(&t, "acme", "owner@acme.example").await;
    let cookie = format!("muster_csrf={CSRF}; muster_session={owner_s}");
    let (s, h, body) = t
        .call_with(
            "GET",
            "/admin/users.csv?q=eve",
            &[("cookie", &cookie)],
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let csv = body.as_str().unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "the header and Eve only: {csv}");
    assert!(lines[0].starts_with("id,email,user_name,display_name"));
    assert!(lines[1].contains("eve@acme.example"));
    // A formula is defused, a comma quoted; no credential in any column.
    assert!(
        lines[1].contains("\"'=HYPERLINK(\"\"http://evil.example\"\")\""),
        "{csv}"
    );
    assert!(lines[1].contains("\"Smith, Jr.\""), "{csv}");
    assert!(
        !csv.contains("argon2") && !csv.contains("password"),
        "{csv}"
    );
}

both!(
    console_refuses_what_the_caller_may_not_do,
    console_exports_users_as_csv_without_secrets,
);
