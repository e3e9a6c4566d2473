//! A person's own account: password reset by email, password change, email
//! change (effective once the new address is verified).

use super::signup::{bad_code, by_code, by_link, code_matches, refused, usable};
use super::throttle::{self, Keys};
use super::{
    LockoutPolicy, RESEND_AFTER_MS, email_committed, public_org, queue_token_email, setting,
};
use crate::audit::{self, Event};
use crate::error::conflict;
use crate::{App, AppError, Caller, Principal, Result};
use muster_core::audit::Context;
use muster_core::{EmailAddress, LifecycleEvent, UserState};
use muster_store::email_tokens::EmailTokenRow;
use muster_store::users::UserRow;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
    #[serde(default)]
    pub org: Option<String>,
}

/// Sends a reset code and link to an account that can use one. Answers at
/// once and alike for every address: the work for a real account happens
/// after the answer.
pub async fn request_reset(app: &App, input: ResetRequest) -> Result<()> {
    let org = public_org(app, input.org.as_deref()).await?;
    let Ok(email) = EmailAddress::parse(&input.email) else {
        return Ok(());
    };
    let user = muster_store::users::by_email(&app.db, &org.id, &email.key()).await?;
    let Some(user) = user else { return Ok(()) };
    // Suspended, deactivated, invited or unverified accounts get nothing: a
    // reset must not become a way around an administrator or verification.
    if !matches!(
        UserState::parse(&user.state),
        Some(UserState::Active | UserState::Locked)
    ) {
        return Ok(());
    }
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = queue_reset(&app, &user).await {
            tracing::error!(error = %e, "could not queue a password reset email");
        }
    });
    Ok(())
}

