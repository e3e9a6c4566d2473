//! Issue 8's admin console, request by request: the user list's filters
//! (source, second factor, unit, workspace through nested groups), and the
//! units and workspaces page (what each caller may do there).

use crate::admin_console::{Cast, cast, cookie, page, stepped_up};
use crate::pages::{CSRF, post_form};
use crate::{TestApp, both, json};
use axum::http::StatusCode;

async fn the_user_list_filters_by_source_mfa_unit_and_workspace(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
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
    let id = |v: &serde_json::Value| v["id"].as_str().unwrap().to_owned();
    let (ann, _) = t
        .user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (bob, _) = t
        .user_with_token("acme", "bob@acme.example", &["member"])
        .await;
    let (cyd, _) = t
        .user_with_token("acme", "cyd@acme.example", &["member"])
        .await;
    let (dee, _) = t
        .user_with_token("acme", "dee@acme.example", &["member"])
        .await;
    // Sam comes from the IdP; Bob sets up an authenticator app.
    let tok = api("POST", "/scim-tokens", json!({"name": "IdP"})).await;
    let (s, sam) = t
        .call(
            "POST",
            "/scim/v2/Users",
            tok["secret"].as_str(),
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "sam@acme.example"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sam}");
    let bob_s = crate::admin_console::session_of(&t, "acme", "bob@acme.example").await;
    crate::mfa::enrol_totp(&t, &bob_s).await;
    // Cyd is in the Europe unit; Dee holds a role in Apollo through a
    // group nested in the group that has it.
    let eu = id(&api("POST", "/org-units", json!({"name": "Europe"})).await);
    api(
        "PUT",
        &format!("/users/{cyd}/org-unit"),
        json!({"org_unit_id": eu}),
    )
    .await;
    let ws = id(&api("POST", "/workspaces", json!({"name": "Apollo"})).await);
    let outer = id(&api("POST", "/groups", json!({"name": "Outer"})).await);
    let inner = id(&api("POST", "/groups", json!({"name": "Inner"})).await);
    api(
        "PUT",
        &format!("/groups/{outer}/members/groups/{inner}"),
        json!({}),
    )
    .await;
    api(
        "PUT",
        &format!("/groups/{inner}/members/users/{dee}"),
        json!({}),
    )
    .await;
    api(
        "POST",
        "/role-assignments",
        json!({"role": "member", "group_id": outer, "scope": {"type": "workspace", "id": ws}}),
    )
    .await;

    let (owner_s, _) = stepped_up(&t, "acme", "owner@acme.example").await;
    let emails = async |query: &str| -> Vec<String> {
        let (s, html) = page(&t, &format!("/admin/users?{query}"), Some(&owner_s)).await;
        assert_eq!(s, StatusCode::OK, "{query}: {html}");
        let table = html
            .split("<tbody>")
            .nth(1)
            .unwrap()
            .split("</tbody>")
            .next()
            .unwrap();
        let mut found: Vec<String> = ["owner", "ann", "bob", "cyd", "dee", "sam"]
            .iter()
            .filter(|n| table.contains(&format!("{n}@acme.example")))
            .map(|n| (*n).to_owned())
            .collect();
        found.sort();
        found
    };
    assert_eq!(emails("source=scim").await, ["sam"]);
    assert_eq!(
        emails("mfa=yes").await,
        ["bob", "owner"],
        "the owner stepped up with one too"
    );
    assert_eq!(emails("mfa=no").await, ["ann", "cyd", "dee", "sam"]);
    assert_eq!(emails(&format!("org_unit={eu}")).await, ["cyd"]);
    assert_eq!(
        emails(&format!("workspace={ws}")).await,
        ["dee"],
        "through the nested group"
    );
    assert_eq!(
        emails(&format!("mfa=no&workspace={ws}&source=admin")).await,
        ["dee"]
    );
    let (s, html) = page(&t, "/admin/users?source=carrier-pigeon", Some(&owner_s)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("Unknown source"), "{html}");
    // The export takes the same filters.
    let cookie = format!("muster_csrf={CSRF}; muster_session={owner_s}");
    let (_, _, csv) = t
        .call_with(
            "GET",
            "/admin/users.csv?source=scim",
            &[("cookie", &cookie)],
            None,
        )
        .await;
    let csv = csv.as_str().unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(
        csv.contains("sam@acme.example") && !csv.contains(&ann),
        "{csv}"
    );
    // The REST API has the same filters.
    let (_, b) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/users?mfa_enrolled=true&source=admin",
            Some(&owner),
            None,
        )
        .await;
    let ids: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&bob.as_str()) && !ids.contains(&ann.as_str()),
        "{b}"
    );
    // Dee's page: her group, and the role she holds in Apollo through the
    // nested group, named and linked.
    let (s, html) = page(&t, &format!("/admin/users/{dee}"), Some(&owner_s)).await;
    assert_eq!(s, StatusCode::OK);
    let groups = html
        .split("id=\"user-groups\"")
        .nth(1)
        .unwrap()
        .split("</ul>")
        .next()
        .unwrap();
    assert!(
        groups.contains(&format!("href=\"/admin/groups/{inner}\">Inner")),
        "{groups}"
    );
    assert!(!groups.contains("Outer"), "direct groups only: {groups}");
    assert!(
        html.contains(&format!(
            "<a href=\"/admin/workspaces/{ws}\">workspace Apollo</a>"
        )) && html.contains("inherited from group <strong>Outer</strong>"),
        "{html}"
    );
}

