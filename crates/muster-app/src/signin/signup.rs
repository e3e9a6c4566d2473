//! Sign-up (personal and business) and email verification.

use super::{
    CODE_ATTEMPTS, EMAIL_TOKEN_PREFIX, RESEND_AFTER_MS, SignupPolicy, anonymous, code_hash,
    email_committed, public_org, queue_email, queue_token_email, self_caller, setting, signup_open,
};
use crate::audit::{self, Event};
use crate::{App, AppError, Caller, Result, secrets};
use muster_core::audit::Context;
use muster_core::orgs::OrgKind;
use muster_core::users::{CreationSource, ManagedBy, Profile};
use muster_core::{EmailAddress, LifecycleEvent, OrgSlug, UserId, UserState};
use muster_store::email_tokens::EmailTokenRow;
use muster_store::orgs::OrgRow;
use muster_store::users::UserRow;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpInput {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// The organization to join (its slug); default the personal directory.
    #[serde(default)]
    pub org: Option<String>,
    /// The person's name, shown as their display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Business sign-up: creates this organization, owned by the new account
    /// once its email is verified.
    #[serde(default)]
    pub organization: Option<NewOrganization>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    pub slug: String,
    pub name: String,
}

/// The settings key that marks a business organization whose owner has not
/// verified their email: nobody can use it until they do.
pub(crate) const OWNER_PENDING: &str = "owner_pending";

/// Signs a person up. The answer is the same whether or not the address is
/// registered: an unverified account gets a new code (at most once a
/// minute), a verified one a note that someone tried to sign up with it.
pub async fn signup(app: &App, input: SignUpInput, ctx: Context) -> Result<()> {
    let email =
        EmailAddress::parse(&input.email).map_err(|e| AppError::invalid("email", e.to_string()))?;
    let name = match input.name.as_deref().map(str::trim) {
        Some(n) if n.chars().count() > 256 || n.chars().any(char::is_control) => {
            return Err(AppError::invalid("name", "use at most 256 characters"));
        }
        Some("") | None => None,
        Some(n) => Some(n.to_owned()),
    };
    let existing_org = match &input.organization {
        Some(_) => None,
        None => {
            let o = public_org(app, input.org.as_deref()).await?;
            let may_join =
                signup_open(&o) || crate::domains::joins_by_domain(app, &o, email.as_str()).await?;
            if !may_join || is_pending(&o) {
                return Err(AppError::SignInDenied(
                    "this organization does not accept sign-ups; ask its administrator for an invitation".into(),
                ));
            }
            Some(o)
        }
    };
    let policy = match &existing_org {
        Some(o) => crate::policies::password_policy(app, &o.id, None).await?,
        None => Default::default(),
    };
    policy.check(input.password.expose_secret())?;
    if let Some(new) = &input.organization {
        OrgSlug::parse(&new.slug)
            .map_err(|e| AppError::invalid("organization.slug", e.to_string()))?;
    }
    // Hashed before anything is looked up, so a known address costs the same.
    let hash = app
        .hasher
        .hash(input.password.expose_secret().to_owned())
        .await?;
    let mut tx = app.db.begin().await?;
    let org = match (existing_org, &input.organization) {
        (Some(o), _) => o,
        (None, Some(new)) => new_business_org(app, &mut tx, new, &ctx).await?,
        (None, None) => return Err(AppError::invalid("org", "no such organization")),
    };
    if input.organization.is_none()
        && let Some(u) = muster_store::users::by_email(&app.db, &org.id, &email.key()).await?
    {
        drop(tx);
        return again(app, &org, &u).await;
    }
    let now = app.now_ms();
    let row = UserRow {
        id: UserId::new().to_string(),
        org_id: org.id.clone(),
        user_name: email.as_str().to_owned(),
        email: email.as_str().to_owned(),
        email_verified: false,
        display_name: name.clone(),
        given_name: None,
        family_name: None,
        external_id: None,
        state: UserState::Unverified.as_str().into(),
        source: CreationSource::Signup.as_str().into(),
        managed_by: ManagedBy::Local.as_str().into(),
        profile: serde_json::to_string(&Profile {
            display_name: name,
            ..Profile::default()
        })
        .unwrap_or_else(|_| "{}".into()),
        password_hash: Some(hash),
        created_at: now,
        updated_at: now,
        version: 1,
        ou_id: None,
        invited_by: None,
    };
    let me = self_caller(&org, &row.id, &row.email, ctx);
    let audit_key = crate::erasure::new_key(app, &row.id);
    if let Err(e) = muster_store::users::insert(&mut tx, &row, None, Some(&audit_key)).await {
        // Someone signed up with the address meanwhile: answer as for a known one.
        drop(tx);
        if matches!(e, muster_store::StoreError::Conflict(_))
            && let Some(u) = muster_store::users::by_email(&app.db, &org.id, &email.key()).await?
        {
            return again(app, &org, &u).await;
        }
        return Err(e.into());
    }
    if input.organization.is_some() {
        set_owner_pending(app, &mut tx, &org, Some(&row.id)).await?;
    }
    let ev = Event::new(&org.id, "user.created")
        .target("user", &row.id)
        .change("email", (), &row.email)
        .change("state", (), &row.state)
        .detail("source", &row.source);
    audit::record(app, &mut tx, &me, ev).await?;
    queue_token_email(
        app,
        &mut tx,
        &org.id,
        &row.id,
        "verify_email",
        &row.email,
        None,
    )
    .await?;
    tx.commit().await?;
    crate::users::created(app, 0);
    email_committed(app);
    Ok(())
}

