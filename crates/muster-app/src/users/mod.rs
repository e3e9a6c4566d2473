//! Users: create, read, list, edit, and every lifecycle transition.

use crate::audit::{self, Event};
use crate::caller::{org_reach, user_in_reach};
use crate::error::conflict;
use crate::paging::{Page, page_limit, paginate, parse_cursor};
use crate::{App, AppError, Caller, Result, access};
use muster_core::lifecycle::{self, Facts, Outcome};
use muster_core::users::{ManagedBy, Profile, valid_user_name};
use muster_core::{EmailAddress, LifecycleEvent, Permission, UserState};
use muster_store::users::{ListQuery, UserRow};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod create;
mod export;
mod view;

pub use create::{create, create_for};
pub(crate) use create::{created, insert_new_user, new_user_parts};
pub use export::exported;
pub use view::UserView;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    /// Defaults to the email address.
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub profile: Profile,
    /// Role keys or ids, granted in the organization scope. Default: `member`.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// An initial password (the account is then active); otherwise the account
    /// is `provisioned` and waits for activation. Never stored in clear or logged.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<secrecy::SecretString>,
    /// The organizational unit to create the user in. Default: the root;
    /// required of an admin whose roles reach only some units.
    #[serde(default)]
    pub org_unit_id: Option<String>,
}

pub(crate) const USER_CONFLICTS: &[(&str, &str, &str)] = &[
    (
        "email",
        "email",
        "a user with this email already exists in the organization",
    ),
    (
        "user_name",
        "user_name",
        "a user with this user name already exists in the organization",
    ),
    (
        "external_id",
        "external_id",
        "a user with this external id already exists in the organization",
    ),
];

