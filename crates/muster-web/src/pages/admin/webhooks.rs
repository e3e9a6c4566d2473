//! The console's webhooks: endpoints with the event types they receive (a
//! new one shows its signing secret once); an endpoint's page to edit,
//! turn off or on, re-key and delete it, with its deliveries (status,
//! attempts) and redelivery.

use super::{Chrome, Console, readable};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::webhooks::delivery::{DeliveryQuery, DeliveryView};
use muster_app::webhooks::{CATEGORIES, EndpointChanges, EndpointView, NewEndpoint};
use std::collections::HashMap;

/// The form's fields; `types` repeats (one checkbox per category).
#[derive(Default)]
struct Typed {
    url: String,
    description: String,
    types: Vec<String>,
    /// Specific types typed by hand (`user.deactivate`), one per line.
    more: String,
    enabled: Option<bool>,
    redeliver: Option<String>,
    csrf: Option<String>,
}

impl Typed {
    fn parse(body: &str) -> Self {
        let mut t = Self::default();
        for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
            let v = v.into_owned();
            match k.as_ref() {
                "url" => t.url = v.trim().to_owned(),
                "description" => t.description = v.trim().to_owned(),
                "types" => t.types.push(v),
                "more" => t.more = v,
                "enabled" => t.enabled = Some(v == "yes"),
                "webhook_id" => t.redeliver = Some(v),
                "csrf" => t.csrf = Some(v),
                _ => {}
            }
        }
        t
    }

    fn of(e: &EndpointView) -> Self {
        let (cats, more): (Vec<String>, Vec<String>) = e
            .event_types
            .iter()
            .cloned()
            .partition(|t| t == "*" || t.ends_with(".*"));
        Self {
            url: e.url.clone(),
            description: e.description.clone(),
            types: cats,
            more: more.join("\n"),
            ..Self::default()
        }
    }

    fn event_types(&self) -> Vec<String> {
        let mut all = self.types.clone();
        all.extend(
            self.more
                .split([',', '\n', '\r', ' '])
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        );
        all
    }
}

/// `(value, checked)` for `*` and each category's `<category>.*`.
fn choices(t: &Typed) -> Vec<(String, bool)> {
    std::iter::once("*".to_owned())
        .chain(CATEGORIES.iter().map(|c| format!("{c}.*")))
        .map(|v| {
            let on = t.types.contains(&v);
            (v, on)
        })
        .collect()
}

#[derive(askama::Template)]
#[template(path = "admin/webhooks.html")]
struct ListPage<'a> {
    chrome: &'a Chrome,
    endpoints: Vec<EndpointView>,
    t: Typed,
    choices: Vec<(String, bool)>,
    secret: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn show_list(
    s: &AppState,
    c: &Console,
    status: StatusCode,
    t: Typed,
    (secret, notice, error): (Option<String>, Option<String>, Option<String>),
) -> Response {
    match muster_app::webhooks::list(&s.app, &c.caller, &c.slug).await {
        Ok(endpoints) => {
            let page = ListPage {
                chrome: c.chrome(),
                endpoints,
                choices: choices(&t),
                t,
                secret,
                notice,
                error,
            };
            c.send(s, super::render(status, &page))
        }
        Err(e) => c.error_page(s, e),
    }
}

pub async fn list(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap) -> Response {
    let c = console!(s, headers, ctx, "/admin/webhooks");
    show_list(&s, &c, StatusCode::OK, Typed::default(), (None, None, None)).await
}

pub async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: String,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/webhooks");
    let t = Typed::parse(&body);
    if let Some(res) = c.csrf_refusal(&s, t.csrf.as_ref()) {
        return res;
    }
    let input = NewEndpoint {
        url: t.url.clone(),
        event_types: t.event_types(),
        description: Some(t.description.clone()).filter(|d| !d.is_empty()),
    };
    match muster_app::webhooks::create(&s.app, &c.caller, &c.slug, input).await {
        Ok(made) => {
            let note = format!("The endpoint {} is added.", made.endpoint.url);
            let shown = (Some(made.secret), Some(note), None);
            show_list(&s, &c, StatusCode::OK, Typed::default(), shown).await
        }
        Err(e @ AppError::Internal(_)) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show_list(&s, &c, status, t, (None, None, Some(text))).await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "admin/webhook.html")]
struct EndpointPage<'a> {
    chrome: &'a Chrome,
    e: EndpointView,
    t: Typed,
    choices: Vec<(String, bool)>,
    deliveries: Vec<DeliveryView>,
    status_filter: String,
    next: Option<String>,
    secret: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