async fn units_and_workspaces_from_the_console(t: TestApp) {
    let Cast {
        owner,
        owner_s,
        auditor_s,
        bravo_s,
    } = cast(&t).await;
    let post = async |session: &str, action: &str, body: String| {
        post_form(
            &t,
            &format!("/admin/structure/{action}"),
            Some(&cookie(session)),
            &format!("csrf={CSRF}&{body}"),
        )
        .await
    };
    let unit_id = async |name: &str| {
        t.scalar_text(&format!("SELECT id FROM org_units WHERE name = '{name}'"))
            .await
    };
    let root = t
        .scalar_text("SELECT u.id FROM org_units u JOIN orgs o ON o.id = u.org_id WHERE o.slug = 'acme' AND u.parent_id IS NULL")
        .await;
    let (s, _, html) = post(&owner_s, "unit", format!("name=Europe&parent_id={root}")).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("The unit Europe is added."));
    let europe = unit_id("Europe").await;
    let (s, _, html) = post(&owner_s, "unit", format!("name=Paris&parent_id={europe}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("class=\"depth-2\">└ Paris"),
        "Paris under Europe: {html}"
    );
    let paris = unit_id("Paris").await;
    // Moving Europe under Paris would close a loop: refused, nothing moved.
    let (s, _, html) = post(
        &owner_s,
        "move-unit",
        format!("id={europe}&parent_id={paris}"),
    )
    .await;
    assert!(s.is_client_error(), "{s}: {html}");
    assert!(html.contains("id=\"form-error\""));
    let (s, _, html) = post(
        &owner_s,
        "move-unit",
        format!("id={paris}&parent_id={root}"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("class=\"depth-1\">└ Paris"), "{html}");
    // A unit with a user in it is not deleted.
    let (ann, _) = t
        .user_with_token("acme", "cyd@acme.example", &["member"])
        .await;
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/users/{ann}/org-unit"),
            Some(&owner),
            Some(json!({"org_unit_id": paris})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, html) = post(&owner_s, "delete-unit", format!("id={paris}")).await;
    assert!(s.is_client_error(), "{s}: {html}");
    assert_eq!(
        t.scalar(&format!(
            "SELECT COUNT(*) FROM org_units WHERE id = '{paris}'"
        ))
        .await,
        1
    );
    // Others: the auditor reads, cannot change; another tenant cannot reach.
    let (s, html) = page(&t, "/admin/structure", Some(&auditor_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("Europe") && !html.contains("id=\"add-unit\""),
        "{html}"
    );
    let (s, _, _) = post(&auditor_s, "delete-unit", format!("id={europe}")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = post(&bravo_s, "delete-unit", format!("id={europe}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = post(&owner_s, "delete-unit", format!("id={europe}")).await;
    assert_eq!(s, StatusCode::OK, "an empty unit goes");
    assert_eq!(
        t.scalar(&format!(
            "SELECT COUNT(*) FROM org_units WHERE id = '{europe}'"
        ))
        .await,
        0
    );
    // Workspaces: added (Muster picks the code), listed with their members.
    let (s, _, html) = post(&owner_s, "workspace", "name=Apollo".into()).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("The workspace Apollo is added."));
    let (s, _, _) = post(&owner_s, "workspace", "name=".into()).await;
    assert!(s.is_client_error(), "a name is needed");
    let ws = t
        .scalar_text("SELECT id FROM workspaces WHERE name = 'Apollo'")
        .await;
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/role-assignments",
            Some(&owner),
            Some(
                json!({"role": "member", "user_id": ann, "scope": {"type": "workspace", "id": ws}}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, html) = page(&t, &format!("/admin/workspaces/{ws}"), Some(&owner_s)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains("cyd@acme.example") && html.contains("member"),
        "{html}"
    );
    let (s, _) = page(&t, &format!("/admin/workspaces/{ws}"), Some(&bravo_s)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

both!(
    the_user_list_filters_by_source_mfa_unit_and_workspace,
    units_and_workspaces_from_the_console,
);