pub async fn get(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<UserView> {
    let (org, reach) = org_reach(app, caller, org_slug, Permission::UsersRead).await?;
    user_in_reach(app, &org.id, id, &reach).await?;
    muster_store::users::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?
        .try_into()
}

/// The caller's own user.
pub async fn me(app: &App, caller: &Caller) -> Result<UserView> {
    match &caller.principal {
        crate::Principal::User {
            org_id, user_id, ..
        } => muster_store::users::get(&app.db, org_id, user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?
            .try_into(),
        _ => Err(AppError::NotFound("user")),
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub search: Option<String>,
    pub state: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    /// Only users in this organizational unit's subtree.
    pub org_unit: Option<String>,
    /// Only users created this way (`signup`, `scim`, `invitation`…).
    pub source: Option<String>,
    /// Only users with (`true`) or without (`false`) a second factor.
    pub mfa_enrolled: Option<bool>,
    /// Only users holding a role in this workspace (id or code).
    pub workspace: Option<String>,
}

pub async fn list(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    p: ListParams,
) -> Result<Page<UserView>> {
    let (org, reach) = org_reach(app, caller, org_slug, Permission::UsersRead).await?;
    let subtree = match &p.org_unit {
        Some(id) => Some(
            crate::org_units::visible(app, &org.id, id, &reach)
                .await?
                .path,
        ),
        None => None,
    };
    if let Some(s) = &p.state
        && UserState::parse(s).is_none()
    {
        return Err(AppError::invalid("state", format!("unknown state '{s}'")));
    }
    if p.search.as_ref().is_some_and(|s| s.chars().count() > 256) {
        return Err(AppError::invalid(
            "q",
            "search terms are at most 256 characters",
        ));
    }
    if let Some(src) = &p.source
        && muster_core::users::CreationSource::parse(src).is_none()
    {
        return Err(AppError::invalid(
            "source",
            format!("unknown source '{src}'"),
        ));
    }
    let workspace = match &p.workspace {
        Some(w) => Some(crate::workspaces::resolve(app, caller, org_slug, w).await?),
        None => None,
    };
    let limit = page_limit(p.limit)?;
    let q = ListQuery {
        source: p.source,
        mfa_enrolled: p.mfa_enrolled,
        workspace,
        search: p.search.filter(|s| !s.is_empty()),
        state: p.state,
        after: parse_cursor(p.cursor)?,
        limit: limit + 1,
        scim_visible: false,
        subtree,
        within: reach.paths(),
    };
    let rows = muster_store::users::list(&app.db, &org.id, &q).await?;
    paginate(rows, limit, |r| r.id.clone(), UserView::try_from)
}

/// The editable part of a user, as a JSON merge patch (RFC 7396) applies to it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Editable {
    email: String,
    user_name: String,
    profile: Profile,
}

/// Applies a JSON merge patch (RFC 7396) to the user's email, user name and profile.
pub async fn update(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
    patch: Value,
    if_version: Option<i64>,
) -> Result<UserView> {
    let (org, reach) = org_reach(app, caller, org_slug, Permission::UsersWrite).await?;
    user_in_reach(app, &org.id, id, &reach).await?;
    if !patch.is_object() {
        return Err(AppError::invalid(
            "body",
            "a merge patch must be a JSON object",
        ));
    }
    let mut tx = app.db.begin().await?;
    let mut row = muster_store::users::get_for_update(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    if if_version.is_some_and(|v| v != row.version) {
        return Err(AppError::Conflict {
            field: "version",
            message: "the user changed since you read it".into(),
        });
    }
    let before: Profile = serde_json::from_str(&row.profile).unwrap_or_default();
    let mut doc = serde_json::to_value(Editable {
        email: row.email.clone(),
        user_name: row.user_name.clone(),
        profile: before.clone(),
    })
    .unwrap_or(Value::Null);
    merge_patch(&mut doc, &patch);
    let edited: Editable = serde_json::from_value(doc)
        .map_err(|e| AppError::invalid("body", clean_serde(&e.to_string())))?;
    let email = EmailAddress::parse(&edited.email)
        .map_err(|e| AppError::invalid("email", e.to_string()))?;
    if !valid_user_name(&edited.user_name) {
        return Err(AppError::invalid(
            "user_name",
            "give 1 to 256 printable characters",
        ));
    }
    edited
        .profile
        .validate()
        .map_err(|e| AppError::invalid(e.field, e.reason))?;
    if let Some(m) = &edited.profile.enterprise.manager
        && (m == id || !muster_store::users::exists(&mut tx, &org.id, m).await?)
    {
        return Err(AppError::invalid(
            "profile.enterprise.manager",
            "no such other user in this organization",
        ));
    }
    let mut ev = Event::new(&org.id, "user.updated").target("user", id);
    if email.as_str() != row.email {
        ev = ev.change("email", &row.email, email.as_str());
        row.email_verified = false;
    }
    if edited.user_name != row.user_name {
        ev = ev.change("user_name", &row.user_name, &edited.user_name);
    }
    ev = profile_changes(
        ev,
        &serde_json::to_value(&before).unwrap_or(Value::Null),
        &serde_json::to_value(&edited.profile).unwrap_or(Value::Null),
    );
    if ev.changes.is_empty() {
        return row.try_into();
    }
    if row.managed_by == ManagedBy::Scim.as_str() {
        // Allowed, but the IdP is the source of truth: its next write of
        // these attributes replaces them (see `GET …/users/{id}/drift`).
        ev = ev.detail("overridable_by_idp", true);
    }
    row.email = email.as_str().to_owned();
    row.user_name = edited.user_name;
    row.display_name = edited.profile.display_name.clone();
    row.given_name = edited.profile.given_name.clone();
    row.family_name = edited.profile.family_name.clone();
    row.external_id = edited.profile.external_id.clone();
    row.profile = serde_json::to_string(&edited.profile).unwrap_or_else(|_| "{}".into());
    row.updated_at = app.now_ms();
    muster_store::users::update(&mut tx, &row)
        .await
        .map_err(|e| conflict(e, USER_CONFLICTS))?;
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    row.version += 1;
    row.try_into()
}

/// Adds a `profile.<key>: [before, after]` change for each top-level profile
/// key that differs: how every user update records what it changed.
pub(crate) fn profile_changes<'a>(mut ev: Event<'a>, before: &Value, after: &Value) -> Event<'a> {
    if let (Value::Object(b), Value::Object(a)) = (before, after) {
        let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
        for k in keys {
            if b.get(k) != a.get(k) {
                ev = ev.change(&format!("profile.{k}"), b.get(k), a.get(k));
            }
        }
    }
    ev
}

/// RFC 7396 §2: objects merge recursively, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// serde's messages are clear but end with a position; keep the clear part.
pub fn clean_serde(msg: &str) -> String {
    msg.split(" at line ").next().unwrap_or(msg).to_owned()
}

/// The one path for every lifecycle transition, from every surface.
pub async fn transition(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
    event: LifecycleEvent,
) -> Result<Option<UserView>> {
    let (org, reach) = org_reach(app, caller, org_slug, Permission::UsersLifecycle).await?;
    user_in_reach(app, &org.id, id, &reach).await?;
    if caller.user_id() == Some(id)
        && matches!(
            event,
            LifecycleEvent::Suspend
                | LifecycleEvent::Lock
                | LifecycleEvent::Deactivate
                | LifecycleEvent::Delete
        )
    {
        return Err(AppError::Refused(
            "you cannot take away your own access; ask another administrator".into(),
        ));
    }
    let mut tx = app.db.begin().await?;
    let (row, outcome) = transition_in(app, &mut tx, caller, &org.id, id, event, &[]).await?;
    tx.commit().await?;
    metrics::counter!("muster_lifecycle_transitions_total", "event" => event.as_str()).increment(1);
    match outcome {
        Outcome::Deleted => Ok(None),
        Outcome::To(_) => Ok(Some(row.try_into()?)),
    }
}

/// A lifecycle transition inside the caller's transaction, for use cases
/// that make it part of a larger change (verifying an email, a lockout).
/// The state machine decides; access is revoked when the new state removes
/// it; one audit event records it with `details`.
pub(crate) async fn transition_in(
    app: &App,
    tx: &mut muster_store::Tx,
    caller: &Caller,
    org_id: &str,
    id: &str,
    event: LifecycleEvent,
    details: &[(&str, Value)],
) -> Result<(UserRow, Outcome)> {
    let mut row = muster_store::users::get_for_update(tx, org_id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let state = UserState::parse(&row.state).ok_or_else(|| {
        AppError::Internal(muster_store::StoreError::Corrupt(format!(
            "user {id}: state"
        )))
    })?;
    let legal_hold = event == LifecycleEvent::Delete
        && muster_store::erasure::legal_hold(tx, org_id, id)
            .await?
            .is_some();
    let outcome = lifecycle::transition(
        state,
        event,
        Facts {
            has_credential: row.password_hash.is_some(),
            legal_hold,
        },
    )?;
    let action = format!("user.{}", event.as_str());
    let mut ev = Event::new(org_id, &action).target("user", id);
    let revoked = if outcome.removes_access() {
        Some(access::revoke_all(app, tx, org_id, id).await?)
    } else {
        None
    };
    match outcome {
        Outcome::Deleted => {
            // The row takes the person's audit key with it (`erasure`): what
            // the log holds about them is unreadable from the commit on. This
            // event says only that it happened, so it stays readable.
            muster_store::users::delete(tx, org_id, id).await?;
            app.audit_keys.forget(id);
            ev = ev.change("state", state, "deleted").security().impersonal();
        }
        Outcome::To(next) => {
            let now = app.now_ms();
            muster_store::users::set_state(tx, org_id, id, next.as_str(), now).await?;
            ev = ev.change("state", state, next);
            if outcome.removes_access() {
                ev = ev.security();
            }
            row.state = next.as_str().into();
            row.version += 1;
            row.updated_at = now;
        }
    }
    if let Some(r) = &revoked {
        ev = ev.detail("revoked", r);
    }
    if event == LifecycleEvent::Unlock {
        // An unlocked account starts afresh: its failure count goes too.
        let key = crate::signin::account_key(org_id, &row.email);
        muster_store::failures::clear(tx, &key).await?;
    }
    for (k, v) in details {
        ev = ev.detail(k, v);
    }
    audit::record(app, tx, caller, ev).await?;
    Ok((row, outcome))
}

/// Finds a user by email within an organization (the CLI names users by email).
pub async fn id_by_email(app: &App, org_id: &str, email: &str) -> Result<String> {
    let email =
        EmailAddress::parse(email).map_err(|e| AppError::invalid("email", e.to_string()))?;
    Ok(muster_store::users::by_email(&app.db, org_id, &email.key())
        .await?
        .ok_or(AppError::NotFound("user"))?
        .id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396_examples() {
        // RFC 7396 Appendix A, a selection.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want);
        }
    }
}
