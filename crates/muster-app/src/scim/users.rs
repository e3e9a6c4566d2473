//! SCIM `/Users` (RFC 7644 §3.3–§3.6): create, read, list, replace, patch,
//! delete. `active` goes through `users::transition`, the same function as the
//! admin action, so deactivation ends every session and token before the
//! response. Writes are optimistic: a concurrent change makes the write
//! re-read and re-apply, so no update is lost.

pub use super::user_create::{create, create_many};
use super::{ListParams, MAX_SCAN, Plan, Preconditions, policy, too_many};
use crate::audit::{self, Event};
use crate::caller::{OrgRef, org_with};
use crate::error::conflict;
use crate::paging::rfc3339;
use crate::users::USER_CONFLICTS;
use crate::{App, AppError, Caller, Principal, Result};
use muster_core::users::{ManagedBy, Profile};
use muster_core::{LifecycleEvent, Permission, UserState};
use muster_scim::filter::{CompValue, CompareOp, Filter};
use muster_scim::project::Projection;
use muster_scim::resources::{AccessDates, UserDoc, UserInput, canonical, parse_user, render_user};
use muster_scim::schema::Resource;
use muster_scim::{ScimError, patch};
use muster_store::users::{Lookup, UserRow};
use serde_json::Value;

/// The caller's organization (a SCIM token names exactly one).
pub(crate) async fn scim_org(app: &App, caller: &Caller, perm: Permission) -> Result<OrgRef> {
    let slug = match &caller.principal {
        Principal::ScimToken { org_slug, .. } | Principal::User { org_slug, .. } => {
            org_slug.clone()
        }
        Principal::Operator { .. } | Principal::Anonymous { .. } => {
            return Err(AppError::Unauthenticated);
        }
    };
    org_with(app, caller, &slug, perm).await
}

fn active(state: &str) -> bool {
    !matches!(
        UserState::parse(state),
        Some(UserState::Deactivated | UserState::Suspended)
    )
}

pub(crate) fn render(
    base: &str,
    row: &UserRow,
    groups: Option<&[(String, String)]>,
    dates: AccessDates,
) -> Value {
    let profile: Profile = serde_json::from_str(&row.profile).unwrap_or_default();
    render_user(&UserDoc {
        base,
        id: &row.id,
        user_name: &row.user_name,
        email: &row.email,
        active: active(&row.state),
        profile: &profile,
        created: &rfc3339(row.created_at),
        last_modified: &rfc3339(row.updated_at),
        version: row.version,
        groups,
        dates,
    })
}

async fn render_full(app: &App, base: &str, row: &UserRow, p: &Projection) -> Result<Value> {
    let groups = if p.wants(Resource::User, "groups") {
        Some(muster_store::groups::of_user(&app.db, &row.id).await?)
    } else {
        None
    };
    let dates = super::dates::pending_one(app, &row.org_id, &row.id).await?;
    Ok(render(base, row, groups.as_deref(), dates))
}

pub async fn get(
    app: &App,
    caller: &Caller,
    base: &str,
    id: &str,
    p: &Projection,
) -> Result<Value> {
    let org = scim_org(app, caller, Permission::UsersRead).await?;
    let row = visible(app, &org.id, id).await?;
    Ok(p.apply(Resource::User, render_full(app, base, &row, p).await?))
}

/// The user, unless it does not exist or the IdP deleted it.
pub(super) async fn visible(app: &App, org_id: &str, id: &str) -> Result<UserRow> {
    muster_store::users::lookup(&app.db, org_id, &Lookup::Id(id.to_owned()))
        .await?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound("user"))
}

