//! A user's factors: enrolling an authenticator app or email codes,
//! recovery codes, removal by the user, and an admin's reset.

use super::{Method, own, policy, prove, required_for, sensitive, totp};
use crate::audit::{self, Event};
use crate::{App, AppError, Caller, Result, secrets};
use muster_core::Permission;
use muster_store::mfa::FactorRow;
use serde::{Deserialize, Serialize};

/// A new authenticator app: its seed, as a URI and a QR code to scan. The
/// factor counts once `confirm_totp` has seen a code from it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpSetup {
    pub factor_id: String,
    /// The seed in base32, for typing in by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code (an SVG document).
    pub qr_svg: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TotpStart {
    /// What the user calls this app (default "Authenticator app").
    pub name: Option<String>,
}

pub async fn start_totp(app: &App, caller: &Caller, input: TotpStart) -> Result<TotpSetup> {
    sensitive(app, caller).await?;
    let (org_id, user_id, _) = own(caller)?;
    let name = factor_name(input.name.as_deref(), "Authenticator app")?;
    new_totp(app, org_id, user_id, &name).await
}

pub(crate) async fn new_totp(
    app: &App,
    org_id: &str,
    user_id: &str,
    name: &str,
) -> Result<TotpSetup> {
    let p = policy(app, org_id, user_id).await?;
    if !p.allows(Method::Totp) {
        return Err(AppError::Refused(
            "your organization does not allow authenticator apps".into(),
        ));
    }
    let org = muster_store::orgs::by_id(&app.db, org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let user = muster_store::users::get(&app.db, org_id, user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let seed = totp::new_seed();
    let id = uuid::Uuid::now_v7().simple().to_string();
    let secret = totp::base32(&seed);
    let row = FactorRow {
        id: id.clone(),
        org_id: org_id.to_owned(),
        user_id: user_id.to_owned(),
        kind: "totp".into(),
        name: name.to_owned(),
        secret_sealed: Some(app.key.seal(&format!("totp:{id}"), &secret)),
        last_step: 0,
        created_at: app.now_ms(),
        confirmed_at: None,
        last_used_at: None,
        credential_id: None,
    };
    let mut tx = app.db.begin().await?;
    // Only the newest unfinished enrolment stays.
    muster_store::mfa::delete_pending(&mut tx, user_id, "totp").await?;
    muster_store::mfa::insert_factor(&mut tx, &row).await?;
    tx.commit().await?;
    let uri = totp::otpauth_uri(&org.name, &user.email, &seed);
    Ok(TotpSetup {
        factor_id: id,
        secret,
        qr_svg: totp::qr_svg(&uri),
        otpauth_uri: uri,
    })
}

pub(crate) fn factor_name(name: Option<&str>, default: &str) -> Result<String> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(default);
    if name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AppError::invalid("name", "use at most 64 characters"));
    }
    Ok(name.to_owned())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeInput {
    pub code: String,
}

/// Recovery codes, shown once: when the first factor is confirmed, or when
/// the user asks for new ones.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Enrolled {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// Confirms an authenticator app with a code from it. The session has just
/// proved a factor, so it reaches L2.
pub async fn confirm_totp(
    app: &App,
    caller: &Caller,
    id: &str,
    input: CodeInput,
) -> Result<Enrolled> {
    let (org_id, user_id, s) = own(caller)?;
    let factors = muster_store::mfa::factors(&app.db, user_id).await?;
    let f = factors
        .iter()
        .find(|f| f.id == id && f.kind == "totp" && f.confirmed_at.is_none())
        .ok_or(AppError::NotFound("pending authenticator app"))?;
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    if !prove::totp_in(app, &mut tx, f, &input.code, now).await? {
        tx.commit().await?;
        prove::wrong_code_audit(app, caller, "totp enrolment").await?;
        return Err(prove::bad_code());
    }
    let codes = first_factor_codes(app, &mut tx, &factors, user_id, now).await?;
    muster_store::mfa::raise_session(&mut tx, &s.id, 2, now).await?;
    let ev = Event::new(org_id, "mfa.enrolled")
        .target("user", user_id)
        .detail("method", "totp")
        .detail("factor", id)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(Enrolled {
        recovery_codes: codes,
    })
}

/// Email codes as a second factor, for the account's verified address.
pub async fn enable_email(app: &App, caller: &Caller) -> Result<Enrolled> {
    let factors = sensitive(app, caller).await?;
    let (org_id, user_id, _) = own(caller)?;
    if !policy(app, org_id, user_id).await?.allows(Method::Email) {
        return Err(AppError::Refused(
            "your organization does not allow email codes".into(),
        ));
    }
    if factors
        .iter()
        .any(|f| f.kind == "email" && f.confirmed_at.is_some())
    {
        return Err(AppError::Conflict {
            field: "method",
            message: "email codes are already on".into(),
        });
    }
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    muster_store::mfa::delete_pending(&mut tx, user_id, "email").await?;
    let id = email_factor(&mut tx, org_id, user_id, now, true).await?;
    let codes = first_factor_codes(app, &mut tx, &factors, user_id, now).await?;
    let ev = Event::new(org_id, "mfa.enrolled")
        .target("user", user_id)
        .detail("method", "email")
        .detail("factor", &id)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(Enrolled {
        recovery_codes: codes,
    })
}

