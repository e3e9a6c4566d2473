//! Issue 8's admin console in headless Chromium: an owner reads the
//! dashboard, invites a user who accepts in a browser of their own, makes
//! them an admin and deactivates them (their session is gone on the very
//! next request), reads the audit log; creates a SCIM token and sees its
//! last use; sets an IP rule and sees a sign-in refused. The refusals,
//! request by request, are in `admin_refusals.rs`.

use crate::invitations::link_token;
use crate::mfa::{enrol_totp, totp_code};
use crate::pages::{CSRF, shot, wait_for_url};
use crate::signin::PW;
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_core::clock::Clock;
use muster_testkit::browser::Driver;
use muster_testkit::muster_app::webhooks::delivery::deliver_due;
use muster_testkit::smtp::SmtpSink;
use muster_testkit::webhooks::{Receiver, verifies};

/// Signs `email` of `org` in over the JSON API: the session token.
pub(crate) async fn session_of(t: &TestApp, org: &str, email: &str) -> String {
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": PW, "org": org})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["session_token"].as_str().unwrap().to_owned()
}

/// An authenticator app enrolled for `email`, and a session that proved it:
/// what changes in the console need while the organization's MFA policy is
/// on (the default). Returns (session, otpauth URI).
pub(crate) async fn stepped_up(t: &TestApp, org: &str, email: &str) -> (String, String) {
    let first = session_of(t, org, email).await;
    let (uri, _) = enrol_totp(t, &first).await;
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": PW, "org": org})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/auth/mfa",
            None,
            Some(json!({"challenge_id": b["challenge_id"], "method": "totp",
                "code": totp_code(t, &uri, 0)})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    t.clock.advance(time::Duration::seconds(30));
    (b["session_token"].as_str().unwrap().to_owned(), uri)
}

/// The cast of the request-level tests: Acme's owner (an API token and a
/// stepped-up session), Ann, an auditor of Acme (a stepped-up session), and
/// the owner of another organization, Bravo.
pub(crate) struct Cast {
    pub owner: String,
    pub owner_s: String,
    pub auditor_s: String,
    pub bravo_s: String,
}

pub(crate) async fn cast(t: &TestApp) -> Cast {
    let owner = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["auditor"])
        .await;
    t.org_with_owner("bravo").await;
    Cast {
        owner,
        owner_s: stepped_up(t, "acme", "owner@acme.example").await.0,
        auditor_s: stepped_up(t, "acme", "ann@acme.example").await.0,
        bravo_s: stepped_up(t, "bravo", "owner@bravo.example").await.0,
    }
}

/// What a browser sends with a console form: its CSRF cookie and session.
pub(crate) fn cookie(session: &str) -> String {
    format!("muster_csrf={CSRF}; muster_session={session}")
}

pub(crate) async fn page(t: &TestApp, path: &str, session: Option<&str>) -> (StatusCode, String) {
    let cookie = format!(
        "muster_csrf={CSRF}; muster_session={}",
        session.unwrap_or("none")
    );
    let (s, h, b) = t.call_with("GET", path, &[("cookie", &cookie)], None).await;
    let text = b.as_str().map(str::to_owned).unwrap_or_default();
    if s == StatusCode::SEE_OTHER {
        return (s, h["location"].to_str().unwrap().to_owned());
    }
    (s, text)
}

