//! The account page: profile, sessions, password and email; and sign-out.

use super::{Csrf, csrf_refused, notice, readable, render, see_other};
use crate::error::page_message;
use crate::extract::Ctx;
use crate::{AppState, cookies};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use muster_app::signin::account::{EmailChange, EmailChangeCode, PasswordChange};
use muster_app::signin::{self, SessionView};
use muster_app::{AppError, Caller};
use muster_core::audit::Context;
use std::collections::HashMap;

type Fields = HashMap<String, String>;

#[derive(askama::Template)]
#[template(path = "account.html")]
struct AccountPage {
    csrf: String,
    name: String,
    email: String,
    org_name: String,
    sessions: Vec<SessionView>,
    /// False for an account made by a Google sign-in that has not set one yet.
    has_password: bool,
    /// Providers linked to the account (`google`, `sso`).
    linked: Vec<String>,
    /// Signs in through the organization's IdP: no password to set here.
    sso: bool,
    mfa: muster_app::mfa::MfaStatus,
    devices: Vec<muster_app::devices::DeviceView>,
    totp_allowed: bool,
    passkey_allowed: bool,
    /// Email codes may be turned on (allowed, and not on yet).
    email_allowed: bool,
    /// Has factors, and has not proved one within the step-up window.
    needs_step_up: bool,
    step_up_minutes: u32,
    error: Option<String>,
    notice: Option<String>,
}

/// The signed-in person, from the session cookie; `None` sends them to sign in.
pub(super) async fn signed_in(s: &AppState, headers: &HeaderMap, ctx: Context) -> Option<Caller> {
    let token = cookies::session_in(headers)?;
    signin::login::authenticate_session(&s.app, &token, ctx)
        .await
        .ok()
}

fn to_login() -> Response {
    see_other("/login?next=/account")
}

