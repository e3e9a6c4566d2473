//! Confirming it is you before changing anything in the console: when the
//! organization's MFA policy is on, admin actions from a browser session
//! need a second factor proved within the step-up window (issue 5 §3).
//! This page proves one (an authenticator code, an emailed code or a
//! recovery code) and goes back to where the admin was.

use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::mfa::{Method, StepUpInput};
use std::collections::HashMap;

type Fields = HashMap<String, String>;

#[derive(askama::Template)]
#[template(path = "admin/step_up.html")]
struct Page<'a> {
    chrome: &'a Chrome,
    next: String,
    /// `(value, label)` of the methods the admin can answer with.
    methods: Vec<(&'static str, &'static str)>,
    email: bool,
    minutes: u32,
    notice: Option<String>,
    error: Option<String>,
}

fn next_of(f: &Fields) -> String {
    super::super::safe_next(f.get("next").map(String::as_str), "/admin")
}

async fn show(
    s: &AppState,
    c: &Console,
    status: StatusCode,
    next: String,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let mfa = match muster_app::mfa::my_status(&s.app, &c.caller).await {
        Ok(m) => m,
        Err(e) => return c.error_page(s, e),
    };
    let has = |m: Method| mfa.factors.iter().any(|f| f.kind == m);
    let mut methods = Vec::new();
    if has(Method::Totp) {
        methods.push(("totp", "Authenticator app"));
    }
    if has(Method::Email) {
        methods.push(("email", "Emailed code"));
    }
    if mfa.recovery_codes_left > 0 {
        methods.push(("recovery", "Recovery code"));
    }
    let page = Page {
        chrome: c.chrome(),
        next,
        methods,
        email: has(Method::Email),
        minutes: mfa.step_up_minutes,
        notice,
        error,
    };
    c.send(s, super::render(status, &page))
}

pub async fn page(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let next = next_of(&q);
    let c = console!(s, headers, ctx, &next);
    show(&s, &c, StatusCode::OK, next, None, None).await
}

pub async fn prove(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let next = next_of(&f);
    let c = console!(s, headers, ctx, &next);
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let input = StepUpInput {
        method: f.get("method").cloned().unwrap_or_default(),
        code: f
            .get("code")
            .map(|v| v.trim().to_owned())
            .unwrap_or_default(),
        ceremony_id: None,
        assertion: None,
    };
    match muster_app::mfa::step_up(&s.app, &c.caller, input).await {
        Ok(()) => super::see_other(&next),
        Err(e @ AppError::Internal(_)) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show(&s, &c, status, next, None, Some(text)).await
        }
    }
}

pub async fn email(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let next = next_of(&f);
    let c = console!(s, headers, ctx, &next);
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    match muster_app::mfa::step_up_email(&s.app, &c.caller).await {
        Ok(()) => {
            let note = "We emailed you a code. It works for 5 minutes.".to_owned();
            show(&s, &c, StatusCode::OK, next, Some(note), None).await
        }
        Err(e @ AppError::Internal(_)) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show(&s, &c, status, next, None, Some(text)).await
        }
    }
}
