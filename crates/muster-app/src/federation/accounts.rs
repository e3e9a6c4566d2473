//! Which account a validated ID token signs in to: the one linked to the
//! provider's issuer and subject; else, by the invitation the flow carries;
//! else by email — an organization's own IdP is trusted for its users, while
//! a Google address that already has an account needs that account's
//! password once; else a new account, where the organization allows it.

use super::oidc::Claims;
use super::{Finished, Provider, denied, oidc::Refusal};
use crate::audit::{self, Event};
use crate::signin::login::{denial, failed_event};
use crate::signin::{Entry, self_caller, setting, signup_open};
use crate::{App, AppError, Result, secrets};
use muster_core::audit::Context;
use muster_core::users::{CreationSource, ManagedBy, Profile};
use muster_core::{EmailAddress, LifecycleEvent, UserId, UserState};
use muster_store::federation::{FlowRow, IdentityRow};
use muster_store::orgs::OrgRow;
use muster_store::users::UserRow;
use secrecy::SecretString;
use serde::Deserialize;

pub(super) async fn resolve(
    app: &App,
    org: &OrgRow,
    flow: &FlowRow,
    provider: Provider,
    claims: Claims,
    ctx: Context,
) -> Result<Finished> {
    let known =
        muster_store::federation::identity(&app.db, &org.id, &claims.iss, &claims.sub).await?;
    let refuse = async |why: &str| -> Result<Finished> {
        let what = format!("{} sign-in: {why}", provider.as_str());
        let claimed = claims.email.as_deref().unwrap_or(provider.as_str());
        crate::signin::signup::refused(app, &org.id, claimed, &what, &ctx).await?;
        Err(denied(provider, &Refusal(why.into())))
    };
    // Google's address counts only when Google says it verified it; an
    // organization's own IdP is the authority on its users' addresses unless
    // it says otherwise.
    let verified = match provider {
        Provider::Google => claims.email_verified() == Some(true),
        Provider::Sso => claims.email_verified() != Some(false),
    };
    let email = claims
        .email
        .as_deref()
        .and_then(|e| EmailAddress::parse(e).ok())
        .filter(|_| verified);
    if let Some(inv_id) = &flow.invitation_id {
        let mut tx = app.db.begin().await?;
        let now = app.now_ms();
        let inv = muster_store::invitations::get_in(&mut tx, &org.id, inv_id)
            .await?
            .filter(|i| i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > now);
        let why = match &inv {
            None => Some("the invitation is no longer pending".to_owned()),
            Some(i) if known.as_ref().is_some_and(|k| k.user_id != i.user_id) => {
                Some("this account already signs in to another user here".to_owned())
            }
            Some(i) if email.as_ref().map(EmailAddress::key) != Some(i.email.to_lowercase()) => {
                Some(format!(
                    "the invitation is for {}; sign in with an account verified for that address",
                    i.email
                ))
            }
            Some(_) => None,
        };
        let (Some(inv), None) = (inv, why.as_deref()) else {
            drop(tx);
            return refuse(why.as_deref().unwrap_or_default()).await;
        };
        let user = crate::invitations::accept_in(
            app,
            &mut tx,
            &inv,
            org,
            None,
            claims.name.as_deref(),
            &ctx,
            provider.as_str(),
        )
        .await?;
        if known.is_none() {
            link_in(
                app,
                &mut tx,
                org,
                &user,
                provider,
                subject_of(&claims),
                &ctx,
            )
            .await?;
        }
        tx.commit().await?;
        app.event_written();
        return signed_in(app, org, &user, flow, provider, ctx).await;
    }
    if let Some(k) = known {
        let user = muster_store::users::get(&app.db, &org.id, &k.user_id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        return enter(app, org, user, Some(k), flow, provider, &claims, ctx).await;
    }
    let Some(email) = email else {
        return refuse("the provider did not give a verified email address").await;
    };
    let existing = muster_store::users::by_email(&app.db, &org.id, &email.key()).await?;
    match (existing, provider) {
        (Some(user), Provider::Sso) => {
            enter(app, org, user, None, flow, provider, &claims, ctx).await
        }
        (Some(user), Provider::Google) => {
            let ticket = secrets::random_secret();
            let subject = (claims.iss.as_str(), claims.sub.as_str(), email.as_str());
            muster_store::federation::set_link(
                &app.db,
                &flow.id,
                &secrets::hash_secret(&ticket),
                &user.id,
                subject,
            )
            .await?;
            Ok(Finished::LinkRequired {
                ticket,
                email: user.email,
            })
        }
        (None, _) if may_create(app, org, provider).await? => {
            let user = create(app, org, provider, &claims, &email, &ctx).await?;
            signed_in(app, org, &user, flow, provider, ctx).await
        }
        (None, Provider::Google) => {
            refuse("this organization does not accept sign-ups; ask for an invitation").await
        }
        (None, Provider::Sso) => {
            refuse("your organization has not given you access to Muster; ask your administrator")
                .await
        }
    }
}

async fn may_create(app: &App, org: &OrgRow, provider: Provider) -> Result<bool> {
    Ok(match provider {
        Provider::Google => signup_open(org) && org.kind == "personal",
        Provider::Sso => muster_store::federation::sso(&app.db, &org.id)
            .await?
            .is_some_and(|c| c.jit),
    })
}

/// Signs in an account that exists: linking the identity on first use, and
/// activating a `provisioned` account on its first sign-in through its
/// organization's IdP. Any other state that may not sign in is refused and
/// nothing is written.
#[allow(clippy::too_many_arguments)]
async fn enter(
    app: &App,
    org: &OrgRow,
    user: UserRow,
    known: Option<IdentityRow>,
    flow: &FlowRow,
    provider: Provider,
    claims: &Claims,
    ctx: Context,
) -> Result<Finished> {
    let activate = provider == Provider::Sso && user.state == UserState::Provisioned.as_str();
    if !activate && let Some(why) = denial(&user.state) {
        let reason = format!("{} sign-in, account {}", provider.as_str(), user.state);
        failed_event(app, org, &user, &reason, &ctx).await?;
        return Err(AppError::SignInDenied(why.into()));
    }
    let mut tx = app.db.begin().await?;
    match &known {
        Some(k) => {
            muster_store::federation::identity_used(
                &mut tx,
                &k.id,
                claims.email.as_deref(),
                app.now_ms(),
            )
            .await?
        }
        None => link_in(app, &mut tx, org, &user, provider, subject_of(claims), &ctx).await?,
    }
    let user = if activate {
        let me = self_caller(org, &user.id, &user.email, ctx.clone());
        let details = [("via", serde_json::json!(provider.as_str()))];
        let (row, _) = crate::users::transition_in(
            app,
            &mut tx,
            &me,
            &org.id,
            &user.id,
            LifecycleEvent::Activate,
            &details,
        )
        .await?;
        row
    } else {
        user
    };
    tx.commit().await?;
    app.event_written();
    signed_in(app, org, &user, flow, provider, ctx).await
}

async fn signed_in(
    app: &App,
    org: &OrgRow,
    user: &UserRow,
    flow: &FlowRow,
    provider: Provider,
    ctx: Context,
) -> Result<Finished> {
    let entry = crate::mfa::challenge::enter(app, org, user, None, ctx, provider.as_str()).await?;
    Ok(Finished::SignedIn {
        entry,
        next: flow.return_to.clone(),
        create_password: provider == Provider::Google && user.password_hash.is_none(),
    })
}

fn subject_of(c: &Claims) -> (&str, &str, Option<&str>) {
    (&c.iss, &c.sub, c.email.as_deref())
}

/// Writes the identity and its audit event in `tx`.
async fn link_in(
    app: &App,
    tx: &mut muster_store::Tx,
    org: &OrgRow,
    user: &UserRow,
    provider: Provider,
    (issuer, subject, email): (&str, &str, Option<&str>),
    ctx: &Context,
) -> Result<()> {
    let now = app.now_ms();
    let row = IdentityRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        org_id: org.id.clone(),
        user_id: user.id.clone(),
        provider: provider.as_str().into(),
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        email: email.map(str::to_owned),
        created_at: now,
        last_used_at: now,
    };
    muster_store::federation::insert_identity(tx, &row)
        .await
        .map_err(|e| match e {
            muster_store::StoreError::Conflict(_) => {
                AppError::Refused("this account is already linked here; sign in again".into())
            }
            e => e.into(),
        })?;
    let me = self_caller(org, &user.id, &user.email, ctx.clone());
    let ev = Event::new(&org.id, "user.identity_linked")
        .target("user", &user.id)
        .detail("provider", provider.as_str())
        .detail("issuer", &row.issuer)
        .detail("identity", &row.id)
        .security();
    audit::record(app, tx, &me, ev).await?;
    Ok(())
}