fn is_pending(o: &OrgRow) -> bool {
    setting::<Option<String>>(o, OWNER_PENDING).is_some()
}

/// A business organization whose owner is yet to verify (`owner_pending`),
/// written in the sign-up's transaction: the organization and its owner
/// exist together or not at all.
async fn new_business_org(
    app: &App,
    tx: &mut muster_store::Tx,
    new: &NewOrganization,
    ctx: &Context,
) -> Result<OrgRow> {
    let caller = anonymous("business sign-up", ctx.clone());
    let name = crate::orgs::valid_name(&new.name).map_err(|_| {
        AppError::invalid("organization.name", "give a name of 1 to 128 characters")
    })?;
    // The owner's id is not known yet: a placeholder marks the organization
    // pending, replaced by the owner's id below.
    let settings = serde_json::json!({ OWNER_PENDING: "" }).to_string();
    crate::orgs::insert_in(
        app,
        tx,
        &caller,
        &new.slug,
        &name,
        OrgKind::Business,
        &settings,
    )
    .await
    .map_err(|e| match e {
        AppError::Conflict { message, .. } => AppError::Conflict {
            field: "organization.slug",
            message,
        },
        e => e,
    })
}

async fn set_owner_pending(
    app: &App,
    tx: &mut muster_store::Tx,
    org: &OrgRow,
    owner: Option<&str>,
) -> Result<()> {
    let fresh = muster_store::orgs::get_in(tx, &org.id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let mut settings: serde_json::Value =
        serde_json::from_str(&fresh.settings).unwrap_or_else(|_| serde_json::json!({}));
    if let serde_json::Value::Object(m) = &mut settings {
        match owner {
            Some(id) => m.insert(OWNER_PENDING.into(), id.into()),
            None => m.remove(OWNER_PENDING),
        };
    }
    muster_store::orgs::update_settings(tx, &org.id, &settings.to_string(), app.now_ms()).await?;
    Ok(())
}

/// A sign-up with an address that has an account: a new code for an
/// unverified one, a note to the owner of a verified one.
async fn again(app: &App, org: &OrgRow, u: &UserRow) -> Result<()> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    if u.state == UserState::Unverified.as_str() {
        if !may_resend(app, &u.id, now).await? {
            return Ok(());
        }
        queue_token_email(app, &mut tx, &org.id, &u.id, "verify_email", &u.email, None).await?;
    } else {
        let last = muster_store::outbox::latest_of(&app.db, &u.id, "account_exists").await?;
        if last.is_some_and(|t| now - t < 3_600_000) {
            return Ok(());
        }
        queue_email(
            app,
            &mut tx,
            &org.id,
            &u.id,
            "account_exists",
            &u.id,
            &u.email,
        )
        .await?;
    }
    tx.commit().await?;
    email_committed(app);
    Ok(())
}

