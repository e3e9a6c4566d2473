//! Two-step verification pages: the challenge after the password (and
//! enrolment there when the policy requires MFA), and the account page's
//! MFA section — authenticator apps, email codes, recovery codes, step-up.

use super::account::{outcome, posted, show};
use super::{Csrf, csrf_refused, render, safe_next, see_other};
use crate::error::page_message;
use crate::extract::Ctx;
use crate::{AppState, cookies};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use muster_app::mfa::challenge::{self, ChallengeRef, EnrolInput, MfaInput};
use muster_app::mfa::{CodeInput, StepUpInput, TotpSetup, TotpStart};
use muster_app::{AppError, Caller};
use std::collections::HashMap;

type Fields = HashMap<String, String>;

fn field(f: &Fields, k: &str) -> String {
    f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default()
}

/// A passkey's answer as the page's script posts it: the ceremony and the
/// credential, JSON in a hidden field.
fn passkey_answer(f: &Fields) -> (Option<String>, Option<serde_json::Value>) {
    (
        f.get("ceremony_id").filter(|c| !c.is_empty()).cloned(),
        f.get("assertion")
            .and_then(|a| serde_json::from_str(a).ok()),
    )
}

#[derive(askama::Template)]
#[template(path = "mfa.html")]
struct MfaPage {
    csrf: String,
    next: String,
    totp: bool,
    passkey: bool,
    email_on: bool,
    recovery: bool,
    enrol: bool,
    email: String,
    /// Enrolment by email: the code form is shown once the first code left.
    email_sent: bool,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "mfa_setup.html")]
struct SetupPage {
    csrf: String,
    next: String,
    action: String,
    factor_id: String,
    /// Empty on a retry: the app is already set up, only the code is asked.
    secret: String,
    qr_svg: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "mfa_codes.html")]
struct CodesPage {
    codes: Vec<String>,
    next: String,
    error: Option<String>,
    notice: Option<String>,
}

fn expired() -> Response {
    let page = super::Message {
        heading: "This sign-in has expired".into(),
        text: "Sign in again to continue.".into(),
        link: "/login".into(),
        link_text: "Sign in".into(),
    };
    render(StatusCode::FORBIDDEN, &page)
}

/// The challenge page, re-rendered with a message after a post.
async fn challenge_page(
    s: &AppState,
    csrf: &Csrf,
    token: &str,
    next: &str,
    status: StatusCode,
    (error, notice): (Option<String>, Option<String>),
    email_sent: bool,
) -> Response {
    let Ok(info) = challenge::describe(&s.app, token).await else {
        return expired();
    };
    let page = MfaPage {
        csrf: csrf.token.clone(),
        next: next.to_owned(),
        totp: info.methods.iter().any(|m| m == "totp"),
        passkey: info.methods.iter().any(|m| m == "passkey"),
        email_on: info.methods.iter().any(|m| m == "email"),
        recovery: info.methods.iter().any(|m| m == "recovery"),
        enrol: info.enrolment_required,
        email: info.email,
        email_sent,
        error,
        notice,
    };
    csrf.send(&s.public_url, render(status, &page))
}

/// `GET /mfa`: the second step of a sign-in.
pub async fn page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let Some(token) = cookies::mfa(&headers) else {
        return expired();
    };
    let csrf = Csrf::of(&headers);
    let next = safe_next(q.get("next").map(String::as_str), "/account");
    challenge_page(
        &s,
        &csrf,
        &token,
        &next,
        StatusCode::OK,
        (None, None),
        false,
    )
    .await
}

/// The common opening of a challenge post: CSRF, the challenge cookie, `next`.
fn challenge_post(
    s: &AppState,
    headers: &HeaderMap,
    f: &Fields,
) -> Result<(Csrf, String, String), Box<Response>> {
    let csrf = Csrf::of(headers);
    if !csrf.accepts(f.get("csrf")) {
        return Err(Box::new(csrf_refused(s, &csrf)));
    }
    let token = cookies::mfa(headers).ok_or_else(|| Box::new(expired()))?;
    let next = safe_next(f.get("next").map(String::as_str), "/account");
    Ok((csrf, token, next))
}

