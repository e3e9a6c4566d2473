//! Organizational units (issue 7 §1, DESIGN.md §1 "Organization
//! structure"): a tree per organization whose root is the organization
//! itself. Every user is in exactly one unit (the root unless placed
//! elsewhere); policies set on a unit hold for its subtree (`policies`);
//! roles scoped to a unit reach its subtree (`caller::reach`).
//!
//! Structure changes take the organization's lock, so two concurrent moves
//! cannot build a cycle between them, and end with the store's `refresh` of
//! every unit's effective settings, in the same transaction.

pub mod policies;

use crate::audit::{self, Event};
use crate::caller::{Reach, org_reach};
use crate::guard::OrgPolicies;
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;
use muster_store::org_units::OrgUnitRow;
use muster_store::orgs::OrgRow;
use muster_store::users::UserRow;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgUnitView {
    pub id: String,
    pub name: String,
    /// `null` for the root, which stands for the organization.
    pub parent_id: Option<String>,
    /// The ids from the root down to this unit, itself included.
    pub path: Vec<String>,
    /// The policies this unit sets for its subtree (the rest it inherits).
    pub policies_set: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

impl From<&OrgUnitRow> for OrgUnitView {
    fn from(r: &OrgUnitRow) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            parent_id: r.parent_id.clone(),
            path: r
                .path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            policies_set: policies::names_set(&r.policies),
            created_at: crate::paging::rfc3339(r.created_at),
            updated_at: crate::paging::rfc3339(r.updated_at),
        }
    }
}

/// The units the caller can see: all of them, or the subtrees its scoped
/// roles reach.
pub async fn list(app: &App, caller: &Caller, slug: &str) -> Result<Vec<OrgUnitView>> {
    let (org, reach) = org_reach(app, caller, slug, Permission::UsersRead).await?;
    let rows = muster_store::org_units::list(&app.db, &org.id).await?;
    Ok(rows
        .iter()
        .filter(|r| reach.covers(&r.path))
        .map(OrgUnitView::from)
        .collect())
}