struct Shown {
    status: StatusCode,
    typed: Option<Typed>,
    secret: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

impl Shown {
    fn ok() -> Self {
        Self {
            status: StatusCode::OK,
            typed: None,
            secret: None,
            notice: None,
            error: None,
        }
    }
}

async fn show_endpoint(
    s: &AppState,
    c: &Console,
    id: &str,
    q: &HashMap<String, String>,
    shown: Shown,
) -> Response {
    let status_filter = q.get("status").filter(|v| !v.is_empty()).cloned();
    let built = async {
        let e = muster_app::webhooks::get(&s.app, &c.caller, &c.slug, id).await?;
        let dq = DeliveryQuery {
            status: status_filter.clone(),
            cursor: q.get("cursor").filter(|v| !v.is_empty()).cloned(),
            limit: Some(50),
        };
        let page = muster_app::webhooks::delivery::list(&s.app, &c.caller, &c.slug, id, dq).await?;
        let mut deliveries = page.items;
        for d in &mut deliveries {
            d.created_at = readable(&d.created_at);
            d.last_attempt_at = d.last_attempt_at.as_deref().map(readable);
        }
        let t = shown.typed.unwrap_or_else(|| Typed::of(&e));
        Ok::<_, AppError>(EndpointPage {
            chrome: c.chrome(),
            choices: choices(&t),
            t,
            e,
            deliveries,
            status_filter: status_filter.clone().unwrap_or_default(),
            next: page.next_cursor,
            secret: shown.secret,
            notice: shown.notice,
            error: shown.error,
        })
    };
    match built.await {
        Ok(page) => c.send(s, super::render(shown.status, &page)),
        Err(e) => c.error_page(s, e),
    }
}

pub async fn endpoint(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/webhooks");
    show_endpoint(&s, &c, &id, &q, Shown::ok()).await
}

/// `save` (URL, types, description, on/off), `rotate`, `redeliver`
/// (`webhook_id`), `delete`.
pub async fn change(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: String,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/webhooks");
    let t = Typed::parse(&body);
    if let Some(res) = c.csrf_refusal(&s, t.csrf.as_ref()) {
        return res;
    }
    let (app, caller, slug) = (&s.app, &c.caller, c.slug.as_str());
    let none = HashMap::new();
    let mut shown = Shown::ok();
    let done: Result<(), AppError> = match action.as_str() {
        "save" => {
            let ch = EndpointChanges {
                url: Some(t.url.clone()),
                event_types: Some(t.event_types()),
                description: Some(t.description.clone()),
                enabled: t.enabled,
            };
            muster_app::webhooks::update(app, caller, slug, &id, ch)
                .await
                .map(|_| shown.notice = Some("Saved.".into()))
        }
        "rotate" => muster_app::webhooks::rotate_secret(app, caller, slug, &id)
            .await
            .map(|made| {
                shown.secret = Some(made.secret);
                shown.notice = Some(
                    "A new secret signs from now on; the old one signs beside it for 24 hours."
                        .into(),
                );
            }),
        "redeliver" => {
            let wid = t.redeliver.clone().unwrap_or_default();
            muster_app::webhooks::delivery::redeliver(app, caller, slug, &id, &wid)
                .await
                .map(|d| {
                    shown.notice = Some(format!(
                        "Sent again: {}.",
                        match (d.status.as_str(), d.last_http_status) {
                            ("delivered", Some(code)) => format!("delivered (HTTP {code})"),
                            (_, Some(code)) => format!("refused (HTTP {code})"),
                            (_, None) => d.last_error.unwrap_or_else(|| "no answer".into()),
                        }
                    ));
                })
        }
        "delete" => match muster_app::webhooks::delete(app, caller, slug, &id).await {
            Ok(()) => {
                let note = Some("The endpoint is deleted; nothing more is sent to it.".to_owned());
                return show_list(&s, &c, StatusCode::OK, Typed::default(), (None, note, None))
                    .await;
            }
            Err(e) => Err(e),
        },
        _ => Err(AppError::NotFound("action")),
    };
    match done {
        Ok(()) => show_endpoint(&s, &c, &id, &none, shown).await,
        Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            let keep = Shown {
                status,
                typed: (action == "save").then_some(t),
                error: Some(text),
                ..Shown::ok()
            };
            show_endpoint(&s, &c, &id, &none, keep).await
        }
    }
}
