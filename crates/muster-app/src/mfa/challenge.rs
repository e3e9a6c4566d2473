//! The step between a good first factor (password, Google, SSO, an accepted
//! invitation) and a session. When the user has a second factor, or the
//! policy makes them need one, no session opens yet: the caller gets a
//! challenge token, good for ten minutes and five wrong codes, that only
//! proves — or, with nothing enrolled, enrols — a second factor. Until then
//! the user can reach nothing else.

use super::prove::{self, Offered, bad_code, count_failure, prove_in};
use super::{Method, TotpSetup, first_factor_codes, new_totp, required_for};
use crate::audit::{self, Event};
use crate::risk::{Attempt, Required};
use crate::signin::login::{Proof, SignedIn, open_session};
use crate::signin::throttle::Keys;
use crate::{App, AppError, Result, secrets};
use muster_core::UserState;
use muster_core::audit::Context;
use muster_store::mfa::ChallengeRow;
use muster_store::orgs::OrgRow;
use muster_store::users::UserRow;
use serde::{Deserialize, Serialize};

/// Prefix of a challenge token (`mfc_<id>_<secret>`).
pub const CHALLENGE_PREFIX: &str = "mfc";
const VALID_MS: i64 = 10 * 60_000;
const ATTEMPTS: i32 = 5;

/// What a first factor leads to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Entry {
    SignedIn(Box<SignedIn>),
    Mfa(MfaChallenge),
}

/// DESIGN.md §2: `mfa_required`, `challenge_id`, `methods`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MfaChallenge {
    pub mfa_required: bool,
    /// Send it back to `POST /auth/mfa` (and, to enrol, `/auth/mfa/enrol`).
    pub challenge_id: String,
    /// Methods that can answer: `totp`, `email`, `recovery` — or, when
    /// `enrolment_required`, the methods that may be enrolled.
    pub methods: Vec<String>,
    /// Nothing is enrolled yet and the policy requires MFA: enrol first.
    pub enrolment_required: bool,
}

/// Where a first factor leads for this user: a session (L1), or a challenge.
pub(crate) async fn enter(
    app: &App,
    org: &OrgRow,
    user: &UserRow,
    keys: Option<&Keys>,
    ctx: Context,
    first: &str,
) -> Result<Entry> {
    let rules = crate::org_units::policies_for(app, org, user).await?;
    if let Some(r) = crate::guard::refusal(app, &rules.access, &ctx) {
        let why = format!("access policy ({})", r.as_str());
        crate::signin::login::failed_event(app, org, user, &why, &ctx).await?;
        return Err(AppError::AccessDenied(r.explain()));
    }
    let attempt = crate::risk::evaluate_with(app, org, user, &ctx, keys).await?;
    let p = rules.mfa.clone();
    // Only confirmed factors count below: a password sign-in's first read
    // said whether there are any.
    let factors = match keys.and_then(|k| k.has_factors) {
        Some(false) => Vec::new(),
        _ => muster_store::mfa::factors(&app.db, &user.id).await?,
    };
    let has_passkey = p.allows(Method::Passkey)
        && factors
            .iter()
            .any(|f| f.kind == "passkey" && f.confirmed_at.is_some());
    let needs_passkey = attempt.required == Required::L3;
    if attempt.required == Required::Deny || (needs_passkey && !has_passkey) {
        return Err(risk_refusal(app, org, user, &ctx, &attempt).await?);
    }
    if p.mode == super::MfaMode::Off {
        // With MFA off nothing can prove more than L1, whatever the risk.
        let s = open_session(app, org, user, keys, ctx, proof(first, 1, Some(&attempt))).await?;
        return Ok(Entry::SignedIn(Box::new(s)));
    }
    let mut methods: Vec<String> = Vec::new();
    for m in [Method::Totp, Method::Email, Method::Passkey] {
        let has = factors
            .iter()
            .any(|f| f.kind == m.as_str() && f.confirmed_at.is_some());
        // A risk that asks for L3 leaves only the passkey.
        if has && p.allows(m) && (!needs_passkey || m == Method::Passkey) {
            methods.push(m.as_str().into());
        }
    }
    let enrol = methods.is_empty();
    if enrol {
        // The risk policy asking for L2 makes a second factor needed now,
        // like an MFA policy that requires one.
        let needed =
            attempt.required == Required::L2 || required_for(app, &p, &org.id, &user.id).await?;
        if !needed {
            let s =
                open_session(app, org, user, keys, ctx, proof(first, 1, Some(&attempt))).await?;
            return Ok(Entry::SignedIn(Box::new(s)));
        }
        // Passkeys are registered from a session, not during sign-in.
        methods = p
            .methods
            .iter()
            .filter(|m| **m != Method::Passkey)
            .map(|m| m.as_str().to_owned())
            .collect();
    } else if !needs_passkey
        && !muster_store::mfa::recovery_left(&app.db, &user.id)
            .await?
            .is_empty()
    {
        methods.push("recovery".into());
    }
    let id = uuid::Uuid::now_v7();
    let secret = secrets::random_secret();
    let now = app.now_ms();
    let row = ChallengeRow {
        id: id.simple().to_string(),
        org_id: org.id.clone(),
        user_id: user.id.clone(),
        secret_hash: secrets::hash_secret(&secret),
        first_method: first.to_owned(),
        enrol: i32::from(enrol),
        attempts: 0,
        created_at: now,
        expires_at: now + VALID_MS,
        spent_at: None,
        risk: serde_json::to_string(&attempt).ok(),
        device_hash: attempt.device_hash.clone(),
    };
    let mut tx = app.db.begin().await?;
    muster_store::mfa::insert_challenge(&mut tx, &row).await?;
    // The password was right: the failures it follows are forgiven as at
    // any sign-in; wrong second factors count afresh.
    if let Some(k) = keys
        && k.account_failed
    {
        muster_store::failures::clear(&mut tx, &k.account).await?;
    }
    tx.commit().await?;
    Ok(Entry::Mfa(MfaChallenge {
        mfa_required: true,
        challenge_id: muster_core::tokens::format(CHALLENGE_PREFIX, id, &secret),
        methods,
        enrolment_required: enrol,
    }))
}

