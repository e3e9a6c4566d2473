//! The console's audit log: newest first, filtered by action, actor,
//! target and dates; an event's page with its changes before → after and
//! its context; the export of what the filters select (the REST export).

use super::{Chrome, Console, readable};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::audit::{AuditQuery, EventView};
use serde_json::Value;
use std::collections::HashMap;

type Fields = HashMap<String, String>;

#[derive(askama::Template)]
#[template(path = "admin/audit.html")]
struct ListPage<'a> {
    chrome: &'a Chrome,
    events: Vec<EventView>,
    action: String,
    actor: String,
    target: String,
    since: String,
    until: String,
    next: Option<String>,
    /// The filters as the REST export takes them.
    export: String,
    error: Option<String>,
}

/// A day typed in a date field (`2026-11-25`) as the RFC 3339 time the use
/// case takes; anything else goes through as typed (and is refused there
/// with a message if it is not a time).
fn day(v: Option<&String>) -> Option<String> {
    let v = v.map(|s| s.trim()).filter(|s| !s.is_empty())?;
    let is_date = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    Some(if is_date {
        format!("{v}T00:00:00Z")
    } else {
        v.to_owned()
    })
}

pub async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/audit");
    let text = |k: &str| q.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let opt = |k: &str| Some(text(k)).filter(|v| !v.is_empty());
    let query = AuditQuery {
        actor: opt("actor"),
        target: opt("target"),
        action: opt("action"),
        since: day(q.get("since")),
        until: day(q.get("until")),
        cursor: opt("cursor"),
        limit: Some(50),
    };
    // (Serializers are not `Send`: each is finished inside its block.)
    let filters = {
        let mut f = url::form_urlencoded::Serializer::new(String::new());
        for k in ["action", "actor", "target", "since", "until"] {
            if let Some(v) = opt(k) {
                f.append_pair(k, &v);
            }
        }
        f.finish()
    };
    let export = {
        let mut f = url::form_urlencoded::Serializer::new(String::from("format=csv"));
        for (k, v) in [
            ("action", &query.action),
            ("actor", &query.actor),
            ("target", &query.target),
            ("since", &query.since),
            ("until", &query.until),
        ] {
            if let Some(v) = v {
                f.append_pair(k, v);
            }
        }
        f.finish()
    };
    let mut page = ListPage {
        chrome: c.chrome(),
        events: Vec::new(),
        action: text("action"),
        actor: text("actor"),
        target: text("target"),
        since: text("since"),
        until: text("until"),
        next: None,
        export: format!("/api/v1/orgs/{}/audit-events/export?{export}", c.slug),
        error: None,
    };
    let status = match muster_app::audit::newest(&s.app, &c.caller, &c.slug, query, None).await {
        Ok(found) => {
            page.next = found.next_cursor.map(|cur| {
                let mut q = url::form_urlencoded::Serializer::new(filters.clone());
                q.append_pair("cursor", &cur);
                q.finish()
            });
            page.events = found.items;
            for e in &mut page.events {
                e.occurred_at = readable(&e.occurred_at);
            }
            StatusCode::OK
        }
        Err(e @ AppError::Invalid { .. }) => {
            let (status, text) = crate::error::page_message(e);
            page.error = Some(text);
            status
        }
        Err(e) => return c.error_page(&s, e),
    };
    c.send(&s, super::render(status, &page))
}

#[derive(askama::Template)]
#[template(path = "admin/audit_event.html")]
struct EventPage<'a> {
    chrome: &'a Chrome,
    e: EventView,
    /// `(field, before, after)` for each change; details have no before.
    changes: Vec<(String, Option<String>, String)>,
    /// The request's context: address, user agent, request id.
    context: Vec<(String, String)>,
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// `{field: [before, after]}` pairs, and plain details (`{field: value}`).
fn changes_of(v: &Value) -> Vec<(String, Option<String>, String)> {
    let Value::Object(m) = v else {
        return Vec::new();
    };
    m.iter()
        .map(|(k, v)| match v.as_array().map(Vec::as_slice) {
            Some([before, after]) => (k.clone(), Some(shown(before)), shown(after)),
            _ => (k.clone(), None, shown(v)),
        })
        .collect()
}

pub async fn event(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/audit");
    match muster_app::audit::get(&s.app, &c.caller, &c.slug, &id).await {
        Ok(mut e) => {
            e.occurred_at = readable(&e.occurred_at);
            let changes = changes_of(&e.changes);
            let context = match &e.context {
                Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), shown(v))).collect(),
                _ => Vec::new(),
            };
            let page = EventPage {
                chrome: c.chrome(),
                e,
                changes,
                context,
            };
            c.send(&s, super::render(StatusCode::OK, &page))
        }
        Err(e) => c.error_page(&s, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_become_times_and_changes_pairs() {
        assert_eq!(
            day(Some(&"2026-11-25".to_owned())).as_deref(),
            Some("2026-11-25T00:00:00Z")
        );
        assert_eq!(day(Some(&" ".to_owned())), None);
        assert_eq!(
            day(Some(&"yesterday".to_owned())).as_deref(),
            Some("yesterday")
        );
        let c =
            changes_of(&serde_json::json!({"state": ["active", "deactivated"], "reason": "left"}));
        assert!(c.contains(&("state".into(), Some("active".into()), "deactivated".into())));
        assert!(c.contains(&("reason".into(), None, "left".into())));
    }
}
