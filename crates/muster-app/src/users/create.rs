//! How users come into existence: the one creation path, from every surface
//! (REST, CLI, SCIM, sign-up, invitations, imports).

use super::{NewUser, USER_CONFLICTS, UserView};
use crate::audit::{self, Event};
use crate::caller::{org_reach, require};
use crate::error::conflict;
use crate::{App, AppError, Caller, Result};
use muster_core::users::{CreationSource, ManagedBy, valid_user_name};
use muster_core::{EmailAddress, Permission, RoleAssignmentId, UserId, UserState};
use muster_store::roles::AssignmentRow;
use muster_store::tokens::Authority;
use muster_store::users::UserRow;
use serde_json::Value;

pub async fn create(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    input: NewUser,
) -> Result<UserView> {
    create_checked(app, caller, None, org_slug, input).await
}

/// `create` for a caller from `caller::authenticate_for_creation`. An
/// unconfirmed caller's creation is written only if its authority still
/// holds at the write; on any failure — a changed authority, but also a
/// refusal or even a conflict, which may depend on who asks and must not be
/// answered to someone no longer allowed to ask — the request is authorized
/// afresh and made again. Nothing was written by the first attempt.
pub async fn create_for(
    app: &App,
    who: crate::caller::ForCreation,
    org_slug: &str,
    input: NewUser,
) -> Result<UserView> {
    let u = match who {
        crate::caller::ForCreation::Confirmed(c) => return create(app, &c, org_slug, input).await,
        crate::caller::ForCreation::Unconfirmed(u) => u,
    };
    let attempt = create_checked(app, &u.caller, Some(&u.authority), org_slug, input.clone());
    match attempt.await {
        Ok(user) => Ok(user),
        Err(_) => {
            let caller = u.confirm(app).await?;
            create(app, &caller, org_slug, input).await
        }
    }
}

async fn create_checked(
    app: &App,
    caller: &Caller,
    authority: Option<&Authority>,
    org_slug: &str,
    input: NewUser,
) -> Result<UserView> {
    let (org, reach) = org_reach(app, caller, org_slug, Permission::UsersWrite).await?;
    let ou_id =
        crate::org_units::placement(app, &org.id, input.org_unit_id.as_deref(), &reach).await?;
    let email =
        EmailAddress::parse(&input.email).map_err(|e| AppError::invalid("email", e.to_string()))?;
    let user_name = input.user_name.unwrap_or_else(|| email.as_str().to_owned());
    if !valid_user_name(&user_name) {
        return Err(AppError::invalid(
            "user_name",
            "give 1 to 256 printable characters",
        ));
    }
    input
        .profile
        .validate()
        .map_err(|e| AppError::invalid(e.field, e.reason))?;
    let password_hash = match input.password {
        Some(pw) => {
            use secrecy::ExposeSecret;
            crate::org_units::unit_setting::<crate::policies::PasswordPolicy>(
                app,
                &org.id,
                ou_id.as_deref(),
                "password_policy",
            )
            .await?
            .check(pw.expose_secret())?;
            Some(app.hasher.hash(pw.expose_secret().to_owned()).await?)
        }
        None => None,
    };
    let role_keys = input.roles.unwrap_or_else(|| vec!["member".into()]);
    if !role_keys.is_empty() && role_keys != ["member"] {
        require(caller, &org.id, Permission::RolesWrite)?;
    }
    let now = app.now_ms();
    let state = if password_hash.is_some() {
        UserState::Active
    } else {
        UserState::Provisioned
    };
    let row = UserRow {
        id: UserId::new().to_string(),
        org_id: org.id.clone(),
        user_name,
        email: email.as_str().to_owned(),
        email_verified: false,
        display_name: input.profile.display_name.clone(),
        given_name: input.profile.given_name.clone(),
        family_name: input.profile.family_name.clone(),
        external_id: input.profile.external_id.clone(),
        state: state.as_str().into(),
        source: CreationSource::Admin.as_str().into(),
        managed_by: ManagedBy::Local.as_str().into(),
        profile: serde_json::to_string(&input.profile).unwrap_or_else(|_| "{}".into()),
        password_hash,
        created_at: now,
        updated_at: now,
        version: 1,
        ou_id,
        invited_by: None,
    };
    if let Some(m) = &input.profile.enterprise.manager
        && !muster_store::users::exists_in(&app.db, &org.id, m).await?
    {
        return Err(AppError::invalid(
            "profile.enterprise.manager",
            "no such user in this organization",
        ));
    }
    insert_new_user(app, caller, &org, row, &role_keys, None, authority).await
}