/// An indexed equality in the filter's top-level conjunction, if any.
fn narrowing(f: &Filter) -> Option<Lookup> {
    match f {
        Filter::And(a, b) => narrowing(a).or_else(|| narrowing(b)),
        Filter::Compare(p, CompareOp::Eq, CompValue::Str(v)) => {
            let name = p.name.to_ascii_lowercase();
            let sub = p.sub.as_deref().map(str::to_ascii_lowercase);
            match (name.as_str(), sub.as_deref()) {
                ("id", None) => Some(Lookup::Id(v.clone())),
                ("username", None) => Some(Lookup::UserName(v.clone())),
                ("externalid", None) => Some(Lookup::ExternalId(v.clone())),
                _ => None,
            }
        }
        _ => None,
    }
}

pub async fn list(app: &App, caller: &Caller, base: &str, params: &ListParams) -> Result<Value> {
    let org = scim_org(app, caller, Permission::UsersRead).await?;
    let plan = Plan::new(Resource::User, params)?;
    let want_groups = plan.projection.wants(Resource::User, "groups");
    let org_id = org.id.as_str();
    let load = |rows: Vec<UserRow>| async move {
        let mut docs = Vec::with_capacity(rows.len());
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let mut dates = super::dates::pending(app, org_id, &ids).await?;
        for r in &rows {
            let groups = if want_groups {
                Some(muster_store::groups::of_user(&app.db, &r.id).await?)
            } else {
                None
            };
            let d = dates.remove(&r.id).unwrap_or_default();
            docs.push(render(base, r, groups.as_deref(), d));
        }
        Ok::<_, AppError>(docs)
    };
    let Some(f) = &plan.filter else {
        if plan.sort.is_none() {
            // The common unfiltered listing pages in the database.
            use muster_store::users::PageStart;
            let start = match &plan.cursor {
                Some(after) => PageStart::After((!after.is_empty()).then(|| after.clone())),
                None => PageStart::Offset(plan.start as i64 - 1),
            };
            // One row more than asked tells a cursor whether a next page exists.
            let extra = i64::from(plan.cursor.is_some() && plan.count > 0);
            let page =
                muster_store::users::scim_page(&app.db, &org.id, &start, plan.count as i64 + extra)
                    .await?;
            let mut rows = page.rows;
            let more = rows.len() > plan.count;
            rows.truncate(plan.count);
            let next = (plan.cursor.is_some() && more)
                .then(|| rows.last().map(|r| r.id.clone()))
                .flatten();
            let docs = load(rows).await?;
            return Ok(plan.response(Resource::User, page.total as usize, docs, next));
        }
        return plan.finish(Resource::User, load(scan(app, &org.id).await?).await?);
    };
    let rows = match narrowing(f) {
        Some(by) => muster_store::users::lookup(&app.db, &org.id, &by).await?,
        None => scan(app, &org.id).await?,
    };
    plan.finish(Resource::User, load(rows).await?)
}

/// Every user of the organization, in id order, for filters no index serves.
async fn scan(app: &App, org_id: &str) -> Result<Vec<UserRow>> {
    if muster_store::users::count_scim(&app.db, org_id).await? > MAX_SCAN {
        return Err(too_many());
    }
    let mut out = Vec::new();
    let mut q = muster_store::users::ListQuery {
        limit: 1000,
        scim_visible: true,
        ..Default::default()
    };
    loop {
        let rows = muster_store::users::list(&app.db, org_id, &q).await?;
        let done = rows.len() < 1000;
        q.after = rows.last().map(|r| r.id.clone());
        out.extend(rows);
        if done {
            return Ok(out);
        }
    }
}

pub(super) async fn hash_password(
    app: &App,
    org_id: &str,
    user_id: Option<&str>,
    input: &UserInput,
) -> Result<Option<String>> {
    match &input.password {
        Some(pw) => {
            let policy = crate::policies::password_policy(app, org_id, user_id).await?;
            policy.check(pw).map_err(|e| match e {
                AppError::Invalid { message, .. } => {
                    ScimError::value(format!("password: {message}")).into()
                }
                other => other,
            })?;
            Ok(Some(app.hasher.hash(pw.clone()).await?))
        }
        None => Ok(None),
    }
}

