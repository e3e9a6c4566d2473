//! Workspaces (issue 7 §2, §4; DESIGN.md §1 "Organization structure"): the
//! boundaries in which access is granted. A user is a member of a workspace
//! when it holds a role there — assigned to it, or to a group it is in, at
//! any depth. Linking a SCIM group to a workspace with a role is exactly
//! such an assignment, so the members the IdP pushes into the group are in
//! the workspace on their next request, and out of it when removed. The
//! default workspace holds everyone in the organization.

use crate::audit::{self, Event};
use crate::caller::{org_with, require_in_workspace};
use crate::roles::{AssignmentInput, AssignmentView};
use crate::{App, AppError, Caller, Result};
use muster_core::users::CreationSource;
use muster_core::{Permission, PermissionSet, Scope};
use muster_store::workspaces::WorkspaceRow;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    /// A short handle, set at creation and never changed.
    pub code: String,
    pub name: String,
    /// The workspace every member of the organization is in.
    pub is_default: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

impl From<WorkspaceRow> for WorkspaceView {
    fn from(w: WorkspaceRow) -> Self {
        Self {
            created_at: crate::paging::rfc3339(w.created_at),
            updated_at: crate::paging::rfc3339(w.updated_at),
            id: w.id,
            code: w.code,
            name: w.name,
            is_default: w.is_default,
        }
    }
}

/// The workspace, in this organization (by id or code), or `NotFound`.
async fn find(app: &App, org_id: &str, id: &str) -> Result<WorkspaceRow> {
    muster_store::workspaces::get(&app.db, org_id, id)
        .await?
        .ok_or(AppError::NotFound("workspace"))
}

