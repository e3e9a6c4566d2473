//! Proving a second factor: a TOTP code, an emailed code or a recovery
//! code, each spent atomically in the caller's transaction so that two
//! concurrent uses of one code cannot both win. Used by the sign-in
//! challenge and by a session's step-up.

use super::{Method, own, policy};
use crate::audit::{self, Event};
use crate::signin::throttle::{self, Keys};
use crate::signin::{LockoutPolicy, setting};
use crate::{App, AppError, Caller, Result};
use muster_store::Tx;
use muster_store::mfa::FactorRow;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// One answer for every wrong, used or expired code.
pub(crate) fn bad_code() -> AppError {
    AppError::invalid(
        "code",
        "this code is wrong, used or expired; try again with a new one",
    )
}

/// What a user offers: a method and its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    Factor(Method),
    Recovery,
}

/// What answers: a code, or a passkey's answer to a ceremony.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Answer<'a> {
    pub code: &'a str,
    pub ceremony_id: Option<&'a str>,
    pub assertion: Option<&'a serde_json::Value>,
}

impl Offered {
    pub(crate) fn parse(s: &str) -> Result<Self> {
        match s {
            "totp" => Ok(Self::Factor(Method::Totp)),
            "email" => Ok(Self::Factor(Method::Email)),
            "passkey" => Ok(Self::Factor(Method::Passkey)),
            "recovery" | "recovery_code" => Ok(Self::Recovery),
            _ => Err(AppError::invalid(
                "method",
                "use one of: totp, email, passkey, recovery",
            )),
        }
    }
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Factor(m) => m.as_str(),
            Self::Recovery => "recovery",
        }
    }
}

/// Checks a TOTP code against the factor and spends its time step.
pub(crate) async fn totp_in(
    app: &App,
    tx: &mut Tx,
    f: &FactorRow,
    code: &str,
    now: i64,
) -> Result<bool> {
    let Some(sealed) = &f.secret_sealed else {
        return Ok(false);
    };
    let seed = super::totp::decode_seed(&app.key.open(&format!("totp:{}", f.id), sealed)?);
    let Some(seed) = seed else { return Ok(false) };
    let Some(step) = super::totp::matching_step(&seed, code, now, f.last_step) else {
        return Ok(false);
    };
    Ok(muster_store::mfa::use_step(tx, &f.id, step, now).await?)
}

/// Checks the newest emailed code of the user and spends it. A wrong code
/// counts against it (the fifth spends it) in the same transaction, which
/// callers commit whether or not the proof held.
async fn email_in(app: &App, tx: &mut Tx, user_id: &str, code: &str, now: i64) -> Result<bool> {
    let Some(t) = muster_store::email_tokens::latest(&app.db, user_id, "mfa_code").await? else {
        return Ok(false);
    };
    if !crate::signin::signup::usable(&t, now) {
        return Ok(false);
    }
    if !crate::signin::signup::code_matches(&t, code) {
        muster_store::email_tokens::wrong_code_in(tx, &t.id, crate::signin::CODE_ATTEMPTS, now)
            .await?;
        return Ok(false);
    }
    Ok(muster_store::email_tokens::spend(tx, &t.id, now).await?)
}

/// Checks a recovery code (case, dashes and spaces ignored) and spends it.
async fn recovery_in(app: &App, tx: &mut Tx, user_id: &str, code: &str, now: i64) -> Result<bool> {
    let normalized: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    if normalized.len() != 10 {
        return Ok(false);
    }
    let hash = super::recovery_hash(user_id, &normalized);
    let mut found = None;
    for (id, stored) in muster_store::mfa::recovery_left(&app.db, user_id).await? {
        if bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
            found = Some(id);
        }
    }
    match found {
        Some(id) => Ok(muster_store::mfa::spend_recovery(tx, &id, now).await?),
        None => Ok(false),
    }
}

