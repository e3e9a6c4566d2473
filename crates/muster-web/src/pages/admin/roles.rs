//! The console's roles: the built-in and custom roles with what each
//! allows, in words; a custom role made or edited with a permission picker
//! that says what every permission lets its holders do, and — on the page
//! and with *Show what it will allow*, before saving, with no script — what
//! the whole role will let its holders do, with what to watch out for;
//! deletion.

use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::roles::{RoleInput, RoleUpdate, RoleView};
use muster_core::Permission;
use muster_core::rbac::{BuiltinRole, PermissionSet};

/// What each permission lets a role's holders do, as the picker says it.
pub(crate) fn allows(p: Permission) -> &'static str {
    match p {
        Permission::UsersRead => {
            "See users, their profiles, roles, sessions, devices and invitations"
        }
        Permission::UsersWrite => "Create users, edit their profiles and send invitations",
        Permission::UsersLifecycle => {
            "Suspend, deactivate, reactivate, unlock and delete users; reset their two-step verification"
        }
        Permission::GroupsWrite => "Create, rename and delete groups and change their members",
        Permission::RolesWrite => {
            "Create and edit roles and give or take them (never beyond the permissions they hold themselves)"
        }
        Permission::PoliciesWrite => "Change the password, session, MFA, access and risk policies",
        Permission::SessionsRevoke => "Sign users out everywhere and manage API tokens of others",
        Permission::AuditRead => "Read and export the audit log",
        Permission::ScimManage => "Connect the IdP: SCIM tokens and the SCIM policy",
        Permission::WebhooksManage => "Manage webhook endpoints and redeliver events",
        Permission::OrgManage => "Change the organization itself (name, sign-up and domains)",
    }
}

struct Pick {
    name: &'static str,
    allows: &'static str,
    checked: bool,
}

fn picker(checked: &[String]) -> Vec<Pick> {
    Permission::ALL
        .into_iter()
        .map(|p| Pick {
            name: p.as_str(),
            allows: allows(p),
            checked: checked.iter().any(|c| c == p.as_str()),
        })
        .collect()
}

/// What a role with these permissions will let its holders do, and the
/// consequences an admin may not see from the list alone.
pub(crate) struct Summary {
    can: Vec<&'static str>,
    notes: Vec<String>,
}

fn summary(checked: &[String]) -> Summary {
    use Permission as P;
    let set: PermissionSet = checked.iter().filter_map(|c| P::parse(c)).collect();
    let can = P::ALL
        .into_iter()
        .filter(|p| set.contains(*p))
        .map(allows)
        .collect();
    let mut notes = Vec::new();
    if let Some(b) = BuiltinRole::ALL
        .into_iter()
        .find(|b| b.permissions() == set)
    {
        notes.push(format!(
            "These are exactly the permissions of the built-in role {}.",
            b.key()
        ));
    }
    let finds_users = [
        P::UsersWrite,
        P::UsersLifecycle,
        P::SessionsRevoke,
        P::GroupsWrite,
        P::RolesWrite,
    ];
    if !set.contains(P::UsersRead) && finds_users.into_iter().any(|p| set.contains(p)) {
        notes.push(
            "Without users.read its holders cannot look users up, so they cannot reach most of what the other permissions allow: add it.".into(),
        );
    }
    if set.contains(P::RolesWrite) {
        notes.push(
            "Its holders can give this role, and any other whose permissions they hold, to anyone — themselves included.".into(),
        );
    }
    if set.contains(P::PoliciesWrite) {
        notes.push(
            "Its holders decide who may sign in and how (access, MFA and risk policies): a mistake can shut everyone out.".into(),
        );
    }
    if set.iter().any(P::changes) {
        notes.push(
            "While the MFA policy is on, its holders make changes only after proving a second factor recently.".into(),
        );
    }
    Summary { can, notes }
}

#[derive(askama::Template)]
#[template(path = "admin/roles.html")]
struct ListPage<'a> {
    chrome: &'a Chrome,
    roles: Vec<(RoleView, Vec<&'static str>)>,
    picks: Vec<Pick>,
    summary: Summary,
    preview_action: String,
    key: String,
    name: String,
    description: String,
    may_write: bool,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Default)]
struct Typed {
    key: String,
    name: String,
    description: String,
    permissions: Vec<String>,
    csrf: Option<String>,
}

fn parse(body: &str) -> Typed {
    let mut t = Typed::default();
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "key" => t.key = v.trim().to_owned(),
            "name" => t.name = v.trim().to_owned(),
            "description" => t.description = v.trim().to_owned(),
            "permissions" => t.permissions.push(v),
            "csrf" => t.csrf = Some(v),
            _ => {}
        }
    }
    t
}

