//! Sign-up, verification, sign-in and password reset pages.

use super::{Csrf, csrf_refused, notice, render, safe_next, see_other};
use crate::error::page_message;
use crate::extract::Ctx;
use crate::{AppState, cookies};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::signin::account::{ResetInput, ResetRequest};
use muster_app::signin::signup::ResendInput;
use muster_app::signin::{self, LoginInput, NewOrganization, SignUpInput, VerifyInput};
use std::collections::HashMap;

type Fields = HashMap<String, String>;

fn field(f: &Fields, k: &str) -> String {
    f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default()
}

fn opt(f: &Fields, k: &str) -> Option<String> {
    Some(field(f, k)).filter(|v| !v.is_empty())
}

fn secret(f: &Fields, k: &str) -> secrecy::SecretString {
    f.get(k).cloned().unwrap_or_default().into()
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    org: String,
    org_name: String,
    next: String,
    email: String,
    /// "Continue with Google" and the organization's SSO, when set up.
    google_href: String,
    sso_href: String,
    error: Option<String>,
    notice: Option<String>,
}

/// The links that start a federated sign-in from this page.
async fn federated_links(s: &AppState, org: &str, next: &str) -> (String, String) {
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let google = if muster_app::federation::google_enabled(&s.app) {
        let org_q = if org.is_empty() {
            String::new()
        } else {
            format!("&org={}", enc(org))
        };
        format!("/auth/google?next={}{org_q}", enc(next))
    } else {
        String::new()
    };
    let sso = match muster_app::federation::sso_enabled(&s.app, org).await {
        Ok(true) if !org.is_empty() => format!("/o/{}/sso?next={}", enc(org), enc(next)),
        _ => String::new(),
    };
    (google, sso)
}

async fn org_name(s: &AppState, slug: &str) -> String {
    if slug.is_empty() {
        return String::new();
    }
    muster_app::orgs::public_name(&s.app, slug)
        .await
        .unwrap_or_default()
}

/// `/`: the account page for someone signed in, else sign-in.
pub async fn home(headers: HeaderMap) -> Response {
    if cookies::session_in(&headers).is_some() {
        see_other("/account")
    } else {
        see_other("/login")
    }
}

pub async fn login_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    let org = field(&q, "org");
    let next = safe_next(q.get("next").map(String::as_str), "/account");
    let (google_href, sso_href) = federated_links(&s, &org, &next).await;
    let page = LoginPage {
        csrf: csrf.token.clone(),
        org_name: org_name(&s, &org).await,
        org,
        next,
        email: String::new(),
        google_href,
        sso_href,
        error: None,
        notice: notice(q.get("done").map(String::as_str)),
    };
    csrf.send(&s.public_url, render(StatusCode::OK, &page))
}

/// `/o/{slug}/login`: an organization's own sign-in page (its members'
/// bookmark): its SSO when set up, Google, and password sign-in.
pub async fn org_login_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(slug): axum::extract::Path<String>,
    Query(mut q): Query<Fields>,
) -> Response {
    let known = muster_core::OrgSlug::parse(&slug).is_ok()
        && muster_app::orgs::public_name(&s.app, &slug).await.is_some();
    if !known {
        let page = super::Message {
            heading: "No such organization".into(),
            text: "Check the address you were given, or sign in from the main page.".into(),
            link: "/login".into(),
            link_text: "Sign in".into(),
        };
        return render(StatusCode::NOT_FOUND, &page);
    }
    q.insert("org".into(), slug);
    login_page(State(s), headers, Query(q)).await
}

