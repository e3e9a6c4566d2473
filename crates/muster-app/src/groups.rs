//! Groups: create, edit, delete, and membership of users and of other groups.

use crate::audit::{self, Event};
use crate::caller::org_with;
use crate::error::conflict;
use crate::paging::{Page, page_limit, paginate, parse_cursor, rfc3339};
use crate::{App, AppError, Caller, Result};
use muster_core::users::ManagedBy;
use muster_core::{GroupId, Permission};
use muster_store::groups::GroupRow;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub managed_by: ManagedBy,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    pub version: i64,
}

impl From<GroupRow> for GroupView {
    fn from(g: GroupRow) -> Self {
        Self {
            managed_by: ManagedBy::parse(&g.managed_by).unwrap_or(ManagedBy::Local),
            created_at: rfc3339(g.created_at),
            id: g.id,
            name: g.name,
            description: g.description,
            version: g.version,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// `user` or `group`.
    pub kind: String,
    pub id: String,
    /// The user's email or the group's name.
    pub display: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

fn validate(input: &GroupInput) -> Result<()> {
    let n = input.name.trim();
    if n.is_empty() || n.chars().count() > 128 || n.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "name",
            "give a name of 1 to 128 characters",
        ));
    }
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 1024)
    {
        return Err(AppError::invalid("description", "at most 1024 characters"));
    }
    Ok(())
}

const GROUP_CONFLICTS: &[(&str, &str, &str)] =
    &[("name", "name", "a group with this name already exists")];