async fn owner_invites_promotes_and_deactivates_in_a_browser(t: TestApp) {
    let Some(driver) = Driver::start(module_path!()).await else {
        return;
    };
    let sink = SmtpSink::start().await;
    t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    t.user_with_token("acme", "bob@acme.example", &["member"])
        .await;
    // One failed sign-in for the dashboard to count.
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "bob@acme.example", "password": "Wr0ng!pass", "org": "acme"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (_, uri) = stepped_up(&t, "acme", "owner@acme.example").await;
    let base = t.listen().await;
    let b = driver.browser().await;
    // Not signed in: the console sends the browser to sign in, and back.
    b.goto(&format!("{base}/admin")).await;
    wait_for_url(&b, "/login?next=%2Fadmin").await;
    owner_signs_in(&t, &b, (&base, "acme", "/admin"), &uri).await;
    b.wait_for("id=\"state-counts\"").await;
    assert!(
        !b.source().await.contains("step-up-banner"),
        "stepped up at sign-in"
    );
    assert_eq!(b.text("#count-active .n").await, "3", "owner, Ann and Bob");
    assert_eq!(b.text("#count-deactivated .n").await, "0");
    assert_eq!(b.text("#chart-signups .total").await, "3");
    assert_eq!(b.text("#chart-failed .total").await, "1");
    assert_eq!(b.text("#chart-deactivations .total").await, "0");
    let html = b.source().await;
    assert!(html.contains("<svg"), "charts are inline SVG");
    assert!(!html.contains("<script"), "the console runs no script");
    b.screenshot(&shot("admin-dashboard")).await;

    // Search the users; the filters are labelled form fields.
    b.click("nav a[href='/admin/users']").await;
    wait_for_url(&b, "/admin/users").await;
    let html = b.source().await;
    for id in ["q", "state"] {
        assert!(
            html.contains(&format!("<label for=\"{id}\"")),
            "label for {id}"
        );
    }
    b.fill("#q", "ann@").await;
    b.click(".filters button[type=submit]").await;
    wait_for_url(&b, "q=ann%40").await;
    let rows = b.text("#users tbody").await;
    assert!(rows.contains("ann@acme.example"), "{rows}");
    assert!(!rows.contains("bob@acme.example"), "{rows}");
    b.screenshot(&shot("admin-users")).await;

    // Invite Carol; she accepts in a browser of her own.
    b.click("nav a[href='/admin/invitations']").await;
    b.wait_for("id=\"emails\"").await;
    b.fill("#emails", "email,name\ncarol@acme.example,Carol")
        .await;
    b.click("#invite").await;
    b.wait_for("1 invitation sent").await;
    assert!(b.text("#invitations").await.contains("carol@acme.example"));
    b.screenshot(&shot("admin-invitations")).await;
    t.deliver_mail(&sink).await;
    let token = link_token(&sink, "carol@acme.example");
    let carol = driver.browser().await;
    carol
        .goto(&format!("{base}/invitations/accept?token={token}"))
        .await;
    carol.fill("#name", "Carol").await;
    carol.fill("#password", PW).await;
    carol.click("button[type=submit]").await;
    carol.wait_for("id=\"account-email\"").await;
    // A member: no console for her.
    carol.goto(&format!("{base}/admin")).await;
    carol.wait_for("No access to the admin console").await;

    // The owner makes her an admin: her very next request has the console.
    b.goto(&format!("{base}/admin/users?q=carol")).await;
    b.wait_for("carol@acme.example").await;
    b.click("#users tbody a").await;
    b.wait_for("id=\"user-state\"").await;
    assert_eq!(b.text("#user-state").await, "active");
    b.click("#role option[value='admin']").await;
    b.click("#add-role").await;
    b.wait_for("The role is added").await;
    b.click("#remove-role-member").await;
    b.wait_for("The role is removed").await;
    let roles = b.text("#roles").await;
    assert!(
        roles.contains("admin") && !roles.contains("member"),
        "{roles}"
    );
    b.screenshot(&shot("admin-user")).await;
    carol.goto(&format!("{base}/admin")).await;
    carol.wait_for("id=\"state-counts\"").await;

    // Deactivating first says what will happen; nothing happens until confirmed.
    b.click("#action-deactivate").await;
    wait_for_url(&b, "/confirm/deactivate").await;
    b.wait_for("id=\"consequence\"").await;
    assert!(
        b.text("#consequence")
            .await
            .contains("signed out everywhere"),
        "the confirmation says what happens"
    );
    b.screenshot(&shot("admin-confirm")).await;
    carol.goto(&format!("{base}/account")).await;
    carol.wait_for("id=\"account-email\"").await;
    b.click("#confirm").await;
    wait_for_url(&b, "done=deactivate").await;
    b.wait_for("every session and token of the user has ended")
        .await;
    assert_eq!(b.text("#user-state").await, "deactivated");
    // Carol's session is gone on her very next request.
    carol.goto(&format!("{base}/account")).await;
    wait_for_url(&carol, "/login?next=/account").await;
    carol.goto(&format!("{base}/admin")).await;
    wait_for_url(&carol, "/login?next=%2Fadmin").await;

    b.click("nav a[href='/admin']").await;
    b.wait_for("id=\"state-counts\"").await;
    assert_eq!(b.text("#count-deactivated .n").await, "1");
    assert_eq!(b.text("#chart-deactivations .total").await, "1");
    assert_eq!(
        b.text("#chart-activations .total").await,
        "1",
        "Carol's acceptance"
    );

    // The audit log has it all, newest first; an event shows before → after.
    b.click("nav a[href='/admin/audit']").await;
    b.wait_for("id=\"events\"").await;
    b.fill("#action", "role.").await;
    b.click(".filters button[type=submit]").await;
    wait_for_url(&b, "action=role.").await;
    let events = b.text("#events tbody").await;
    assert!(
        events.find("role.unassigned").unwrap() < events.find("role.assigned").unwrap(),
        "newest first: {events}"
    );
    b.fill("#action", "user.deactivate").await;
    b.click(".filters button[type=submit]").await;
    wait_for_url(&b, "action=user.deactivate").await;
    b.screenshot(&shot("admin-audit")).await;
    b.click("#events tbody a").await;
    b.wait_for("id=\"changes\"").await;
    assert_eq!(b.text("#event-action").await, "user.deactivate");
    b.screenshot(&shot("admin-audit-event")).await;
    let changes = b.text("#changes").await;
    assert!(
        changes.contains("active") && changes.contains("deactivated"),
        "{changes}"
    );
    assert!(
        b.text("#context").await.contains("127.0.0.1"),
        "the admin's address"
    );
    carol.quit().await;
    b.quit().await;
}

