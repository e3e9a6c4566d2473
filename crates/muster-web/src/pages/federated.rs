//! Google and organization SSO in the browser: the links that start a
//! sign-in, the provider's callback, and the page that attaches Google to
//! an account that already has the same address.

use super::{Csrf, Message, csrf_refused, render, safe_next, see_other};
use crate::error::page_message;
use crate::extract::Ctx;
use crate::{AppState, cookies};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use muster_app::federation::{self, Callback, Finished, LinkInput, Provider, Start};
use std::collections::HashMap;

type Fields = HashMap<String, String>;

/// `GET /auth/google?next=…&org=…&invitation=…`
pub async fn google(State(s): State<AppState>, Query(q): Query<Fields>) -> Response {
    let org = q.get("org").cloned().filter(|o| !o.is_empty());
    start(&s, Provider::Google, org, &q).await
}

/// `GET /o/{slug}/sso?next=…&invitation=…`
pub async fn sso(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<Fields>,
) -> Response {
    start(&s, Provider::Sso, Some(slug), &q).await
}

async fn start(s: &AppState, provider: Provider, org: Option<String>, q: &Fields) -> Response {
    let start = Start {
        provider,
        org,
        next: Some(safe_next(q.get("next").map(String::as_str), "/account")),
        invitation: q.get("invitation").cloned(),
    };
    match federation::begin(&s.app, start, &s.public_url).await {
        Ok(begun) => {
            let mut res = see_other(&begun.url);
            if let Some(c) = cookies::set_flow(&s.public_url, &begun.binding) {
                res.headers_mut().append(header::SET_COOKIE, c);
            }
            res
        }
        Err(e) => failed(e),
    }
}

fn failed(e: muster_app::AppError) -> Response {
    let (status, text) = page_message(e);
    let page = Message {
        heading: "Sign-in did not work".into(),
        text,
        link: "/login".into(),
        link_text: "Back to sign-in".into(),
    };
    render(status, &page)
}

/// `GET /auth/oidc/callback?state=…&code=…` (or `error=…`), from the provider.
pub async fn callback(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let cb = Callback {
        state: q.get("state").cloned(),
        code: q.get("code").cloned(),
        error: q.get("error").cloned(),
        binding: cookies::flow(&headers),
    };
    match federation::finish(&s.app, cb, &s.public_url, ctx).await {
        Ok(Finished::SignedIn {
            entry,
            next,
            create_password,
        }) => {
            let to = if create_password {
                "/account?done=create_password".to_owned()
            } else {
                next.unwrap_or_else(|| "/account".into())
            };
            super::entered(&s, entry, &to)
        }
        Ok(Finished::LinkRequired { ticket, email }) => {
            let csrf = Csrf::of(&headers);
            let page = LinkPage {
                csrf: csrf.token.clone(),
                ticket,
                email,
                error: None,
                notice: None,
            };
            csrf.send(&s.public_url, render(StatusCode::OK, &page))
        }
        Err(e) => failed(e),
    }
}

#[derive(askama::Template)]
#[template(path = "link.html")]
struct LinkPage {
    csrf: String,
    ticket: String,
    email: String,
    error: Option<String>,
    notice: Option<String>,
}

/// `POST /auth/link`: the existing account's password, once.
pub async fn link(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let csrf = Csrf::of(&headers);
    if !csrf.accepts(f.get("csrf")) {
        return csrf_refused(&s, &csrf);
    }
    let ticket = f.get("ticket").cloned().unwrap_or_default();
    let input = LinkInput {
        ticket: ticket.clone(),
        password: f.get("password").cloned().unwrap_or_default().into(),
    };
    let binding = cookies::flow(&headers);
    match federation::link(&s.app, input, binding.as_deref(), ctx).await {
        Ok(entry) => super::entered(&s, entry, "/account?done=google_linked"),
        Err(e) => {
            let (status, msg) = page_message(e);
            let page = LinkPage {
                csrf: csrf.token.clone(),
                ticket,
                email: f.get("email").cloned().unwrap_or_default(),
                error: Some(msg),
                notice: None,
            };
            render(status, &page)
        }
    }
}
