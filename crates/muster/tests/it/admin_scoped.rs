//! Issue 8's admin console below the organization: a unit's own policies
//! (set, inherited again, refused for a reader, another tenant or a bad
//! value), the MFA policy's groups and the risk policy's networks, roles
//! given in a workspace to a user or a linked group, a role's summary
//! before it is saved, and the user export on the audit record.

use crate::admin_console::{Cast, cast, cookie, page};
use crate::pages::{CSRF, post_form};
use crate::{TestApp, both, json};
use axum::http::StatusCode;

/// The policies that hold in a unit, through the REST API.
async fn held(t: &TestApp, owner: &str, unit: &str) -> serde_json::Value {
    let (s, v) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/org-units/{unit}/policies"),
            Some(owner),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["policies"].clone()
}

async fn a_units_policies_are_set_and_inherited_again_from_the_console(t: TestApp) {
    let Cast {
        owner,
        owner_s,
        auditor_s,
        bravo_s,
    } = cast(&t).await;
    let (s, eu) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/org-units",
            Some(&owner),
            Some(json!({"name": "Europe"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let eu = eu["id"].as_str().unwrap().to_owned();
    let post = async |session: &str, name: &str, body: &str| {
        post_form(
            &t,
            &format!("/admin/policies/{name}"),
            Some(&cookie(session)),
            &format!("csrf={CSRF}&{body}"),
        )
        .await
    };
    // The unit's page says where each policy comes from.
    let (s, html) = page(&t, &format!("/admin/policies?unit={eu}"), Some(&owner_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("The policies of Europe")
            && html.contains("id=\"whence-session\">Inherited from the organization"),
        "{html}"
    );
    assert!(
        !html.contains("id=\"inherit-session\""),
        "nothing to undo yet"
    );
    let stored = async || {
        t.scalar_text(&format!("SELECT policies FROM org_units WHERE id = '{eu}'"))
            .await
    };
    let untouched = stored().await;
    // Refused: a reader, another tenant, a bad value; nothing stored.
    let good = format!("unit={eu}&idle_minutes=30&absolute_hours=8");
    let (s, _, _) = post(&auditor_s, "session", &good).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = post(&bravo_s, "session", &good).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "Bravo cannot reach Acme's unit");
    let (s, _, html) = post(
        &owner_s,
        "session",
        &format!("unit={eu}&idle_minutes=1&absolute_hours=8"),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("The session policy was not saved")
            && html.contains("The policies of Europe"),
        "re-rendered on the unit: {html}"
    );
    assert_eq!(stored().await, untouched);
    // Saved for the unit only: the organization keeps its own.
    let (s, _, html) = post(&owner_s, "session", &good).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("id=\"whence-session\">Europe sets its own."),
        "{html}"
    );
    let p = held(&t, &owner, &eu).await;
    assert_eq!(p["session"]["value"]["idle_minutes"], 30, "{p}");
    assert_eq!(p["session"]["source"]["level"], "org_unit");
    let (_, org) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/session-policy",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(org["idle_minutes"], 120, "the organization's stays: {org}");
    // The unit's access policy, on its own page; then inherited again.
    let (s, _, html) = post_form(
        &t,
        "/admin/policies/access",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&unit={eu}&networks_deny=203.0.113.0%2F24"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("The access policy of Europe is saved"),
        "{html}"
    );
    let p = held(&t, &owner, &eu).await;
    assert_eq!(
        p["access"]["value"]["networks"]["deny"],
        json!(["203.0.113.0/24"])
    );
    let (_, org) = t
        .call("GET", "/api/v1/orgs/acme/access-policy", Some(&owner), None)
        .await;
    assert_eq!(org["networks"]["deny"], json!([]), "{org}");
    let (s, _, html) = post(&owner_s, "session", &format!("unit={eu}&inherit=yes")).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"whence-session\">Inherited from the organization"));
    let p = held(&t, &owner, &eu).await;
    assert_eq!(
        p["session"]["source"]["level"], "default",
        "set nowhere above: {p}"
    );
    assert_eq!(
        p["access"]["source"]["level"], "org_unit",
        "the other stays"
    );
    let (s, _, _) = post_form(
        &t,
        "/admin/policies/access",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&unit={eu}&inherit=yes"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        held(&t, &owner, &eu).await["access"]["source"]["level"],
        "default"
    );
    let (_, events) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/audit-events?action=policy.",
            Some(&owner),
            None,
        )
        .await;
    let actions: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "policy.session_changed",
        "policy.session_inherited",
        "policy.access_changed",
        "policy.access_inherited",
    ] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
    // A unit's access policy that would refuse the caller's own request is
    // refused unless confirmed, as the organization's is — once the owner
    // is in that unit.
    let me = t
        .scalar_text("SELECT id FROM users WHERE email = 'owner@acme.example'")
        .await;
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/users/{me}/org-unit"),
            Some(&owner),
            Some(json!({"org_unit_id": eu})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let deny = json!({"networks": {"deny": ["198.51.100.0/24"]}});
    let put = async |query: &str| {
        t.call_from(
            ("198.51.100.7", "curl/8"),
            "PUT",
            &format!("/api/v1/orgs/acme/org-units/{eu}/policies/access{query}"),
            Some(&owner),
            Some(deny.clone()),
        )
        .await
    };
    let (s, v) = put("").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("confirm_lockout"),
        "{v}"
    );
    assert_eq!(
        held(&t, &owner, &eu).await["access"]["source"]["level"],
        "default"
    );
    let (s, v) = put("?confirm_lockout=true").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        held(&t, &owner, &eu).await["access"]["source"]["level"],
        "org_unit"
    );
    // Inheriting again is checked too: with the organization denying that
    // network and Europe allowing everything, removing Europe's own policy
    // would shut the owner out.
    let from = async |ip: &str, method: &str, path: &str, body: Option<serde_json::Value>| {
        t.call_from(
            (ip, "curl/8"),
            method,
            &format!("/api/v1/orgs/acme{path}"),
            Some(&owner),
            body,
        )
        .await
    };
    let (s, v) = from(
        "192.0.2.9",
        "PUT",
        &format!("/org-units/{eu}/policies/access"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = from("192.0.2.9", "PUT", "/access-policy", Some(deny.clone())).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the owner is in Europe, which allows it: {v}"
    );
    let clear = format!("/org-units/{eu}/policies/access");
    let (s, v) = from("198.51.100.7", "DELETE", &clear, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        held(&t, &owner, &eu).await["access"]["source"]["level"],
        "org_unit"
    );
    let (s, v) = from(
        "198.51.100.7",
        "DELETE",
        &format!("{clear}?confirm_lockout=true"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        held(&t, &owner, &eu).await["access"]["source"]["level"],
        "organization"
    );
}

async fn mfa_groups_and_risky_networks_are_set_from_the_console(t: TestApp) {
    let Cast { owner, owner_s, .. } = cast(&t).await;
    let (s, g) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&owner),
            Some(json!({"name": "Finance"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let gid = g["id"].as_str().unwrap();
    let (s, html) = page(&t, "/admin/policies", Some(&owner_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("id=\"mfa-group-Finance\""), "{html}");
    let post = async |name: &str, body: &str| {
        post_form(
            &t,
            &format!("/admin/policies/{name}"),
            Some(&cookie(&owner_s)),
            &format!("csrf={CSRF}&{body}"),
        )
        .await
    };
    let mfa = async || {
        t.call("GET", "/api/v1/orgs/acme/mfa-policy", Some(&owner), None)
            .await
            .1
    };
    let risk = async || {
        t.call("GET", "/api/v1/orgs/acme/risk-policy", Some(&owner), None)
            .await
            .1
    };
    // A group of another organization, or none, is refused; nothing changes.
    let before = mfa().await;
    let (s, _, html) = post(
        "mfa",
        "mode=groups&groups=not-a-group&methods=totp&step_up_minutes=15",
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("No group"), "{html}");
    assert_eq!(mfa().await, before);
    let (s, _, html) = post(
        "mfa",
        &format!("mode=groups&groups={gid}&methods=totp&methods=passkey&step_up_minutes=15"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let p = mfa().await;
    assert_eq!(
        (p["mode"].as_str(), &p["groups"]),
        (Some("groups"), &json!([gid])),
        "{p}"
    );
    assert!(html.contains(&format!("value=\"{gid}\" id=\"mfa-group-Finance\" checked")));
    // Networks one per line; a bad one is refused and the list kept.
    let (s, _, html) = post(
        "risk",
        "enabled=yes&low=l1&medium=l2&high=deny&deny_networks=198.51.100.0%2F24%0D%0Anot-a-network",
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert_eq!(risk().await["deny_networks"], json!([]));
    let (s, _, html) = post(
        "risk",
        "enabled=yes&low=l1&medium=l2&high=deny&deny_networks=198.51.100.0%2F24%0D%0A2001%3Adb8%3A%3A%2F32",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert_eq!(
        risk().await["deny_networks"],
        json!(["198.51.100.0/24", "2001:db8::/32"])
    );
    assert!(
        html.contains("198.51.100.0/24\n2001:db8::/32</textarea>"),
        "{html}"
    );
}

async fn workspace_roles_and_linked_groups_from_the_console(t: TestApp) {
    let Cast {
        owner,
        owner_s,
        auditor_s,
        bravo_s,
    } = cast(&t).await;
    let (cyd, _) = t
        .user_with_token("acme", "cyd@acme.example", &["member"])
        .await;
    let (dee, _) = t
        .user_with_token("acme", "dee@acme.example", &["member"])
        .await;
    let api = async |method: &str, path: &str, body: serde_json::Value| {
        let (s, v) = t
            .call(
                method,
                &format!("/api/v1/orgs/acme{path}"),
                Some(&owner),
                Some(body),
            )
            .await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    };
    let ws = api("POST", "/workspaces", json!({"name": "Apollo"})).await;
    let ws = ws["id"].as_str().unwrap().to_owned();
    let g = api("POST", "/groups", json!({"name": "Pilots"})).await;
    let gid = g["id"].as_str().unwrap().to_owned();
    api(
        "PUT",
        &format!("/groups/{gid}/members/users/{dee}"),
        json!({}),
    )
    .await;
    let post = async |session: &str, action: &str, body: &str| {
        post_form(
            &t,
            &format!("/admin/workspaces/{ws}/{action}"),
            Some(&cookie(session)),
            &format!("csrf={CSRF}&{body}"),
        )
        .await
    };
    let roles_of = async |user: &str| {
        t.scalar(&format!(
            "SELECT COUNT(*) FROM role_assignments WHERE scope_id = '{ws}' AND (user_id = '{user}' OR group_id = '{gid}')"
        ))
        .await
    };
    // Cyd's own role here, by email; then Pilots linked with admin.
    let (s, _, html) = post(&owner_s, "add-user", "email=cyd%40acme.example&role=member").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("cyd@acme.example now holds the role member here."),
        "{html}"
    );
    let access = async || {
        let (s, v) = t
            .call(
                "GET",
                &format!("/api/v1/orgs/acme/workspaces/{ws}/access/{cyd}"),
                Some(&owner),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["roles"].clone()
    };
    assert_eq!(access().await, json!([{"role": "member"}]));
    let (s, _, html) = post(&owner_s, "link-group", &format!("group={gid}&role=admin")).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("dee@acme.example") && html.contains("admin (through Pilots)"),
        "Dee holds it through the group, shown by name: {html}"
    );
    // Refused, nothing changed: unknown address, a reader, another tenant.
    let before = t.fingerprint().await;
    let (s, _, html) = post(
        &owner_s,
        "add-user",
        "email=nobody%40acme.example&role=member",
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("has the address nobody@acme.example"));
    let (s, _, _) = post(
        &auditor_s,
        "link-group",
        &format!("group={gid}&role=member"),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = post(&bravo_s, "remove-user", &format!("member={cyd}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post(&owner_s, "delete", "").await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "deleting needs the box ticked"
    );
    assert_eq!(t.fingerprint().await, before);
    let (s, html) = page(&t, &format!("/admin/workspaces/{ws}"), Some(&auditor_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("Pilots")
            && !html.contains("id=\"ws-link-group\"")
            && !html.contains("id=\"ws-delete\""),
        "the auditor reads only: {html}"
    );
    // Taken away: Cyd's access ends on her next request; the group unlinked.
    assert_eq!(roles_of(&cyd).await, 2);
    let (s, _, _) = post(&owner_s, "remove-user", &format!("member={cyd}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(access().await, json!([]), "her role here is gone");
    let (s, _, html) = post(&owner_s, "unlink-group", &format!("member={gid}")).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert_eq!(roles_of(&cyd).await, 0);
    // Renamed, then deleted once confirmed.
    let (s, _, html) = post(&owner_s, "rename", "name=Artemis").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("The workspace is renamed Artemis."), "{html}");
    let (s, _, html) = post(&owner_s, "delete", "confirm=yes").await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert_eq!(
        t.scalar(&format!(
            "SELECT COUNT(*) FROM workspaces WHERE id = '{ws}'"
        ))
        .await,
        0
    );
    // The default workspace holds everyone: no role is given there this way.
    let default = t
        .scalar_text("SELECT w.id FROM workspaces w JOIN orgs o ON o.id = w.org_id WHERE o.slug = 'acme' AND w.is_default")
        .await;
    let (s, html) = page(&t, &format!("/admin/workspaces/{default}"), Some(&owner_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!html.contains("id=\"ws-add-user\""), "{html}");
    // Units are renamed from the structure page.
    let (_, unit) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/org-units",
            Some(&owner),
            Some(json!({"name": "Europe"})),
        )
        .await;
    let (s, _, html) = post_form(
        &t,
        "/admin/structure/rename-unit",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&id={}&name=EMEA", unit["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("The unit is renamed EMEA."));
}

async fn a_role_says_what_it_will_allow_before_it_is_saved(t: TestApp) {
    let Cast { owner_s, .. } = cast(&t).await;
    let roles = async || t.scalar("SELECT COUNT(*) FROM roles").await;
    let before = roles().await;
    let (s, _, html) = post_form(
        &t,
        "/admin/roles/preview",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&key=helpdesk&name=Helpdesk&permissions=users.lifecycle&permissions=roles.write"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let summary = html.split("id=\"role-summary\"").nth(1).unwrap_or_default();
    assert!(
        summary.contains("Suspend, deactivate, reactivate")
            && summary.contains("Create and edit roles")
            && !summary.contains("Read and export the audit log"),
        "{summary}"
    );
    assert!(summary.contains("Without users.read"), "{summary}");
    assert!(summary.contains("themselves included"), "{summary}");
    assert!(
        html.contains("value=\"helpdesk\"") && html.contains("id=\"perm-roles.write\" checked"),
        "the form comes back as typed: {html}"
    );
    assert_eq!(roles().await, before, "nothing is saved");
    // A choice equal to a built-in role says so.
    let (_, _, html) = post_form(
        &t,
        "/admin/roles/preview",
        Some(&cookie(&owner_s)),
        &format!("csrf={CSRF}&permissions=users.read&permissions=audit.read"),
    )
    .await;
    assert!(
        html.contains("exactly the permissions of the built-in role auditor"),
        "{html}"
    );
    // A forged preview (no CSRF token) is refused.
    let (s, _, _) = post_form(
        &t,
        "/admin/roles/preview",
        Some(&cookie(&owner_s)),
        "permissions=users.read",
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// The `users.exported` events of acme, as the owner reads them.
async fn exports(t: &TestApp, owner: &str) -> serde_json::Value {
    let (_, events) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/audit-events?action=users.exported",
            Some(owner),
            None,
        )
        .await;
    events
}

async fn a_user_export_is_streamed_and_on_the_audit_record(t: TestApp) {
    let Cast {
        owner, auditor_s, ..
    } = cast(&t).await;
    // 1,202 users: the export crosses three of its pages of 500.
    let mut people = String::from("Email,First Name\n");
    for i in 0..1_200 {
        people.push_str(&format!("p{i:04}@acme.example,=cmd{i}\n"));
    }
    let dir = std::env::temp_dir().join(format!("muster-exp-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("people.csv");
    std::fs::write(&file, people).unwrap();
    let out = crate::cli::muster(
        &t,
        &["import", "--org", "acme", file.to_str().unwrap()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (s, csv) = page(&t, "/admin/users.csv", Some(&auditor_s)).await;
    assert_eq!(s, StatusCode::OK);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 1_202, "a header and every user once");
    let mut ids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1_202, "no user twice across pages");
    assert!(
        csv.contains("p0999@acme.example,p0999@acme.example,,'=cmd999,"),
        "formulas defused"
    );
    // Filtered: the export is recorded with who took it and the filters.
    let (s, csv) = page(&t, "/admin/users.csv?state=active", Some(&auditor_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        csv.lines().count(),
        1 + 2,
        "the owner and the auditor: {csv}"
    );
    let events = exports(&t, &owner).await;
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{events}");
    let e = &items[1];
    assert_eq!(
        e["changes"]["filters"],
        json!({"state": "active"}),
        "{events}"
    );
    assert_eq!(e["severity"], "SECURITY");
    assert_eq!(e["actor_kind"], "user", "{e}");
    // A bad filter is an error page, not a broken download, and not recorded.
    let (s, _) = page(&t, "/admin/users.csv?state=gone", Some(&auditor_s)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let events = exports(&t, &owner).await;
    assert_eq!(events["items"].as_array().unwrap().len(), 2);
}

both!(
    a_units_policies_are_set_and_inherited_again_from_the_console,
    mfa_groups_and_risky_networks_are_set_from_the_console,
    workspace_roles_and_linked_groups_from_the_console,
    a_role_says_what_it_will_allow_before_it_is_saved,
    a_user_export_is_streamed_and_on_the_audit_record,
);