pub async fn login(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    if !csrf.accepts(f.get("csrf")) {
        return csrf_refused(&s, &csrf);
    }
    let org = field(&f, "org");
    let next = safe_next(f.get("next").map(String::as_str), "/account");
    let input = LoginInput {
        email: field(&f, "email"),
        password: secret(&f, "password"),
        org: opt(&f, "org"),
    };
    match signin::login::login(&s.app, input, ctx).await {
        Ok(entry) => super::entered(&s, entry, &next),
        Err(e) => {
            let (status, msg) = page_message(e);
            let (google_href, sso_href) = federated_links(&s, &org, &next).await;
            let page = LoginPage {
                csrf: csrf.token.clone(),
                org_name: org_name(&s, &org).await,
                org,
                next,
                email: field(&f, "email"),
                google_href,
                sso_href,
                error: Some(msg),
                notice: None,
            };
            render(status, &page)
        }
    }
}

#[derive(askama::Template, Default)]
#[template(path = "signup.html")]
struct SignupPage {
    csrf: String,
    business: bool,
    name: String,
    email: String,
    org_name: String,
    org_slug: String,
    error: Option<String>,
    notice: Option<String>,
}

fn signup_form(s: &AppState, headers: &HeaderMap, business: bool) -> Response {
    let csrf = Csrf::of(headers);
    let page = SignupPage {
        csrf: csrf.token.clone(),
        business,
        ..SignupPage::default()
    };
    csrf.send(&s.public_url, render(StatusCode::OK, &page))
}

pub async fn signup_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    signup_form(&s, &headers, false)
}

pub async fn business_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    signup_form(&s, &headers, true)
}

pub async fn signup(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    submit_signup(s, ctx, headers, f, false).await
}

pub async fn business_signup(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    submit_signup(s, ctx, headers, f, true).await
}

async fn submit_signup(
    s: AppState,
    ctx: muster_core::audit::Context,
    headers: HeaderMap,
    f: Fields,
    business: bool,
) -> Response {
    let csrf = Csrf::of(&headers);
    if !csrf.accepts(f.get("csrf")) {
        return csrf_refused(&s, &csrf);
    }
    let organization = business.then(|| NewOrganization {
        slug: field(&f, "org_slug"),
        name: field(&f, "org_name"),
    });
    let org = organization
        .as_ref()
        .map(|o| o.slug.clone())
        .unwrap_or_default();
    let input = SignUpInput {
        email: field(&f, "email"),
        password: secret(&f, "password"),
        org: None,
        name: opt(&f, "name"),
        organization,
    };
    match signin::signup::signup(&s.app, input, ctx).await {
        Ok(()) => {
            let page = VerifyPage {
                csrf: csrf.token.clone(),
                email: field(&f, "email"),
                org,
                token: String::new(),
                error: None,
                notice: Some("Check your inbox: we sent you a code to finish signing up.".into()),
            };
            render(StatusCode::OK, &page)
        }
        Err(e) => {
            let (status, msg) = page_message(e);
            let page = SignupPage {
                csrf: csrf.token.clone(),
                business,
                name: field(&f, "name"),
                email: field(&f, "email"),
                org_name: field(&f, "org_name"),
                org_slug: field(&f, "org_slug"),
                error: Some(msg),
                notice: None,
            };
            render(status, &page)
        }
    }
}

#[derive(askama::Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    csrf: String,
    email: String,
    org: String,
    /// From the email's link: the page asks for a click (a POST), so that a
    /// mail scanner fetching the link verifies nothing.
    token: String,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn verify_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    let page = VerifyPage {
        csrf: csrf.token.clone(),
        email: field(&q, "email"),
        org: field(&q, "org"),
        token: field(&q, "token"),
        error: None,
        notice: None,
    };
    csrf.send(&s.public_url, render(StatusCode::OK, &page))
}

