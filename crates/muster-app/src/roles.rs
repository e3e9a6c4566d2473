//! Roles (built-in and custom) and role assignments to users and groups.

use crate::audit::{self, Event};
use crate::caller::{org_with, require};
use crate::error::conflict;
use crate::paging::rfc3339;
use crate::{App, AppError, Caller, Principal, Result};
use muster_core::rbac::valid_role_key;
use muster_core::{Permission, PermissionSet, RoleAssignmentId, RoleId, Scope};
use muster_store::roles::{AssignmentRow, RoleRow};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<Permission>,
    pub builtin: bool,
}

impl From<RoleRow> for RoleView {
    fn from(r: RoleRow) -> Self {
        Self {
            permissions: PermissionSet::from_stored(&r.permissions).iter().collect(),
            id: r.id,
            key: r.role_key,
            name: r.name,
            description: r.description,
            builtin: r.builtin,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub permissions: Vec<String>,
}

fn parse_permissions(list: &[String]) -> Result<PermissionSet> {
    list.iter()
        .map(|s| {
            Permission::parse(s).ok_or_else(|| {
                AppError::invalid("permissions", format!("unknown permission '{s}'"))
            })
        })
        .collect()
}

fn check_text(field: &str, v: &str, max: usize) -> Result<()> {
    if v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            format!("give 1 to {max} printable characters"),
        ));
    }
    Ok(())
}

/// No one grants more than they hold: a role's permissions must all be the
/// caller's own, so an admin cannot mint an owner.
pub(crate) fn check_can_grant(caller: &Caller, org_id: &str, role: &RoleRow) -> Result<()> {
    if matches!(caller.principal, Principal::Operator { .. }) {
        return Ok(());
    }
    for p in PermissionSet::from_stored(&role.permissions).iter() {
        require(caller, org_id, p)?;
    }
    Ok(())
}

/// A role by id or key; built-in roles from memory. Read outside the caller's
/// transaction: if a custom role vanishes meanwhile, the assignment's foreign
/// key refuses the write.
pub(crate) async fn resolve(app: &App, org_id: &str, id_or_key: &str) -> Result<Option<RoleRow>> {
    let key = (org_id.to_owned(), id_or_key.to_owned());
    if let Some(r) = app
        .builtin_roles
        .read()
        .ok()
        .and_then(|c| c.get(&key).cloned())
    {
        return Ok(Some(r));
    }
    let found = muster_store::roles::find(&app.db, org_id, id_or_key).await?;
    if let Some(r) = found
        .as_ref()
        .filter(|r| r.builtin && r.role_key == id_or_key)
        && let Ok(mut c) = app.builtin_roles.write()
    {
        c.insert(key, r.clone());
    }
    Ok(found)
}

