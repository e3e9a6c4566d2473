//! The console's SCIM page: the base URL an IdP is given, its tokens
//! (created with the secret shown once, rotated with an overlap, revoked,
//! with their last use), and the latest provisioning activity.

use super::{Chrome, Console, readable};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::audit::{AuditQuery, EventView};
use muster_app::scim::tokens::{RotateInput, ScimTokenInput, ScimTokenView};
use std::collections::HashMap;

type Fields = HashMap<String, String>;

#[derive(askama::Template)]
#[template(path = "admin/scim.html")]
struct Page<'a> {
    chrome: &'a Chrome,
    base_url: String,
    tokens: Vec<ScimTokenView>,
    /// A secret just made, with its token's name: shown on this page only.
    secret: Option<(String, String)>,
    activity: Option<Vec<EventView>>,
    name: String,
    ip_allow: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Default)]
struct Shown {
    secret: Option<(String, String)>,
    name: String,
    ip_allow: String,
    notice: Option<String>,
    error: Option<String>,
}

async fn show(s: &AppState, c: &Console, status: StatusCode, shown: Shown) -> Response {
    let built =
        async {
            let mut tokens = muster_app::scim::tokens::list(&s.app, &c.caller, &c.slug).await?;
            for t in &mut tokens {
                t.created_at = readable(&t.created_at);
                t.expires_at = t.expires_at.as_deref().map(readable);
                t.revoked_at = t.revoked_at.as_deref().map(readable);
                t.last_used_at = t.last_used_at.as_deref().map(readable);
            }
            let q = AuditQuery {
                limit: Some(20),
                ..AuditQuery::default()
            };
            let activity =
                match muster_app::audit::newest(&s.app, &c.caller, &c.slug, q, Some("scim_token"))
                    .await
                {
                    Ok(page) => Some(
                        page.items
                            .into_iter()
                            .map(|mut e| {
                                e.occurred_at = readable(&e.occurred_at);
                                e
                            })
                            .collect(),
                    ),
                    Err(AppError::Forbidden(_)) => None,
                    Err(e) => return Err(e),
                };
            Ok::<_, AppError>(Page {
                chrome: c.chrome(),
                base_url: format!("{}/scim/v2", s.public_url.trim_end_matches('/')),
                tokens,
                secret: shown.secret,
                activity,
                name: shown.name,
                ip_allow: shown.ip_allow,
                notice: shown.notice,
                error: shown.error,
            })
        };
    match built.await {
        Ok(page) => c.send(s, super::render(status, &page)),
        Err(e) => c.error_page(s, e),
    }
}

pub async fn page(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap) -> Response {
    let c = console!(s, headers, ctx, "/admin/scim");
    show(&s, &c, StatusCode::OK, Shown::default()).await
}

/// A refusal or bad input shown on the page, with what was typed; an
/// internal error as the console's error page.
async fn refused(
    s: &AppState,
    c: &Console,
    e: AppError,
    name: String,
    ip_allow: String,
) -> Response {
    if let AppError::Internal(_) = e {
        return c.error_page(s, e);
    }
    let (status, text) = crate::error::page_message(e);
    let shown = Shown {
        name,
        ip_allow,
        error: Some(text),
        ..Shown::default()
    };
    show(s, c, status, shown).await
}

pub async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/scim");
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let name = f
        .get("name")
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let ip_allow = f.get("ip_allow").cloned().unwrap_or_default();
    let expires = match f
        .get("expires_in_days")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => {
                let e = AppError::invalid(
                    "expires_in_days",
                    "give a number of days, or leave it empty",
                );
                return refused(&s, &c, e, name, ip_allow).await;
            }
        },
    };
    let input = ScimTokenInput {
        name: name.clone(),
        expires_in_days: expires,
        ip_allow: ip_allow
            .split(|ch: char| ch == ',' || ch.is_whitespace())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    match muster_app::scim::tokens::create(&s.app, &c.caller, &c.slug, input).await {
        Ok(made) => {
            let shown = Shown {
                secret: Some((made.token.name, made.secret)),
                ..Shown::default()
            };
            show(&s, &c, StatusCode::OK, shown).await
        }
        Err(e) => refused(&s, &c, e, name, ip_allow).await,
    }
}

/// Rotate (a new secret; the old one keeps working for the overlap) or
/// revoke (refused from the IdP's very next request).
pub async fn act(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/scim");
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let shown = match action.as_str() {
        "rotate" => {
            let overlap = f.get("overlap_hours").and_then(|v| v.trim().parse().ok());
            muster_app::scim::tokens::rotate(
                &s.app,
                &c.caller,
                &c.slug,
                &id,
                RotateInput {
                    overlap_hours: overlap,
                },
            )
            .await
            .map(|made| Shown {
                secret: Some((made.token.name, made.secret)),
                ..Shown::default()
            })
        }
        "revoke" => muster_app::scim::tokens::revoke(&s.app, &c.caller, &c.slug, &id)
            .await
            .map(|()| Shown {
                notice: Some(
                    "The token is revoked: the IdP is refused from its very next request.".into(),
                ),
                ..Shown::default()
            }),
        _ => Err(AppError::NotFound("action")),
    };
    match shown {
        Ok(shown) => show(&s, &c, StatusCode::OK, shown).await,
        Err(e) => refused(&s, &c, e, String::new(), String::new()).await,
    }
}