pub(super) async fn show(
    s: &AppState,
    caller: &Caller,
    csrf: &Csrf,
    status: StatusCode,
    error: Option<String>,
    note: Option<String>,
) -> Response {
    let built = async {
        let me = muster_app::users::me(&s.app, caller).await?;
        let mut sessions = signin::login::sessions(&s.app, caller).await?;
        let (has_password, linked) = signin::account::credentials(&s.app, caller).await?;
        for s in &mut sessions {
            s.created_at = readable(&s.created_at);
            s.last_seen_at = readable(&s.last_seen_at);
        }
        let org_name = match &caller.principal {
            muster_app::Principal::User { org_slug, .. } => {
                muster_app::orgs::public_name(&s.app, org_slug)
                    .await
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        let mut devices = muster_app::devices::mine(&s.app, caller).await?;
        for d in &mut devices {
            d.last_seen_at = readable(&d.last_seen_at);
        }
        let mut mfa = muster_app::mfa::my_status(&s.app, caller).await?;
        for f in &mut mfa.factors {
            f.created_at = readable(&f.created_at);
            f.last_used_at = f.last_used_at.as_deref().map(readable);
        }
        let recent = match &caller.principal {
            muster_app::Principal::User {
                session: Some(x), ..
            } => x.recent_level,
            _ => 1,
        };
        use muster_app::mfa::Method;
        Ok::<_, AppError>(AccountPage {
            totp_allowed: mfa.allowed.contains(&Method::Totp),
            passkey_allowed: mfa.allowed.contains(&Method::Passkey),
            email_allowed: mfa.allowed.contains(&Method::Email)
                && !mfa.factors.iter().any(|f| f.kind == Method::Email),
            needs_step_up: !mfa.factors.is_empty() && recent < 2,
            step_up_minutes: mfa.step_up_minutes,
            mfa,
            devices,
            csrf: csrf.token.clone(),
            name: me.profile.display_name.clone().unwrap_or_default(),
            email: me.email,
            org_name,
            sessions,
            has_password,
            sso: linked.iter().any(|p| p == "sso"),
            linked,
            error,
            notice: note,
        })
    };
    match built.await {
        Ok(page) => csrf.send(&s.public_url, render(status, &page)),
        Err(e) => {
            let (st, msg) = page_message(e);
            let page = super::Message {
                heading: "Your account".into(),
                text: msg,
                link: "/login".into(),
                link_text: "Sign in".into(),
            };
            render(st, &page)
        }
    }
}

pub async fn page(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let Some(caller) = signed_in(&s, &headers, ctx).await else {
        return to_login();
    };
    let csrf = Csrf::of(&headers);
    show(
        &s,
        &caller,
        &csrf,
        StatusCode::OK,
        None,
        notice(q.get("done").map(String::as_str)),
    )
    .await
}

/// The common opening of a form post on the account page: CSRF, then the session.
pub(super) async fn posted(
    s: &AppState,
    headers: &HeaderMap,
    ctx: Context,
    f: &Fields,
) -> Result<(Caller, Csrf), Response> {
    let csrf = Csrf::of(headers);
    if !csrf.accepts(f.get("csrf")) {
        return Err(csrf_refused(s, &csrf));
    }
    match signed_in(s, headers, ctx).await {
        Some(c) => Ok((c, csrf)),
        None => Err(to_login()),
    }
}

pub(super) async fn outcome(
    s: &AppState,
    caller: &Caller,
    csrf: &Csrf,
    r: muster_app::Result<()>,
    ok: &str,
) -> Response {
    match r {
        Ok(()) => show(s, caller, csrf, StatusCode::OK, None, Some(ok.to_owned())).await,
        Err(e) => {
            let (status, msg) = page_message(e);
            show(s, caller, csrf, status, Some(msg), None).await
        }
    }
}

pub async fn password(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = match posted(&s, &headers, ctx, &f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let input = PasswordChange {
        current_password: f
            .get("current_password")
            .filter(|p| !p.is_empty())
            .cloned()
            .map(Into::into),
        new_password: f.get("new_password").cloned().unwrap_or_default().into(),
    };
    let first = input.current_password.is_none();
    let r = signin::account::change_password(&s.app, &caller, input).await;
    let ok = if first {
        "Your password is set."
    } else {
        "Your password is changed; your other sessions are signed out."
    };
    outcome(&s, &caller, &csrf, r, ok).await
}

pub async fn email(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = match posted(&s, &headers, ctx, &f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let input = EmailChange {
        new_email: f.get("new_email").cloned().unwrap_or_default(),
        password: f.get("password").cloned().unwrap_or_default().into(),
    };
    let r = signin::account::change_email(&s.app, &caller, input).await;
    outcome(
        &s,
        &caller,
        &csrf,
        r,
        "We sent a code to the new address. Your email changes once you enter it.",
    )
    .await
}

pub async fn confirm_email(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = match posted(&s, &headers, ctx, &f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let input = EmailChangeCode {
        code: f.get("code").cloned().unwrap_or_default(),
    };
    let r = signin::account::confirm_email_change(&s.app, &caller, input).await;
    outcome(&s, &caller, &csrf, r, "Your email address is changed.").await
}

pub async fn revoke(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let (caller, csrf) = match posted(&s, &headers, ctx, &f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match signin::login::revoke_session(&s.app, &caller, &id).await {
        Ok(()) => see_other("/account?done=session_ended"),
        Err(e) => {
            let (status, msg) = page_message(e);
            show(&s, &caller, &csrf, status, Some(msg), None).await
        }
    }
}

pub async fn logout(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    if !csrf.accepts(f.get("csrf")) {
        return csrf_refused(&s, &csrf);
    }
    if let Some(caller) = signed_in(&s, &headers, ctx).await
        && let Err(e) = signin::login::logout(&s.app, &caller).await
    {
        let (status, msg) = page_message(e);
        tracing::warn!(%status, %msg, "sign-out failed");
    }
    let mut res = see_other("/login?done=signed_out");
    res.headers_mut()
        .append(header::SET_COOKIE, cookies::clear(&s.public_url));
    res
}
