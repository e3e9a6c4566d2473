//! The console's groups: the list and a new group; a group's page with its
//! members (users by email, nested groups) and the roles its members get
//! through it; rename and delete. A group the IdP manages is marked: its
//! next SCIM write overwrites local changes.

use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::groups::{GroupInput, GroupView, MemberKind, MemberView};
use muster_app::roles::{AssignmentInput, AssignmentView};
use muster_core::Permission;
use std::collections::HashMap;

type Fields = HashMap<String, String>;

#[derive(askama::Template)]
#[template(path = "admin/groups.html")]
struct ListPage<'a> {
    chrome: &'a Chrome,
    groups: Vec<GroupView>,
    next: Option<String>,
    name: String,
    may_write: bool,
    notice: Option<String>,
    error: Option<String>,
}

async fn show_list(
    s: &AppState,
    c: &Console,
    status: StatusCode,
    cursor: Option<String>,
    name: String,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    match muster_app::groups::list(&s.app, &c.caller, &c.slug, cursor, Some(100)).await {
        Ok(page) => {
            let p = ListPage {
                chrome: c.chrome(),
                groups: page.items,
                next: page.next_cursor,
                name,
                may_write: c.may(Permission::GroupsWrite),
                notice,
                error,
            };
            c.send(s, super::render(status, &p))
        }
        Err(e) => c.error_page(s, e),
    }
}

pub async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/groups");
    let cursor = q.get("cursor").filter(|v| !v.is_empty()).cloned();
    show_list(&s, &c, StatusCode::OK, cursor, String::new(), None, None).await
}

pub async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/groups");
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let name = f
        .get("name")
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let input = GroupInput {
        name: name.clone(),
        description: f
            .get("description")
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty()),
    };
    match muster_app::groups::create(&s.app, &c.caller, &c.slug, input).await {
        Ok(g) => super::see_other(&format!("/admin/groups/{}?done=created", g.id)),
        Err(e @ AppError::Internal(_)) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show_list(&s, &c, status, None, name, None, Some(text)).await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "admin/group.html")]
struct GroupPage<'a> {
    chrome: &'a Chrome,
    group: GroupView,
    members: Vec<MemberView>,
    roles: Vec<AssignmentView>,
    /// `(id, name)` of the groups that may be nested in this one.
    other_groups: Vec<(String, String)>,
    /// `(key, name)` of the roles that may be given through it.
    assignable: Vec<(String, String)>,
    may_write: bool,
    may_assign: bool,
    notice: Option<String>,
    error: Option<String>,
}

async fn show_group(
    s: &AppState,
    c: &Console,
    id: &str,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let built = async {
        let group = muster_app::groups::get(&s.app, &c.caller, &c.slug, id).await?;
        let members = muster_app::groups::members(&s.app, &c.caller, &c.slug, id).await?;
        let roles =
            muster_app::roles::assignments(&s.app, &c.caller, &c.slug, None, Some(id)).await?;
        let others = muster_app::groups::list(&s.app, &c.caller, &c.slug, None, Some(500)).await?;
        let other_groups = others
            .items
            .into_iter()
            .filter(|g| g.id != id && !members.iter().any(|m| m.kind == "group" && m.id == g.id))
            .map(|g| (g.id, g.name))
            .collect();
        let assignable = muster_app::roles::list(&s.app, &c.caller, &c.slug)
            .await?
            .into_iter()
            .filter(|r| !roles.iter().any(|a| a.role_key == r.key))
            .map(|r| (r.key, r.name))
            .collect();
        Ok::<_, AppError>(GroupPage {
            chrome: c.chrome(),
            group,
            members,
            roles,
            other_groups,
            assignable,
            may_write: c.may(Permission::GroupsWrite),
            may_assign: c.may(Permission::RolesWrite),
            notice,
            error,
        })
    };
    match built.await {
        Ok(page) => c.send(s, super::render(status, &page)),
        Err(e) => c.error_page(s, e),
    }
}

pub async fn group(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/groups");
    let notice = q.get("done").and_then(|d| {
        Some(match d.as_str() {
            "created" => "The group is created.",
            "member-added" => {
                "Added: the group's roles apply to them from their very next request."
            }
            "member-removed" => "Removed: the group's roles no longer apply to them.",
            "role-added" => "The role is given to every member, from their very next request.",
            "role-removed" => "The role is taken from the group's members.",
            "renamed" => "Saved.",
            _ => return None,
        })
    });
    show_group(&s, &c, &id, StatusCode::OK, notice.map(str::to_owned), None).await
}

/// Every change on a group's page: `add-user` (by email), `add-group`,
/// `remove-user`, `remove-group` (by id), `add-role`, `remove-role`,
/// `rename`, `delete`.
pub async fn change(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<Fields>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/groups");
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let field = |k: &str| f.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let (app, caller, slug) = (&s.app, &c.caller, c.slug.as_str());
    let done: Result<&str, AppError> = match action.as_str() {
        "add-user" => match c.user_by_email(&s, &field("email")).await {
            Ok(user) => {
                muster_app::groups::add_member(app, caller, slug, &id, MemberKind::User, &user)
                    .await
                    .map(|_| "member-added")
            }
            Err(e) => Err(e),
        },
        "add-group" => muster_app::groups::add_member(
            app,
            caller,
            slug,
            &id,
            MemberKind::Group,
            &field("member"),
        )
        .await
        .map(|_| "member-added"),
        "remove-user" | "remove-group" => {
            let kind = if action == "remove-user" {
                MemberKind::User
            } else {
                MemberKind::Group
            };
            muster_app::groups::remove_member(app, caller, slug, &id, kind, &field("member"))
                .await
                .map(|_| "member-removed")
        }
        "add-role" => {
            let input = AssignmentInput {
                role: field("role"),
                user_id: None,
                group_id: Some(id.clone()),
                scope: None,
            };
            muster_app::roles::assign(app, caller, slug, input)
                .await
                .map(|_| "role-added")
        }
        "remove-role" => remove_role(&s, &c, &id, &field("assignment"))
            .await
            .map(|()| "role-removed"),
        "rename" => {
            let input = GroupInput {
                name: field("name"),
                description: Some(field("description")).filter(|d| !d.is_empty()),
            };
            muster_app::groups::update(app, caller, slug, &id, input)
                .await
                .map(|_| "renamed")
        }
        "delete" => muster_app::groups::delete(app, caller, slug, &id)
            .await
            .map(|()| "deleted"),
        _ => Err(AppError::NotFound("action")),
    };
    match done {
        Ok("deleted") => {
            let note = "The group is deleted; its members keep their own roles.".to_owned();
            show_list(
                &s,
                &c,
                StatusCode::OK,
                None,
                String::new(),
                Some(note),
                None,
            )
            .await
        }
        Ok(what) => super::see_other(&format!("/admin/groups/{id}?done={what}")),
        Err(e @ AppError::Internal(_)) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show_group(&s, &c, &id, status, None, Some(text)).await
        }
    }
}

/// Takes a role from the group: only an assignment of this group (a forged
/// form cannot reach another's).
async fn remove_role(
    s: &AppState,
    c: &Console,
    group: &str,
    assignment: &str,
) -> Result<(), AppError> {
    let held =
        muster_app::roles::assignments(&s.app, &c.caller, &c.slug, None, Some(group)).await?;
    if !held.iter().any(|a| a.id == assignment) {
        return Err(AppError::NotFound("role assignment"));
    }
    muster_app::roles::unassign(&s.app, &c.caller, &c.slug, assignment).await
}