/// Signs the owner of `org` in at the organization's page with the
/// password and the authenticator app (`uri`), on to `next`.
async fn owner_signs_in(
    t: &TestApp,
    b: &muster_testkit::browser::Browser,
    (base, org, next): (&str, &str, &str),
    uri: &str,
) {
    b.goto(&format!("{base}/o/{org}/login?next={next}")).await;
    b.fill("#email", &format!("owner@{org}.example")).await;
    b.fill("#password", PW).await;
    b.click("button[type=submit]").await;
    b.wait_for("id=\"totp-code\"").await;
    b.fill("#totp-code", &totp_code(t, uri, 0)).await;
    b.click("form[action='/mfa'] button[type=submit]").await;
    t.clock.advance(time::Duration::seconds(30));
}

async fn login_from(t: &TestApp, ip: &str) -> StatusCode {
    t.call_from(
        (ip, "Mozilla/5.0 (X11; Linux x86_64)"),
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "ann@acme.example", "password": PW, "org": "acme"})),
    )
    .await
    .0
}

async fn scim_token_and_ip_rule_from_the_console_in_a_browser(t: TestApp) {
    let Some(driver) = Driver::start(module_path!()).await else {
        return;
    };
    let owner = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (_, uri) = stepped_up(&t, "acme", "owner@acme.example").await;
    let base = t.listen().await;
    let b = driver.browser().await;
    owner_signs_in(&t, &b, (&base, "acme", "/admin/scim"), &uri).await;
    b.wait_for("id=\"scim-base-url\"").await;
    assert!(b.text("#scim-base-url").await.ends_with("/scim/v2"));
    b.fill("#name", "Entra ID").await;
    b.click("#create-token").await;
    b.wait_for("id=\"scim-secret\"").await;
    let secret = b.text("#scim-secret").await.trim().to_owned();
    assert!(
        b.text("#scim-tokens").await.contains("never"),
        "not used yet"
    );
    // The IdP calls with it; the page then shows its last use and what it did.
    let (s, created) = t
        .call_from(
            ("20.36.1.2", "Microsoft.Identity"),
            "POST",
            "/scim/v2/Users",
            Some(&secret),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "sam@acme.example", "externalId": "e-1", "active": true}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    b.goto(&format!("{base}/admin/scim")).await;
    b.wait_for("id=\"scim-activity\"").await;
    assert!(
        b.text("#scim-tokens .last-use")
            .await
            .contains("from 20.36.1.2")
    );
    assert!(
        !b.source().await.contains(&secret),
        "the secret is shown once"
    );
    let activity = b.text("#scim-activity").await;
    assert!(
        activity.contains("user.created") && activity.contains("Entra ID"),
        "{activity}"
    );
    b.screenshot(&shot("admin-scim")).await;

    // An IP rule: sign-ins from that network are refused from now on.
    assert_eq!(login_from(&t, "198.51.100.7").await, StatusCode::OK);
    b.click("nav a[href='/admin/policies']").await;
    b.wait_for("id=\"inheritance\"").await;
    b.screenshot(&shot("admin-policies")).await;
    b.click("#edit-access").await;
    b.wait_for("id=\"networks_deny\"").await;
    b.fill("#networks_deny", "198.51.100.0/24").await;
    b.click("#save-access").await;
    b.wait_for("The access policy is saved").await;
    b.screenshot(&shot("admin-access-policy")).await;
    assert_eq!(login_from(&t, "198.51.100.7").await, StatusCode::FORBIDDEN);
    assert_eq!(login_from(&t, "203.0.113.9").await, StatusCode::OK);
    // A rule that would shut the admin out is not saved without confirming.
    b.fill("#networks_deny", "198.51.100.0/24\n127.0.0.0/8")
        .await;
    b.click("#save-access").await;
    b.wait_for("id=\"confirm_lockout\"").await;
    assert!(
        b.text("#form-error")
            .await
            .contains("refuse your own current sign-in")
    );
    let (_, policy) = t
        .call("GET", "/api/v1/orgs/acme/access-policy", Some(&owner), None)
        .await;
    assert_eq!(
        policy["networks"]["deny"],
        json!(["198.51.100.0/24"]),
        "unchanged"
    );
    b.quit().await;
}