fn proof<'a>(method: &'a str, level: i32, attempt: Option<&'a Attempt>) -> Proof<'a> {
    Proof {
        method,
        level,
        attempt,
    }
}

/// Audits a sign-in the risk policy refuses, with the evaluation, and
/// answers why in words for the person.
async fn risk_refusal(
    app: &App,
    org: &OrgRow,
    user: &UserRow,
    ctx: &Context,
    a: &Attempt,
) -> Result<AppError> {
    let me = crate::signin::self_caller(org, &user.id, &user.email, ctx.clone());
    // Its own action, not `auth.login_failed`: the dashboard and webhook
    // subscribers tell a refusal by policy from a wrong password without
    // reading `changes` (which may be sealed, see `erasure`).
    let ev = Event::new(&org.id, "auth.risk_denied")
        .target("user", &user.id)
        .detail("reason", format!("risk {}", a.assessment.level.as_str()))
        .detail("risk", &a.assessment)
        .security();
    let mut tx = app.db.begin().await?;
    audit::record(app, &mut tx, &me, ev).await?;
    tx.commit().await?;
    metrics::counter!("muster_risk_denials_total").increment(1);
    Ok(AppError::SignInDenied(if a.required == Required::L3 {
        "this sign-in needs a passkey; use a device you have signed in from before, or ask your administrator".into()
    } else {
        "this sign-in looks unusual and was refused for your safety; try again from a device and network you have used before, or ask your administrator".into()
    }))
}

/// The live challenge a token names, with its organization and user; every
/// failure is the same refusal.
async fn open(app: &App, token: &str) -> Result<(ChallengeRow, OrgRow, UserRow)> {
    let gone = || {
        AppError::SignInDenied(
            "this sign-in has expired or was already completed; sign in again".into(),
        )
    };
    let parsed = muster_core::tokens::parse(CHALLENGE_PREFIX, token.trim()).ok_or_else(gone)?;
    let row = muster_store::mfa::challenge(&app.db, &parsed.id.simple().to_string())
        .await?
        .filter(|c| {
            secrets::secret_matches(parsed.secret, &c.secret_hash)
                && c.spent_at.is_none()
                && app.now_ms() < c.expires_at
        })
        .ok_or_else(gone)?;
    let org = muster_store::orgs::by_id(&app.db, &row.org_id)
        .await?
        .ok_or_else(gone)?;
    let user = muster_store::users::get(&app.db, &row.org_id, &row.user_id)
        .await?
        .filter(|u| UserState::parse(&u.state).is_some_and(UserState::can_sign_in))
        .ok_or_else(gone)?;
    Ok((row, org, user))
}

/// What the challenge page shows.
#[derive(Debug, Clone, Serialize)]
pub struct ChallengeInfo {
    pub methods: Vec<String>,
    pub enrolment_required: bool,
    pub email: String,
}

