//! Passkeys (issue 5 §1; W3C WebAuthn Level 3): registration by a signed-in
//! user, a passkey as the second step of a sign-in or a step-up, and
//! passwordless sign-in with a discoverable passkey. Each reaches L3.
//!
//! A ceremony's server half (the challenge it asked) is stored, taken once,
//! and expires in five minutes, so an answer is checked only against what
//! was asked and never twice (§13.4.3). The passkey itself — public key and
//! signature counter — is sealed in the factor's row; its credential id is
//! unique across accounts (§7.1 step 22).

use super::{Enrolled, first_factor_codes, own, sensitive};
use crate::audit::{self, Event};
use crate::{App, AppError, Caller, Result};
use muster_store::Tx;
use muster_store::mfa::{CeremonyRow, FactorRow};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Uuid,
};

const CEREMONY_MS: i64 = 5 * 60_000;

/// Options to hand to `navigator.credentials.create()` / `.get()`, and the
/// id to send back with the answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ceremony {
    pub ceremony_id: String,
    #[schema(value_type = Object)]
    pub options: Value,
}

fn wa(app: &App) -> Result<&webauthn_rs::Webauthn> {
    app.webauthn.as_deref().ok_or_else(|| {
        AppError::Refused("passkeys need MUSTER_PUBLIC_URL to be this site's address".into())
    })
}

fn bad_passkey() -> AppError {
    AppError::invalid(
        "credential",
        "this passkey answer is not valid for this request; try again",
    )
}

pub(crate) async fn begin<T: Serialize>(
    app: &App,
    org_id: &str,
    user_id: Option<&str>,
    kind: &str,
    state: &T,
) -> Result<String> {
    let now = app.now_ms();
    let row = CeremonyRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        org_id: org_id.to_owned(),
        user_id: user_id.map(str::to_owned),
        kind: kind.to_owned(),
        state: serde_json::to_string(state).map_err(|_| bad_passkey())?,
        created_at: now,
        expires_at: now + CEREMONY_MS,
        spent_at: None,
    };
    let mut tx = app.db.begin().await?;
    muster_store::mfa::insert_ceremony(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(row.id)
}

/// A ceremony's state, taken once.
async fn take<T: DeserializeOwned>(app: &App, id: &str, kind: &str) -> Result<(CeremonyRow, T)> {
    let row = muster_store::mfa::take_ceremony(&app.db, id, kind, app.now_ms())
        .await?
        .ok_or_else(bad_passkey)?;
    let state = serde_json::from_str(&row.state).map_err(|_| bad_passkey())?;
    Ok((row, state))
}

fn user_handle(user_id: &str) -> Result<Uuid> {
    Uuid::parse_str(user_id)
        .map_err(|_| AppError::Refused("this account cannot hold a passkey".into()))
}

/// The user's passkeys with their rows.
fn passkeys(app: &App, factors: &[FactorRow]) -> Vec<(FactorRow, Passkey)> {
    factors
        .iter()
        .filter(|f| f.kind == "passkey" && f.confirmed_at.is_some())
        .filter_map(|f| {
            let plain = app
                .key
                .open(&format!("passkey:{}", f.id), f.secret_sealed.as_deref()?)
                .ok()?;
            Some((f.clone(), serde_json::from_str(&plain).ok()?))
        })
        .collect()
}