async fn show(
    s: &AppState,
    c: &Console,
    status: StatusCode,
    typed: Typed,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    match muster_app::roles::list(&s.app, &c.caller, &c.slug).await {
        Ok(roles) => {
            let page = ListPage {
                chrome: c.chrome(),
                roles: roles
                    .into_iter()
                    .map(|r| {
                        let said = r.permissions.iter().map(|p| allows(*p)).collect();
                        (r, said)
                    })
                    .collect(),
                picks: picker(&typed.permissions),
                summary: summary(&typed.permissions),
                preview_action: "/admin/roles/preview".into(),
                key: typed.key,
                name: typed.name,
                description: typed.description,
                may_write: c.may(Permission::RolesWrite),
                notice,
                error,
            };
            c.send(s, super::render(status, &page))
        }
        Err(e) => c.error_page(s, e),
    }
}

pub async fn list(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap) -> Response {
    let c = console!(s, headers, ctx, "/admin/roles");
    show(&s, &c, StatusCode::OK, Typed::default(), None, None).await
}

/// The new role's form again, with what it will allow; nothing is saved.
pub async fn preview(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: String,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/roles");
    let t = parse(&body);
    if let Some(res) = c.csrf_refusal(&s, t.csrf.as_ref()) {
        return res;
    }
    show(&s, &c, StatusCode::OK, t, None, None).await
}

pub async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: String,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/roles");
    let t = parse(&body);
    if let Some(res) = c.csrf_refusal(&s, t.csrf.as_ref()) {
        return res;
    }
    let input = RoleInput {
        key: t.key.clone(),
        name: t.name.clone(),
        description: Some(t.description.clone()).filter(|d| !d.is_empty()),
        permissions: t.permissions.clone(),
    };
    match muster_app::roles::create(&s.app, &c.caller, &c.slug, input).await {
        Ok(r) => {
            let note = format!(
                "The role {} is created. Give it to users on their pages.",
                r.name
            );
            show(&s, &c, StatusCode::OK, Typed::default(), Some(note), None).await
        }
        Err(e @ AppError::Internal(_)) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show(&s, &c, status, t, None, Some(text)).await
        }
    }
}

#[derive(askama::Template)]
#[template(path = "admin/role.html")]
struct EditPage<'a> {
    chrome: &'a Chrome,
    role: RoleView,
    picks: Vec<Pick>,
    summary: Summary,
    preview_action: String,
    may_write: bool,
    notice: Option<String>,
    error: Option<String>,
}

async fn show_role(
    s: &AppState,
    c: &Console,
    id: &str,
    status: StatusCode,
    typed: Option<Typed>,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    match muster_app::roles::get(&s.app, &c.caller, &c.slug, id).await {
        Ok(mut role) => {
            let checked: Vec<String> = match &typed {
                Some(t) => t.permissions.clone(),
                None => role
                    .permissions
                    .iter()
                    .map(|p| p.as_str().to_owned())
                    .collect(),
            };
            if let Some(t) = typed {
                role.name = t.name;
                role.description = Some(t.description).filter(|d| !d.is_empty());
            }
            let page = EditPage {
                chrome: c.chrome(),
                picks: picker(&checked),
                summary: summary(&checked),
                preview_action: format!("/admin/roles/{id}/preview"),
                may_write: c.may(Permission::RolesWrite) && !role.builtin,
                role,
                notice,
                error,
            };
            c.send(s, super::render(status, &page))
        }
        Err(e) => c.error_page(s, e),
    }
}

pub async fn role(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/roles");
    show_role(&s, &c, &id, StatusCode::OK, None, None, None).await
}

/// Saves a custom role's name, description and permissions, or deletes it
/// (`action` `save` or `delete`); `preview` shows the form as typed with
/// what it will allow, saving nothing.
pub async fn change(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: String,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/roles");
    let t = parse(&body);
    if let Some(res) = c.csrf_refusal(&s, t.csrf.as_ref()) {
        return res;
    }
    let done = match action.as_str() {
        "preview" => return show_role(&s, &c, &id, StatusCode::OK, Some(t), None, None).await,
        "save" => {
            let input = RoleUpdate {
                name: Some(t.name.clone()),
                description: Some(t.description.clone()),
                permissions: Some(t.permissions.clone()),
            };
            muster_app::roles::update(&s.app, &c.caller, &c.slug, &id, input)
                .await
                .map(|_| false)
        }
        "delete" => muster_app::roles::delete(&s.app, &c.caller, &c.slug, &id)
            .await
            .map(|()| true),
        _ => Err(AppError::NotFound("action")),
    };
    match done {
        Ok(true) => {
            let note = "The role is deleted, and taken from everyone who held it.".to_owned();
            show(&s, &c, StatusCode::OK, Typed::default(), Some(note), None).await
        }
        Ok(false) => {
            let note =
                "Saved: it applies to everyone who holds the role from their very next request.";
            show_role(&s, &c, &id, StatusCode::OK, None, Some(note.into()), None).await
        }
        Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show_role(&s, &c, &id, status, Some(t), None, Some(text)).await
        }
    }
}