pub(crate) async fn email_factor(
    tx: &mut muster_store::Tx,
    org_id: &str,
    user_id: &str,
    now: i64,
    confirmed: bool,
) -> Result<String> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let row = FactorRow {
        id: id.clone(),
        org_id: org_id.to_owned(),
        user_id: user_id.to_owned(),
        kind: "email".into(),
        name: "Email codes".into(),
        secret_sealed: None,
        last_step: 0,
        created_at: now,
        confirmed_at: confirmed.then_some(now),
        last_used_at: None,
        credential_id: None,
    };
    muster_store::mfa::insert_factor(tx, &row).await?;
    Ok(id)
}

/// New recovery codes when `factors` held no confirmed one before this.
pub(crate) async fn first_factor_codes(
    app: &App,
    tx: &mut muster_store::Tx,
    factors: &[FactorRow],
    user_id: &str,
    now: i64,
) -> Result<Option<Vec<String>>> {
    if factors.iter().any(|f| f.confirmed_at.is_some()) {
        return Ok(None);
    }
    Ok(Some(new_recovery_codes(app, tx, user_id, now).await?))
}

/// Ten codes of 10 characters (about 49 bits each) from an alphabet without
/// look-alikes, shown as `xxxxx-xxxxx`; stored hashed, salted with the user.
async fn new_recovery_codes(
    _app: &App,
    tx: &mut muster_store::Tx,
    user_id: &str,
    now: i64,
) -> Result<Vec<String>> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let raw_codes: Vec<String> = {
        use rand::RngExt;
        // The thread's generator is not held across an await.
        let mut rng = rand::rng();
        (0..10)
            .map(|_| {
                (0..10)
                    .map(|_| {
                        let i = rng.random_range(0..ALPHABET.len());
                        char::from(ALPHABET.get(i).copied().unwrap_or(b'a'))
                    })
                    .collect()
            })
            .collect()
    };
    let mut shown = Vec::with_capacity(10);
    let mut stored = Vec::with_capacity(10);
    for raw in raw_codes {
        stored.push((
            uuid::Uuid::now_v7().simple().to_string(),
            recovery_hash(user_id, &raw),
        ));
        shown.push(format!(
            "{}-{}",
            raw.get(..5).unwrap_or(""),
            raw.get(5..).unwrap_or("")
        ));
    }
    muster_store::mfa::replace_recovery(tx, user_id, &stored, now).await?;
    Ok(shown)
}

pub(crate) fn recovery_hash(user_id: &str, normalized: &str) -> String {
    secrets::hash_secret(&format!("recovery:{user_id}:{normalized}"))
}

/// Replaces the recovery codes (the old ones stop working).
pub async fn regenerate_recovery(app: &App, caller: &Caller) -> Result<Enrolled> {
    let factors = sensitive(app, caller).await?;
    let (org_id, user_id, _) = own(caller)?;
    if !factors.iter().any(|f| f.confirmed_at.is_some()) {
        return Err(AppError::Refused(
            "set up a second factor first; recovery codes come with it".into(),
        ));
    }
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let codes = new_recovery_codes(app, &mut tx, user_id, now).await?;
    let ev = Event::new(org_id, "mfa.recovery_codes_regenerated")
        .target("user", user_id)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(Enrolled {
        recovery_codes: Some(codes),
    })
}

/// Removes one of the caller's factors. While the policy requires MFA of
/// them, the last one cannot go; with the last one go the recovery codes.
pub async fn remove(app: &App, caller: &Caller, id: &str) -> Result<()> {
    let factors = sensitive(app, caller).await?;
    let (org_id, user_id, _) = own(caller)?;
    let target = factors
        .iter()
        .find(|f| f.id == id)
        .ok_or(AppError::NotFound("factor"))?;
    let others = factors
        .iter()
        .filter(|f| f.id != id && f.confirmed_at.is_some())
        .count();
    if others == 0 && target.confirmed_at.is_some() {
        let p = policy(app, org_id, user_id).await?;
        if required_for(app, &p, org_id, user_id).await? {
            return Err(AppError::Refused(
                "your organization requires MFA: add another method before removing the last one"
                    .into(),
            ));
        }
    }
    let mut tx = app.db.begin().await?;
    if !muster_store::mfa::delete_factor(&mut tx, user_id, id).await? {
        return Err(AppError::NotFound("factor"));
    }
    if others == 0 {
        muster_store::mfa::replace_recovery(&mut tx, user_id, &[], app.now_ms()).await?;
    }
    let ev = Event::new(org_id, "mfa.removed")
        .target("user", user_id)
        .detail("method", &target.kind)
        .detail("factor", id)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// An admin's "reset MFA" (`users.lifecycle`): every factor and recovery
/// code of the user goes, and so does every session (whoever holds one may
/// be the reason for the reset).
pub async fn reset(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<()> {
    let org = crate::caller::org_with(app, caller, slug, Permission::UsersLifecycle).await?;
    muster_store::users::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let mut tx = app.db.begin().await?;
    let n = muster_store::mfa::reset(&mut tx, id).await?;
    let ended =
        muster_store::sessions::revoke_others(&mut tx, &org.id, id, None, app.now_ms()).await?;
    let ev = Event::new(&org.id, "mfa.reset")
        .target("user", id)
        .detail("factors_removed", n)
        .detail("sessions_ended", ended.len())
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}
