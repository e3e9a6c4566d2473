//! The invitation acceptance page: the link from the email, a password, in.

use super::{Csrf, csrf_refused, render};
use crate::AppState;
use crate::error::page_message;
use crate::extract::Ctx;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::invitations::AcceptInput;
use std::collections::HashMap;

type Fields = HashMap<String, String>;

#[derive(askama::Template)]
#[template(path = "accept.html")]
struct AcceptPage {
    csrf: String,
    token: String,
    org_name: String,
    email: String,
    name: String,
    /// Links that accept by signing in with Google or the organization's SSO.
    google_href: String,
    sso_href: String,
    error: Option<String>,
    notice: Option<String>,
}

async fn page_for(
    s: &AppState,
    csrf: &Csrf,
    token: &str,
    name: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let page = match muster_app::invitations::info(&s.app, token).await {
        Ok(i) => AcceptPage {
            csrf: csrf.token.clone(),
            token: token.to_owned(),
            google_href: if i.google {
                format!("/auth/google?invitation={}", token.trim())
            } else {
                String::new()
            },
            sso_href: if i.sso {
                format!("/o/{}/sso?invitation={}", i.org_slug, token.trim())
            } else {
                String::new()
            },
            org_name: i.org_name,
            email: i.email,
            name: name.to_owned(),
            error,
            notice: None,
        },
        Err(e) => {
            let (st, msg) = page_message(e);
            let page = AcceptPage {
                csrf: csrf.token.clone(),
                token: String::new(),
                org_name: "Muster".into(),
                email: String::new(),
                name: String::new(),
                google_href: String::new(),
                sso_href: String::new(),
                error: Some(msg),
                notice: None,
            };
            return csrf.send(&s.public_url, render(st, &page));
        }
    };
    csrf.send(&s.public_url, render(status, &page))
}

pub async fn page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    let token = q
        .get("token")
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    page_for(&s, &csrf, &token, "", None, StatusCode::OK).await
}

pub async fn accept(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    if !csrf.accepts(f.get("csrf")) {
        return csrf_refused(&s, &csrf);
    }
    let token = f.get("token").cloned().unwrap_or_default();
    let name = f.get("name").cloned().unwrap_or_default();
    let input = AcceptInput {
        token: token.clone(),
        password: f.get("password").cloned().unwrap_or_default().into(),
        name: Some(name.clone()),
    };
    match muster_app::invitations::accept(&s.app, input, ctx).await {
        Ok(entry) => super::entered(&s, entry, "/account"),
        Err(e) => {
            let (status, msg) = page_message(e);
            page_for(&s, &csrf, &token, &name, Some(msg), status).await
        }
    }
}
