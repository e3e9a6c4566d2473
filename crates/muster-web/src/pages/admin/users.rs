//! The console's users: the list with search and filters, and its CSV
//! export. A user's page is `user_page.rs`, the actions on it
//! `user_actions.rs`.

use super::{Chrome, Console, readable};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use muster_app::AppError;
use muster_app::users::{ListParams, UserView};
use muster_core::UserState;
use std::collections::HashMap;

type Fields = HashMap<String, String>;

#[derive(askama::Template)]
#[template(path = "admin/users.html")]
struct ListPage<'a> {
    chrome: &'a Chrome,
    users: Vec<UserView>,
    q: String,
    state: String,
    states: [UserState; 7],
    source: String,
    sources: [&'static str; 8],
    mfa: String,
    org_unit: String,
    /// `(id, name)` of the units below the root and the workspaces but the
    /// default one, for their filters.
    units: Vec<(String, String)>,
    workspace: String,
    workspaces: Vec<(String, String)>,
    /// The query string of the next page, when there is one.
    next: Option<String>,
    /// The current filters as a query string (for the export link).
    filters: String,
    notice: Option<String>,
    error: Option<String>,
}

fn params(q: &Fields) -> ListParams {
    let nonempty = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    ListParams {
        search: nonempty("q"),
        state: nonempty("state"),
        cursor: nonempty("cursor"),
        limit: Some(50),
        org_unit: nonempty("org_unit"),
        source: nonempty("source"),
        mfa_enrolled: match q.get("mfa").map(String::as_str) {
            Some("yes") => Some(true),
            Some("no") => Some(false),
            _ => None,
        },
        workspace: nonempty("workspace"),
    }
}

fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

pub async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/users");
    let p = params(&q);
    let mfa = q.get("mfa").filter(|v| *v == "yes" || *v == "no").cloned();
    let filters = query_string(&[
        ("q", p.search.as_deref()),
        ("state", p.state.as_deref()),
        ("org_unit", p.org_unit.as_deref()),
        ("source", p.source.as_deref()),
        ("mfa", mfa.as_deref()),
        ("workspace", p.workspace.as_deref()),
    ]);
    // The choices of the filters; a role that cannot list units or
    // workspaces just does not get those filters.
    let units = muster_app::org_units::list(&s.app, &c.caller, &c.slug)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|u| u.parent_id.is_some())
        .map(|u| (u.id, u.name))
        .collect();
    let workspaces = muster_app::workspaces::list(&s.app, &c.caller, &c.slug)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|w| !w.is_default)
        .map(|w| (w.id, w.name))
        .collect();
    let mut page = ListPage {
        chrome: c.chrome(),
        users: Vec::new(),
        q: p.search.clone().unwrap_or_default(),
        state: p.state.clone().unwrap_or_default(),
        states: UserState::ALL,
        source: p.source.clone().unwrap_or_default(),
        sources: muster_core::users::CreationSource::ALL.map(|x| x.as_str()),
        mfa: mfa.unwrap_or_default(),
        org_unit: p.org_unit.clone().unwrap_or_default(),
        units,
        workspace: p.workspace.clone().unwrap_or_default(),
        workspaces,
        next: None,
        filters: filters.clone(),
        notice: (q.get("done").map(String::as_str) == Some("deleted"))
            .then(|| "The user is deleted.".to_owned()),
        error: None,
    };
    let status = match muster_app::users::list(&s.app, &c.caller, &c.slug, p).await {
        Ok(found) => {
            page.next = found.next_cursor.map(|cur| {
                let sep = if filters.is_empty() { "" } else { "&" };
                format!("{filters}{sep}{}", query_string(&[("cursor", Some(&cur))]))
            });
            page.users = found.items;
            for u in &mut page.users {
                u.created_at = readable(&u.created_at);
            }
            StatusCode::OK
        }
        // A bad filter re-renders the page with the message, never a bare error.
        Err(e @ (AppError::Invalid { .. } | AppError::NotFound(_))) => {
            let (status, text) = crate::error::page_message(e);
            page.error = Some(text);
            status
        }
        Err(e) => return c.error_page(&s, e),
    };
    c.send(&s, super::render(status, &page))
}

/// One CSV field: quoted when it must be (RFC 4180 §2), and a value that a
/// spreadsheet would run as a formula is prefixed with `'`.
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

const CSV_HEADER: &str = "id,email,user_name,display_name,given_name,family_name,state,source,managed_by,email_verified,created_at,updated_at\r\n";

/// One user as a CSV line.
fn csv_row(u: &muster_app::users::UserView) -> String {
    let row = [
        u.id.as_str(),
        &u.email,
        &u.user_name,
        u.profile.display_name.as_deref().unwrap_or(""),
        u.profile.given_name.as_deref().unwrap_or(""),
        u.profile.family_name.as_deref().unwrap_or(""),
        u.state.as_str(),
        u.source.as_str(),
        u.managed_by.as_str(),
        if u.email_verified { "true" } else { "false" },
        &u.created_at,
        &u.updated_at,
    ];
    let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
    format!("{}\r\n", fields.join(","))
}

/// The users the filters select, as CSV: profile and lifecycle columns
/// only, never a credential. Streamed a page at a time, so a million users
/// are never held in memory and the download starts at once; a slow reader
/// slows the reading. The first page is read, and the export recorded,
/// before anything is sent: a bad filter is an error page, and an export
/// the audit log cannot name does not leave.
pub async fn export(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/users");
    let mut p = params(&q);
    p.limit = Some(500);
    p.cursor = None;
    let first = match muster_app::users::list(&s.app, &c.caller, &c.slug, p.clone()).await {
        Ok(page) => page,
        Err(e) => return c.error_page(&s, e),
    };
    if let Err(e) = muster_app::users::exported(&s.app, &c.caller, &c.slug, &p).await {
        return c.error_page(&s, e);
    }
    let (app, caller, slug) = (s.app.clone(), c.caller.clone(), c.slug.clone());
    let body = crate::download::streamed("users", move |tx| async move {
        let mut page = first;
        let mut buf = CSV_HEADER.as_bytes().to_vec();
        loop {
            for u in &page.items {
                buf.extend_from_slice(csv_row(u).as_bytes());
            }
            if tx.send(Ok(std::mem::take(&mut buf))).await.is_err() {
                return Ok::<(), AppError>(()); // the client went away
            }
            let Some(cursor) = page.next_cursor.take() else {
                return Ok(());
            };
            p.cursor = Some(cursor);
            page = muster_app::users::list(&app, &caller, &slug, p.clone()).await?;
        }
    });
    let mut res = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"users.csv\""),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("ann@example.com"), "ann@example.com");
        assert_eq!(csv_field("Smith, Ann"), "\"Smith, Ann\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("@sum"), "'@sum");
    }
}