/// A new account from a first federated sign-in: `active`, its address
/// verified by the provider, with the organization's default roles and groups.
async fn create(
    app: &App,
    org: &OrgRow,
    provider: Provider,
    claims: &Claims,
    email: &EmailAddress,
    ctx: &Context,
) -> Result<UserRow> {
    let bounded = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|v| {
                !v.is_empty() && v.chars().count() <= 256 && !v.chars().any(char::is_control)
            })
            .map(str::to_owned)
    };
    let profile = Profile {
        display_name: bounded(&claims.name),
        given_name: bounded(&claims.given_name),
        family_name: bounded(&claims.family_name),
        ..Profile::default()
    };
    let now = app.now_ms();
    let source = match provider {
        Provider::Google => CreationSource::Google,
        Provider::Sso => CreationSource::Sso,
    };
    let row = UserRow {
        id: UserId::new().to_string(),
        org_id: org.id.clone(),
        user_name: email.as_str().to_owned(),
        email: email.as_str().to_owned(),
        email_verified: true,
        display_name: profile.display_name.clone(),
        given_name: profile.given_name.clone(),
        family_name: profile.family_name.clone(),
        external_id: None,
        state: UserState::Active.as_str().into(),
        source: source.as_str().into(),
        managed_by: ManagedBy::Local.as_str().into(),
        profile: serde_json::to_string(&profile).unwrap_or_else(|_| "{}".into()),
        password_hash: None,
        created_at: now,
        updated_at: now,
        version: 1,
        ou_id: None,
        invited_by: None,
    };
    let policy: crate::signin::SignupPolicy = setting(org, "signup");
    let me = self_caller(org, &row.id, &row.email, ctx.clone());
    let audit_key = crate::erasure::new_key(app, &row.id);
    let mut tx = app.db.begin().await?;
    muster_store::users::insert(&mut tx, &row, None, Some(&audit_key))
        .await
        .map_err(|e| match e {
            muster_store::StoreError::Conflict(_) => AppError::Refused(
                "an account with this address was just created; sign in again".into(),
            ),
            e => e.into(),
        })?;
    let granted = crate::signin::signup::grant_defaults(
        app,
        &mut tx,
        org,
        &row.id,
        &policy.default_roles,
        &policy.default_groups,
    )
    .await?;
    let ev = Event::new(&org.id, "user.created")
        .target("user", &row.id)
        .change("email", (), &row.email)
        .change("state", (), &row.state)
        .detail("source", &row.source)
        .detail("roles", &granted)
        .detail("groups", &policy.default_groups);
    audit::record(app, &mut tx, &me, ev).await?;
    link_in(app, &mut tx, org, &row, provider, subject_of(claims), ctx).await?;
    tx.commit().await?;
    crate::users::created(app, 1);
    Ok(row)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    /// From the answer that asked for the password.
    pub ticket: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// Attaches the provider to an existing account once its password is given.