async fn may_resend(app: &App, user_id: &str, now: i64) -> Result<bool> {
    let last = muster_store::email_tokens::latest(&app.db, user_id, "verify_email").await?;
    Ok(last.is_none_or(|t| now - t.created_at >= RESEND_AFTER_MS))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendInput {
    pub email: String,
    #[serde(default)]
    pub org: Option<String>,
}

/// Sends a new verification code, at most once a minute; answers the same
/// for any address.
pub async fn resend(app: &App, input: ResendInput) -> Result<()> {
    let org = public_org(app, input.org.as_deref()).await?;
    let Ok(email) = EmailAddress::parse(&input.email) else {
        return Ok(());
    };
    match muster_store::users::by_email(&app.db, &org.id, &email.key()).await? {
        Some(u) if u.state == UserState::Unverified.as_str() => again(app, &org, &u).await,
        _ => Ok(()),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyInput {
    /// With `code`: the address the code was sent to.
    #[serde(default)]
    pub email: Option<String>,
    /// The 6-digit code from the email.
    #[serde(default)]
    pub code: Option<String>,
    /// Or the token from the email's link.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub org: Option<String>,
}

/// One answer for every failure, so a code says nothing about the account.
pub(crate) fn bad_code() -> AppError {
    AppError::invalid(
        "code",
        "this code or link is wrong, used or expired; ask for a new one",
    )
}

/// Verifies an address with the code or the link from its email: a new
/// account becomes `active` with the organization's defaults; an email
/// change takes effect.
pub async fn verify_email(app: &App, input: VerifyInput, ctx: Context) -> Result<()> {
    let tok = match (&input.token, &input.email, &input.code) {
        (Some(t), _, _) => by_link(app, t, &["verify_email", "change_email"]).await?,
        (None, Some(email), Some(code)) => {
            let org = public_org(app, input.org.as_deref()).await?;
            by_code(app, &org, email, code, "verify_email").await?
        }
        _ => {
            return Err(AppError::invalid(
                "code",
                "give the email and the code, or the token from the link",
            ));
        }
    };
    let Some(tok) = tok else {
        let org = public_org(app, input.org.as_deref()).await?;
        refused(
            app,
            &org.id,
            input.email.as_deref().unwrap_or("link"),
            "email verification",
            &ctx,
        )
        .await?;
        return Err(bad_code());
    };
    complete(app, tok, ctx).await
}

/// The email token a link names, if the link is genuine and still good.
pub(crate) async fn by_link(
    app: &App,
    token: &str,
    purposes: &[&str],
) -> Result<Option<EmailTokenRow>> {
    let Some(parsed) = muster_core::tokens::parse(EMAIL_TOKEN_PREFIX, token.trim()) else {
        return Ok(None);
    };
    let row = muster_store::email_tokens::get(&app.db, &parsed.id.simple().to_string()).await?;
    Ok(row.filter(|r| {
        secrets::secret_matches(parsed.secret, &r.secret_hash)
            && purposes.contains(&r.purpose.as_str())
            && usable(r, app.now_ms())
    }))
}

pub(crate) fn usable(r: &EmailTokenRow, now: i64) -> bool {
    r.used_at.is_none() && r.revoked_at.is_none() && r.sent_at.is_some() && now < r.expires_at
}

/// The user's newest token of `purpose`, if `code` is its code. A wrong code
/// counts against the token; the fifth spends it.
pub(crate) async fn by_code(
    app: &App,
    org: &OrgRow,
    email: &str,
    code: &str,
    purpose: &str,
) -> Result<Option<EmailTokenRow>> {
    let Ok(email) = EmailAddress::parse(email) else {
        return Ok(None);
    };
    let Some(u) = muster_store::users::by_email(&app.db, &org.id, &email.key()).await? else {
        return Ok(None);
    };
    let Some(t) = muster_store::email_tokens::latest(&app.db, &u.id, purpose).await? else {
        return Ok(None);
    };
    let now = app.now_ms();
    if !usable(&t, now) {
        return Ok(None);
    }
    let matches = code_matches(&t, code);
    if matches {
        Ok(Some(t))
    } else {
        muster_store::email_tokens::wrong_code(&app.db, &t.id, CODE_ATTEMPTS, now).await?;
        Ok(None)
    }
}

/// Whether `code` is the token's 6-digit code (compared in constant time).
pub(crate) fn code_matches(t: &EmailTokenRow, code: &str) -> bool {
    let code = code.trim();
    let expected = t.code_hash.as_deref().unwrap_or_default();
    code.len() == 6
        && code.bytes().all(|b| b.is_ascii_digit())
        && bool::from(expected.as_bytes().ct_eq(code_hash(&t.id, code).as_bytes()))
}

/// Audits a refused attempt (a wrong code or link, a refused sign-in).
pub(crate) async fn refused(
    app: &App,
    org_id: &str,
    claimed: &str,
    what: &str,
    ctx: &Context,
) -> Result<()> {
    let caller = anonymous(claimed, ctx.clone());
    let mut tx = app.db.begin().await?;
    let ev = Event::new(org_id, "auth.refused")
        .detail("attempt", what)
        .security();
    audit::record(app, &mut tx, &caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// Spends a good token and does what it was for.
async fn complete(app: &App, t: EmailTokenRow, ctx: Context) -> Result<()> {
    let org = muster_store::orgs::by_id(&app.db, &t.org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let user = muster_store::users::get(&app.db, &org.id, &t.user_id)
        .await?
        .ok_or_else(bad_code)?;
    let me = self_caller(&org, &user.id, &user.email, ctx);
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    if !muster_store::email_tokens::spend(&mut tx, &t.id, now).await? {
        return Err(bad_code());
    }
    match t.purpose.as_str() {
        "verify_email" => activate(app, &mut tx, &me, &org, &user).await?,
        "change_email" => super::account::apply_email_change(app, &mut tx, &me, &user, &t).await?,
        _ => return Err(bad_code()),
    }
    tx.commit().await?;
    app.event_written();
    Ok(())
}

/// `unverified` → `active`, with what the organization gives new accounts.
async fn activate(
    app: &App,
    tx: &mut muster_store::Tx,
    me: &Caller,
    org: &OrgRow,
    user: &UserRow,
) -> Result<()> {
    let mut row = user.clone();
    row.email_verified = true;
    row.updated_at = app.now_ms();
    muster_store::users::update(tx, &row).await?;
    let owner = setting::<Option<String>>(org, OWNER_PENDING).as_deref() == Some(&user.id);
    let policy: SignupPolicy = setting(org, "signup");
    let roles = if owner {
        vec!["owner".to_owned()]
    } else {
        policy.default_roles.clone()
    };
    let granted = grant_defaults(app, tx, org, &user.id, &roles, &policy.default_groups).await?;
    if owner {
        set_owner_pending(app, tx, org, None).await?;
    }
    let details = [
        ("email_verified", serde_json::Value::Bool(true)),
        ("roles", serde_json::json!(granted)),
        ("groups", serde_json::json!(policy.default_groups)),
    ];
    crate::users::transition_in(
        app,
        tx,
        me,
        &org.id,
        &user.id,
        LifecycleEvent::VerifyEmail,
        &details,
    )
    .await?;
    Ok(())
}

/// The organization's default roles and groups, for a user who just came in.
/// A default that no longer exists is skipped (and logged), not fatal: the
/// person's verification must not fail over an admin's stale setting.
pub(crate) async fn grant_defaults(
    app: &App,
    tx: &mut muster_store::Tx,
    org: &OrgRow,
    user_id: &str,
    roles: &[String],
    groups: &[String],
) -> Result<Vec<String>> {
    let now = app.now_ms();
    let mut granted = Vec::new();
    for key in roles {
        let Some(role) = crate::roles::resolve(app, &org.id, key).await? else {
            tracing::warn!(org = %org.slug, role = %key, "a default role no longer exists");
            continue;
        };
        muster_store::roles::assign(
            tx,
            &muster_store::roles::AssignmentRow {
                id: muster_core::RoleAssignmentId::new().to_string(),
                org_id: org.id.clone(),
                role_id: role.id,
                role_key: role.role_key.clone(),
                user_id: Some(user_id.to_owned()),
                group_id: None,
                scope_kind: "organization".into(),
                scope_id: None,
                created_at: now,
            },
        )
        .await?;
        granted.push(role.role_key);
    }
    for g in groups {
        if muster_store::groups::get_in(tx, &org.id, g)
            .await?
            .is_some()
        {
            muster_store::groups::add_user(tx, g, user_id).await?;
        } else {
            tracing::warn!(org = %org.slug, group = %g, "a default group no longer exists");
        }
    }
    Ok(granted)
}