/// Writes a new user with its role assignments and its `user.created` event,
/// all or nothing: the one way users come into existence, from every surface.
/// `idp_values` is what a SCIM IdP wrote, stored in the same transaction.
pub(crate) async fn insert_new_user(
    app: &App,
    caller: &Caller,
    org: &crate::caller::OrgRef,
    row: UserRow,
    role_keys: &[String],
    idp_values: Option<&str>,
    authority: Option<&Authority>,
) -> Result<UserView> {
    let (assignments, event, audit_key) =
        new_user_parts(app, caller, org, &row, role_keys, &[]).await?;
    let job = crate::group_commit::Job {
        row: row.clone(),
        assignments,
        event,
        idp_values: idp_values.map(str::to_owned),
        audit_key,
        authority: authority.cloned(),
    };
    app.creations
        .insert(&app.db, job)
        .await
        .map_err(|e| conflict(e, USER_CONFLICTS))?;
    created(app, 1);
    row.try_into()
}

/// What is written with a new user: its role assignments (checked against
/// what the caller may grant) and its `user.created` event.
pub(crate) async fn new_user_parts(
    app: &App,
    caller: &Caller,
    org: &crate::caller::OrgRef,
    row: &UserRow,
    role_keys: &[String],
    details: &[(&str, Value)],
) -> Result<NewParts> {
    let now = row.created_at;
    let mut assignments: Vec<AssignmentRow> = Vec::new();
    for key in role_keys {
        let role = crate::roles::resolve(app, &org.id, key)
            .await?
            .ok_or_else(|| {
                AppError::invalid("roles", format!("no role '{key}' in this organization"))
            })?;
        crate::roles::check_can_grant(caller, &org.id, &role)?;
        if assignments.iter().any(|a| a.role_id == role.id) {
            return Err(AppError::invalid(
                "roles",
                format!("role '{key}' is listed twice"),
            ));
        }
        assignments.push(AssignmentRow {
            id: RoleAssignmentId::new().to_string(),
            org_id: org.id.clone(),
            role_id: role.id,
            role_key: role.role_key,
            user_id: Some(row.id.clone()),
            group_id: None,
            scope_kind: "organization".into(),
            scope_id: None,
            created_at: now,
        });
    }
    let granted: Vec<&str> = assignments.iter().map(|a| a.role_key.as_str()).collect();
    let mut ev = Event::new(&org.id, "user.created")
        .target("user", &row.id)
        .change("email", (), &row.email)
        .change("state", (), &row.state)
        .detail("roles", &granted)
        .detail("source", &row.source);
    for (k, v) in details {
        ev = ev.detail(k, v);
    }
    let audit_key = crate::erasure::new_key(app, &row.id);
    let event = audit::sealed(app, caller, ev).await?;
    Ok((assignments, event, audit_key))
}

/// A new user's role assignments, its sealed `user.created` event and its
/// sealed audit key (see `erasure`), all written with the row.
pub(crate) type NewParts = (Vec<AssignmentRow>, muster_core::audit::StoredEvent, String);

/// After `n` users were written: wake the sealer, count the transitions.
pub(crate) fn created(app: &App, n: u64) {
    app.event_written();
    metrics::counter!("muster_lifecycle_transitions_total", "event" => "create").increment(n);
}
