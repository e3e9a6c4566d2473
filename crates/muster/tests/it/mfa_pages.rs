//! Issue 5's pages: enrolling an authenticator app on the account page and
//! signing in with it, in headless Chromium; enrolment forced by the policy
//! and the challenge page's refusals, request by request.

use crate::mfa::totp_code;
use crate::pages::{CSRF, post_form, shot, wait_for_url};
use crate::{TestApp, both, json};
use axum::http::StatusCode;
use muster_testkit::browser::Driver;

fn url_enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The URI an authenticator app would build from a typed key.
fn typed_key_uri(secret: &str) -> String {
    format!("otpauth://totp/Muster:typed?secret={secret}&issuer=Muster")
}

async fn enrol_totp_and_sign_in_with_it_in_a_browser(t: TestApp) {
    let Some(driver) = Driver::start(module_path!()).await else {
        return;
    };
    let _ = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let base = t.listen().await;
    let b = driver.browser().await;
    let sign_in = async || {
        b.goto(&format!("{base}/o/acme/login")).await;
        b.fill("#email", "ann@acme.example").await;
        b.fill("#password", crate::signin::PW).await;
        b.click("button[type=submit]").await;
    };
    sign_in().await;
    wait_for_url(&b, "/account").await;
    b.wait_for("id=\"mfa-state\"").await;
    assert!(b.text("#mfa-state").await.starts_with("Off."));
    // The browser got a device cookie at sign-in and is listed as this device.
    assert!(b.text("#devices").await.contains("(this device)"));
    b.click("#add-totp").await;
    b.wait_for("id=\"totp-secret\"").await;
    // The QR code is inline SVG, nothing fetched from elsewhere.
    let html = b.source().await;
    assert!(html.contains("<svg"), "an inline QR code");
    b.screenshot(&shot("mfa-setup")).await;
    let secret = b.text("#totp-secret").await;
    let uri = typed_key_uri(secret.trim());
    b.fill("#setup-code", "000000").await;
    b.click("button[type=submit]").await;
    b.wait_for("id=\"form-error\"").await;
    b.fill("#setup-code", &totp_code(&t, &uri, 0)).await;
    b.click("button[type=submit]").await;
    b.wait_for("id=\"recovery-codes\"").await;
    let codes = b.text("#recovery-codes").await;
    assert_eq!(
        codes.lines().filter(|l| l.contains('-')).count(),
        10,
        "{codes}"
    );
    b.screenshot(&shot("mfa-recovery-codes")).await;
    b.click("a.button").await;
    wait_for_url(&b, "/account").await;
    b.wait_for("id=\"mfa-state\"").await;
    assert!(b.text("#mfa-state").await.starts_with("On."));
    b.screenshot(&shot("account-security")).await;
    b.click("#sign-out").await;
    wait_for_url(&b, "/login?done=signed_out").await;

    // The password now leads to the second step, not the account.
    t.clock.advance(time::Duration::seconds(30));
    sign_in().await;
    wait_for_url(&b, "/mfa").await;
    b.wait_for("id=\"totp-code\"").await;
    b.goto(&format!("{base}/account")).await;
    wait_for_url(&b, "/login?next=/account").await;
    b.goto(&format!("{base}/mfa?next=/account")).await;
    b.wait_for("id=\"totp-code\"").await;
    b.screenshot(&shot("mfa-challenge")).await;
    b.fill("#totp-code", "000000").await;
    b.click("form[action='/mfa'] button[type=submit]").await;
    b.wait_for("id=\"form-error\"").await;
    b.fill("#totp-code", &totp_code(&t, &uri, 0)).await;
    b.click("form[action='/mfa'] button[type=submit]").await;
    wait_for_url(&b, "/account").await;
    b.wait_for("id=\"account-email\"").await;
    b.quit().await;
}

