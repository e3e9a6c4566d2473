//! Invitations (issue 4): an admin invites people by email with roles and
//! groups; each gets an email whose link leads to a page where they set a
//! password and become `active`. Pending invitations can be listed, re-sent
//! and revoked; accepted, expired and revoked ones are terminal.

use crate::audit::{self, Event};
use crate::caller::{org_with, require};
use crate::paging::rfc3339;
use crate::signin::{Entry, SignupPolicy};
use crate::users::new_user_parts;
use crate::{App, AppError, Caller, Result, secrets};
use muster_core::audit::Context;
use muster_core::users::{CreationSource, ManagedBy};
use muster_core::{EmailAddress, InvitationId, LifecycleEvent, Permission, UserId, UserState};
use muster_store::invitations::{InvitationRow, NewInvitation};
use muster_store::users::{NewUser, UserRow};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// At most this many addresses in one request.
const MAX_INVITES: usize = 500;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteInput {
    /// 1 to 500 addresses.
    pub emails: Vec<String>,
    /// Role keys or ids granted in the organization; default: the sign-up
    /// policy's default roles (`member`).
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Group ids to join, besides the sign-up policy's default groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// 1 to 30; default 7.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub user_id: String,
    pub email: String,
    /// `pending`, `accepted`, `expired` or `revoked`.
    pub state: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: String,
}