pub async fn get(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<OrgUnitView> {
    let (org, reach) = org_reach(app, caller, slug, Permission::UsersRead).await?;
    Ok((&visible(app, &org.id, id, &reach).await?).into())
}

/// The unit, if it is in this organization and within reach; otherwise
/// `NotFound`, the same for another organization's unit as for none.
pub(crate) async fn visible(
    app: &App,
    org_id: &str,
    id: &str,
    reach: &Reach,
) -> Result<OrgUnitRow> {
    muster_store::org_units::get(&app.db, org_id, id)
        .await?
        .filter(|u| reach.covers(&u.path))
        .ok_or(AppError::NotFound("organizational unit"))
}

/// A unit inside the caller's transaction, if within reach; `None`
/// otherwise (the caller says which error that is).
async fn reachable_in(
    tx: &mut muster_store::Tx,
    org_id: &str,
    id: &str,
    reach: &Reach,
) -> Result<Option<OrgUnitRow>> {
    Ok(muster_store::org_units::get_in(tx, org_id, id)
        .await?
        .filter(|u| reach.covers(&u.path)))
}

/// A unit named as where something goes: unknown is bad input.
fn no_such(field: &'static str) -> impl FnOnce() -> AppError {
    move || AppError::invalid(field, "no such organizational unit")
}

fn sibling_conflict(e: muster_store::StoreError) -> AppError {
    crate::error::conflict(
        e,
        &[(
            "org_units",
            "name",
            "another unit under the same parent has this name",
        )],
    )
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrgUnit {
    pub name: String,
    /// Default: the root.
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// Creates a unit under `parent_id` (`users.write` reaching the parent).
pub async fn create(
    app: &App,
    caller: &Caller,
    slug: &str,
    input: NewOrgUnit,
) -> Result<OrgUnitView> {
    let (org, reach) = org_reach(app, caller, slug, Permission::UsersWrite).await?;
    let name = crate::orgs::valid_name(&input.name)?;
    let parent_id = input.parent_id.unwrap_or_else(|| org.id.clone());
    let mut tx = app.db.begin().await?;
    tx.lock_org(&org.id).await?;
    let parent = reachable_in(&mut tx, &org.id, &parent_id, &reach)
        .await?
        .ok_or_else(no_such("parent_id"))?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = app.now_ms();
    let row = OrgUnitRow {
        path: format!("{}{id}/", parent.path),
        id,
        org_id: org.id.clone(),
        parent_id: Some(parent.id.clone()),
        name,
        policies: "{}".into(),
        created_at: now,
        updated_at: now,
    };
    muster_store::org_units::insert(&mut tx, &row)
        .await
        .map_err(sibling_conflict)?;
    refresh(&mut tx, &org.id).await?;
    let ev = Event::new(&org.id, "org_unit.created")
        .target("org_unit", &row.id)
        .detail("name", &row.name)
        .detail("parent_id", &parent.id);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok((&row).into())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgUnitUpdate {
    #[serde(default)]
    pub name: Option<String>,
    /// Moves the unit, with its subtree, under this one.
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// Renames and/or moves a unit. A move under the unit itself or one of its
/// descendants is refused, as is moving the root.
pub async fn update(
    app: &App,
    caller: &Caller,
    slug: &str,
    id: &str,
    input: OrgUnitUpdate,
) -> Result<OrgUnitView> {
    let (org, reach) = org_reach(app, caller, slug, Permission::UsersWrite).await?;
    let name = input
        .name
        .as_deref()
        .map(crate::orgs::valid_name)
        .transpose()?;
    let mut tx = app.db.begin().await?;
    tx.lock_org(&org.id).await?;
    let unit = reachable_in(&mut tx, &org.id, id, &reach)
        .await?
        .ok_or(AppError::NotFound("organizational unit"))?;
    let now = app.now_ms();
    let mut ev = Event::new(&org.id, "org_unit.updated").target("org_unit", &unit.id);
    if let Some(n) = &name
        && *n != unit.name
    {
        muster_store::org_units::rename(&mut tx, &org.id, &unit.id, n, now)
            .await
            .map_err(sibling_conflict)?;
        ev = ev.change("name", &unit.name, n);
    }
    if let Some(p) = &input.parent_id
        && Some(p) != unit.parent_id.as_ref()
    {
        if unit.parent_id.is_none() {
            return Err(AppError::invalid(
                "parent_id",
                "the root unit cannot be moved",
            ));
        }
        let parent = reachable_in(&mut tx, &org.id, p, &reach)
            .await?
            .ok_or_else(no_such("parent_id"))?;
        if unit.contains(&parent.path) {
            return Err(AppError::Conflict {
                field: "parent_id",
                message: "a unit cannot move under itself or one of its own units".into(),
            });
        }
        // The unique sibling index refuses a name the new parent has.
        muster_store::org_units::move_under(&mut tx, &unit, &parent, now)
            .await
            .map_err(sibling_conflict)?;
        ev = ev.change("parent_id", &unit.parent_id, &parent.id);
        refresh(&mut tx, &org.id).await?;
    }
    if !ev.changes.is_empty() {
        audit::record(app, &mut tx, caller, ev).await?;
    }
    let row = muster_store::org_units::get_in(&mut tx, &org.id, &unit.id)
        .await?
        .ok_or(AppError::NotFound("organizational unit"))?;
    tx.commit().await?;
    Ok((&row).into())
}

/// Deletes a unit that holds nothing: no units, users or scoped roles.
pub async fn delete(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<()> {
    let (org, reach) = org_reach(app, caller, slug, Permission::UsersWrite).await?;
    let mut tx = app.db.begin().await?;
    tx.lock_org(&org.id).await?;
    let unit = reachable_in(&mut tx, &org.id, id, &reach)
        .await?
        .ok_or(AppError::NotFound("organizational unit"))?;
    if unit.parent_id.is_none() {
        return Err(AppError::Refused(
            "the root unit is the organization itself and cannot be deleted".into(),
        ));
    }
    let (units, users, roles) = muster_store::org_units::contents(&mut tx, &org.id, id).await?;
    if units + users + roles > 0 {
        return Err(AppError::Conflict {
            field: "id",
            message: format!(
                "the unit is not empty: {units} unit(s), {users} user(s) and {roles} role assignment(s) scoped to it; move or remove them first"
            ),
        });
    }
    muster_store::org_units::delete(&mut tx, &org.id, id).await?;
    let ev = Event::new(&org.id, "org_unit.deleted")
        .target("org_unit", id)
        .detail("name", &unit.name);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// Moves a user into a unit: `users.write` must reach both where the user
/// is and where it goes.
pub async fn place_user(
    app: &App,
    caller: &Caller,
    slug: &str,
    user_id: &str,
    unit_id: &str,
) -> Result<crate::users::UserView> {
    let (org, reach) = org_reach(app, caller, slug, Permission::UsersWrite).await?;
    let mut tx = app.db.begin().await?;
    tx.lock_org(&org.id).await?;
    let from = muster_store::org_units::of_user_in(&mut tx, &org.id, user_id)
        .await?
        .filter(|u| reach.covers(&u.path))
        .ok_or(AppError::NotFound("user"))?;
    let to = reachable_in(&mut tx, &org.id, unit_id, &reach)
        .await?
        .ok_or_else(no_such("org_unit_id"))?;
    if from.id != to.id {
        muster_store::org_units::place_user(&mut tx, &org.id, user_id, &to).await?;
        let ev = Event::new(&org.id, "user.moved")
            .target("user", user_id)
            .change("org_unit", &from.id, &to.id)
            .security();
        audit::record(app, &mut tx, caller, ev).await?;
    }
    let row = muster_store::users::get_for_update(&mut tx, &org.id, user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    tx.commit().await?;
    row.try_into()
}

/// Where a new user goes: the unit asked for, if within reach (`None` for
/// the root, as stored). An admin whose roles reach only some units must
/// say which.
pub(crate) async fn placement(
    app: &App,
    org_id: &str,
    asked: Option<&str>,
    reach: &Reach,
) -> Result<Option<String>> {
    let unit = match (asked, reach) {
        (None, Reach::Organization) => return Ok(None),
        (None, Reach::Within(_)) => {
            return Err(AppError::invalid(
                "org_unit_id",
                "your roles reach only some organizational units: say which one the user goes into",
            ));
        }
        (Some(id), _) => visible(app, org_id, id, reach)
            .await
            .map_err(|_| AppError::invalid("org_unit_id", "no such organizational unit"))?,
    };
    Ok(unit.parent_id.is_some().then_some(unit.id))
}

/// Recomputes every unit's effective settings from the organization's.
async fn refresh(tx: &mut muster_store::Tx, org_id: &str) -> Result<()> {
    let org = muster_store::orgs::get_in(tx, org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    muster_store::org_units::refresh(tx, org_id, &org.settings).await?;
    Ok(())
}

/// The settings that hold for a user: its unit's effective settings (the
/// organization's for a user in the root).
pub(crate) async fn settings_of(app: &App, org_id: &str, user_id: &str) -> Result<String> {
    match muster_store::org_units::effective_of_user(&app.db, org_id, user_id).await? {
        Some(s) => Ok(s),
        None => Ok(muster_store::orgs::by_id(&app.db, org_id)
            .await?
            .ok_or(AppError::NotFound("organization"))?
            .settings),
    }
}

/// One policy that holds in a unit (`None`: the root), or its default.
pub(crate) async fn unit_setting<T>(
    app: &App,
    org_id: &str,
    unit: Option<&str>,
    key: &str,
) -> Result<T>
where
    T: serde::de::DeserializeOwned + Default,
{
    match unit {
        Some(id) => {
            let text = muster_store::org_units::effective(&app.db, org_id, id)
                .await?
                .ok_or(AppError::NotFound("organizational unit"))?;
            Ok(crate::signin::setting_in(&text, key))
        }
        None => crate::orgs::setting(app, org_id, key).await,
    }
}

/// One policy that holds for a user, or its default.
pub(crate) async fn setting_of<T>(app: &App, org_id: &str, user_id: &str, key: &str) -> Result<T>
where
    T: serde::de::DeserializeOwned + Default,
{
    Ok(crate::signin::setting_in(
        &settings_of(app, org_id, user_id).await?,
        key,
    ))
}

/// The compiled policies that hold for a user (a cache hit for a user in the
/// root: the organization's row is at hand).
pub(crate) async fn policies_for(
    app: &App,
    org: &OrgRow,
    user: &UserRow,
) -> Result<Arc<OrgPolicies>> {
    if user.ou_id.is_none() {
        return Ok(app.policies.get(&org.id, &org.settings));
    }
    let text = settings_of(app, &org.id, &user.id).await?;
    Ok(app.policies.get(&org.id, &text))
}
