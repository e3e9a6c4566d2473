//! The console's structure: the tree of organizational units (add one
//! under any unit, rename, move, delete an empty one, see its users) and
//! the workspaces (add, rename, delete; on a workspace's page, who holds
//! which role there, given to a user by email or to a group — an IdP's
//! group linked this way brings its members as the IdP changes them).

use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::org_units::{NewOrgUnit, OrgUnitUpdate, OrgUnitView};
use muster_app::workspaces::{
    LinkedGroup, MemberView, Principal, RoleInput, WorkspaceInput, WorkspaceView,
};
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

/// `unit` (add under `parent_id`), `rename-unit` (`id` to `name`),
/// `move-unit` (`id` under `parent_id`), `delete-unit` (`id`),
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
        "rename-unit" => {
            let update = OrgUnitUpdate {
                name: Some(field("name")),
                parent_id: None,
            };
            muster_app::org_units::update(app, caller, slug, &field("id"), update)
                .await
                .map(|u| format!("The unit is renamed {}.", u.name))
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
                code: None, // Muster chooses it
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
    /// Each member, and whether it holds a role here of its own (not only
    /// through a group).
    members: Vec<(MemberView, bool)>,
    linked: Vec<LinkedGroup>,
    /// `(id, name)` of the groups that may be linked.
    groups: Vec<(String, String)>,
    /// `(key, name)` of the roles that may be given.
    roles: Vec<(String, String)>,
    may_rename: bool,
    may_assign: bool,
    notice: Option<String>,
    error: Option<String>,
}

async fn show_workspace(
    s: &AppState,
    c: &Console,
    id: &str,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let (app, caller, slug) = (&s.app, &c.caller, c.slug.as_str());
    let built = async {
        let w = muster_app::workspaces::get(app, caller, slug, id).await?;
        // Group names need organization-wide `users.read`; without it the
        // page shows ids and no linking.
        let all =
            super::org_wide(muster_app::groups::list(app, caller, slug, None, Some(500)).await)?
                .map(|p| p.items)
                .unwrap_or_default();
        let name_of = |g: &str| {
            all.iter()
                .find(|x| x.id == g)
                .map_or_else(|| g.to_owned(), |x| x.name.clone())
        };
        let mut members = muster_app::workspaces::members(app, caller, slug, id).await?;
        for m in &mut members {
            for r in &mut m.roles {
                r.via_group = r.via_group.as_deref().map(name_of);
            }
        }
        let linked =
            super::org_wide(muster_app::workspaces::linked_groups(app, caller, slug, id).await)?
                .unwrap_or_default();
        let roles = super::org_wide(muster_app::roles::list(app, caller, slug).await)?
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.key, r.name))
            .collect();
        Ok::<_, AppError>(WorkspacePage {
            chrome: c.chrome(),
            members: members
                .into_iter()
                .map(|m| {
                    let own = m.roles.iter().any(|r| r.via_group.is_none());
                    (m, own)
                })
                .collect(),
            groups: all.iter().map(|g| (g.id.clone(), g.name.clone())).collect(),
            linked,
            roles,
            may_rename: c.may(Permission::GroupsWrite),
            may_assign: !w.is_default && c.may(Permission::RolesWrite),
            w,
            notice,
            error,
        })
    };
    match built.await {
        Ok(page) => c.send(s, super::render(status, &page)),
        Err(e) => c.error_page(s, e),
    }
}

pub async fn workspace(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/structure");
    show_workspace(&s, &c, &id, StatusCode::OK, None, None).await
}

/// Every change on a workspace's page: `add-user` (by email, with `role`),
/// `link-group` (`group`, with `role`), `remove-user`, `unlink-group`
/// (`member`), `rename` (`name`), `delete` (`confirm` ticked).
pub async fn workspace_change(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/structure");
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let field = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let (app, caller, slug) = (&s.app, &c.caller, c.slug.as_str());
    let role = || RoleInput {
        role: Some(field("role")).filter(|r| !r.is_empty()),
    };
    let done: Result<String, AppError> = match action.as_str() {
        "add-user" => match c.user_by_email(&s, &field("email")).await {
            Ok(u) => {
                muster_app::workspaces::add(app, caller, slug, &id, Principal::User(u), role())
                    .await
                    .map(|a| format!("{} now holds the role {} here.", field("email"), a.role_key))
            }
            Err(e) => Err(e),
        },
        "link-group" => {
            let g = Principal::Group(field("group"));
            muster_app::workspaces::add(app, caller, slug, &id, g, role())
                .await
                .map(|a| {
                    format!(
                        "The group is linked: its members hold the role {} here.",
                        a.role_key
                    )
                })
        }
        "remove-user" | "unlink-group" => {
            let who = if action == "remove-user" {
                Principal::User(field("member"))
            } else {
                Principal::Group(field("member"))
            };
            muster_app::workspaces::remove(app, caller, slug, &id, who)
                .await
                .map(|()| "Removed: the access it gave ends on the next request.".to_owned())
        }
        "rename" => {
            let input = WorkspaceInput {
                name: field("name"),
                code: None,
            };
            muster_app::workspaces::rename(app, caller, slug, &id, input)
                .await
                .map(|w| format!("The workspace is renamed {}.", w.name))
        }
        "delete" if field("confirm") != "yes" => Err(AppError::invalid(
            "confirm",
            "tick the box to confirm that its members lose the access it gives",
        )),
        "delete" => {
            return match muster_app::workspaces::delete(app, caller, slug, &id).await {
                Ok(()) => {
                    let note = "The workspace is deleted; the roles held in it are gone.";
                    show(&s, &c, StatusCode::OK, Some(note.to_owned()), None).await
                }
                Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => c.error_page(&s, e),
                Err(e) => {
                    let (status, text) = crate::error::page_message(e);
                    show_workspace(&s, &c, &id, status, None, Some(text)).await
                }
            };
        }
        _ => Err(AppError::NotFound("action")),
    };
    match done {
        Ok(note) => show_workspace(&s, &c, &id, StatusCode::OK, Some(note), None).await,
        Err(e @ AppError::Internal(_)) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show_workspace(&s, &c, &id, status, None, Some(text)).await
        }
    }
}
