//! Issue 4 §6 and §7: an organization's own OIDC IdP at `/o/{slug}/login` —
//! the connection an admin sets (secret sealed at rest), provisioned users
//! activated on their first SSO sign-in, just-in-time accounts only when
//! allowed, states that may not sign in, tenant isolation, and invitations
//! accepted through SSO or Google.

use crate::federation::{me, with_google};
use crate::invitations::link_token;
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::oidc::{OidcProvider, Person};
use muster_testkit::smtp::SmtpSink;

async fn idp(t: &TestApp) -> OidcProvider {
    let p = OidcProvider::start(t.clock.clone(), "acme-muster", "acme&secret:1").await;
    // Entra ID and Okta sign with RS256; ES256 is exercised here too, and
    // client authentication in the body (Google's provider takes Basic).
    p.use_es256();
    p.use_client_secret_post();
    p
}

async fn connect(t: &TestApp, admin: &str, p: &OidcProvider, jit: bool) {
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/sso",
            Some(admin),
            Some(json!({"issuer": p.issuer, "client_id": p.client_id,
                        "client_secret": p.client_secret, "jit": jit})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// The user of `email` in Acme, as the admin API lists it.
async fn find(t: &TestApp, admin: &str, email: &str) -> Option<serde_json::Value> {
    let (_, b) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users?q={email}"),
            Some(admin),
            None,
        )
        .await;
    b["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .cloned()
}

async fn user_state(t: &TestApp, admin: &str, email: &str) -> Option<String> {
    let u = find(t, admin, email).await?;
    u["state"].as_str().map(str::to_owned)
}

async fn an_organizations_idp_signs_in_its_users(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let p = idp(&t).await;
    // Before any connection, the organization's SSO link explains itself.
    let l = t.federated("/o/acme/sso").await;
    assert_eq!(l.status, StatusCode::FORBIDDEN);
    assert!(
        l.body
            .as_str()
            .unwrap()
            .contains("not set up single sign-on")
    );

    connect(&t, &admin, &p, false).await;
    let (s, view) = t
        .call("GET", "/api/v1/orgs/acme/sso", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        view["redirect_uri"],
        "http://muster.test/auth/oidc/callback"
    );
    assert_eq!(view["login_url"], "http://muster.test/o/acme/login");
    assert!(
        !view.to_string().contains("acme&secret"),
        "never shown again"
    );
    // Sealed at rest with the server key.
    let stored: String = sqlx_text(&t, "SELECT client_secret FROM sso_connections").await;
    assert!(stored.starts_with("v1.") && !stored.contains("acme&secret"));
    // The organization's sign-in page offers its SSO.
    let (_, _, page) = t.call_with("GET", "/o/acme/login", &[], None).await;
    assert!(page.as_str().unwrap().contains("Sign in with Org acme SSO"));

    // A user provisioned without a credential becomes active by signing in through SSO.
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/users",
            Some(&admin),
            Some(json!({"email": "pat@acme.example"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["state"], "provisioned");
    p.sign_in_as(Person {
        email_verified: None, // as Entra ID sends it
        ..Person::new("entra-oid-1", "pat@acme.example")
    });
    let l = t.federated("/o/acme/sso?next=/account").await;
    assert_eq!(l.status, StatusCode::SEE_OTHER, "{:?}", l.body);
    assert_eq!(l.location.as_deref(), Some("/account"), "no password asked");
    let pat_session = l.session().unwrap().to_owned();
    let (_, u) = me(&t, &pat_session).await;
    assert_eq!(u["email"], "pat@acme.example");
    // An SSO user cannot give themselves a password around the IdP.
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/me/password",
            Some(&pat_session),
            Some(json!({"new_password": "Str0ng!pass"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("single sign-on"));
    let (_, _, page) = t
        .call_with(
            "GET",
            "/account",
            &[("cookie", &format!("muster_session={pat_session}"))],
            None,
        )
        .await;
    let page = page.as_str().unwrap();
    assert!(page.contains("no password to set") && !page.contains("new_password"));
    assert_eq!(
        user_state(&t, &admin, "pat@acme.example").await.as_deref(),
        Some("active")
    );

    // Without just-in-time creation, someone the organization does not have is refused.
    p.sign_in_as(Person::new("entra-oid-2", "newbie@acme.example"));
    let l = t.federated("/o/acme/sso").await;
    assert_eq!(l.status, StatusCode::FORBIDDEN);
    assert!(l.body.as_str().unwrap().contains("ask your administrator"));
    assert_eq!(user_state(&t, &admin, "newbie@acme.example").await, None);
    // With it, they come in active with the organization's defaults.
    let (s, b) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/sso",
            Some(&admin),
            Some(json!({"issuer": p.issuer, "client_id": p.client_id, "jit": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "the secret is kept when not given: {b}");
    let l = t.federated("/o/acme/sso").await;
    assert_eq!(l.status, StatusCode::SEE_OTHER, "{:?}", l.body);
    let (_, u) = me(&t, l.session().unwrap()).await;
    assert_eq!(u["source"], "sso");
    assert_eq!(u["state"], "active");
    let roles = t
        .scalar(
            "SELECT COUNT(*) FROM role_assignments a JOIN roles r ON r.id = a.role_id \
             JOIN users u ON u.id = a.user_id WHERE r.role_key = 'member' AND u.source = 'sso'",
        )
        .await;
    assert_eq!(roles, 1, "the sign-up policy's default role");

    // A suspended user is refused through SSO as through a password, and nothing changes.
    let pat = find(&t, &admin, "pat@acme.example").await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _) = t
        .call(
            "POST",
            &format!("/api/v1/orgs/acme/users/{pat}/suspend"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    p.sign_in_as(Person::new("entra-oid-1", "pat@acme.example"));
    let sessions = t.scalar("SELECT COUNT(*) FROM sessions").await;
    let l = t.federated("/o/acme/sso").await;
    assert_eq!(l.status, StatusCode::FORBIDDEN);
    assert!(l.body.as_str().unwrap().contains("suspended"));
    assert_eq!(t.scalar("SELECT COUNT(*) FROM sessions").await, sessions);

    // Tenant isolation: another organization without SSO is not reachable
    // through Acme's IdP, and Acme's IdP identities stay in Acme.
    t.org_with_owner("other").await;
    let l = t.federated("/o/other/sso").await;
    assert_eq!(l.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM identities i JOIN orgs o ON o.id = i.org_id WHERE o.slug <> 'acme'")
            .await,
        0
    );
}

async fn sqlx_text(t: &TestApp, sql: &str) -> String {
    let url = t.url.clone();
    match t.backend() {
        muster_app::Backend::Sqlite => {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
        muster_app::Backend::Postgres => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    }
}

async fn a_bad_connection_is_refused_and_nothing_saved(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (_, member) = t
        .user_with_token("acme", "mia@acme.example", &["member"])
        .await;
    let p = idp(&t).await;
    let before = t.fingerprint().await;
    for (body, field) in [
        (
            json!({"issuer": "http://idp.example.com", "client_id": "x", "client_secret": "y"}),
            "https",
        ),
        (
            json!({"issuer": "http://127.0.0.1:1", "client_id": "x", "client_secret": "y"}),
            "could not be read",
        ),
        (
            json!({"issuer": p.issuer, "client_id": "x"}),
            "client secret",
        ),
        (
            json!({"issuer": p.issuer, "client_id": "", "client_secret": "y"}),
            "printable",
        ),
        (
            json!({"issuer": format!("{}/", p.issuer), "client_id": "x", "client_secret": "y"}),
            "another issuer",
        ),
        (
            json!({"issuer": p.issuer, "client_id": "x", "client_secret": "y", "extra": 1}),
            "extra",
        ),
    ] {
        let (s, b) = t
            .call(
                "PUT",
                "/api/v1/orgs/acme/sso",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {b}");
        assert!(b.to_string().contains(field), "{body}: {b}");
    }
    // Only `org.manage` sets it.
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/sso",
            Some(&member),
            Some(json!({"issuer": p.issuer, "client_id": "x", "client_secret": "y"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(t.fingerprint().await, before, "nothing changed");
    let (s, _) = t
        .call("GET", "/api/v1/orgs/acme/sso", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    connect(&t, &admin, &p, false).await;
    let (s, _) = t
        .call("DELETE", "/api/v1/orgs/acme/sso", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t
        .call("DELETE", "/api/v1/orgs/acme/sso", Some(&admin), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn invitations_are_accepted_through_sso_or_google(mut t: TestApp) {
    let sink = SmtpSink::start().await;
    let google = with_google(&mut t).await;
    let admin = t.org_with_owner("acme").await;
    let p = idp(&t).await;
    connect(&t, &admin, &p, false).await;
    let (s, b) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/invitations",
            Some(&admin),
            Some(json!({"emails": ["ivy@acme.example", "gus@gmail.example"], "roles": ["admin"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    t.deliver_mail(&sink).await;
    let ivy = link_token(&sink, "ivy@acme.example");
    let gus = link_token(&sink, "gus@gmail.example");
    // The acceptance page offers both.
    let (_, _, page) = t
        .call_with(
            "GET",
            &format!("/invitations/accept?token={ivy}"),
            &[],
            None,
        )
        .await;
    let page = page.as_str().unwrap();
    assert!(
        page.contains("sso-accept") && page.contains("google-accept"),
        "{page}"
    );

    // Someone else at the IdP cannot take Ivy's invitation.
    p.sign_in_as(Person::new("okta-9", "mallory@acme.example"));
    let l = t.federated(&format!("/o/acme/sso?invitation={ivy}")).await;
    assert_eq!(l.status, StatusCode::FORBIDDEN);
    assert!(
        l.body
            .as_str()
            .unwrap()
            .contains("invitation is for ivy@acme.example")
    );
    assert_eq!(
        user_state(&t, &admin, "ivy@acme.example").await.as_deref(),
        Some("invited")
    );

    p.sign_in_as(Person::new("okta-1", "ivy@acme.example"));
    let l = t.federated(&format!("/o/acme/sso?invitation={ivy}")).await;
    assert_eq!(l.status, StatusCode::SEE_OTHER, "{:?}", l.body);
    assert_eq!(
        user_state(&t, &admin, "ivy@acme.example").await.as_deref(),
        Some("active")
    );
    let (s, b) = t
        .call("GET", "/api/v1/me", Some(l.session().unwrap()), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The invitation is spent: the link no longer works.
    let again = t.federated(&format!("/o/acme/sso?invitation={ivy}")).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Gus accepts with Google into the business organization; later he signs
    // in at the organization's page with Google, by subject.
    google.sign_in_as(Person::new("g-gus", "gus@gmail.example"));
    let l = t.federated(&format!("/auth/google?invitation={gus}")).await;
    assert_eq!(l.status, StatusCode::SEE_OTHER, "{:?}", l.body);
    assert_eq!(
        user_state(&t, &admin, "gus@gmail.example").await.as_deref(),
        Some("active")
    );
    let later = t.federated("/auth/google?org=acme").await;
    assert_eq!(later.status, StatusCode::SEE_OTHER, "{:?}", later.body);
    let (_, u) = me(&t, later.session().unwrap()).await;
    assert_eq!(u["email"], "gus@gmail.example");
    // Google does not create accounts in a business organization.
    google.sign_in_as(Person::new("g-new", "new@gmail.example"));
    let l = t.federated("/auth/google?org=acme").await;
    assert_eq!(l.status, StatusCode::FORBIDDEN);
    assert_eq!(user_state(&t, &admin, "new@gmail.example").await, None);
}

both!(
    an_organizations_idp_signs_in_its_users,
    a_bad_connection_is_refused_and_nothing_saved,
    invitations_are_accepted_through_sso_or_google,
);