async fn queue_reset(app: &App, user: &UserRow) -> Result<()> {
    let last = muster_store::email_tokens::latest(&app.db, &user.id, "reset_password").await?;
    if last.is_some_and(|t| app.now_ms() - t.created_at < RESEND_AFTER_MS) {
        return Ok(());
    }
    let mut tx = app.db.begin().await?;
    queue_token_email(
        app,
        &mut tx,
        &user.org_id,
        &user.id,
        "reset_password",
        &user.email,
        None,
    )
    .await?;
    tx.commit().await?;
    email_committed(app);
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetInput {
    /// The token from the email's link, or `email` and `code`.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub org: Option<String>,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Sets a new password with a reset code or link. Every session ends; a
/// lockout ends too (the person proved they own the address).
pub async fn reset_password(app: &App, input: ResetInput, ctx: Context) -> Result<()> {
    let org = public_org(app, input.org.as_deref()).await?;
    let tok = match (&input.token, &input.email, &input.code) {
        (Some(t), _, _) => by_link(app, t, &["reset_password"]).await?,
        (None, Some(e), Some(c)) => by_code(app, &org, e, c, "reset_password").await?,
        _ => {
            return Err(AppError::invalid(
                "code",
                "give the email and the code, or the token from the link",
            ));
        }
    };
    let Some(tok) = tok else {
        refused(
            app,
            &org.id,
            input.email.as_deref().unwrap_or("link"),
            "password reset",
            &ctx,
        )
        .await?;
        return Err(bad_code());
    };
    let owner_org = muster_store::orgs::by_id(&app.db, &tok.org_id)
        .await?
        .ok_or_else(bad_code)?;
    crate::policies::password_policy(app, &owner_org.id, Some(&tok.user_id))
        .await?
        .check(input.password.expose_secret())?;
    let hash = app
        .hasher
        .hash(input.password.expose_secret().to_owned())
        .await?;
    let mut user = muster_store::users::get(&app.db, &tok.org_id, &tok.user_id)
        .await?
        .ok_or_else(bad_code)?;
    let me = super::self_caller(&owner_org, &user.id, &user.email, ctx);
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    if !muster_store::email_tokens::spend(&mut tx, &tok.id, now).await? {
        return Err(bad_code());
    }
    if user.state == UserState::Locked.as_str() {
        let details = [("reason", serde_json::json!("password reset"))];
        let (row, _) = crate::users::transition_in(
            app,
            &mut tx,
            &me,
            &owner_org.id,
            &user.id,
            LifecycleEvent::Unlock,
            &details,
        )
        .await?;
        user = row;
    }
    user.password_hash = Some(hash);
    user.updated_at = now;
    muster_store::users::update(&mut tx, &user).await?;
    let ended =
        muster_store::sessions::revoke_others(&mut tx, &owner_org.id, &user.id, None, now).await?;
    let key = super::account_key(&owner_org.id, &user.email);
    muster_store::failures::clear(&mut tx, &key).await?;
    let ev = Event::new(&owner_org.id, "user.password_reset")
        .target("user", &user.id)
        .detail("sessions_ended", &ended)
        .security();
    audit::record(app, &mut tx, &me, ev).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// Required once the account has a password; an account that signed up
    /// through Google creates its first one without.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub current_password: Option<SecretString>,
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// Changes the caller's password; the current one is required. Every other
/// session ends. An account without a password (created by a Google
/// sign-in) sets its first one here, proven by its session.
pub async fn change_password(app: &App, caller: &Caller, input: PasswordChange) -> Result<()> {
    let (user, org) = own_account(app, caller).await?;
    let first = user.password_hash.is_none();
    match (&input.current_password, first) {
        (_, true) => {
            // Someone who signs in through their organization's IdP does not
            // get a password behind its back: the IdP stays the way in.
            let ids = muster_store::federation::identities_of(&app.db, &org.id, &user.id).await?;
            if ids.iter().any(|i| i.provider == "sso") {
                return Err(AppError::Refused(
                    "you sign in through your organization's single sign-on; there is no password to set".into(),
                ));
            }
        }
        (Some(current), false) => check_password(app, caller, &org, &user, current).await?,
        (None, false) => {
            return Err(AppError::invalid(
                "current_password",
                "give your current password",
            ));
        }
    }
    crate::policies::password_policy(app, &org.id, Some(&user.id))
        .await?
        .check(input.new_password.expose_secret())?;
    let hash = app
        .hasher
        .hash(input.new_password.expose_secret().to_owned())
        .await?;
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let mut row = muster_store::users::get_for_update(&mut tx, &org.id, &user.id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    row.password_hash = Some(hash);
    row.updated_at = now;
    muster_store::users::update(&mut tx, &row).await?;
    let keep = session_of(caller);
    let ended =
        muster_store::sessions::revoke_others(&mut tx, &org.id, &user.id, keep, now).await?;
    let action = if first {
        "user.password_set"
    } else {
        "user.password_changed"
    };
    let ev = Event::new(&org.id, action)
        .target("user", &user.id)
        .detail("sessions_ended", &ended)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChange {
    pub new_email: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Starts an email change: the new address gets a code and link; nothing
/// changes until it is verified.
pub async fn change_email(app: &App, caller: &Caller, input: EmailChange) -> Result<()> {
    let (user, org) = own_account(app, caller).await?;
    let new = EmailAddress::parse(&input.new_email)
        .map_err(|e| AppError::invalid("new_email", e.to_string()))?;
    check_password(app, caller, &org, &user, &input.password).await?;
    if new.key() == user.email.to_lowercase() {
        return Err(AppError::invalid(
            "new_email",
            "that is already your address",
        ));
    }
    let mut tx = app.db.begin().await?;
    queue_token_email(
        app,
        &mut tx,
        &org.id,
        &user.id,
        "change_email",
        new.as_str(),
        Some(new.as_str()),
    )
    .await?;
    let ev = Event::new(&org.id, "user.email_change_requested")
        .target("user", &user.id)
        .change("email", &user.email, new.as_str());
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    email_committed(app);
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeCode {
    pub code: String,
}

/// Confirms an email change with the code sent to the new address.
pub async fn confirm_email_change(
    app: &App,
    caller: &Caller,
    input: EmailChangeCode,
) -> Result<()> {
    let (user, _) = own_account(app, caller).await?;
    let tok = muster_store::email_tokens::latest(&app.db, &user.id, "change_email")
        .await?
        .filter(|t| t.new_email.is_some())
        .ok_or_else(bad_code)?;
    let now = app.now_ms();
    if !(usable(&tok, now) && code_matches(&tok, &input.code)) {
        if tok.sent_at.is_some() {
            muster_store::email_tokens::wrong_code(&app.db, &tok.id, super::CODE_ATTEMPTS, now)
                .await?;
        }
        return Err(bad_code());
    }
    let mut tx = app.db.begin().await?;
    if !muster_store::email_tokens::spend(&mut tx, &tok.id, now).await? {
        return Err(bad_code());
    }
    apply_email_change(app, &mut tx, caller, &user, &tok).await?;
    tx.commit().await?;
    Ok(())
}

/// The new address replaces the old one, verified.
pub(crate) async fn apply_email_change(
    app: &App,
    tx: &mut muster_store::Tx,
    caller: &Caller,
    user: &UserRow,
    tok: &EmailTokenRow,
) -> Result<()> {
    let Some(new) = tok.new_email.clone() else {
        return Err(bad_code());
    };
    let mut row = muster_store::users::get_for_update(tx, &user.org_id, &user.id)
        .await?
        .ok_or_else(bad_code)?;
    let old = std::mem::replace(&mut row.email, new.clone());
    if row.user_name.eq_ignore_ascii_case(&old) {
        row.user_name = new.clone();
    }
    row.email_verified = true;
    row.updated_at = app.now_ms();
    muster_store::users::update(tx, &row)
        .await
        .map_err(|e| conflict(e, crate::users::USER_CONFLICTS))?;
    let ev = Event::new(&user.org_id, "user.email_changed")
        .target("user", &user.id)
        .change("email", &old, &new)
        .security();
    audit::record(app, tx, caller, ev).await?;
    Ok(())
}

fn session_of(caller: &Caller) -> Option<&str> {
    match &caller.principal {
        Principal::User { session, .. } => session.as_ref().map(|s| s.id.as_str()),
        _ => None,
    }
}

/// What the account page shows about how the caller signs in: whether a
/// password is set, and the providers linked.
pub async fn credentials(app: &App, caller: &Caller) -> Result<(bool, Vec<String>)> {
    let (user, org) = own_account(app, caller).await?;
    let linked = muster_store::federation::identities_of(&app.db, &org.id, &user.id)
        .await?
        .into_iter()
        .map(|i| i.provider)
        .collect();
    Ok((user.password_hash.is_some(), linked))
}

async fn own_account(app: &App, caller: &Caller) -> Result<(UserRow, muster_store::orgs::OrgRow)> {
    let Principal::User {
        org_id, user_id, ..
    } = &caller.principal
    else {
        return Err(AppError::NotFound("user"));
    };
    let user = muster_store::users::get(&app.db, org_id, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let org = muster_store::orgs::by_id(&app.db, org_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    Ok((user, org))
}

/// The current password, throttled like a sign-in (a stolen session must not
/// become a way to guess it).
async fn check_password(
    app: &App,
    caller: &Caller,
    org: &muster_store::orgs::OrgRow,
    user: &UserRow,
    pw: &SecretString,
) -> Result<()> {
    let lockout: LockoutPolicy = setting(org, "lockout");
    let mut keys = Keys::new(&org.id, &user.email, caller.ctx.ip.as_deref(), lockout);
    throttle::check(app, &mut keys).await?;
    if app
        .hasher
        .verify_or_decoy(pw.expose_secret().to_owned(), user.password_hash.clone())
        .await
    {
        return Ok(());
    }
    throttle::failed(app, &keys).await?;
    Err(AppError::invalid(
        "current_password",
        "that is not your current password",
    ))
}