pub async fn list(app: &App, caller: &Caller, org_slug: &str) -> Result<Vec<RoleView>> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    Ok(muster_store::roles::list(&app.db, &org.id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

pub async fn get(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<RoleView> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    Ok(muster_store::roles::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("role"))?
        .into())
}

pub async fn create(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    input: RoleInput,
) -> Result<RoleView> {
    let org = org_with(app, caller, org_slug, Permission::RolesWrite).await?;
    if !valid_role_key(&input.key) {
        return Err(AppError::invalid(
            "key",
            "use 2 to 64 lower-case letters, digits, '.', '-' or '_'",
        ));
    }
    check_text("name", &input.name, 128)?;
    let perms = parse_permissions(&input.permissions)?;
    let now = app.now_ms();
    let row = RoleRow {
        id: RoleId::new().to_string(),
        org_id: org.id.clone(),
        role_key: input.key,
        name: input.name,
        description: input.description,
        permissions: perms.to_stored(),
        builtin: false,
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    muster_store::roles::insert(&mut tx, &row)
        .await
        .map_err(|e| conflict(e, &[("role", "key", "a role with this key already exists")]))?;
    let ev = Event::new(&org.id, "role.created")
        .target("role", &row.id)
        .change("key", (), &row.role_key)
        .change("permissions", (), &row.permissions)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(row.into())
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub permissions: Option<Vec<String>>,
}

pub async fn update(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
    input: RoleUpdate,
) -> Result<RoleView> {
    let org = org_with(app, caller, org_slug, Permission::RolesWrite).await?;
    let mut tx = app.db.begin().await?;
    let mut row = muster_store::roles::find_in(&mut tx, &org.id, id)
        .await?
        .filter(|r| r.id == id)
        .ok_or(AppError::NotFound("role"))?;
    if row.builtin {
        return Err(AppError::Refused(
            "built-in roles cannot be changed; create a custom role".into(),
        ));
    }
    let mut ev = Event::new(&org.id, "role.updated")
        .target("role", id)
        .security();
    if let Some(n) = input.name {
        check_text("name", &n, 128)?;
        ev = ev.change("name", &row.name, &n);
        row.name = n;
    }
    if let Some(d) = input.description {
        ev = ev.change("description", &row.description, &d);
        row.description = Some(d);
    }
    if let Some(p) = input.permissions {
        let perms = parse_permissions(&p)?.to_stored();
        // Widening a role is granting: the caller must hold what it adds.
        check_can_grant(
            caller,
            &org.id,
            &RoleRow {
                permissions: perms.clone(),
                ..row.clone()
            },
        )?;
        ev = ev.change("permissions", &row.permissions, &perms);
        row.permissions = perms;
    }
    row.updated_at = app.now_ms();
    muster_store::roles::update(&mut tx, &row).await?;
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(row.into())
}

pub async fn delete(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<()> {
    let org = org_with(app, caller, org_slug, Permission::RolesWrite).await?;
    let mut tx = app.db.begin().await?;
    let row = muster_store::roles::find_in(&mut tx, &org.id, id)
        .await?
        .filter(|r| r.id == id)
        .ok_or(AppError::NotFound("role"))?;
    if row.builtin {
        return Err(AppError::Refused("built-in roles cannot be deleted".into()));
    }
    let holders = muster_store::roles::count_holders(&mut tx, id).await?;
    muster_store::roles::delete(&mut tx, &org.id, id).await?;
    let ev = Event::new(&org.id, "role.deleted")
        .target("role", id)
        .change("key", &row.role_key, ())
        .detail("assignments_removed", holders)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssignmentView {
    pub id: String,
    pub role_id: String,
    pub role_key: String,
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub scope: Scope,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
}

impl From<AssignmentRow> for AssignmentView {
    fn from(a: AssignmentRow) -> Self {
        Self {
            scope: Scope::from_stored(&a.scope_kind, a.scope_id).unwrap_or(Scope::Organization),
            created_at: rfc3339(a.created_at),
            id: a.id,
            role_id: a.role_id,
            role_key: a.role_key,
            user_id: a.user_id,
            group_id: a.group_id,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentInput {
    /// Role id or key.
    pub role: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub group_id: Option<String>,
    /// Default: the whole organization.
    #[serde(default)]
    pub scope: Option<Scope>,
}

pub async fn assign(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    input: AssignmentInput,
) -> Result<AssignmentView> {
    let org = crate::caller::org(app, caller, org_slug).await?;
    let mut scope = input.scope.unwrap_or(Scope::Organization);
    let mut tx = app.db.begin().await?;
    // Who may grant in a workspace: `roles.write` there or organization-wide,
    // and every permission of the role there too.
    let mut grant_in: Option<String> = None;
    match &scope {
        Scope::Workspace(w) => {
            let ws = muster_store::workspaces::get_in(&mut tx, &org.id, w)
                .await?
                .ok_or_else(|| {
                    AppError::invalid("scope", "no such workspace in this organization")
                })?;
            crate::caller::require_in_workspace(caller, &org.id, &ws.id, Permission::RolesWrite)?;
            grant_in = Some(ws.id.clone());
            scope = Scope::Workspace(ws.id);
        }
        _ => require(caller, &org.id, Permission::RolesWrite)?,
    }
    match &scope {
        Scope::Organization | Scope::Workspace(_) => {}
        // Another organization's unit is refused like a unit that does not
        // exist, and says nothing about it.
        Scope::OrgUnit(id) => {
            muster_store::org_units::get_in(&mut tx, &org.id, id)
                .await?
                .ok_or_else(|| {
                    AppError::invalid("scope", "no such organizational unit in this organization")
                })?;
        }
    }
    let role = resolve(app, &org.id, &input.role)
        .await?
        .ok_or_else(|| AppError::invalid("role", "no such role in this organization"))?;
    match (&input.user_id, &input.group_id) {
        (Some(u), None) => {
            if !muster_store::users::exists(&mut tx, &org.id, u).await? {
                return Err(AppError::NotFound("user"));
            }
        }
        (None, Some(g)) => {
            muster_store::groups::get_in(&mut tx, &org.id, g)
                .await?
                .ok_or(AppError::NotFound("group"))?;
        }
        _ => {
            return Err(AppError::invalid(
                "user_id",
                "give exactly one of user_id and group_id",
            ));
        }
    }
    match &grant_in {
        None => check_can_grant(caller, &org.id, &role)?,
        Some(ws) if !matches!(caller.principal, Principal::Operator { .. }) => {
            for p in PermissionSet::from_stored(&role.permissions).iter() {
                crate::caller::require_in_workspace(caller, &org.id, ws, p)?;
            }
        }
        Some(_) => {}
    }
    let row = AssignmentRow {
        id: RoleAssignmentId::new().to_string(),
        org_id: org.id.clone(),
        role_id: role.id.clone(),
        role_key: role.role_key.clone(),
        user_id: input.user_id,
        group_id: input.group_id,
        scope_kind: scope.kind().into(),
        scope_id: scope.id().map(str::to_owned),
        created_at: app.now_ms(),
    };
    muster_store::roles::assign(&mut tx, &row)
        .await
        .map_err(|e| {
            conflict(
                e,
                &[(
                    "role_assignments",
                    "role",
                    "this role is already assigned there",
                )],
            )
        })?;
    let (kind, pid) = principal_of(&row);
    let ev = Event::new(&org.id, "role.assigned")
        .target(kind, pid)
        .detail("role", &row.role_key)
        .detail("scope", &scope)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(row.into())
}

fn principal_of(a: &AssignmentRow) -> (&'static str, &str) {
    match (&a.user_id, &a.group_id) {
        (Some(u), _) => ("user", u),
        (None, Some(g)) => ("group", g),
        (None, None) => ("user", ""),
    }
}

pub async fn assignments(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    user_id: Option<&str>,
    group_id: Option<&str>,
) -> Result<Vec<AssignmentView>> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    Ok(
        muster_store::roles::assignments(&app.db, &org.id, user_id, group_id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    )
}

pub async fn unassign(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<()> {
    let org = org_with(app, caller, org_slug, Permission::RolesWrite).await?;
    let mut tx = app.db.begin().await?;
    let row = muster_store::roles::assignment_in(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("role assignment"))?;
    muster_store::roles::unassign(&mut tx, &org.id, id).await?;
    let (kind, pid) = principal_of(&row);
    let ev = Event::new(&org.id, "role.unassigned")
        .target(kind, pid)
        .detail("role", &row.role_key)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// A role a user holds, and whether it is its own or inherited from a group.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeldRoleView {
    pub assignment_id: String,
    pub role_key: String,
    pub scope: Scope,
    /// Reached through a group rather than assigned to the user: change it
    /// on the group.
    pub inherited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_group: Option<GroupRef>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
}

/// Every role a user holds, in every scope, its own and its groups'
/// (`users.read` reaching the user).
pub async fn of_user(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    user_id: &str,
) -> Result<Vec<HeldRoleView>> {
    let (org, reach) =
        crate::caller::org_reach(app, caller, org_slug, Permission::UsersRead).await?;
    crate::caller::user_in_reach(app, &org.id, user_id, &reach).await?;
    if !muster_store::users::exists_in(&app.db, &org.id, user_id).await? {
        return Err(AppError::NotFound("user"));
    }
    Ok(muster_store::roles::held_by_user(&app.db, &org.id, user_id)
        .await?
        .into_iter()
        .map(|h| HeldRoleView {
            scope: Scope::from_stored(&h.scope_kind, h.scope_id).unwrap_or(Scope::Organization),
            inherited: h.group_id.is_some(),
            via_group: h
                .group_id
                .zip(h.group_name)
                .map(|(id, name)| GroupRef { id, name }),
            assignment_id: h.assignment_id,
            role_key: h.role_key,
        })
        .collect())
}