async fn roles_and_groups_from_the_console_in_a_browser(t: TestApp) {
    let Some(driver) = Driver::start(module_path!()).await else {
        return;
    };
    t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let ann_s = session_of(&t, "acme", "ann@acme.example").await;
    let (_, uri) = stepped_up(&t, "acme", "owner@acme.example").await;
    let base = t.listen().await;
    let b = driver.browser().await;
    owner_signs_in(&t, &b, (&base, "acme", "/admin/roles"), &uri).await;
    // A custom role from the picker, which says what each permission allows.
    b.wait_for("id=\"permission-picker\"").await;
    assert!(
        b.text("#permission-picker")
            .await
            .contains("Suspend, deactivate, reactivate")
    );
    b.fill("#key", "helpdesk").await;
    b.fill("#name", "Help desk").await;
    b.click("#perm-users\\.read").await;
    b.click("#perm-users\\.lifecycle").await;
    // What the role will allow, before it is saved (no script: a round trip).
    b.click("#preview-role").await;
    b.wait_for("its holders make changes only after proving")
        .await;
    let summary = b.text("#role-summary").await;
    assert!(
        summary.contains("See users") && summary.contains("Suspend, deactivate"),
        "{summary}"
    );
    b.click("#create-role").await;
    b.wait_for("The role Help desk is created").await;
    let roles = b.text("#roles").await;
    assert!(
        roles.contains("Help desk") && roles.contains("See users"),
        "{roles}"
    );
    b.screenshot(&shot("admin-roles")).await;
    let helpdesk = t
        .scalar_text("SELECT id FROM roles WHERE role_key = 'helpdesk'")
        .await;
    b.goto(&format!("{base}/admin/roles/{helpdesk}")).await;
    b.wait_for("id=\"save-role\"").await;
    assert!(
        b.text("#role-summary")
            .await
            .contains("Suspend, deactivate")
    );
    b.screenshot(&shot("admin-role")).await;
    b.goto(&format!("{base}/admin/step-up?next=/admin/roles"))
        .await;
    b.wait_for("id=\"step-up\"").await;
    b.screenshot(&shot("admin-step-up")).await;

    // A group that gives it; Ann joins and gets the console on her next request.
    b.click("nav a[href='/admin/groups']").await;
    b.wait_for("id=\"create-group\"").await;
    b.screenshot(&shot("admin-groups")).await;
    b.fill("#name", "Support").await;
    b.click("#create-group").await;
    b.wait_for("The group is created").await;
    b.click("#group-role option[value='helpdesk']").await;
    b.click("#add-group-role").await;
    b.wait_for("The role is given to every member").await;
    let (s, _) = page(&t, "/admin", Some(&ann_s)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "not a member yet");
    b.fill("#member-email", "ann@acme.example").await;
    b.click("#add-user").await;
    b.wait_for("Added: the group").await;
    assert!(b.text("#members").await.contains("ann@acme.example"));
    b.screenshot(&shot("admin-group")).await;
    let (s, html) = page(&t, "/admin/users", Some(&ann_s)).await;
    assert_eq!(s, StatusCode::OK, "the group's role applies at once");
    assert!(
        !html.contains("href=\"/admin/scim\""),
        "and only what it allows"
    );
    // An address that is nobody here: said so, nothing added.
    b.fill("#member-email", "nobody@acme.example").await;
    b.click("#add-user").await;
    b.wait_for("id=\"form-error\"").await;
    assert!(b.text("#form-error").await.contains("nobody@acme.example"));
    // Her page shows the role as reached through the group, read-only.
    let ann = t
        .scalar_text("SELECT id FROM users WHERE email = 'ann@acme.example'")
        .await;
    b.goto(&format!("{base}/admin/users/{ann}")).await;
    b.wait_for("id=\"roles\"").await;
    assert!(
        b.text("#roles")
            .await
            .contains("inherited from group Support")
    );
    b.goto(&format!("{base}/admin/groups")).await;
    b.click("#groups a").await;
    b.wait_for("id=\"members\"").await;
    b.click("#members button").await;
    b.wait_for("Removed: the group").await;
    let (s, _) = page(&t, "/admin", Some(&ann_s)).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "out of the group, out of the console"
    );
    // The structure page, for the pictures.
    b.click("nav a[href='/admin/structure']").await;
    b.wait_for("id=\"add-unit\"").await;
    b.fill("#unit-name", "Europe").await;
    b.click("#add-unit").await;
    b.wait_for("The unit Europe is added.").await;
    b.fill("#ws-name", "Apollo").await;
    b.click("#add-workspace").await;
    b.wait_for("The workspace Apollo is added.").await;
    b.screenshot(&shot("admin-structure")).await;
    // The Support group linked to a workspace: Ann holds its role there.
    let ws = t
        .scalar_text("SELECT id FROM workspaces WHERE name = 'Apollo'")
        .await;
    b.goto(&format!("{base}/admin/workspaces/{ws}")).await;
    b.wait_for("id=\"ws-link-group\"").await;
    b.click("#ws-link-group").await;
    b.wait_for("The group is linked").await;
    assert!(b.text("#workspace-groups").await.contains("Support"));
    b.screenshot(&shot("admin-workspace")).await;
    // Europe's own session policy, from the policies' table.
    b.click("nav a[href='/admin/policies']").await;
    b.click("#unit-Europe").await;
    b.wait_for("The policies of Europe").await;
    b.fill("#idle_minutes", "30").await;
    b.click("#save-session").await;
    b.wait_for("Europe sets its own.").await;
    b.screenshot(&shot("admin-unit-policies")).await;
    b.quit().await;
}