pub async fn create(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    input: GroupInput,
) -> Result<GroupView> {
    let org = org_with(app, caller, org_slug, Permission::GroupsWrite).await?;
    validate(&input)?;
    let now = app.now_ms();
    let row = GroupRow {
        id: GroupId::new().to_string(),
        org_id: org.id.clone(),
        name: input.name.trim().to_owned(),
        description: input.description,
        external_id: None,
        managed_by: ManagedBy::Local.as_str().into(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let mut tx = app.db.begin().await?;
    muster_store::groups::insert(&mut tx, &row)
        .await
        .map_err(|e| conflict(e, GROUP_CONFLICTS))?;
    audit::record(
        app,
        &mut tx,
        caller,
        Event::new(&org.id, "group.created")
            .target("group", &row.id)
            .change("name", (), &row.name),
    )
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

pub async fn get(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<GroupView> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    Ok(muster_store::groups::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("group"))?
        .into())
}

pub async fn list(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    cursor: Option<String>,
    limit: Option<i64>,
) -> Result<Page<GroupView>> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    let limit = page_limit(limit)?;
    let rows = muster_store::groups::list(
        &app.db,
        &org.id,
        parse_cursor(cursor)?.as_deref(),
        limit + 1,
    )
    .await?;
    paginate(rows, limit, |g| g.id.clone(), |g| Ok(g.into()))
}

pub async fn update(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
    input: GroupInput,
) -> Result<GroupView> {
    let org = org_with(app, caller, org_slug, Permission::GroupsWrite).await?;
    validate(&input)?;
    let mut tx = app.db.begin().await?;
    let mut row = muster_store::groups::get_in(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("group"))?;
    let ev = Event::new(&org.id, "group.updated")
        .target("group", id)
        .change("name", &row.name, input.name.trim())
        .change("description", &row.description, &input.description);
    row.name = input.name.trim().to_owned();
    row.description = input.description;
    row.updated_at = app.now_ms();
    muster_store::groups::update(&mut tx, &row)
        .await
        .map_err(|e| conflict(e, GROUP_CONFLICTS))?;
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    row.version += 1;
    Ok(row.into())
}

pub async fn delete(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<()> {
    let org = org_with(app, caller, org_slug, Permission::GroupsWrite).await?;
    let mut tx = app.db.begin().await?;
    let row = muster_store::groups::get_in(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("group"))?;
    muster_store::groups::delete(&mut tx, &org.id, id).await?;
    audit::record(
        app,
        &mut tx,
        caller,
        Event::new(&org.id, "group.deleted")
            .target("group", id)
            .change("name", &row.name, ())
            .security(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The groups a user belongs to directly (`users.read` reaching the user;
/// a user of another organization is not found).
pub async fn of_user(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    user_id: &str,
) -> Result<Vec<crate::roles::GroupRef>> {
    crate::users::get(app, caller, org_slug, user_id).await?;
    Ok(muster_store::groups::of_user(&app.db, user_id)
        .await?
        .into_iter()
        .map(|(id, name)| crate::roles::GroupRef { id, name })
        .collect())
}

pub async fn members(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
) -> Result<Vec<MemberView>> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    muster_store::groups::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("group"))?;
    Ok(muster_store::groups::members(&app.db, id)
        .await?
        .into_iter()
        .map(|m| MemberView {
            kind: m.kind,
            id: m.id,
            display: m.display,
        })
        .collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
}

/// Adds a user or a group to a group; a nesting that would close a cycle is
/// refused. Returns false when the member was there already.
pub async fn add_member(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    group_id: &str,
    kind: MemberKind,
    member_id: &str,
) -> Result<bool> {
    change_member(app, caller, org_slug, group_id, kind, member_id, true).await
}

pub async fn remove_member(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    group_id: &str,
    kind: MemberKind,
    member_id: &str,
) -> Result<bool> {
    change_member(app, caller, org_slug, group_id, kind, member_id, false).await
}

async fn change_member(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    group_id: &str,
    kind: MemberKind,
    member_id: &str,
    add: bool,
) -> Result<bool> {
    let org = org_with(app, caller, org_slug, Permission::GroupsWrite).await?;
    let mut tx = app.db.begin().await?;
    // Nesting checks read the whole tree; concurrent edits must not interleave.
    tx.lock_org(&org.id).await?;
    muster_store::groups::get_in(&mut tx, &org.id, group_id)
        .await?
        .ok_or(AppError::NotFound("group"))?;
    let changed = member_change_in(
        app, &mut tx, caller, &org.id, group_id, kind, member_id, add,
    )
    .await?;
    if changed {
        tx.commit().await?;
    }
    Ok(changed)
}

/// Adds or removes one member inside the caller's transaction (which holds the
/// organization's lock), with its checks and its audit event: the one path
/// for membership changes from the API and from SCIM.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn member_change_in(
    app: &App,
    tx: &mut muster_store::Tx,
    caller: &Caller,
    org_id: &str,
    group_id: &str,
    kind: MemberKind,
    member_id: &str,
    add: bool,
) -> Result<bool> {
    let changed = match kind {
        MemberKind::User => {
            if !muster_store::users::exists(tx, org_id, member_id).await? {
                return Err(AppError::NotFound("user"));
            }
            if add {
                muster_store::groups::add_user(tx, group_id, member_id).await?
            } else {
                muster_store::groups::remove_user(tx, group_id, member_id).await?
            }
        }
        MemberKind::Group => {
            muster_store::groups::get_in(tx, org_id, member_id)
                .await?
                .ok_or(AppError::NotFound("group"))?;
            if add {
                if muster_store::groups::contains_transitively(tx, member_id, group_id).await? {
                    return Err(AppError::Conflict {
                        field: "member",
                        message: "adding this group would make a cycle of nested groups".into(),
                    });
                }
                muster_store::groups::add_child(tx, group_id, member_id).await?
            } else {
                muster_store::groups::remove_child(tx, group_id, member_id).await?
            }
        }
    };
    if changed {
        let action = if add {
            "group.member_added"
        } else {
            "group.member_removed"
        };
        let k = if kind == MemberKind::User {
            "user"
        } else {
            "group"
        };
        let ev = Event::new(org_id, action)
            .target("group", group_id)
            .detail("member", serde_json::json!({ "kind": k, "id": member_id }))
            .security();
        audit::record(app, tx, caller, ev).await?;
    }
    Ok(changed)
}