fn view(r: InvitationRow, now: i64) -> InvitationView {
    let state = if r.accepted_at.is_some() {
        "accepted"
    } else if r.revoked_at.is_some() {
        "revoked"
    } else if r.expires_at <= now {
        "expired"
    } else {
        "pending"
    };
    InvitationView {
        state: state.into(),
        created_at: rfc3339(r.created_at),
        expires_at: rfc3339(r.expires_at),
        id: r.id,
        user_id: r.user_id,
        email: r.email,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Skipped {
    pub email: String,
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InviteReport {
    pub invited: Vec<InvitationView>,
    pub skipped: Vec<Skipped>,
}

/// Invites each address. An address that already has an account is skipped
/// (and said so: the caller administers this organization); one still
/// `invited` gets a new invitation.
pub async fn invite(
    app: &App,
    caller: &Caller,
    slug: &str,
    input: InviteInput,
) -> Result<InviteReport> {
    let org = org_with(app, caller, slug, Permission::UsersWrite).await?;
    if input.emails.is_empty() || input.emails.len() > MAX_INVITES {
        return Err(AppError::invalid(
            "emails",
            format!("give 1 to {MAX_INVITES} addresses"),
        ));
    }
    let days = input.expires_in_days.unwrap_or(7);
    if !(1..=30).contains(&days) {
        return Err(AppError::invalid(
            "expires_in_days",
            "must be between 1 and 30",
        ));
    }
    let org_row = muster_store::orgs::by_id(&app.db, &org.id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let policy: SignupPolicy = crate::signin::setting(&org_row, "signup");
    let roles = match input.roles {
        Some(r) => {
            require(caller, &org.id, Permission::RolesWrite)?;
            r
        }
        None => policy.default_roles.clone(),
    };
    let mut groups = input.groups.clone();
    if !groups.is_empty() {
        require(caller, &org.id, Permission::GroupsWrite)?;
    }
    for g in policy.default_groups {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for g in &groups {
        if muster_store::groups::get(&app.db, &org.id, g)
            .await?
            .is_none()
        {
            return Err(AppError::invalid(
                "groups",
                format!("no group '{g}' in this organization"),
            ));
        }
    }
    let mut emails: Vec<EmailAddress> = Vec::new();
    for raw in &input.emails {
        let e = EmailAddress::parse(raw)
            .map_err(|e| AppError::invalid("emails", format!("{raw}: {e}")))?;
        if !emails.iter().any(|x| x.key() == e.key()) {
            emails.push(e);
        }
    }
    send(
        app,
        caller,
        &org,
        emails,
        &roles,
        &groups,
        days,
        CreationSource::Invitation,
    )
    .await
}

/// Creates the invited accounts (`source` says how they came), their
/// organization-wide roles and groups, and the invitation emails; an
/// address still `invited` gets a new invitation. The caller has checked
/// permissions and input.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send(
    app: &App,
    caller: &Caller,
    org: &crate::caller::OrgRef,
    emails: Vec<EmailAddress>,
    roles: &[String],
    groups: &[String],
    days: u32,
    source: CreationSource,
) -> Result<InviteReport> {
    let org = org.clone();
    let now = app.now_ms();
    let expires = now + i64::from(days) * 86_400_000;
    let mut report = InviteReport {
        invited: Vec::new(),
        skipped: Vec::new(),
    };
    let mut rows = Vec::new();
    let mut parts = Vec::new();
    let mut again = Vec::new();
    for e in emails {
        match muster_store::users::by_email(&app.db, &org.id, &e.key()).await? {
            Some(u) if u.state == UserState::Invited.as_str() => again.push(u),
            Some(_) => report.skipped.push(Skipped {
                email: e.as_str().to_owned(),
                reason: "already has an account in this organization".into(),
            }),
            None => {
                let row = new_row(&org.id, &e, now, source);
                let details = [(
                    "invitation",
                    json!({"expires_in_days": days, "groups": groups}),
                )];
                parts.push(new_user_parts(app, caller, &org, &row, roles, &details).await?);
                rows.push(row);
            }
        }
    }
    let invitations: Vec<NewInvitation> = rows
        .iter()
        .map(|r| {
            let id = InvitationId::new().to_string();
            NewInvitation {
                email: crate::signin::outbox_row(&org.id, &r.id, "invitation", &id, &r.email, now),
                id,
                expires_at: expires,
            }
        })
        .collect();
    let news: Vec<NewUser<'_>> = rows
        .iter()
        .zip(&parts)
        .zip(&invitations)
        .map(|((row, (assignments, event, audit_key)), inv)| NewUser {
            row,
            assignments,
            event,
            idp_values: None,
            audit_key: Some(audit_key),
            invitation: Some(inv),
        })
        .collect();
    let results = muster_store::users::insert_many(&app.db, &news).await?;
    let mut created = Vec::new();
    for ((row, inv), r) in rows.iter().zip(&invitations).zip(results) {
        match r {
            Ok(()) => created.push((row.id.clone(), inv.id.clone(), row.email.clone())),
            Err(_) => report.skipped.push(Skipped {
                email: row.email.clone(),
                reason: "already has an account in this organization".into(),
            }),
        }
    }
    let mut tx = app.db.begin().await?;
    for (user_id, _, _) in &created {
        for g in groups {
            muster_store::groups::add_user(&mut tx, g, user_id).await?;
        }
    }
    for u in again {
        let id = InvitationId::new().to_string();
        let inv = NewInvitation {
            email: crate::signin::outbox_row(&org.id, &u.id, "invitation", &id, &u.email, now),
            id: id.clone(),
            expires_at: expires,
        };
        muster_store::invitations::insert(&mut tx, &org.id, &u.id, &inv, now).await?;
        let ev = Event::new(&org.id, "invitation.created")
            .target("user", &u.id)
            .detail("invitation", &id);
        audit::record(app, &mut tx, caller, ev).await?;
        created.push((u.id, id, u.email));
    }
    tx.commit().await?;
    crate::users::created(app, 0);
    crate::signin::email_committed(app);
    for (user_id, id, email) in created {
        report.invited.push(InvitationView {
            id,
            user_id,
            email,
            state: "pending".into(),
            created_at: rfc3339(now),
            expires_at: rfc3339(expires),
        });
    }
    Ok(report)
}

fn new_row(org_id: &str, e: &EmailAddress, now: i64, source: CreationSource) -> UserRow {
    UserRow {
        id: UserId::new().to_string(),
        org_id: org_id.to_owned(),
        user_name: e.as_str().to_owned(),
        email: e.as_str().to_owned(),
        email_verified: false,
        display_name: None,
        given_name: None,
        family_name: None,
        external_id: None,
        state: UserState::Invited.as_str().into(),
        source: source.as_str().into(),
        managed_by: ManagedBy::Local.as_str().into(),
        profile: "{}".into(),
        password_hash: None,
        created_at: now,
        updated_at: now,
        version: 1,
        ou_id: None,
        invited_by: None,
    }
}

/// The organization's invitations, newest first (at most 1,000).
pub async fn list(app: &App, caller: &Caller, slug: &str) -> Result<Vec<InvitationView>> {
    let org = org_with(app, caller, slug, Permission::UsersRead).await?;
    let now = app.now_ms();
    let rows = muster_store::invitations::list(&app.db, &org.id, 1_000).await?;
    Ok(rows.into_iter().map(|r| view(r, now)).collect())
}

/// Sends a pending invitation again, with a new lifetime; the old link dies.
pub async fn resend(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<InvitationView> {
    let org = org_with(app, caller, slug, Permission::UsersWrite).await?;
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let row = muster_store::invitations::get_in(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("invitation"))?;
    let expires = now + (row.expires_at - row.created_at).clamp(86_400_000, 30 * 86_400_000);
    if !muster_store::invitations::renew(&mut tx, &org.id, id, expires, now).await? {
        return Err(AppError::Refused(format!(
            "this invitation is {}; invite the address again instead",
            view(row, now).state
        )));
    }
    muster_store::outbox::insert(
        &mut tx,
        &crate::signin::outbox_row(&org.id, &row.user_id, "invitation", id, &row.email, now),
    )
    .await?;
    let ev = Event::new(&org.id, "invitation.resent")
        .target("user", &row.user_id)
        .detail("invitation", id);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    crate::signin::email_committed(app);
    let mut v = view(row, now);
    v.expires_at = rfc3339(expires);
    Ok(v)
}

/// Revokes a pending invitation. The invited account stays `invited` (it
/// cannot sign in): invite the address again, or deactivate and delete it.
pub async fn revoke(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<()> {
    let org = org_with(app, caller, slug, Permission::UsersWrite).await?;
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let row = muster_store::invitations::get_in(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("invitation"))?;
    if !muster_store::invitations::revoke(&mut tx, &org.id, id, now).await? {
        return Err(AppError::Refused(format!(
            "this invitation is already {}",
            view(row, now).state
        )));
    }
    let ev = Event::new(&org.id, "invitation.revoked")
        .target("user", &row.user_id)
        .detail("invitation", id);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// What the acceptance page shows: the organization and the address.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationInfo {
    pub org_name: String,
    pub org_slug: String,
    pub email: String,
    /// The invitee may accept by signing in with Google / the organization's SSO.
    pub google: bool,
    pub sso: bool,
}

fn bad_link() -> AppError {
    AppError::invalid(
        "token",
        "this invitation link is wrong, used, revoked or expired; ask for a new one",
    )
}

pub(crate) async fn pending(app: &App, token: &str) -> Result<InvitationRow> {
    let token = token.trim();
    if token.len() != 43 {
        return Err(bad_link());
    }
    let row = muster_store::invitations::by_secret(&app.db, &secrets::hash_secret(token))
        .await?
        .ok_or_else(bad_link)?;
    if view(row.clone(), app.now_ms()).state != "pending" {
        return Err(bad_link());
    }
    Ok(row)
}

pub async fn info(app: &App, token: &str) -> Result<InvitationInfo> {
    let row = pending(app, token).await?;
    let org = muster_store::orgs::by_id(&app.db, &row.org_id)
        .await?
        .ok_or_else(bad_link)?;
    let sso = muster_store::federation::sso(&app.db, &org.id)
        .await?
        .is_some();
    Ok(InvitationInfo {
        org_name: org.name,
        org_slug: org.slug,
        email: row.email,
        google: app.google.is_some(),
        sso,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInput {
    /// The token from the invitation's link.
    pub token: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    #[serde(default)]
    pub name: Option<String>,
}

/// Accepts an invitation: the password is set, the account becomes
/// `active` (its address is verified: the link came to it), and a session starts.
pub async fn accept(app: &App, input: AcceptInput, ctx: Context) -> Result<Entry> {
    let inv = match pending(app, &input.token).await {
        Ok(i) => i,
        Err(e) => {
            let personal = crate::signin::public_org(app, None).await?;
            crate::signin::signup::refused(
                app,
                &personal.id,
                "invitation link",
                "invitation acceptance",
                &ctx,
            )
            .await?;
            return Err(e);
        }
    };
    let name = input
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > 256 || n.chars().any(char::is_control)) {
        return Err(AppError::invalid("name", "use at most 256 characters"));
    }
    crate::policies::password_policy(app, &inv.org_id, None)
        .await?
        .check(input.password.expose_secret())?;
    let hash = app
        .hasher
        .hash(input.password.expose_secret().to_owned())
        .await?;
    let org = muster_store::orgs::by_id(&app.db, &inv.org_id)
        .await?
        .ok_or_else(bad_link)?;
    let mut tx = app.db.begin().await?;
    let user = accept_in(app, &mut tx, &inv, &org, Some(hash), name, &ctx, "password").await?;
    tx.commit().await?;
    app.event_written();
    crate::mfa::challenge::enter(app, &org, &user, None, ctx, "invitation").await
}

/// Spends a pending invitation in `tx`: the account gets its password (or
/// none, when it signs in through Google or SSO), its address counts as
/// verified (the link came to it), and it becomes `active`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn accept_in(
    app: &App,
    tx: &mut muster_store::Tx,
    inv: &InvitationRow,
    org: &muster_store::orgs::OrgRow,
    password_hash: Option<String>,
    name: Option<&str>,
    ctx: &Context,
    via: &str,
) -> Result<muster_store::users::UserRow> {
    let now = app.now_ms();
    if !muster_store::invitations::accept(tx, &inv.id, now).await? {
        return Err(bad_link());
    }
    let mut user = muster_store::users::get_for_update(tx, &org.id, &inv.user_id)
        .await?
        .ok_or_else(bad_link)?;
    if password_hash.is_some() {
        user.password_hash = password_hash;
    }
    user.email_verified = true;
    if let Some(n) = name {
        user.display_name = Some(n.to_owned());
        let mut p: muster_core::users::Profile =
            serde_json::from_str(&user.profile).unwrap_or_default();
        p.display_name = Some(n.to_owned());
        user.profile = serde_json::to_string(&p).unwrap_or_else(|_| "{}".into());
    }
    user.updated_at = now;
    muster_store::users::update(tx, &user).await?;
    let me = crate::signin::self_caller(org, &user.id, &user.email, ctx.clone());
    let details = [("invitation", json!(inv.id)), ("via", json!(via))];
    let (row, _) = crate::users::transition_in(
        app,
        tx,
        &me,
        &org.id,
        &user.id,
        LifecycleEvent::AcceptInvitation,
        &details,
    )
    .await?;
    Ok(row)
}
