//! A user's page in the console: profile (with what the IdP manages and
//! the drift its next write overwrites), roles, sessions, two-step
//! verification, devices, and the lifecycle actions the state allows.

use super::user_actions::{Action, actions_for};
use super::{Chrome, Console, org_wide, readable};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::users::UserView;
use muster_core::Permission;
use std::collections::HashMap;

type Fields = HashMap<String, String>;

#[derive(askama::Template)]
#[template(path = "admin/user.html")]
struct DetailPage<'a> {
    chrome: &'a Chrome,
    user: UserView,
    /// Profile attributes that have a value, as `(name, value)`.
    profile: Vec<(String, String)>,
    managed: Vec<muster_app::scim::users::Drift>,
    mfa: Option<muster_app::mfa::MfaStatus>,
    devices: Vec<muster_app::devices::DeviceView>,
    roles: Vec<HeldRole>,
    /// The groups the user is in (directly).
    groups: Vec<muster_app::roles::GroupRef>,
    /// `None` when the caller's role does not reach them.
    sessions: Option<Vec<muster_app::signin::SessionView>>,
    may_sign_out: bool,
    /// The organizational unit's name (none for the root).
    unit: Option<String>,
    /// `(key, name)` of the roles that may be added.
    assignable: Vec<(String, String)>,
    may_assign: bool,
    actions: Vec<Action>,
    may_reset_mfa: bool,
    notice: Option<String>,
    error: Option<String>,
}

/// A role the user holds, as the page says it.
struct HeldRole {
    assignment_id: String,
    role_key: String,
    scope: String,
    /// The workspace's page, for a role held in one.
    scope_href: Option<String>,
    inherited: bool,
    via_group: Option<String>,
}

impl HeldRole {
    /// `names` gives units' and workspaces' names by id.
    fn of(h: muster_app::roles::HeldRoleView, names: &HashMap<String, String>) -> Self {
        use muster_core::Scope;
        let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
        let (scope, scope_href) = match &h.scope {
            Scope::Organization => ("whole organization".to_owned(), None),
            Scope::OrgUnit(u) => (format!("unit {}", name(u)), None),
            Scope::Workspace(w) => (
                format!("workspace {}", name(w)),
                Some(format!("/admin/workspaces/{w}")),
            ),
        };
        Self {
            scope,
            scope_href,
            inherited: h.inherited,
            via_group: h.via_group.map(|g| g.name),
            assignment_id: h.assignment_id,
            role_key: h.role_key,
        }
    }
}

/// `enterprise.cost_center` as a person reads it: `Enterprise · cost center`.
fn label(path: &str) -> String {
    let words = path.replace('_', " ").replace('.', " · ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

/// The profile's non-empty attributes, flattened (`enterprise.department`).
fn profile_rows(u: &UserView) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, inner) in o {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&name, inner, out);
                }
            }
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => out.push((label(prefix), s.clone())),
            other => out.push((label(prefix), other.to_string())),
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(&u.profile) {
        walk("", &v, &mut out);
    }
    out
}

pub async fn detail(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<Fields>,
) -> Response {
    let here = format!("/admin/users/{id}");
    let c = console!(s, headers, ctx, &here);
    let notice = q.get("done").and_then(|d| done_notice(d));
    show(&s, &c, &id, StatusCode::OK, notice, None).await
}

pub(super) async fn show(
    s: &AppState,
    c: &Console,
    id: &str,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let built = async {
        let mut user = muster_app::users::get(&s.app, &c.caller, &c.slug, id).await?;
        // Reading these needs organization-wide `users.read`; an admin of
        // one unit sees the profile and the actions.
        let managed =
            org_wide(muster_app::scim::users::managed(&s.app, &c.caller, &c.slug, id).await)?
                .unwrap_or_default();
        let mut mfa = org_wide(muster_app::mfa::user_status(&s.app, &c.caller, &c.slug, id).await)?;
        for f in mfa.iter_mut().flat_map(|m| m.factors.iter_mut()) {
            f.created_at = readable(&f.created_at);
            f.last_used_at = f.last_used_at.as_deref().map(readable);
        }
        let mut devices =
            org_wide(muster_app::devices::of_user(&s.app, &c.caller, &c.slug, id).await)?
                .unwrap_or_default();
        for d in &mut devices {
            d.last_seen_at = readable(&d.last_seen_at);
        }
        let roles = muster_app::roles::of_user(&s.app, &c.caller, &c.slug, id).await?;
        let groups = muster_app::groups::of_user(&s.app, &c.caller, &c.slug, id).await?;
        // Names of the units and workspaces roles are held in (ids otherwise).
        let mut names: HashMap<String, String> = HashMap::new();
        if let Some(ws) = org_wide(muster_app::workspaces::list(&s.app, &c.caller, &c.slug).await)?
        {
            names.extend(ws.into_iter().map(|w| (w.id, w.name)));
        }
        if let Some(us) = org_wide(muster_app::org_units::list(&s.app, &c.caller, &c.slug).await)? {
            names.extend(us.into_iter().map(|u| (u.id, u.name)));
        }
        let assignable = org_wide(muster_app::roles::list(&s.app, &c.caller, &c.slug).await)?
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !roles.iter().any(|h| !h.inherited && h.role_key == r.key))
            .map(|r| (r.key, r.name))
            .collect();
        let mut sessions =
            org_wide(muster_app::sessions::of_user(&s.app, &c.caller, &c.slug, id).await)?;
        for x in sessions.iter_mut().flatten() {
            x.created_at = readable(&x.created_at);
            x.last_seen_at = readable(&x.last_seen_at);
        }
        let unit =
            match muster_app::org_units::get(&s.app, &c.caller, &c.slug, &user.org_unit_id).await {
                Ok(u) if u.parent_id.is_some() => Some(u.name),
                _ => None,
            };
        user.created_at = readable(&user.created_at);
        user.updated_at = readable(&user.updated_at);
        Ok::<_, AppError>(DetailPage {
            chrome: c.chrome(),
            profile: profile_rows(&user),
            actions: actions_for(c, &user),
            may_reset_mfa: c.may(Permission::UsersLifecycle),
            may_assign: c.may(Permission::RolesWrite),
            may_sign_out: c.may(Permission::SessionsRevoke),
            sessions,
            unit,
            roles: roles.into_iter().map(|h| HeldRole::of(h, &names)).collect(),
            groups,
            assignable,
            user,
            managed,
            mfa,
            devices,
            notice,
            error,
        })
    };
    match built.await {
        Ok(page) => c.send(s, super::render(status, &page)),
        Err(e) => c.error_page(s, e),
    }
}

fn done_notice(done: &str) -> Option<String> {
    Some(
        match done {
            "suspend" => "Suspended: every session and token of the user has ended.",
            "unsuspend" => "Unsuspended: the user can sign in again.",
            "unlock" => "Unlocked: the user can sign in again.",
            "deactivate" => "Deactivated: every session and token of the user has ended.",
            "reactivate" => "Reactivated.",
            "reset-mfa" => "Two-step verification is reset and the user is signed out everywhere.",
            "role-added" => "The role is added; it applies from the user's very next request.",
            "sign-out" => "Signed out everywhere: every session of the user has ended.",
            "role-removed" => {
                "The role is removed; it no longer applies from the user's very next request."
            }
            _ => return None,
        }
        .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_paths_read_as_words() {
        assert_eq!(label("display_name"), "Display name");
        assert_eq!(label("enterprise.cost_center"), "Enterprise · cost center");
    }
}