/// `POST /mfa`: a code. A good one opens the session (and shows recovery
/// codes when it finished enrolment).
pub async fn answer(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (csrf, token, next) = match challenge_post(&s, &headers, &f) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (ceremony_id, assertion) = passkey_answer(&f);
    let input = MfaInput {
        challenge_id: token.clone(),
        method: field(&f, "method"),
        code: field(&f, "code"),
        ceremony_id,
        assertion,
    };
    match challenge::complete(&s.app, input, ctx).await {
        Ok(done) => {
            let mut res = match done.recovery_codes {
                Some(codes) => render(
                    StatusCode::OK,
                    &CodesPage {
                        codes,
                        next,
                        error: None,
                        notice: Some("Two-step verification is on.".into()),
                    },
                ),
                None => see_other(&next),
            };
            if let Some(c) = cookies::clear_mfa(&s.public_url) {
                res.headers_mut().append(header::SET_COOKIE, c);
            }
            cookies::with_session(&s.public_url, &done.signed, res)
        }
        Err(AppError::SignInDenied(_)) => expired(),
        Err(e) => {
            let (status, msg) = page_message(e);
            let email_sent = field(&f, "method") == "email";
            challenge_page(
                &s,
                &csrf,
                &token,
                &next,
                status,
                (Some(msg), None),
                email_sent,
            )
            .await
        }
    }
}

/// `POST /mfa/passkey` (from the page's script): the options to answer the
/// challenge with a passkey, as JSON. The answer itself is posted to `/mfa`
/// like a code (`method=passkey`, `ceremony_id`, `assertion`).
pub async fn passkey_options(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    use axum::response::IntoResponse;
    let (_, token, _) = match challenge_post(&s, &headers, &f) {
        Ok(x) => x,
        Err(_) => {
            let detail = serde_json::json!({"detail": "This sign-in has expired; sign in again."});
            return (StatusCode::FORBIDDEN, axum::Json(detail)).into_response();
        }
    };
    match challenge::passkey_options(
        &s.app,
        ChallengeRef {
            challenge_id: token,
        },
    )
    .await
    {
        Ok(c) => axum::Json(c).into_response(),
        Err(e) => {
            let (status, msg) = page_message(e);
            (status, axum::Json(serde_json::json!({"detail": msg}))).into_response()
        }
    }
}

/// `POST /mfa/email`: sends a code for the challenge.
pub async fn email(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (csrf, token, next) = match challenge_post(&s, &headers, &f) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let r = challenge::email_code(
        &s.app,
        ChallengeRef {
            challenge_id: token.clone(),
        },
    )
    .await;
    let (status, msgs) = match r {
        Ok(()) => (
            StatusCode::OK,
            (
                None,
                Some("We emailed you a code. It works for 5 minutes.".into()),
            ),
        ),
        Err(e) => {
            let (st, m) = page_message(e);
            (st, (Some(m), None))
        }
    };
    challenge_page(&s, &csrf, &token, &next, status, msgs, true).await
}

/// `POST /mfa/enrol`: starts the first factor during sign-in.
pub async fn enrol(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (csrf, token, next) = match challenge_post(&s, &headers, &f) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let input = EnrolInput {
        challenge_id: token.clone(),
        method: field(&f, "method"),
    };
    match challenge::enrol(&s.app, input).await {
        Ok(Some(setup)) => setup_page(&s, &csrf, "/mfa", &next, setup, None),
        Ok(None) => {
            let msgs = (
                None,
                Some("We emailed you a code. It works for 5 minutes.".into()),
            );
            challenge_page(&s, &csrf, &token, &next, StatusCode::OK, msgs, true).await
        }
        Err(AppError::SignInDenied(_)) => expired(),
        Err(e) => {
            let (status, msg) = page_message(e);
            challenge_page(&s, &csrf, &token, &next, status, (Some(msg), None), false).await
        }
    }
}

fn setup_page(
    s: &AppState,
    csrf: &Csrf,
    action: &str,
    next: &str,
    setup: TotpSetup,
    error: Option<String>,
) -> Response {
    let page = SetupPage {
        csrf: csrf.token.clone(),
        next: next.to_owned(),
        action: action.to_owned(),
        factor_id: setup.factor_id,
        secret: setup.secret,
        qr_svg: setup.qr_svg,
        error,
        notice: None,
    };
    csrf.send(&s.public_url, render(StatusCode::OK, &page))
}

/// After an account-page change: the codes to keep, or the account page.
async fn enrolled(
    s: &AppState,
    caller: &Caller,
    csrf: &Csrf,
    r: muster_app::Result<muster_app::mfa::Enrolled>,
    ok: &str,
) -> Response {
    match r {
        Ok(e) => match e.recovery_codes {
            Some(codes) => render(
                StatusCode::OK,
                &CodesPage {
                    codes,
                    next: "/account".into(),
                    error: None,
                    notice: Some(ok.to_owned()),
                },
            ),
            None => show(s, caller, csrf, StatusCode::OK, None, Some(ok.to_owned())).await,
        },
        Err(e) => {
            let (status, msg) = page_message(e);
            show(s, caller, csrf, status, Some(msg), None).await
        }
    }
}