pub async fn verify(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    if !csrf.accepts(f.get("csrf")) {
        return csrf_refused(&s, &csrf);
    }
    let input = VerifyInput {
        email: opt(&f, "email"),
        code: opt(&f, "code"),
        token: opt(&f, "token"),
        org: opt(&f, "org"),
    };
    match signin::signup::verify_email(&s.app, input, ctx).await {
        Ok(()) => {
            // Only a well-formed slug goes into the redirect: nothing from the
            // form reaches a header unchecked.
            let q = match muster_core::OrgSlug::parse(&field(&f, "org")) {
                Ok(slug) => format!("&org={}", slug.as_str()),
                Err(_) => String::new(),
            };
            see_other(&format!("/login?done=verified{q}"))
        }
        Err(e) => {
            let (status, msg) = page_message(e);
            let page = VerifyPage {
                csrf: csrf.token.clone(),
                email: field(&f, "email"),
                org: field(&f, "org"),
                token: String::new(),
                error: Some(msg),
                notice: None,
            };
            render(status, &page)
        }
    }
}

pub async fn resend(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    if !csrf.accepts(f.get("csrf")) {
        return csrf_refused(&s, &csrf);
    }
    let input = ResendInput {
        email: field(&f, "email"),
        org: opt(&f, "org"),
    };
    let (status, error, note) = match signin::signup::resend(&s.app, input).await {
        Ok(()) => (
            StatusCode::OK,
            None,
            Some("If the address waits for verification, a new code is on its way (at most one a minute).".to_owned()),
        ),
        Err(e) => {
            let (st, m) = page_message(e);
            (st, Some(m), None)
        }
    };
    let page = VerifyPage {
        csrf: csrf.token.clone(),
        email: field(&f, "email"),
        org: field(&f, "org"),
        token: String::new(),
        error,
        notice: note,
    };
    render(status, &page)
}

#[derive(askama::Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    csrf: String,
    email: String,
    org: String,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn forgot_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    let page = ForgotPage {
        csrf: csrf.token.clone(),
        email: String::new(),
        org: field(&q, "org"),
        error: None,
        notice: None,
    };
    csrf.send(&s.public_url, render(StatusCode::OK, &page))
}

pub async fn forgot(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    if !csrf.accepts(f.get("csrf")) {
        return csrf_refused(&s, &csrf);
    }
    let input = ResetRequest {
        email: field(&f, "email"),
        org: opt(&f, "org"),
    };
    match signin::account::request_reset(&s.app, input).await {
        Ok(()) => {
            let page = ResetPage {
                csrf: csrf.token.clone(),
                email: field(&f, "email"),
                org: field(&f, "org"),
                token: String::new(),
                error: None,
                notice: Some(
                    "If an account uses that address, we sent it a code. It works for 5 minutes."
                        .into(),
                ),
            };
            render(StatusCode::OK, &page)
        }
        Err(e) => {
            let (status, msg) = page_message(e);
            let page = ForgotPage {
                csrf: csrf.token.clone(),
                email: field(&f, "email"),
                org: field(&f, "org"),
                error: Some(msg),
                notice: None,
            };
            render(status, &page)
        }
    }
}

#[derive(askama::Template)]
#[template(path = "reset.html")]
struct ResetPage {
    csrf: String,
    email: String,
    org: String,
    token: String,
    error: Option<String>,
    notice: Option<String>,
}

pub async fn reset_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    let page = ResetPage {
        csrf: csrf.token.clone(),
        email: String::new(),
        org: field(&q, "org"),
        token: field(&q, "token"),
        error: None,
        notice: None,
    };
    csrf.send(&s.public_url, render(StatusCode::OK, &page))
}

pub async fn reset(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    if !csrf.accepts(f.get("csrf")) {
        return csrf_refused(&s, &csrf);
    }
    let input = ResetInput {
        token: opt(&f, "token"),
        email: opt(&f, "email"),
        code: opt(&f, "code"),
        org: opt(&f, "org"),
        password: secret(&f, "password"),
    };
    match signin::account::reset_password(&s.app, input, ctx).await {
        Ok(()) => see_other("/login?done=password_reset"),
        Err(e) => {
            let (status, msg) = page_message(e);
            let page = ResetPage {
                csrf: csrf.token.clone(),
                email: field(&f, "email"),
                org: field(&f, "org"),
                token: field(&f, "token"),
                error: Some(msg),
                notice: None,
            };
            render(status, &page)
        }
    }
}
