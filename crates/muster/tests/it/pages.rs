//! Issue 4's pages: driven end to end in headless Chromium (sign-up → the
//! code from the SMTP sink → verify → sign in → sign out; forgot password),
//! and their refusals checked request by request.

use crate::{TestApp, both};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use muster_testkit::browser::Driver;
use muster_testkit::smtp::SmtpSink;

fn code_in(sink: &SmtpSink, to: &str) -> String {
    let m = sink
        .messages()
        .into_iter()
        .rev()
        .find(|m| m.to.iter().any(|t| t.contains(to)))
        .expect("an email");
    let text = m.text();
    text.split("Your code: ")
        .nth(1)
        .and_then(|r| r.get(..6))
        .expect("a code")
        .to_owned()
}

pub(crate) fn shot(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(format!("{name}.png"))
}

pub(crate) async fn wait_for_url(b: &muster_testkit::browser::Browser, part: &str) -> String {
    for _ in 0..100 {
        let u = b.current_url().await;
        if u.contains(part) {
            return u;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never reached {part}: at {}", b.current_url().await);
}

async fn sign_up_verify_sign_in_and_out_in_a_browser(t: TestApp) {
    let Some(driver) = Driver::start(module_path!()).await else {
        return;
    };
    let sink = SmtpSink::start().await;
    let base = t.listen().await;
    let b = driver.browser().await;

    b.goto(&format!("{base}/signup")).await;
    b.screenshot(&shot("signup")).await;
    // Labelled fields, in a keyboard order that follows the form.
    let html = b.source().await;
    for id in ["name", "email", "password"] {
        assert!(
            html.contains(&format!("<label for=\"{id}\"")),
            "label for {id}"
        );
    }
    b.fill("#name", "Ann Example").await;
    b.fill("#email", "ann@pages.example").await;
    b.fill("#password", "weak").await;
    b.click("button[type=submit]").await;
    // The browser's own check stops a too-short password; the server's own
    // message shows for a password the browser lets through.
    b.fill("#password", "longenough").await;
    b.click("button[type=submit]").await;
    b.wait_for("id=\"form-error\"").await;
    assert!(
        b.text("#form-error").await.contains("upper-case"),
        "the policy's message"
    );
    assert_eq!(b.text("#email").await, "", "inputs have no text nodes");
    b.fill("#password", "Str0ng!pass").await;
    b.click("button[type=submit]").await;
    b.wait_for("we sent you a code").await;

    t.deliver_mail(&sink).await;
    let code = code_in(&sink, "ann@pages.example");
    b.fill("#code", &code).await;
    b.click("form[action='/verify-email'] button[type=submit]")
        .await;
    wait_for_url(&b, "/login?done=verified").await;
    b.wait_for("Your email is verified").await;

    // The keyboard reaches every control in order: email, password, submit.
    b.click("#email").await;
    assert_eq!(b.focused_id().await, "email");
    b.keys("\u{E004}").await;
    assert_eq!(b.focused_id().await, "password");
    b.fill("#email", "ann@pages.example").await;
    b.fill("#password", "Str0ng!pass").await;
    b.screenshot(&shot("login")).await;
    b.click("button[type=submit]").await;
    wait_for_url(&b, "/account").await;
    b.wait_for("id=\"account-email\"").await;
    assert_eq!(b.text("#account-email").await, "ann@pages.example");
    b.wait_for("This session").await;
    b.screenshot(&shot("account")).await;

    b.click("#sign-out").await;
    wait_for_url(&b, "/login?done=signed_out").await;
    b.goto(&format!("{base}/account")).await;
    wait_for_url(&b, "/login?next=/account").await;
    b.wait_for("<h1>Sign in").await;

    // Forgot the password: the code from the email, a new password, sign in.
    b.goto(&format!("{base}/forgot-password")).await;
    b.fill("#email", "ann@pages.example").await;
    b.click("button[type=submit]").await;
    b.wait_for("If an account uses that address").await;
    for _ in 0..100 {
        if t.scalar("SELECT COUNT(*) FROM email_outbox WHERE kind = 'reset_password'")
            .await
            > 0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    t.deliver_mail(&sink).await;
    let code = code_in(&sink, "ann@pages.example");
    b.fill("#code", &code).await;
    b.fill("#password", "N3w!password").await;
    b.click("button[type=submit]").await;
    wait_for_url(&b, "/login?done=password_reset").await;
    b.wait_for("Your password is changed").await;
    b.fill("#email", "ann@pages.example").await;
    b.fill("#password", "N3w!password").await;
    b.click("button[type=submit]").await;
    wait_for_url(&b, "/account").await;
    b.quit().await;
}

pub(crate) const CSRF: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";

pub(crate) async fn post_form(
    t: &TestApp,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let res = tower::ServiceExt::oneshot(
        t.router.clone(),
        req.body(Body::from(body.to_owned())).unwrap(),
    )
    .await
    .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn pages_refuse_forged_forms_and_foreign_redirects(t: TestApp) {
    t.org_with_owner("pg").await;
    let before = t.fingerprint().await;
    let sessions = t.scalar("SELECT COUNT(*) FROM sessions").await;
    // No CSRF cookie, or a field that does not match it: refused, nothing done.
    let login = "email=owner%40pg.example&password=Str0ng%21pass&org=pg";
    for (cookie, body) in [
        (None, format!("{login}&csrf={CSRF}")),
        (Some(format!("muster_csrf={CSRF}")), login.to_owned()),
        (
            Some(format!("muster_csrf={CSRF}")),
            format!("{login}&csrf=x{}", &CSRF[1..]),
        ),
    ] {
        let (s, _, html) = post_form(&t, "/login", cookie.as_deref(), &body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        assert!(html.contains("This form has expired"));
    }
    assert_eq!(t.scalar("SELECT COUNT(*) FROM sessions").await, sessions);
    assert_eq!(t.fingerprint().await, before);

    // A foreign return URL is never followed.
    let cookie = format!("muster_csrf={CSRF}");
    for next in [
        "%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%5Cevil.example",
    ] {
        let (s, h, _) = post_form(
            &t,
            "/login",
            Some(&cookie),
            &format!("{login}&csrf={CSRF}&next={next}"),
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER);
        assert_eq!(h["location"], "/account", "{next}");
    }
    let (s, h, _) = post_form(
        &t,
        "/login",
        Some(&cookie),
        &format!("{login}&csrf={CSRF}&next=%2Faccount%3Ftab%3D2"),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/account?tab=2");
    assert!(h["set-cookie"].to_str().unwrap().contains("HttpOnly"));

    // A wrong password re-renders the form with the message and the email, never the password.
    let (s, h, html) = post_form(
        &t,
        "/login",
        Some(&cookie),
        &format!("email=owner%40pg.example&password=Wr0ng%21pass&org=pg&csrf={CSRF}"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(html.contains("Wrong email or password."));
    assert!(html.contains("value=\"owner@pg.example\""));
    assert!(!html.contains("Wr0ng"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // Over-long fields come back with a message, and nothing is created.
    let long = "a".repeat(300);
    let users = t.scalar("SELECT COUNT(*) FROM users").await;
    let (s, _, html) = post_form(
        &t,
        "/signup",
        Some(&cookie),
        &format!("csrf={CSRF}&name={long}&email=z%40z.example&password=Str0ng%21pass"),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("at most 256 characters"));
    assert_eq!(t.scalar("SELECT COUNT(*) FROM users").await, users);
    // Markup in input is escaped when the form is re-rendered.
    let (_, _, html) = post_form(
        &t,
        "/signup",
        Some(&cookie),
        &format!("csrf={CSRF}&name=%3Cscript%3Ex%3C%2Fscript%3E&email=bad&password=x"),
    )
    .await;
    assert!(!html.contains("<script>x"), "escaped");
    // An organization's own sign-in page; an unknown one is a clear 404.
    let (s, body) = t.call("GET", "/o/pg/login", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.as_str().unwrap().contains("Sign in to Org pg"));
    assert!(body.as_str().unwrap().contains("name=\"org\" value=\"pg\""));
    let (s, _) = t.call("GET", "/o/nope/login", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A GET of the link verifies nothing by itself (mail scanners fetch links).
    let (s, _) = t
        .call("GET", "/verify-email?token=mse_whatever", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
}

both!(
    sign_up_verify_sign_in_and_out_in_a_browser,
    pages_refuse_forged_forms_and_foreign_redirects,
);