/// Proves `offered` with `code` among the user's factors. `pending` lets an
/// unconfirmed factor of that method prove itself (enrolment at sign-in):
/// it is confirmed by the same write. Returns whether it held; either way
/// the caller commits (a failure's count is written in `tx`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn prove_in(
    app: &App,
    tx: &mut Tx,
    user_id: &str,
    factors: &[FactorRow],
    offered: Offered,
    answer: Answer<'_>,
    pending: bool,
    ceremony_kind: &str,
) -> Result<bool> {
    let now = app.now_ms();
    let code = answer.code;
    let usable = |f: &&FactorRow| f.confirmed_at.is_some() || pending;
    match offered {
        Offered::Recovery => recovery_in(app, tx, user_id, code, now).await,
        Offered::Factor(Method::Totp) => {
            // The newest app first: one whose code matches is the one used.
            for f in factors
                .iter()
                .rev()
                .filter(|f| f.kind == "totp")
                .filter(usable)
            {
                if totp_in(app, tx, f, code, now).await? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Offered::Factor(Method::Passkey) => {
            super::passkeys::prove_in(
                app,
                tx,
                user_id,
                factors,
                ceremony_kind,
                answer.ceremony_id,
                answer.assertion,
            )
            .await
        }
        Offered::Factor(Method::Email) => {
            let Some(f) = factors.iter().filter(|f| f.kind == "email").find(usable) else {
                return Ok(false);
            };
            if !email_in(app, tx, user_id, code, now).await? {
                return Ok(false);
            }
            muster_store::mfa::used(tx, &f.id, now).await?;
            Ok(true)
        }
    }
}

/// Audits a refused code.
pub(crate) async fn wrong_code_audit(app: &App, caller: &Caller, what: &str) -> Result<()> {
    let Some(org_id) = caller_org(caller) else {
        return Ok(());
    };
    let mut ev = Event::new(org_id, "auth.mfa_failed")
        .detail("attempt", what)
        .security();
    if let Some(u) = caller.user_id() {
        ev = ev.target("user", u);
    }
    let mut tx = app.db.begin().await?;
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

fn caller_org(c: &Caller) -> Option<&str> {
    match &c.principal {
        crate::Principal::User { org_id, .. } => Some(org_id),
        _ => None,
    }
}

/// Counts a failed second factor against the account like a wrong
/// password: the same delays, and the same lockout at the policy's limit.
pub(crate) async fn count_failure(
    app: &App,
    org: &muster_store::orgs::OrgRow,
    user: &muster_store::users::UserRow,
    ctx: &muster_core::audit::Context,
) -> Result<()> {
    let lockout: LockoutPolicy = setting(org, "lockout");
    let keys = Keys::new(&org.id, &user.email, ctx.ip.as_deref(), lockout.clone());
    let failures = throttle::failed(app, &keys).await?;
    if failures >= i64::from(lockout.lock_after) && user.state == "active" {
        crate::signin::login::lock(app, org, user, failures, ctx).await?;
    }
    Ok(())
}

/// Refuses an attempt too soon after earlier failures of the account.
pub(crate) async fn throttled(
    app: &App,
    org: &muster_store::orgs::OrgRow,
    email: &str,
    ctx: &muster_core::audit::Context,
) -> Result<()> {
    let lockout: LockoutPolicy = setting(org, "lockout");
    let mut keys = Keys::new(&org.id, email, ctx.ip.as_deref(), lockout);
    throttle::check(app, &mut keys).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpInput {
    /// `totp`, `email`, `recovery` or `passkey`.
    pub method: String,
    /// The code (not for a passkey).
    #[serde(default)]
    pub code: String,
    /// With `passkey`: the ceremony from `POST /me/step-up/passkey`.
    #[serde(default)]
    pub ceremony_id: Option<String>,
    /// With `passkey`: what `navigator.credentials.get()` answered.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub assertion: Option<serde_json::Value>,
}

/// Proves a second factor again from a signed-in session: the session is L2
/// from now, for the policy's step-up window.
pub async fn step_up(app: &App, caller: &Caller, input: StepUpInput) -> Result<()> {
    let (org_id, user_id, s) = own(caller)?;
    let offered = Offered::parse(&input.method)?;
    let org = muster_store::orgs::by_id(&app.db, org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let user = muster_store::users::get(&app.db, org_id, user_id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    throttled(app, &org, &user.email, &caller.ctx).await?;
    let factors = muster_store::mfa::factors(&app.db, user_id).await?;
    if !factors.iter().any(|f| f.confirmed_at.is_some()) {
        return Err(AppError::Refused(
            "set up a second factor first (authenticator app or email codes)".into(),
        ));
    }
    let mut tx = app.db.begin().await?;
    let answer = Answer {
        code: &input.code,
        ceremony_id: input.ceremony_id.as_deref(),
        assertion: input.assertion.as_ref(),
    };
    if !prove_in(
        app, &mut tx, user_id, &factors, offered, answer, false, "step_up",
    )
    .await?
    {
        tx.commit().await?;
        wrong_code_audit(app, caller, &format!("step-up ({})", offered.as_str())).await?;
        count_failure(app, &org, &user, &caller.ctx).await?;
        return Err(bad_code());
    }
    let level = if offered == Offered::Factor(Method::Passkey) {
        3
    } else {
        2
    };
    muster_store::mfa::raise_session(&mut tx, &s.id, level, app.now_ms()).await?;
    let ev = Event::new(org_id, "auth.step_up")
        .target("user", user_id)
        .detail("session", &s.id)
        .detail("method", offered.as_str());
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// Options to step up with one of the caller's passkeys.
pub async fn step_up_passkey(app: &App, caller: &Caller) -> Result<super::passkeys::Ceremony> {
    let (org_id, user_id, _) = own(caller)?;
    super::passkeys::options_for(app, org_id, user_id, "step_up").await
}

/// Emails a code for a step-up (at most one a minute).
pub async fn step_up_email(app: &App, caller: &Caller) -> Result<()> {
    let (org_id, user_id, _) = own(caller)?;
    let factors = muster_store::mfa::factors(&app.db, user_id).await?;
    if !factors
        .iter()
        .any(|f| f.kind == "email" && f.confirmed_at.is_some())
        || !policy(app, org_id, user_id).await?.allows(Method::Email)
    {
        return Err(AppError::Refused(
            "email codes are not on for this account".into(),
        ));
    }
    send_code(app, org_id, user_id).await
}

/// Queues an email with a new 6-digit code, unless one left less than a
/// minute ago (then nothing happens: the earlier one still works).
pub(crate) async fn send_code(app: &App, org_id: &str, user_id: &str) -> Result<()> {
    let now = app.now_ms();
    let last = muster_store::email_tokens::latest(&app.db, user_id, "mfa_code").await?;
    if let Some(t) = last
        && now - t.created_at < crate::signin::RESEND_AFTER_MS
    {
        let wait = (crate::signin::RESEND_AFTER_MS - (now - t.created_at) + 999) / 1000;
        return Err(AppError::TooManyAttempts(u64::try_from(wait).unwrap_or(60)));
    }
    let user = muster_store::users::get(&app.db, org_id, user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let mut tx = app.db.begin().await?;
    crate::signin::queue_token_email(app, &mut tx, org_id, user_id, "mfa_code", &user.email, None)
        .await?;
    tx.commit().await?;
    crate::signin::email_committed(app);
    Ok(())
}