pub async fn describe(app: &App, token: &str) -> Result<ChallengeInfo> {
    let (row, org, user) = open(app, token).await?;
    let p = &crate::org_units::policies_for(app, &org, &user).await?.mfa;
    let factors = muster_store::mfa::factors(&app.db, &user.id).await?;
    let mut methods: Vec<String> = [Method::Totp, Method::Email, Method::Passkey]
        .into_iter()
        .filter(|m| {
            p.allows(*m)
                && ((row.enrol == 1 && *m != Method::Passkey)
                    || factors
                        .iter()
                        .any(|f| f.kind == m.as_str() && f.confirmed_at.is_some()))
        })
        .map(|m| m.as_str().to_owned())
        .collect();
    if row.enrol == 0
        && !muster_store::mfa::recovery_left(&app.db, &user.id)
            .await?
            .is_empty()
    {
        methods.push("recovery".into());
    }
    Ok(ChallengeInfo {
        methods,
        enrolment_required: row.enrol == 1,
        email: user.email,
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRef {
    pub challenge_id: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolInput {
    pub challenge_id: String,
    /// `totp` (the answer carries the seed to scan) or `email` (a code is sent).
    pub method: String,
}

/// Enrolment at sign-in, for a user whom the policy requires to use MFA and
/// who has nothing enrolled: starts an authenticator app (answering its
/// seed) or email codes (sending the first code). `POST /auth/mfa` with a
/// code from it then finishes enrolment and signs in.
pub async fn enrol(app: &App, input: EnrolInput) -> Result<Option<TotpSetup>> {
    let (row, org, user) = open(app, &input.challenge_id).await?;
    if row.enrol == 0 {
        return Err(AppError::Refused(
            "this sign-in asks for a factor you already have, not a new one".into(),
        ));
    }
    match Offered::parse(&input.method)? {
        Offered::Factor(Method::Totp) => Ok(Some(
            new_totp(app, &org.id, &user.id, "Authenticator app").await?,
        )),
        Offered::Factor(Method::Email) => {
            if !crate::org_units::policies_for(app, &org, &user)
                .await?
                .mfa
                .allows(Method::Email)
            {
                return Err(AppError::Refused(
                    "your organization does not allow email codes".into(),
                ));
            }
            let now = app.now_ms();
            let mut tx = app.db.begin().await?;
            muster_store::mfa::delete_pending(&mut tx, &user.id, "email").await?;
            super::email_factor(&mut tx, &org.id, &user.id, now, false).await?;
            tx.commit().await?;
            prove::send_code(app, &org.id, &user.id).await?;
            Ok(None)
        }
        Offered::Factor(Method::Passkey) => Err(AppError::invalid(
            "method",
            "a passkey is added from your account once signed in; enrol totp or email now",
        )),
        Offered::Recovery => Err(AppError::invalid(
            "method",
            "recovery codes come with your first factor; enrol totp or email",
        )),
    }
}

/// Options to answer the challenge with one of the user's passkeys.
pub async fn passkey_options(app: &App, input: ChallengeRef) -> Result<super::passkeys::Ceremony> {
    let (_, org, user) = open(app, &input.challenge_id).await?;
    super::passkeys::options_for(app, &org.id, &user.id, "mfa").await
}

/// After a passwordless sign-in with a passkey (both factors at once): the
/// access policy and the risk policy decide as for any sign-in, and the
/// session is L3 — the most any risk level asks.
pub(crate) async fn enter_with_passkey(
    app: &App,
    org: &OrgRow,
    user: &UserRow,
    ctx: Context,
) -> Result<Entry> {
    let rules = crate::org_units::policies_for(app, org, user).await?;
    if let Some(r) = crate::guard::refusal(app, &rules.access, &ctx) {
        let why = format!("access policy ({})", r.as_str());
        crate::signin::login::failed_event(app, org, user, &why, &ctx).await?;
        return Err(AppError::AccessDenied(r.explain()));
    }
    let attempt = crate::risk::evaluate(app, org, user, &ctx).await?;
    if attempt.required == Required::Deny {
        return Err(risk_refusal(app, org, user, &ctx, &attempt).await?);
    }
    let s = open_session(
        app,
        org,
        user,
        None,
        ctx,
        proof("passkey", 3, Some(&attempt)),
    )
    .await?;
    Ok(Entry::SignedIn(Box::new(s)))
}

/// Emails a code for this challenge (at most once a minute).
pub async fn email_code(app: &App, input: ChallengeRef) -> Result<()> {
    let (row, org, user) = open(app, &input.challenge_id).await?;
    let factors = muster_store::mfa::factors(&app.db, &user.id).await?;
    let has = factors
        .iter()
        .any(|f| f.kind == "email" && (f.confirmed_at.is_some() || row.enrol == 1));
    if !has
        || !crate::org_units::policies_for(app, &org, &user)
            .await?
            .mfa
            .allows(Method::Email)
    {
        return Err(AppError::Refused(
            "email codes are not on for this account".into(),
        ));
    }
    prove::send_code(app, &org.id, &user.id).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaInput {
    pub challenge_id: String,
    /// `totp`, `email`, `recovery` or `passkey`.
    pub method: String,
    /// The code (not for a passkey).
    #[serde(default)]
    pub code: String,
    /// With `passkey`: the ceremony from `POST /auth/mfa/passkey`.
    #[serde(default)]
    pub ceremony_id: Option<String>,
    /// With `passkey`: what `navigator.credentials.get()` answered.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub assertion: Option<serde_json::Value>,
}

/// A session, and the recovery codes when this sign-in enrolled the first factor.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Completed {
    #[serde(flatten)]
    pub signed: SignedIn,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// Answers a challenge: a good code opens an L2 session; a wrong one counts
/// against the challenge (the fifth ends it) and against the account, as a
/// wrong password would, and is audited.
pub async fn complete(app: &App, input: MfaInput, ctx: Context) -> Result<Completed> {
    let (row, org, user) = open(app, &input.challenge_id).await?;
    let rules = crate::org_units::policies_for(app, &org, &user).await?;
    if let Some(r) = crate::guard::refusal(app, &rules.access, &ctx) {
        return Err(AppError::AccessDenied(r.explain()));
    }
    prove::throttled(app, &org, &user.email, &ctx).await?;
    let offered = Offered::parse(&input.method)?;
    let pending = row.enrol == 1;
    if pending && offered == Offered::Recovery {
        return Err(bad_code());
    }
    let factors = muster_store::mfa::factors(&app.db, &user.id).await?;
    let passkey = offered == Offered::Factor(Method::Passkey);
    let attempt = row
        .risk
        .as_deref()
        .and_then(|r| serde_json::from_str::<Attempt>(r).ok())
        .map(|a| Attempt {
            device_hash: row.device_hash.clone(),
            ..a
        });
    if attempt.as_ref().is_some_and(|a| a.required == Required::L3) && !passkey {
        return Err(AppError::invalid(
            "method",
            "this sign-in needs your passkey",
        ));
    }
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let answer = prove::Answer {
        code: &input.code,
        ceremony_id: input.ceremony_id.as_deref(),
        assertion: input.assertion.as_ref(),
    };
    let ok = prove_in(
        app, &mut tx, &user.id, &factors, offered, answer, pending, "mfa",
    )
    .await?;
    if !ok {
        tx.commit().await?;
        muster_store::mfa::challenge_failed(&app.db, &row.id, ATTEMPTS, now).await?;
        let me = crate::signin::self_caller(&org, &user.id, &user.email, ctx.clone());
        prove::wrong_code_audit(app, &me, &format!("sign-in ({})", offered.as_str())).await?;
        count_failure(app, &org, &user, &ctx).await?;
        return Err(bad_code());
    }
    if !muster_store::mfa::spend_challenge(&mut tx, &row.id, now).await? {
        return Err(AppError::SignInDenied(
            "this sign-in has expired or was already completed; sign in again".into(),
        ));
    }
    let codes = if pending {
        let codes = first_factor_codes(
            app,
            &mut tx,
            &factors_confirmed_before(&factors),
            &user.id,
            now,
        )
        .await?;
        let ev = Event::new(&org.id, "mfa.enrolled")
            .target("user", &user.id)
            .detail("method", offered.as_str())
            .detail("at", "sign-in")
            .security();
        let me = crate::signin::self_caller(&org, &user.id, &user.email, ctx.clone());
        audit::record(app, &mut tx, &me, ev).await?;
        codes
    } else {
        None
    };
    tx.commit().await?;
    let method = format!("{}+{}", row.first_method, offered.as_str());
    let level = if passkey { 3 } else { 2 };
    let signed = open_session(
        app,
        &org,
        &user,
        None,
        ctx,
        proof(&method, level, attempt.as_ref()),
    )
    .await?;
    Ok(Completed {
        signed,
        recovery_codes: codes,
    })
}

/// The factors that were confirmed before this sign-in (a pending one just
/// confirmed by it does not count).
fn factors_confirmed_before(
    factors: &[muster_store::mfa::FactorRow],
) -> Vec<muster_store::mfa::FactorRow> {
    factors
        .iter()
        .filter(|f| f.confirmed_at.is_some())
        .cloned()
        .collect()
}