async fn webhooks_from_the_console_in_a_browser(t: TestApp) {
    let Some(driver) = Driver::start(module_path!()).await else {
        return;
    };
    t.org_with_owner("acme").await;
    let (_, uri) = stepped_up(&t, "acme", "owner@acme.example").await;
    let mut rx = Receiver::start().await;
    let base = t.listen().await;
    let b = driver.browser().await;
    owner_signs_in(&t, &b, (&base, "acme", "/admin/webhooks"), &uri).await;
    b.wait_for("id=\"create-endpoint\"").await;
    b.fill("#url", &rx.url()).await;
    b.click("input[value='user.*']").await;
    b.click("#create-endpoint").await;
    b.wait_for("id=\"webhook-secret\"").await;
    let secret = b.text("#webhook-secret").await.trim().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let r = deliver_due(&t.app).await.unwrap().expect("the lease");
    assert_eq!(r.delivered, 1, "{r:?}");
    let got = rx.messages();
    assert!(
        verifies(&got[0], &secret, t.clock.now().unix_timestamp()),
        "signed with the secret shown"
    );
    // The receiver goes down: the next message fails, and is redelivered by hand.
    rx.stop();
    t.user_with_token("acme", "bob@acme.example", &["member"])
        .await;
    deliver_due(&t.app).await.unwrap().expect("the lease");
    rx.restart().await;
    b.goto(&format!("{base}/admin/webhooks")).await;
    b.click("#endpoints a").await;
    b.wait_for("id=\"deliveries\"").await;
    let rows = b.text("#deliveries tbody").await;
    assert!(
        rows.contains("delivered") && rows.contains("pending"),
        "{rows}"
    );
    b.screenshot(&shot("admin-webhook")).await;
    b.click("#deliveries tbody tr:first-child button").await;
    b.wait_for("Sent again: delivered").await;
    assert_eq!(
        rx.messages().len(),
        2,
        "Bob's message arrived on redelivery"
    );
    assert!(
        !b.source().await.contains(&secret),
        "the secret is shown once"
    );
    b.screenshot(&shot("admin-webhooks")).await;
    b.quit().await;
}

both!(
    owner_invites_promotes_and_deactivates_in_a_browser,
    scim_token_and_ip_rule_from_the_console_in_a_browser,
    roles_and_groups_from_the_console_in_a_browser,
    webhooks_from_the_console_in_a_browser,
);
