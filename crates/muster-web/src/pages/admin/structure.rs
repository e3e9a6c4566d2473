//! The console's structure: the tree of organizational units (add one
//! under any unit, rename, delete an empty one, see its users) and the
//! workspaces (add one, see who is in each and with which roles).

use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::org_units::{NewOrgUnit, OrgUnitUpdate, OrgUnitView};
use muster_app::workspaces::{MemberView, WorkspaceInput, WorkspaceView};
use muster_core::Permission;
use std::collections::HashMap;

type Fields = HashMap<String, String>;

struct Unit {
    id: String,
    name: String,
    depth: usize,
    root: bool,
    policies_set: String,
}

#[derive(askama::Template)]
#[template(path = "admin/structure.html")]
struct Page<'a> {
    chrome: &'a Chrome,
    units: Vec<Unit>,
    workspaces: Vec<WorkspaceView>,
    may_units: bool,
    may_workspaces: bool,
    notice: Option<String>,
    error: Option<String>,
}

fn tree(mut units: Vec<OrgUnitView>) -> Vec<Unit> {
    units.sort_by(|a, b| a.path.cmp(&b.path));
    units
        .into_iter()
        .map(|u| Unit {
            depth: u.path.len().saturating_sub(1),
            root: u.parent_id.is_none(),
            name: if u.parent_id.is_none() {
                "The organization".to_owned()
            } else {
                u.name
            },
            policies_set: u.policies_set.join(", "),
            id: u.id,
        })
        .collect()
}

async fn show(
    s: &AppState,
    c: &Console,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let built = async {
        Ok::<_, AppError>(Page {
            chrome: c.chrome(),
            units: tree(muster_app::org_units::list(&s.app, &c.caller, &c.slug).await?),
            workspaces: muster_app::workspaces::list(&s.app, &c.caller, &c.slug).await?,
            may_units: c.may(Permission::UsersWrite),
            may_workspaces: c.may(Permission::GroupsWrite),
            notice,
            error,
        })
    };
    match built.await {
        Ok(page) => c.send(s, super::render(status, &page)),
        Err(e) => c.error_page(s, e),
    }
}

pub async fn page(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap) -> Response {
    let c = console!(s, headers, ctx, "/admin/structure");
    show(&s, &c, StatusCode::OK, None, None).await
}

/// `unit` (add under `parent_id`), `move-unit` (`id` under `parent_id`),
/// `delete-unit` (`id`),
/// `workspace` (add).
pub async fn change(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(action): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/structure");
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let field = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let (app, caller, slug) = (&s.app, &c.caller, c.slug.as_str());
    let done: Result<String, AppError> = match action.as_str() {
        "unit" => {
            let input = NewOrgUnit {
                name: field("name"),
                parent_id: Some(field("parent_id")).filter(|p| !p.is_empty()),
            };
            muster_app::org_units::create(app, caller, slug, input)
                .await
                .map(|u| format!("The unit {} is added.", u.name))
        }
        "move-unit" => {
            let update = OrgUnitUpdate {
                name: None,
                parent_id: Some(field("parent_id")),
            };
            muster_app::org_units::update(app, caller, slug, &field("id"), update)
                .await
                .map(|u| format!("{} moved, with the units below it.", u.name))
        }
        "delete-unit" => muster_app::org_units::delete(app, caller, slug, &field("id"))
            .await
            .map(|()| "The unit is deleted.".to_owned()),
        "workspace" => {
            let input = WorkspaceInput {
                name: field("name"),
                code: Some(field("code")).filter(|v| !v.is_empty()),
            };
            muster_app::workspaces::create(app, caller, slug, input)
                .await
                .map(|w| format!("The workspace {} is added.", w.name))
        }
        _ => Err(AppError::NotFound("action")),
    };
    match done {
        Ok(note) => show(&s, &c, StatusCode::OK, Some(note), None).await,
        Err(e @ AppError::Internal(_)) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show(&s, &c, status, None, Some(text)).await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "admin/workspace.html")]
struct WorkspacePage<'a> {
    chrome: &'a Chrome,
    w: WorkspaceView,
    members: Vec<MemberView>,
}

pub async fn workspace(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/structure");
    let built = async {
        Ok::<_, AppError>(WorkspacePage {
            chrome: c.chrome(),
            w: muster_app::workspaces::get(&s.app, &c.caller, &c.slug, &id).await?,
            members: muster_app::workspaces::members(&s.app, &c.caller, &c.slug, &id).await?,
        })
    };
    match built.await {
        Ok(page) => c.send(&s, super::render(StatusCode::OK, &page)),
        Err(e) => c.error_page(&s, e),
    }
}