macro_rules! account_post {
    ($s:expr, $headers:expr, $ctx:expr, $f:expr) => {
        match posted(&$s, &$headers, $ctx, &$f).await {
            Ok(x) => x,
            Err(r) => return r,
        }
    };
}

pub async fn add_totp(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = account_post!(s, headers, ctx, f);
    match muster_app::mfa::start_totp(&s.app, &caller, TotpStart::default()).await {
        Ok(setup) => setup_page(
            &s,
            &csrf,
            "/account/mfa/totp/confirm",
            "/account",
            setup,
            None,
        ),
        Err(e) => {
            let (status, msg) = page_message(e);
            show(&s, &caller, &csrf, status, Some(msg), None).await
        }
    }
}

pub async fn confirm_totp(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = account_post!(s, headers, ctx, f);
    let id = field(&f, "factor_id");
    let input = CodeInput {
        code: field(&f, "code"),
    };
    match muster_app::mfa::confirm_totp(&s.app, &caller, &id, input).await {
        Err(e @ AppError::Invalid { .. }) => {
            // The app is set up already: ask for a code again, not a new scan.
            let retry = TotpSetup {
                factor_id: id,
                secret: String::new(),
                otpauth_uri: String::new(),
                qr_svg: String::new(),
            };
            let (_, msg) = page_message(e);
            setup_page(
                &s,
                &csrf,
                "/account/mfa/totp/confirm",
                "/account",
                retry,
                Some(msg),
            )
        }
        r => enrolled(&s, &caller, &csrf, r, "Your authenticator app is on.").await,
    }
}

pub async fn add_email(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = account_post!(s, headers, ctx, f);
    let r = muster_app::mfa::enable_email(&s.app, &caller).await;
    enrolled(&s, &caller, &csrf, r, "Email codes are on.").await
}

pub async fn recovery(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = account_post!(s, headers, ctx, f);
    let r = muster_app::mfa::regenerate_recovery(&s.app, &caller).await;
    enrolled(
        &s,
        &caller,
        &csrf,
        r,
        "New recovery codes; the old ones no longer work.",
    )
    .await
}

pub async fn remove(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = account_post!(s, headers, ctx, f);
    let r = muster_app::mfa::remove(&s.app, &caller, &id).await;
    outcome(&s, &caller, &csrf, r, "That method is removed.").await
}

pub async fn step_up(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = account_post!(s, headers, ctx.clone(), f);
    let (ceremony_id, assertion) = passkey_answer(&f);
    let input = StepUpInput {
        method: field(&f, "method"),
        code: field(&f, "code"),
        ceremony_id,
        assertion,
    };
    match muster_app::mfa::step_up(&s.app, &caller, input).await {
        // The session changed: read it again so the page shows the new level.
        Ok(()) => match super::account::signed_in(&s, &headers, ctx).await {
            Some(c) => {
                show(
                    &s,
                    &c,
                    &csrf,
                    StatusCode::OK,
                    None,
                    Some("Confirmed. You can change your second factors now.".into()),
                )
                .await
            }
            None => see_other("/login?next=/account"),
        },
        Err(e) => {
            let (status, msg) = page_message(e);
            show(&s, &caller, &csrf, status, Some(msg), None).await
        }
    }
}

pub async fn step_up_email(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = account_post!(s, headers, ctx, f);
    let r = muster_app::mfa::step_up_email(&s.app, &caller).await;
    outcome(
        &s,
        &caller,
        &csrf,
        r,
        "We emailed you a code. It works for 5 minutes.",
    )
    .await
}

pub async fn rename_device(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = account_post!(s, headers, ctx, f);
    let input = muster_app::devices::Rename {
        name: field(&f, "name"),
    };
    let r = muster_app::devices::rename(&s.app, &caller, &id, input).await;
    outcome(&s, &caller, &csrf, r, "The device is renamed.").await
}

pub async fn forget_device(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = account_post!(s, headers, ctx, f);
    let r = muster_app::devices::forget(&s.app, &caller, &id).await;
    outcome(&s, &caller, &csrf, r, "The device is forgotten.").await
}