/// The password goes through the ordinary sign-in, with its throttling and
/// lockout; the ticket is bound to the browser that started the flow.
pub async fn link(
    app: &App,
    input: LinkInput,
    binding: Option<&str>,
    ctx: Context,
) -> Result<Entry> {
    let gone = || {
        AppError::SignInDenied("this link request has expired or was used; sign in again".into())
    };
    if input.ticket.len() != 43 {
        return Err(gone());
    }
    let flow = muster_store::federation::by_link(&app.db, &secrets::hash_secret(&input.ticket))
        .await?
        .filter(|f| f.linked_at.is_none() && f.expires_at > app.now_ms())
        .ok_or_else(gone)?;
    if !binding.is_some_and(|b| secrets::secret_matches(b, &flow.binding_hash)) {
        return Err(gone());
    }
    let (Some(user_id), Some(issuer), Some(subject), Some(email)) = (
        &flow.link_user_id,
        &flow.link_issuer,
        &flow.link_subject,
        &flow.link_email,
    ) else {
        return Err(gone());
    };
    let org = muster_store::orgs::by_id(&app.db, &flow.org_id)
        .await?
        .ok_or_else(gone)?;
    // The password is checked for the account the ticket names, by its
    // address as it is now (addresses are unique in an organization).
    let user = muster_store::users::get(&app.db, &org.id, user_id)
        .await?
        .ok_or_else(gone)?;
    let signed = crate::signin::login::login(
        app,
        crate::signin::LoginInput {
            email: user.email.clone(),
            password: input.password,
            org: Some(org.slug.clone()),
        },
        ctx.clone(),
    )
    .await?;
    let provider = Provider::parse(&flow.provider).unwrap_or(Provider::Google);
    let mut tx = app.db.begin().await?;
    if !muster_store::federation::spend_link(&mut tx, &flow.id, app.now_ms()).await? {
        return Err(gone());
    }
    link_in(
        app,
        &mut tx,
        &org,
        &user,
        provider,
        (issuer, subject, Some(email)),
        &ctx,
    )
    .await?;
    tx.commit().await?;
    app.event_written();
    Ok(signed)
}