/// What the IdP wrote, as stored for drift: the document without what is
/// not the IdP's (id, meta, the password).
pub(super) fn idp_values(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Some(o) = d.as_object_mut() {
        // The dates are schedule, not profile: drift does not cover them.
        for k in [
            "id",
            "meta",
            "schemas",
            "password",
            "groups",
            muster_scim::schema::LIFECYCLE,
        ] {
            o.remove(k);
        }
    }
    d.to_string()
}

pub(super) fn apply_input(
    row: &mut UserRow,
    input: UserInput,
    hash: Option<String>,
    keep_custom: bool,
) {
    let mut profile = input.profile;
    if keep_custom {
        let old: Profile = serde_json::from_str(&row.profile).unwrap_or_default();
        profile.custom_attributes = old.custom_attributes;
    }
    if input.email.as_str() != row.email {
        row.email_verified = false;
    }
    row.email = input.email.as_str().to_owned();
    row.user_name = input.user_name;
    row.display_name = profile.display_name.clone();
    row.given_name = profile.given_name.clone();
    row.family_name = profile.family_name.clone();
    row.external_id = profile.external_id.clone();
    row.profile = serde_json::to_string(&profile).unwrap_or_else(|_| "{}".into());
    row.managed_by = ManagedBy::Scim.as_str().into();
    if hash.is_some() {
        row.password_hash = hash;
    }
}

pub(super) async fn check_manager(
    app: &App,
    org_id: &str,
    id: Option<&str>,
    input: &UserInput,
) -> Result<()> {
    if let Some(m) = &input.profile.enterprise.manager
        && (Some(m.as_str()) == id || !muster_store::users::exists_in(&app.db, org_id, m).await?)
    {
        return Err(ScimError::value(format!(
            "manager: '{m}' is not another user of this organization"
        ))
        .into());
    }
    Ok(())
}

/// Unique-constraint conflicts as SCIM `uniqueness` errors (409).
pub(super) fn uniqueness(e: AppError) -> AppError {
    match e {
        AppError::Conflict { field, .. } => {
            let what = match field {
                "email" => "emails: a user of this organization has this email",
                "user_name" => "userName: a user of this organization has this userName",
                "external_id" => "externalId: a user of this organization has this externalId",
                _ => "a user of this organization has the same unique value",
            };
            ScimError::uniqueness(what).into()
        }
        other => other,
    }
}

/// `active` as the IdP set it, through the one lifecycle path.
pub(super) async fn set_active(
    app: &App,
    caller: &Caller,
    org: &OrgRef,
    id: &str,
    state: UserState,
    active: Option<bool>,
) -> Result<()> {
    let event = match (active, state) {
        (Some(false), UserState::Deactivated) => None,
        (Some(false), _) => Some(LifecycleEvent::Deactivate),
        (Some(true), UserState::Deactivated) => Some(LifecycleEvent::Reactivate),
        (Some(true), UserState::Suspended) => Some(LifecycleEvent::Unsuspend),
        _ => None,
    };
    if let Some(ev) = event {
        crate::users::transition(app, caller, &org.slug, id, ev).await?;
    }
    Ok(())
}