pub async fn list(app: &App, caller: &Caller, slug: &str) -> Result<Vec<WorkspaceView>> {
    let org = org_with(app, caller, slug, Permission::UsersRead).await?;
    let rows = muster_store::workspaces::list(&app.db, &org.id).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub async fn get(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<WorkspaceView> {
    let org = crate::caller::org(app, caller, slug).await?;
    let ws = find(app, &org.id, id).await?;
    require_in_workspace(caller, &org.id, &ws.id, Permission::UsersRead)?;
    Ok(ws.into())
}

fn name_conflict(e: muster_store::StoreError) -> AppError {
    crate::error::conflict(
        e,
        &[
            ("name", "name", "another workspace has this name"),
            ("code", "code", "please try again"),
        ],
    )
}

/// `ws-` and six letters or digits, unambiguous to read aloud. Uniqueness
/// in the organization is the index's job; a clash (one in ~10⁹) asks the
/// caller to try again.
fn new_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    let s: String = bytes
        .iter()
        .filter_map(|b| ALPHABET.get(usize::from(*b) % ALPHABET.len()))
        .map(|c| char::from(*c))
        .collect();
    format!("ws-{s}")
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceInput {
    pub name: String,
    /// Read-only: refused when it differs from the workspace's.
    #[serde(default)]
    pub code: Option<String>,
}

/// Creates a workspace (`groups.write`): workspaces hold people, as groups do.
pub async fn create(
    app: &App,
    caller: &Caller,
    slug: &str,
    input: WorkspaceInput,
) -> Result<WorkspaceView> {
    let org = org_with(app, caller, slug, Permission::GroupsWrite).await?;
    if input.code.is_some() {
        return Err(AppError::invalid(
            "code",
            "the code is chosen by Muster and cannot be set",
        ));
    }
    let now = app.now_ms();
    let row = WorkspaceRow {
        id: uuid::Uuid::now_v7().to_string(),
        org_id: org.id.clone(),
        code: new_code(),
        name: crate::orgs::valid_name(&input.name)?,
        is_default: false,
        created_at: now,
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    muster_store::workspaces::insert(&mut tx, &row)
        .await
        .map_err(name_conflict)?;
    let ev = Event::new(&org.id, "workspace.created")
        .target("workspace", &row.id)
        .detail("name", &row.name)
        .detail("code", &row.code);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(row.into())
}

pub async fn rename(
    app: &App,
    caller: &Caller,
    slug: &str,
    id: &str,
    input: WorkspaceInput,
) -> Result<WorkspaceView> {
    let org = org_with(app, caller, slug, Permission::GroupsWrite).await?;
    let ws = find(app, &org.id, id).await?;
    if input.code.as_ref().is_some_and(|c| *c != ws.code) {
        return Err(AppError::invalid("code", "a workspace's code is read-only"));
    }
    let name = crate::orgs::valid_name(&input.name)?;
    if name == ws.name {
        return Ok(ws.into());
    }
    let mut tx = app.db.begin().await?;
    let now = app.now_ms();
    muster_store::workspaces::rename(&mut tx, &org.id, &ws.id, &name, now)
        .await
        .map_err(name_conflict)?;
    let ev = Event::new(&org.id, "workspace.updated")
        .target("workspace", &ws.id)
        .change("name", &ws.name, &name);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(WorkspaceRow {
        name,
        updated_at: now,
        ..ws
    }
    .into())
}

/// Deletes a workspace and every role held in it: its members lose the
/// access it gave on their next request. The default workspace stays.
pub async fn delete(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<()> {
    let org = org_with(app, caller, slug, Permission::GroupsWrite).await?;
    let ws = find(app, &org.id, id).await?;
    if ws.is_default {
        return Err(AppError::Refused(
            "the default workspace holds everyone and cannot be deleted".into(),
        ));
    }
    let mut tx = app.db.begin().await?;
    let roles = muster_store::workspaces::delete(&mut tx, &org.id, &ws.id).await?;
    let ev = Event::new(&org.id, "workspace.deleted")
        .target("workspace", &ws.id)
        .detail("name", &ws.name)
        .detail("roles_removed", roles)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// One member and the roles it holds in the workspace.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub roles: Vec<HeldRole>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HeldRole {
    pub role: String,
    /// The group the role comes through (the IdP's group, for a linked SCIM
    /// group); absent when assigned to the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_group: Option<String>,
}

/// Who holds roles in the workspace. The default workspace also holds every
/// member of the organization, listed at `/users`. Members of the
/// workspace may see who else is in it; without `users.read` they see
/// guests' addresses masked.
pub async fn members(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<Vec<MemberView>> {
    let org = crate::caller::org(app, caller, slug).await?;
    let ws = find(app, &org.id, id).await?;
    let reads = match require_in_workspace(caller, &org.id, &ws.id, Permission::UsersRead) {
        Ok(()) => true,
        Err(e @ AppError::Forbidden(_)) => {
            let member = match caller.user_id() {
                Some(u) => access_of(app, &org.id, ws.clone(), u).await?.member,
                None => false,
            };
            if !member {
                return Err(e);
            }
            false
        }
        Err(e) => return Err(e),
    };
    let mut by_user: BTreeMap<(String, String), Vec<HeldRole>> = BTreeMap::new();
    for h in muster_store::workspaces::members(&app.db, &org.id, &ws.id).await? {
        let email = if reads || h.source != CreationSource::Guest.as_str() {
            h.email
        } else {
            crate::guests::mask(&h.email)
        };
        by_user
            .entry((email, h.user_id))
            .or_default()
            .push(HeldRole {
                role: h.role_key,
                via_group: h.group_id,
            });
    }
    Ok(by_user
        .into_iter()
        .map(|((email, user_id), roles)| MemberView {
            user_id,
            email,
            roles,
        })
        .collect())
}

/// A group linked to a workspace and the roles its members get there.
#[derive(Debug, Clone, Serialize)]
pub struct LinkedGroup {
    pub id: String,
    pub name: String,
    /// Provisioned by the organization's IdP over SCIM: its members follow
    /// the IdP.
    pub from_idp: bool,
    pub roles: Vec<String>,
}

/// The groups linked to the workspace (`users.read` there).
pub async fn linked_groups(
    app: &App,
    caller: &Caller,
    slug: &str,
    id: &str,
) -> Result<Vec<LinkedGroup>> {
    let org = crate::caller::org(app, caller, slug).await?;
    let ws = find(app, &org.id, id).await?;
    require_in_workspace(caller, &org.id, &ws.id, Permission::UsersRead)?;
    let mut out: Vec<LinkedGroup> = Vec::new();
    for (gid, name, managed_by, role) in
        muster_store::workspaces::linked_groups(&app.db, &org.id, &ws.id).await?
    {
        match out.last_mut() {
            Some(g) if g.id == gid => g.roles.push(role),
            _ => out.push(LinkedGroup {
                id: gid,
                name,
                from_idp: managed_by == muster_core::users::ManagedBy::Scim.as_str(),
                roles: vec![role],
            }),
        }
    }
    Ok(out)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    /// Role key or id; default `member`.
    #[serde(default)]
    pub role: Option<String>,
}

/// Adds a user (or, with `group`, a group: a SCIM group's members then
/// follow the IdP) to the workspace with a role. `roles.write` in the
/// workspace, and every permission of the role there, are needed.
pub async fn add(
    app: &App,
    caller: &Caller,
    slug: &str,
    id: &str,
    principal: Principal,
    input: RoleInput,
) -> Result<AssignmentView> {
    let org = crate::caller::org(app, caller, slug).await?;
    let ws = find(app, &org.id, id).await?;
    if ws.is_default {
        return Err(AppError::invalid(
            "id",
            "everyone is in the default workspace; give roles in it at /role-assignments",
        ));
    }
    let (user_id, group_id) = match principal {
        Principal::User(u) => (Some(u), None),
        Principal::Group(g) => (None, Some(g)),
    };
    let input = AssignmentInput {
        role: input.role.unwrap_or_else(|| "member".into()),
        user_id,
        group_id,
        scope: Some(Scope::Workspace(ws.id)),
    };
    crate::roles::assign(app, caller, slug, input).await
}

/// Who is added to or taken from a workspace.
#[derive(Debug, Clone)]
pub enum Principal {
    User(String),
    Group(String),
}

/// Takes a user's own roles in the workspace, or a group's, away: their
/// access through it ends on the next request.
pub async fn remove(
    app: &App,
    caller: &Caller,
    slug: &str,
    id: &str,
    principal: Principal,
) -> Result<()> {
    let org = crate::caller::org(app, caller, slug).await?;
    let ws = find(app, &org.id, id).await?;
    require_in_workspace(caller, &org.id, &ws.id, Permission::RolesWrite)?;
    let mut tx = app.db.begin().await?;
    let (n, kind, pid) = match &principal {
        Principal::User(u) => (
            muster_store::workspaces::remove_member(&mut tx, &org.id, &ws.id, u).await?,
            "user",
            u,
        ),
        Principal::Group(g) => (
            muster_store::workspaces::unlink_group(&mut tx, &org.id, &ws.id, g).await?,
            "group",
            g,
        ),
    };
    if n == 0 {
        return Err(AppError::NotFound("member"));
    }
    let ev = Event::new(&org.id, "workspace.member_removed")
        .target(kind, pid)
        .detail("workspace", &ws.id)
        .detail("roles_removed", n)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// A user's access in one workspace: what an application asks before it
/// lets someone act there.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Access {
    pub workspace: WorkspaceView,
    pub user_id: String,
    pub member: bool,
    pub roles: Vec<HeldRole>,
    /// Everything the user may do in the workspace: its roles there plus its
    /// organization-wide roles.
    pub permissions: Vec<Permission>,
}

/// What a user brings to every workspace: its organization-wide
/// permissions, whether it may sign in, whether it is a guest.
struct Standing {
    perms: PermissionSet,
    active: bool,
    guest: bool,
}

async fn standing(app: &App, org_id: &str, user_id: &str) -> Result<Standing> {
    let user = muster_store::users::get(&app.db, org_id, user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    Ok(Standing {
        perms: PermissionSet::from_stored(
            &muster_store::roles::org_permissions(&app.db, org_id, user_id).await?,
        ),
        active: muster_core::UserState::parse(&user.state)
            .is_some_and(muster_core::UserState::can_sign_in),
        guest: user.source == CreationSource::Guest.as_str(),
    })
}

/// The user's access in `ws`, from its standing and the roles it holds
/// there (`held`: this workspace's rows of `held_by`).
fn access_in(
    ws: WorkspaceRow,
    held: Vec<(String, String, String, Option<String>)>,
    st: &Standing,
    user_id: &str,
) -> Access {
    let mut perms = st.perms.clone();
    for (_, _, p, _) in &held {
        perms.extend(PermissionSet::from_stored(p).iter());
    }
    // Guests are in the workspaces they were invited into, not the default.
    let everyone = ws.is_default && !st.guest;
    let member = st.active && (everyone || !held.is_empty());
    Access {
        member,
        roles: held
            .into_iter()
            .map(|(_, role, _, group)| HeldRole {
                role,
                via_group: group,
            })
            .collect(),
        permissions: if member {
            perms.iter().collect()
        } else {
            Vec::new()
        },
        user_id: user_id.to_owned(),
        workspace: ws.into(),
    }
}

async fn access_of(app: &App, org_id: &str, ws: WorkspaceRow, user_id: &str) -> Result<Access> {
    let held = muster_store::workspaces::held_by(&app.db, org_id, user_id, Some(&ws.id)).await?;
    let st = standing(app, org_id, user_id).await?;
    Ok(access_in(ws, held, &st, user_id))
}

/// A workspace's id from its id or code (`users.read` there or
/// organization-wide), for filtering the user list by it.
pub async fn resolve(app: &App, caller: &Caller, slug: &str, id_or_code: &str) -> Result<String> {
    let org = crate::caller::org(app, caller, slug).await?;
    let ws = find(app, &org.id, id_or_code).await?;
    require_in_workspace(caller, &org.id, &ws.id, Permission::UsersRead)?;
    Ok(ws.id)
}

/// A user's access in a workspace (`users.read` there or organization-wide).
pub async fn access(
    app: &App,
    caller: &Caller,
    slug: &str,
    id: &str,
    user_id: &str,
) -> Result<Access> {
    let org = crate::caller::org(app, caller, slug).await?;
    let ws = find(app, &org.id, id).await?;
    require_in_workspace(caller, &org.id, &ws.id, Permission::UsersRead)?;
    if !muster_store::users::exists_in(&app.db, &org.id, user_id).await? {
        return Err(AppError::NotFound("user"));
    }
    access_of(app, &org.id, ws, user_id).await
}

/// The caller's own workspaces, with what it may do in each.
pub async fn mine(app: &App, caller: &Caller) -> Result<Vec<Access>> {
    let crate::Principal::User {
        org_id, user_id, ..
    } = &caller.principal
    else {
        return Err(AppError::NotFound("user"));
    };
    // Four queries whatever the number of workspaces.
    let held = muster_store::workspaces::held_by(&app.db, org_id, user_id, None).await?;
    let st = standing(app, org_id, user_id).await?;
    let mut out = Vec::new();
    for ws in muster_store::workspaces::list(&app.db, org_id).await? {
        let here: Vec<_> = held.iter().filter(|(w, ..)| *w == ws.id).cloned().collect();
        let a = access_in(ws, here, &st, user_id);
        if a.member {
            out.push(a);
        }
    }
    Ok(out)
}