fn cred_id_of(pk: &Passkey) -> String {
    let bytes: &[u8] = pk.cred_id().as_ref();
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// Starts registering a passkey for the signed-in user (a step-up first
/// when they already have a factor).
pub async fn register_start(app: &App, caller: &Caller) -> Result<Ceremony> {
    let factors = sensitive(app, caller).await?;
    let (org_id, user_id, _) = own(caller)?;
    if !super::policy(app, org_id, user_id)
        .await?
        .allows(super::Method::Passkey)
    {
        return Err(AppError::Refused(
            "your organization does not allow passkeys".into(),
        ));
    }
    let user = muster_store::users::get(&app.db, org_id, user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let exclude = passkeys(app, &factors)
        .iter()
        .map(|(_, pk)| pk.cred_id().clone())
        .collect::<Vec<_>>();
    let name = user
        .display_name
        .clone()
        .unwrap_or_else(|| user.email.clone());
    let (options, state) = wa(app)?
        .start_passkey_registration(user_handle(user_id)?, &user.email, &name, Some(exclude))
        .map_err(|e| {
            tracing::warn!(error = %e, "passkey registration could not start");
            AppError::Refused("a passkey cannot be registered now".into())
        })?;
    let id = begin(app, org_id, Some(user_id), "register", &state).await?;
    let mut options = serde_json::to_value(options).map_err(|_| bad_passkey())?;
    // Prefer a discoverable credential (WebAuthn §5.4.4 `residentKey`), so
    // that the passkey can sign in without even an email where the
    // authenticator can keep one; every passkey can sign in without a
    // password once the email is given.
    if let Some(sel) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(Value::as_object_mut)
    {
        sel.insert("residentKey".into(), Value::from("preferred"));
    }
    Ok(Ceremony {
        ceremony_id: id,
        options,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    pub ceremony_id: String,
    /// What the user calls it (default "Passkey").
    #[serde(default)]
    pub name: Option<String>,
    /// What `navigator.credentials.create()` answered.
    #[schema(value_type = Object)]
    pub credential: Value,
}

/// Finishes registering: the passkey is a factor from now on, and this
/// session has just proved it (L3).
pub async fn register_finish(app: &App, caller: &Caller, input: RegisterInput) -> Result<Enrolled> {
    let (org_id, user_id, s) = own(caller)?;
    let name = super::factors::factor_name(input.name.as_deref(), "Passkey")?;
    let refused = async |why: &str| {
        super::prove::wrong_code_audit(app, caller, &format!("passkey registration ({why})"))
            .await?;
        Err::<Enrolled, _>(bad_passkey())
    };
    let Ok((row, state)) = take::<PasskeyRegistration>(app, &input.ceremony_id, "register").await
    else {
        return refused("unknown, used or expired ceremony").await;
    };
    if row.user_id.as_deref() != Some(user_id) {
        return refused("another user's ceremony").await;
    }
    let Ok(cred) = serde_json::from_value::<RegisterPublicKeyCredential>(input.credential) else {
        return refused("malformed").await;
    };
    let pk = match wa(app)?.finish_passkey_registration(&cred, &state) {
        Ok(pk) => pk,
        Err(e) => {
            tracing::info!(error = %e, "passkey registration refused");
            return refused("not valid").await;
        }
    };
    let cred_id = cred_id_of(&pk);
    if muster_store::mfa::credential_taken(&app.db, &cred_id).await? {
        return Err(AppError::Conflict {
            field: "credential",
            message: "this passkey is already registered".into(),
        });
    }
    let factors = muster_store::mfa::factors(&app.db, user_id).await?;
    let now = app.now_ms();
    let id = uuid::Uuid::now_v7().simple().to_string();
    let plain = serde_json::to_string(&pk).map_err(|_| bad_passkey())?;
    let f = FactorRow {
        id: id.clone(),
        org_id: org_id.to_owned(),
        user_id: user_id.to_owned(),
        kind: "passkey".into(),
        name,
        secret_sealed: Some(app.key.seal(&format!("passkey:{id}"), &plain)),
        last_step: 0,
        created_at: now,
        confirmed_at: Some(now),
        last_used_at: None,
        credential_id: Some(cred_id),
    };
    let mut tx = app.db.begin().await?;
    muster_store::mfa::insert_factor(&mut tx, &f).await?;
    let codes = first_factor_codes(app, &mut tx, &factors, user_id, now).await?;
    muster_store::mfa::raise_session(&mut tx, &s.id, 3, now).await?;
    let ev = Event::new(org_id, "mfa.enrolled")
        .target("user", user_id)
        .detail("method", "passkey")
        .detail("factor", &id)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(Enrolled {
        recovery_codes: codes,
    })
}

/// Options to prove one of `user_id`'s passkeys (a sign-in's second step,
/// or a step-up): `kind` is `mfa` or `step_up`.
pub(crate) async fn options_for(
    app: &App,
    org_id: &str,
    user_id: &str,
    kind: &str,
) -> Result<Ceremony> {
    let factors = muster_store::mfa::factors(&app.db, user_id).await?;
    let keys: Vec<Passkey> = passkeys(app, &factors)
        .into_iter()
        .map(|(_, pk)| pk)
        .collect();
    if keys.is_empty() {
        return Err(AppError::Refused("this account has no passkey".into()));
    }
    let (options, state) = wa(app)?
        .start_passkey_authentication(&keys)
        .map_err(|_| AppError::Refused("a passkey cannot be used now".into()))?;
    let id = begin(app, org_id, Some(user_id), kind, &state).await?;
    Ok(Ceremony {
        ceremony_id: id,
        options: serde_json::to_value(options).map_err(|_| bad_passkey())?,
    })
}

/// Checks a passkey answer to a ceremony of `kind` for `user_id` and
/// records the use (its new counter) in `tx`. Returns whether it held.
pub(crate) async fn prove_in(
    app: &App,
    tx: &mut Tx,
    user_id: &str,
    factors: &[FactorRow],
    kind: &str,
    ceremony_id: Option<&str>,
    answer: Option<&Value>,
) -> Result<bool> {
    let (Some(ceremony_id), Some(answer)) = (ceremony_id, answer) else {
        return Ok(false);
    };
    // Taken in the caller's transaction (committed either way): one write
    // lock, and the ceremony is spent even when the answer is wrong.
    let Some(row) =
        muster_store::mfa::take_ceremony_in(tx, ceremony_id, kind, app.now_ms()).await?
    else {
        return Ok(false);
    };
    let Ok(state) = serde_json::from_str::<PasskeyAuthentication>(&row.state) else {
        return Ok(false);
    };
    if row.user_id.as_deref() != Some(user_id) {
        return Ok(false);
    }
    let Ok(cred) = serde_json::from_value::<PublicKeyCredential>(answer.clone()) else {
        return Ok(false);
    };
    let Ok(result) = wa(app)?.finish_passkey_authentication(&cred, &state) else {
        return Ok(false);
    };
    used(app, tx, factors, &result).await
}

/// Stores the counter a successful use brought, on the passkey it names.
async fn used(
    app: &App,
    tx: &mut Tx,
    factors: &[FactorRow],
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<bool> {
    for (f, mut pk) in passkeys(app, factors) {
        if pk.cred_id() == result.cred_id() {
            pk.update_credential(result);
            let plain = serde_json::to_string(&pk).map_err(|_| bad_passkey())?;
            let sealed = app.key.seal(&format!("passkey:{}", f.id), &plain);
            muster_store::mfa::passkey_used(tx, &f.id, &sealed, app.now_ms()).await?;
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoverStart {
    /// The organization (slug); default the personal directory.
    pub org: Option<String>,
    /// The account's email, when the person typed it: the browser is then
    /// told which passkeys may answer. Without it, any discoverable passkey
    /// of this site may.
    pub email: Option<String>,
}

/// Starts a passwordless sign-in. With an email, the options list that
/// account's passkeys; for an address with no passkey (or no account) they
/// list a stand-in credential id derived from the address with the server
/// key — stable and of the same shape — so the answer does not reveal
/// whether the address is registered.
pub async fn discover_start(app: &App, input: DiscoverStart) -> Result<Ceremony> {
    let org = crate::signin::public_org(app, input.org.as_deref()).await?;
    let w = wa(app)?;
    let unavailable = || AppError::Refused("a passkey cannot be used now".into());
    if let Some(email) = input
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let user = match muster_core::EmailAddress::parse(email) {
            Ok(e) => muster_store::users::by_email(&app.db, &org.id, &e.key()).await?,
            Err(_) => None,
        };
        let keys: Vec<Passkey> = match &user {
            Some(u) => {
                let factors = muster_store::mfa::factors(&app.db, &u.id).await?;
                passkeys(app, &factors)
                    .into_iter()
                    .map(|(_, pk)| pk)
                    .collect()
            }
            None => Vec::new(),
        };
        if let (Some(u), false) = (&user, keys.is_empty()) {
            let (options, state) = w
                .start_passkey_authentication(&keys)
                .map_err(|_| unavailable())?;
            let id = begin(app, &org.id, Some(&u.id), "passwordless", &state).await?;
            return Ok(Ceremony {
                ceremony_id: id,
                options: serde_json::to_value(options).map_err(|_| bad_passkey())?,
            });
        }
        let (options, state) = w
            .start_discoverable_authentication()
            .map_err(|_| unavailable())?;
        let id = begin(app, &org.id, None, "discover", &state).await?;
        let mut options = serde_json::to_value(options).map_err(|_| bad_passkey())?;
        let stand_in = app.key.mac(
            &format!("passkey-stand-in:{}", org.id),
            &email.to_lowercase(),
        );
        let stand_in = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            stand_in.get(..16).unwrap_or_default(),
        );
        if let Some(o) = options
            .pointer_mut("/publicKey")
            .and_then(Value::as_object_mut)
        {
            o.insert(
                "allowCredentials".into(),
                serde_json::json!([{"type": "public-key", "id": stand_in}]),
            );
            o.insert("userVerification".into(), Value::from("required"));
        }
        return Ok(Ceremony {
            ceremony_id: id,
            options,
        });
    }
    let (options, state) = w
        .start_discoverable_authentication()
        .map_err(|_| unavailable())?;
    let id = begin(app, &org.id, None, "discover", &state).await?;
    Ok(Ceremony {
        ceremony_id: id,
        options: serde_json::to_value(options).map_err(|_| bad_passkey())?,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoverFinish {
    pub ceremony_id: String,
    /// What `navigator.credentials.get()` answered.
    #[schema(value_type = Object)]
    pub credential: Value,
}

/// Finishes a passwordless sign-in. The passkey is both factors (L3); the
/// access policy and the risk engine still have their say. Every failure
/// is the same refusal, audited.
pub async fn discover_finish(
    app: &App,
    input: DiscoverFinish,
    ctx: muster_core::audit::Context,
) -> Result<crate::signin::Entry> {
    // An email-first ceremony names its account; a discoverable one learns
    // it from the passkey's user handle.
    if let Ok((row, state)) =
        take::<PasskeyAuthentication>(app, &input.ceremony_id, "passwordless").await
    {
        return email_first_finish(app, row, state, input.credential, ctx).await;
    }
    let (row, state): (_, DiscoverableAuthentication) =
        take(app, &input.ceremony_id, "discover").await?;
    let org = muster_store::orgs::by_id(&app.db, &row.org_id)
        .await?
        .ok_or_else(bad_passkey)?;
    let refused = async |why: &str| refused_sign_in(app, &org.id, why, &ctx).await;
    let Ok(cred) = serde_json::from_value::<PublicKeyCredential>(input.credential) else {
        return refused("malformed").await;
    };
    let w = wa(app)?;
    let Ok((handle, _)) = w.identify_discoverable_authentication(&cred) else {
        return refused("no user handle").await;
    };
    let user = muster_store::users::get(&app.db, &org.id, &handle.hyphenated().to_string()).await?;
    let Some(user) = user else {
        return refused("unknown account").await;
    };
    let factors = muster_store::mfa::factors(&app.db, &user.id).await?;
    let keys: Vec<DiscoverableKey> = passkeys(app, &factors)
        .iter()
        .map(|(_, pk)| pk.into())
        .collect();
    // (The `_v2` form wants the one credential up front; this one finds it
    // among the user's keys, which is what is needed here.)
    #[allow(deprecated)]
    let checked = w.finish_discoverable_authentication(&cred, state, &keys);
    let Ok(result) = checked else {
        return refused("not valid").await;
    };
    match finish_sign_in(app, &org, &user, &factors, &result, ctx.clone()).await? {
        Some(entry) => Ok(entry),
        None => refused("unknown passkey").await,
    }
}

async fn email_first_finish(
    app: &App,
    row: CeremonyRow,
    state: PasskeyAuthentication,
    credential: Value,
    ctx: muster_core::audit::Context,
) -> Result<crate::signin::Entry> {
    let org = muster_store::orgs::by_id(&app.db, &row.org_id)
        .await?
        .ok_or_else(bad_passkey)?;
    let refused = async |why: &str| refused_sign_in(app, &org.id, why, &ctx).await;
    let Some(user_id) = row.user_id.as_deref() else {
        return refused("no account").await;
    };
    let Some(user) = muster_store::users::get(&app.db, &org.id, user_id).await? else {
        return refused("unknown account").await;
    };
    let Ok(cred) = serde_json::from_value::<PublicKeyCredential>(credential) else {
        return refused("malformed").await;
    };
    let Ok(result) = wa(app)?.finish_passkey_authentication(&cred, &state) else {
        return refused("not valid").await;
    };
    let factors = muster_store::mfa::factors(&app.db, &user.id).await?;
    match finish_sign_in(app, &org, &user, &factors, &result, ctx.clone()).await? {
        Some(entry) => Ok(entry),
        None => refused("unknown passkey").await,
    }
}

/// A refused passwordless sign-in: audited with why, answered like any
/// wrong credential.
async fn refused_sign_in(
    app: &App,
    org_id: &str,
    why: &str,
    ctx: &muster_core::audit::Context,
) -> Result<crate::signin::Entry> {
    let what = format!("passkey sign-in ({why})");
    crate::signin::signup::refused(app, org_id, "passkey", &what, ctx).await?;
    Err(AppError::Unauthenticated)
}

/// The common end of both passwordless sign-ins: the use recorded (with its
/// new counter), the account's state checked, then the checks every sign-in
/// gets. `None` when the answer came from no passkey of this account.
async fn finish_sign_in(
    app: &App,
    org: &muster_store::orgs::OrgRow,
    user: &muster_store::users::UserRow,
    factors: &[FactorRow],
    result: &webauthn_rs::prelude::AuthenticationResult,
    ctx: muster_core::audit::Context,
) -> Result<Option<crate::signin::Entry>> {
    let mut tx = app.db.begin().await?;
    if !used(app, &mut tx, factors, result).await? {
        return Ok(None);
    }
    tx.commit().await?;
    if let Some(why) = crate::signin::login::denial(&user.state) {
        let what = format!("account {}", user.state);
        crate::signin::login::failed_event(app, org, user, &what, &ctx).await?;
        return Err(AppError::SignInDenied(why.into()));
    }
    super::challenge::enter_with_passkey(app, org, user, ctx)
        .await
        .map(Some)
}
