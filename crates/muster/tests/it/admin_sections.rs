//! Issue 8's admin console, request by request, for the sections beyond
//! users: roles and groups, webhooks, policies (what each caller is
//! refused, bad input re-rendered with nothing changed). Units, workspaces
//! and the user list's filters are in `admin_structure.rs`.

use crate::admin_console::{Cast, cast, cookie, page, stepped_up};
use crate::pages::{CSRF, post_form};
use crate::{TestApp, both, json};
use axum::http::StatusCode;

async fn roles_and_groups_refuse_what_the_caller_may_not_do(t: TestApp) {
    let Cast {
        owner,
        owner_s,
        auditor_s,
        bravo_s,
    } = cast(&t).await;
    let (_, g) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&owner),
            Some(json!({"name": "Ops"})),
        )
        .await;
    let group = g["id"].as_str().unwrap().to_owned();
    let (_, g2) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&owner),
            Some(json!({"name": "Other"})),
        )
        .await;
    let (_, a) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/role-assignments",
            Some(&owner),
            Some(json!({"role": "auditor", "group_id": g2["id"]})),
        )
        .await;
    let other_assignment = a["id"].as_str().unwrap().to_owned();
    let before = t.fingerprint().await;

    // The auditor reads roles and groups, disabled, and cannot change them.
    let (s, html) = page(&t, "/admin/roles", Some(&auditor_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        !html.contains("id=\"create-role\""),
        "no form without roles.write"
    );
    let (s, html) = page(&t, &format!("/admin/groups/{group}"), Some(&auditor_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!html.contains("id=\"add-user\"") && !html.contains("id=\"delete-group\""));
    for (path, body) in [
        (
            "/admin/roles".to_owned(),
            "key=x1&name=X&permissions=users.read".to_owned(),
        ),
        ("/admin/groups".to_owned(), "name=Sneaky".to_owned()),
        (
            format!("/admin/groups/{group}/add-user"),
            "email=ann%40acme.example".to_owned(),
        ),
        (format!("/admin/groups/{group}/delete"), String::new()),
        (
            format!("/admin/groups/{group}/add-role"),
            "role=owner".to_owned(),
        ),
    ] {
        let (s, _, html) = post_form(
            &t,
            &path,
            Some(&cookie(&auditor_s)),
            &format!("csrf={CSRF}&{body}"),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {html}");
    }
    // Another organization sees none of it.
    let (s, _) = page(&t, &format!("/admin/groups/{group}"), Some(&bravo_s)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post_form(
        &t,
        &format!("/admin/groups/{group}/delete"),
        Some(&cookie(&bravo_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Another group's role assignment through this group's page: not found.
    let (s, _, _) = post_form(
        &t,
        &format!("/admin/groups/{group}/remove-role"),
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&assignment={other_assignment}"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Bad input re-renders with the message and what was typed.
    let (s, _, html) = post_form(
        &t,
        "/admin/roles",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&key=Bad+Key&name=Typed+name&permissions=users.read"),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("lower-case letters"), "{html}");
    assert!(html.contains("value=\"Typed name\""));
    assert!(
        html.contains("value=\"users.read\" id=\"perm-users.read\" checked"),
        "the picks are kept"
    );
    let (s, _, html) = post_form(
        &t,
        "/admin/roles",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&key=ok&name=Ok&permissions=root.everything"),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Unknown permission"), "{html}");
    let (s, _, html) = post_form(
        &t,
        "/admin/groups",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&name=Ops"),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(html.contains("already exists"), "{html}");
    // A built-in role cannot be changed.
    let owner_role = t
        .scalar_text(
            "SELECT r.id FROM roles r JOIN orgs o ON o.id = r.org_id WHERE o.slug = 'acme' AND r.role_key = 'owner'",
        )
        .await;
    let (s, html) = page(&t, &format!("/admin/roles/{owner_role}"), Some(&owner_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("A built-in role") && !html.contains("id=\"save-role\""));
    let (s, _, _) = post_form(
        &t,
        &format!("/admin/roles/{owner_role}/delete"),
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert!(s.is_client_error(), "{s}");
    assert_eq!(t.fingerprint().await, before, "nothing changed");
}

async fn webhooks_refuse_what_the_caller_may_not_do(t: TestApp) {
    let Cast {
        owner,
        owner_s,
        auditor_s,
        bravo_s,
    } = cast(&t).await;
    let (_, e) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/webhooks",
            Some(&owner),
            Some(json!({"url": "https://hooks.acme.example/x", "event_types": ["user.*"]})),
        )
        .await;
    let hook = e["id"].as_str().unwrap().to_owned();
    let before = t.fingerprint().await;
    let (_, html) = page(&t, "/admin", Some(&auditor_s)).await;
    assert!(
        !html.contains("href=\"/admin/webhooks\""),
        "hidden without webhooks.manage"
    );
    let (s, _) = page(&t, "/admin/webhooks", Some(&auditor_s)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = post_form(
        &t,
        &format!("/admin/webhooks/{hook}/delete"),
        Some(&cookie(&auditor_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = page(&t, &format!("/admin/webhooks/{hook}"), Some(&bravo_s)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post_form(
        &t,
        &format!("/admin/webhooks/{hook}/rotate"),
        Some(&cookie(&bravo_s)),
        &format!("csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for (body, says) in [
        ("url=not+a+url&types=user.*", "id=\"form-error\""),
        (
            "url=https%3A%2F%2Fhooks.acme.example%2F&more=nope.thing",
            "nope.thing",
        ),
        ("url=https%3A%2F%2Fhooks.acme.example%2F", "event types"),
    ] {
        let (s, _, html) = post_form(
            &t,
            "/admin/webhooks",
            Some(&cookie(&owner_s)),
            &format!("csrf={CSRF}&{body}"),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {html}");
        assert!(html.contains(says), "{body}: {html}");
        assert!(!html.contains("id=\"webhook-secret\""));
    }
    let (s, _, html) = post_form(
        &t,
        &format!("/admin/webhooks/{hook}/redeliver"),
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&webhook_id=no-such-message"),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{html}");
    assert_eq!(t.fingerprint().await, before, "nothing changed");
}

async fn policies_show_inheritance_and_refuse_bad_values(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["auditor"])
        .await;
    let (owner_s, _) = stepped_up(&t, "acme", "owner@acme.example").await;
    let (auditor_s, _) = stepped_up(&t, "acme", "ann@acme.example").await;
    // A unit that sets its own session policy, and one below it that does not.
    let (s, eu) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/org-units",
            Some(&owner),
            Some(json!({"name": "Europe"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{eu}");
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/org-units",
            Some(&owner),
            Some(json!({"name": "Paris", "parent_id": eu["id"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = t
        .call(
            "PUT",
            &format!(
                "/api/v1/orgs/acme/org-units/{}/policies/session",
                eu["id"].as_str().unwrap()
            ),
            Some(&owner),
            Some(json!({"idle_minutes": 30, "absolute_hours": 8})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, html) = page(&t, "/admin/policies", Some(&auditor_s)).await;
    assert_eq!(s, StatusCode::OK);
    let row = |name: &str| -> String {
        let at = html
            .find(&format!("{name}</a></td>"))
            .unwrap_or_else(|| panic!("{name}: {html}"));
        html[at..].split("</tr>").next().unwrap().to_owned()
    };
    // Columns: password, mfa, session, access, risk.
    let europe_row = row("Europe");
    let europe: Vec<&str> = europe_row.split("<td>").skip(1).collect();
    assert!(europe[2].contains("sets its own"), "{europe:?}");
    assert!(
        europe[0].contains("inherits") && europe[4].contains("inherits"),
        "{europe:?}"
    );
    assert!(row("Paris").contains("inherits") && !row("Paris").contains("sets its own"));
    assert!(
        html.contains("<fieldset class=\"plain\" disabled>"),
        "read-only for the auditor"
    );

    let before = t.fingerprint().await;
    let (s, _, _) = post_form(
        &t,
        "/admin/policies/session",
        Some(&cookie(&auditor_s)),
        &format!("csrf={CSRF}&idle_minutes=30&absolute_hours=8"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    for (name, body, says) in [
        (
            "session",
            "idle_minutes=1&absolute_hours=8",
            "between 5 and 43200",
        ),
        (
            "session",
            "idle_minutes=ten&absolute_hours=8",
            "idle_minutes",
        ),
        ("password", "rule=anything&min_length=12", "rule"),
        (
            "risk",
            "enabled=yes&low=sometimes&medium=l2&high=deny",
            "low",
        ),
        (
            "mfa",
            "mode=optional&step_up_minutes=0&methods=totp",
            "step_up_minutes",
        ),
    ] {
        let (s, _, html) = post_form(
            &t,
            &format!("/admin/policies/{name}"),
            Some(&cookie(&owner_s)),
            &format!("csrf={CSRF}&{body}"),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {html}");
        assert!(
            html.contains(&format!("The {name} policy was not saved")) && html.contains(says),
            "{body}: {html}"
        );
    }
    let (_, p) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/session-policy",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(p["idle_minutes"], 120, "unchanged: {p}");
    // A good one is saved through the same use case as the API.
    let (s, _, html) = post_form(
        &t,
        "/admin/policies/session",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&idle_minutes=45&absolute_hours=10"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let (_, p) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/session-policy",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(
        (p["idle_minutes"].as_i64(), p["absolute_hours"].as_i64()),
        (Some(45), Some(10))
    );
    let (s, _, _) = post_form(
        &t,
        "/admin/policies/risk",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&enabled=yes&low=l1&medium=l3&high=deny"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, r) = t
        .call("GET", "/api/v1/orgs/acme/risk-policy", Some(&owner), None)
        .await;
    assert_eq!(
        (r["medium"].as_str(), r["new_device_email"].as_bool()),
        (Some("l3"), Some(false)),
        "{r}"
    );
    assert_ne!(t.fingerprint().await, before, "the saves are audited");
}

both!(
    roles_and_groups_refuse_what_the_caller_may_not_do,
    webhooks_refuse_what_the_caller_may_not_do,
    policies_show_inheritance_and_refuse_bad_values,
);