/// The one write path of PUT, PATCH and linking: re-read, edit the SCIM
/// document, store it if the version did not move meanwhile, else retry.
#[allow(clippy::too_many_arguments)]
pub(super) async fn write(
    app: &App,
    caller: &Caller,
    base: &str,
    org: &OrgRef,
    id: &str,
    pre: &Preconditions,
    action: Option<&str>,
    revive: bool,
    edit: impl Fn(Value) -> Result<Value>,
) -> Result<Value> {
    for _ in 0..8 {
        let row = if revive {
            muster_store::users::get(&app.db, &org.id, id)
                .await?
                .ok_or(AppError::NotFound("user"))?
        } else {
            visible(app, &org.id, id).await?
        };
        pre.check(row.version)?;
        let current = super::dates::pending_one(app, &org.id, id).await?;
        let before = render(base, &row, None, current);
        let next = edit(before.clone())?;
        let input = parse_user(&next)?;
        let dates = super::dates::settle(app, &org.id, Some(id), current, input.dates).await?;
        check_manager(app, &org.id, Some(id), &input).await?;
        let hash = hash_password(app, &org.id, Some(id), &input).await?;
        let wants_active = input.active;
        let mut new_row = row.clone();
        apply_input(&mut new_row, input, hash, true);
        new_row.updated_at = app.now_ms();
        let after = render(base, &new_row, None, dates);
        let mut ev = Event::new(&org.id, action.unwrap_or("user.updated")).target("user", id);
        for (k, b) in before.as_object().into_iter().flatten() {
            if matches!(k.as_str(), "meta" | "active") {
                continue;
            }
            if after.get(k) != Some(b) {
                ev = ev.change(k, b, after.get(k));
            }
        }
        for (k, a) in after.as_object().into_iter().flatten() {
            if !before.as_object().is_some_and(|o| o.contains_key(k)) {
                ev = ev.change(k, (), a);
            }
        }
        if new_row.password_hash != row.password_hash {
            ev = ev.detail("password", "set by the IdP").security();
        }
        let state = UserState::parse(&row.state).unwrap_or(UserState::Active);
        let changed =
            !ev.changes.is_empty() || action.is_some() || row.managed_by != new_row.managed_by;
        if changed {
            let mut tx = app.db.begin().await?;
            if !muster_store::users::update_if_version(&mut tx, &new_row, row.version)
                .await
                .map_err(|e| uniqueness(conflict(e, USER_CONFLICTS)))?
            {
                continue; // someone else wrote first: re-read and re-apply
            }
            muster_store::scim::set_idp_values(&mut tx, &org.id, id, &idp_values(&next)).await?;
            if dates != current {
                let now = app.now_ms();
                crate::scheduler::replace_dates(&mut tx, &org.id, id, dates.start, dates.end, now)
                    .await?;
            }
            if revive {
                muster_store::scim::set_hidden(&mut tx, &org.id, id, false).await?;
            }
            audit::record(app, &mut tx, caller, ev).await?;
            tx.commit().await?;
        }
        set_active(app, caller, org, id, state, wants_active).await?;
        let row = muster_store::users::get(&app.db, &org.id, id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let dates = super::dates::pending_one(app, &org.id, id).await?;
        return Ok(render(base, &row, None, dates));
    }
    Err(AppError::Conflict {
        field: "version",
        message: "the user is being changed by others; try again".into(),
    })
}

pub async fn replace(
    app: &App,
    caller: &Caller,
    base: &str,
    id: &str,
    body: Value,
    pre: &Preconditions,
) -> Result<Value> {
    let org = scim_org(app, caller, Permission::UsersWrite).await?;
    let doc = canonical(Resource::User, body)?;
    write(app, caller, base, &org, id, pre, None, false, |current| {
        // PUT replaces everything the client may write; `active` left out
        // keeps the current state rather than deactivating.
        let mut d = doc.clone();
        if let (Some(o), Some(a)) = (d.as_object_mut(), current.get("active"))
            && !o.contains_key("active")
        {
            o.insert("active".into(), a.clone());
        }
        super::dates::keep_if_absent(&current, &mut d);
        Ok(d)
    })
    .await
}

pub async fn patch(
    app: &App,
    caller: &Caller,
    base: &str,
    id: &str,
    body: Value,
    pre: &Preconditions,
) -> Result<Value> {
    let org = scim_org(app, caller, Permission::UsersWrite).await?;
    let ops = patch::parse(&body)?;
    write(
        app,
        caller,
        base,
        &org,
        id,
        pre,
        None,
        false,
        |mut current| {
            patch::apply(Resource::User, &mut current, &ops)?;
            Ok(current)
        },
    )
    .await
}

/// DELETE as the organization's SCIM policy says: deactivate (the default),
/// or deactivate and then delete for good.
pub async fn delete(app: &App, caller: &Caller, id: &str, pre: &Preconditions) -> Result<()> {
    let org = scim_org(app, caller, Permission::UsersLifecycle).await?;
    let row = visible(app, &org.id, id).await?;
    pre.check(row.version)?;
    if row.state != UserState::Deactivated.as_str() {
        crate::users::transition(app, caller, &org.slug, id, LifecycleEvent::Deactivate).await?;
    }
    let mut kept = "deactivate: the account and its history are kept";
    if policy(app, &org.id).await?.delete == super::DeleteAction::Delete {
        // An IdP retries a DELETE that fails, forever: a legal hold turns
        // the deletion into the deactivate policy instead, on the record.
        if muster_store::erasure::read_legal_hold(&app.db, &org.id, id)
            .await?
            .is_none()
        {
            crate::users::transition(app, caller, &org.slug, id, LifecycleEvent::Delete).await?;
            return Ok(());
        }
        kept = "delete withheld: the account is on legal hold, so it is deactivated and kept";
    }
    let mut tx = app.db.begin().await?;
    muster_store::scim::set_hidden(&mut tx, &org.id, id, true).await?;
    let ev = Event::new(&org.id, "scim.user_deleted")
        .target("user", id)
        .detail("policy", kept);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// An attribute the IdP manages whose local value differs from what the IdP
/// last wrote: the IdP's next write of it will replace the local value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Drift {
    /// SCIM attribute path, e.g. `title`, `name.givenName`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`.
    pub attribute: String,
    #[schema(value_type = Object)]
    pub idp_value: Value,
    /// `null` when the attribute was removed locally.
    #[schema(value_type = Object)]
    pub local_value: Value,
}

/// Flattens a SCIM document into attribute paths: objects recurse (with the
/// extension URN joined by ':'), lists and scalars are leaves.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            for (k, inner) in o {
                let path = if prefix.is_empty() {
                    k.clone()
                } else if muster_scim::schema::SCHEMA_URNS.contains(&prefix) {
                    format!("{prefix}:{k}")
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, inner, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn lookup_path(doc: &Value, path: &str) -> Value {
    let mut all = Vec::new();
    flatten("", doc, &mut all);
    all.into_iter()
        .find(|(p, _)| p == path)
        .map(|(_, v)| v)
        .unwrap_or(Value::Null)
}

/// `GET /api/v1/orgs/{org}/users/{id}/drift`: the local values the IdP will
/// overwrite at its next write.
pub async fn drift(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<Vec<Drift>> {
    Ok(managed(app, caller, org_slug, id)
        .await?
        .into_iter()
        .filter(|d| d.local_value != d.idp_value)
        .collect())
}

/// Every attribute the organization's IdP manages on the user (each one it
/// last wrote over SCIM, `active` aside), with its value and the local one:
/// where they differ, the next SCIM write overwrites the local value.
pub async fn managed(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<Vec<Drift>> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    let row = muster_store::users::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let Some(stored) = muster_store::scim::idp_values_of(&app.db, &org.id, id).await? else {
        return Ok(vec![]);
    };
    let idp: Value = serde_json::from_str(&stored).unwrap_or(Value::Null);
    let local: Value = serde_json::from_str(&idp_values(&render(
        ".",
        &row,
        None,
        AccessDates::default(),
    )))
    .unwrap_or(Value::Null);
    let mut written = Vec::new();
    flatten("", &idp, &mut written);
    Ok(written
        .into_iter()
        .filter(|(path, _)| path != "active")
        .map(|(attribute, idp_value)| Drift {
            local_value: lookup_path(&local, &attribute),
            attribute,
            idp_value,
        })
        .collect())
}