/// Chromium's virtual authenticator (DevTools WebAuthn domain, through the
/// WebDriver extension) registers a passkey on the account page; the user
/// then signs in with it alone, without email or password.
async fn register_a_passkey_and_sign_in_with_it_in_a_browser(mut t: TestApp) {
    let Some(driver) = Driver::start(module_path!()).await else {
        return;
    };
    let _ = t.org_with_owner("acme").await;
    t.user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let base = t.serve_at_localhost().await;
    let b = driver.browser().await;
    let authenticator = b.add_virtual_authenticator().await;
    b.goto(&format!("{base}/o/acme/login")).await;
    b.fill("#email", "ann@acme.example").await;
    b.fill("#password", crate::signin::PW).await;
    b.click("button[type=submit]").await;
    wait_for_url(&b, "/account").await;
    b.wait_for("id=\"add-passkey\"").await;
    b.click("#add-passkey").await;
    wait_for_url(&b, "/account?done=passkey_added").await;
    b.wait_for("Your passkey is added").await;
    assert_eq!(b.virtual_credentials(&authenticator).await.len(), 1);
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM mfa_factors WHERE kind = 'passkey'")
            .await,
        1
    );
    b.click("#sign-out").await;
    wait_for_url(&b, "/login?done=signed_out").await;
    // No email, no password: the passkey says who this is.
    b.goto(&format!("{base}/o/acme/login")).await;
    b.wait_for("id=\"passkey-signin\"").await;
    b.screenshot(&shot("sign-in-with-passkey")).await;
    b.click("#passkey-signin").await;
    wait_for_url(&b, "/account").await;
    b.wait_for("id=\"account-email\"").await;
    assert_eq!(b.text("#account-email").await, "ann@acme.example");
    assert_eq!(
        t.scalar("SELECT CAST(MAX(mfa_level) AS BIGINT) FROM sessions WHERE revoked_at IS NULL")
            .await,
        3,
        "a passkey session is L3"
    );
    // With the password, the passkey is now the second step.
    b.click("#sign-out").await;
    wait_for_url(&b, "/login?done=signed_out").await;
    b.goto(&format!("{base}/o/acme/login")).await;
    b.fill("#email", "ann@acme.example").await;
    b.fill("#password", crate::signin::PW).await;
    b.click("button[type=submit]").await;
    wait_for_url(&b, "/mfa").await;
    b.wait_for("id=\"mfa-passkey\"").await;
    b.click("#mfa-passkey").await;
    wait_for_url(&b, "/account").await;
    b.wait_for("id=\"account-email\"").await;
    assert_eq!(t.audit_count("auth.login", "password+passkey").await, 1);
    b.quit().await;
}

async fn the_challenge_page_refuses_what_it_must(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    t.user_with_token("acme", "bob@acme.example", &["member"])
        .await;
    t.call(
        "PUT",
        "/api/v1/orgs/acme/mfa-policy",
        Some(&owner),
        Some(json!({"mode": "required", "methods": ["totp"]})),
    )
    .await;
    // No challenge cookie: the page says the sign-in expired.
    let (s, body) = t.call("GET", "/mfa", None, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(body.as_str().unwrap().contains("This sign-in has expired"));
    // The password leads to enrolment: no session cookie yet.
    let login = format!(
        "csrf={CSRF}&org=acme&email=bob%40acme.example&password={}&next=%2Faccount",
        url_enc(crate::signin::PW)
    );
    let (s, h, _) = post_form(&t, "/login", Some(&format!("muster_csrf={CSRF}")), &login).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/mfa?next=%2Faccount");
    let cookies: Vec<String> = h
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.iter().all(|c| !c.starts_with("muster_session=")),
        "{cookies:?}"
    );
    let mfa_cookie = cookies
        .iter()
        .find(|c| c.starts_with("muster_mfa="))
        .expect("the challenge cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        cookies
            .iter()
            .any(|c| c.contains("HttpOnly") && c.starts_with("muster_mfa="))
    );
    let with_cookie = format!("muster_csrf={CSRF}; {mfa_cookie}");
    let (s, _, body) = t
        .send_full(
            axum::http::Request::get("/mfa?next=/account")
                .header("cookie", &with_cookie)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    let body = body.as_str().unwrap().to_owned();
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("id=\"enrol-totp\""), "{body}");
    assert!(
        !body.contains("id=\"enrol-email\""),
        "email codes are not allowed here"
    );
    // A forged form is refused before anything happens.
    let (s, _, _) = post_form(
        &t,
        "/mfa/enrol",
        Some(&with_cookie),
        "csrf=forged&method=totp",
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM mfa_factors").await, 0);
    let body_in = format!("csrf={CSRF}&method=totp&next=/account");
    let (s, _, body) = post_form(&t, "/mfa/enrol", Some(&with_cookie), &body_in).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("id=\"totp-secret\""));
    // A wrong code re-renders the page with the message and opens nothing.
    let body_in = format!("csrf={CSRF}&method=totp&code=12345x&next=/account");
    let (s, h, body) = post_form(&t, "/mfa", Some(&with_cookie), &body_in).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("id=\"form-error\""));
    assert!(
        h.get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap().contains("muster_session"))
    );
    assert_eq!(t.scalar("SELECT COUNT(*) FROM sessions").await, 0);
}

both!(
    enrol_totp_and_sign_in_with_it_in_a_browser,
    register_a_passkey_and_sign_in_with_it_in_a_browser,
    the_challenge_page_refuses_what_it_must,
);
