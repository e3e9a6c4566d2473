//! Password sign-in, server-side sessions, sign-out, and a user's own sessions.

use super::signup::refused;
use super::throttle::{self, Keys};
use super::{LockoutPolicy, SESSION_TOKEN_PREFIX, SessionPolicy, public_org, self_caller, setting};
use crate::audit::{self, Event};
use crate::mfa::Entry;
use crate::paging::rfc3339;
use crate::{App, AppError, Caller, Principal, Result, secrets};
use muster_core::audit::Context;
use muster_core::{LifecycleEvent, PermissionSet, UserState, tokens};
use muster_store::orgs::OrgRow;
use muster_store::sessions::SessionRow;
use muster_store::users::UserRow;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub email: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
    /// The organization (slug); default the personal directory.
    #[serde(default)]
    pub org: Option<String>,
}

/// A new session: the token is shown here once and never again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    pub session_token: String,
    pub session: SessionView,
    /// Idle lifetime, for the cookie's `Max-Age` (the absolute end is in `session`).
    #[serde(skip)]
    pub cookie: SessionCookie,
}

#[derive(Debug, Clone, Default)]
pub struct SessionCookie {
    pub max_age_s: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Assurance level reached: 1 password or federated, 2 with MFA, 3 passkey.
    pub level: i32,
    /// The session this request came with.
    pub current: bool,
}

pub(crate) fn view(s: SessionRow, current: Option<&str>) -> SessionView {
    SessionView {
        current: current == Some(s.id.as_str()),
        created_at: rfc3339(s.created_at),
        last_seen_at: rfc3339(s.last_seen_at),
        expires_at: rfc3339(s.expires_at),
        ip: s.ip,
        user_agent: s.user_agent,
        level: s.mfa_level,
        id: s.id,
    }
}

/// Signs in with email and password. Every wrong credential — unknown
/// address, wrong password, no password — is the same `Unauthenticated`
/// after the same argon2id work; only the right password learns why an
/// account may not sign in.
pub async fn login(app: &App, input: LoginInput, ctx: Context) -> Result<Entry> {
    let org = public_org(app, input.org.as_deref()).await?;
    let lockout: LockoutPolicy = setting(&org, "lockout");
    let mut keys = Keys::new(&org.id, &input.email, ctx.ip.as_deref(), lockout.clone());
    let email_key = muster_core::EmailAddress::parse(&input.email)
        .ok()
        .map(|e| e.key());
    // The counters, the user, whether it has a second factor and what the
    // risk engine needs to know of it: one read.
    let device = crate::risk::device_hash(&ctx);
    let first = muster_store::failures::attempt(
        &app.db,
        muster_store::failures::Lookup {
            org_id: &org.id,
            email_key: email_key.as_deref(),
            account_key: &keys.account,
            ip_key: keys.ip.as_deref(),
            device_hash: device.as_deref(),
            history: crate::risk::HISTORY_SIGN_INS,
        },
    )
    .await?;
    if let Err(e) = throttle::judge(app, &mut keys, first.account, first.ip) {
        refused(app, &org.id, &input.email, "sign-in (throttled)", &ctx).await?;
        return Err(e);
    }
    keys.has_factors = Some(first.has_factors);
    keys.prior = Some((first.baseline, first.device));
    keys.last_sign_in_at = first.last_sign_in_at;
    let user = first.user;
    let pw = input.password.expose_secret().to_owned();
    let phc = user.as_ref().and_then(|u| u.password_hash.clone());
    if !app.hasher.verify_or_decoy(pw, phc).await {
        let failures = throttle::failed(app, &keys).await?;
        match &user {
            Some(u) if failures >= i64::from(lockout.lock_after) && u.state == "active" => {
                lock(app, &org, u, failures, &ctx).await?;
            }
            Some(u) => failed_event(app, &org, u, "wrong password", &ctx).await?,
            None => {
                refused(
                    app,
                    &org.id,
                    &input.email,
                    "sign-in (unknown account)",
                    &ctx,
                )
                .await?
            }
        }
        return Err(AppError::Unauthenticated);
    }
    let Some(mut user) = user else {
        return Err(AppError::Unauthenticated); // unreachable: the decoy never matches
    };
    if user.state == UserState::Locked.as_str() {
        user = unlock_after_cooldown(app, &org, &keys, user, &ctx).await?;
    }
    if let Some(why) = denial(&user.state) {
        failed_event(app, &org, &user, &format!("account {}", user.state), &ctx).await?;
        return Err(AppError::SignInDenied(why.into()));
    }
    crate::mfa::challenge::enter(app, &org, &user, Some(&keys), ctx, "password").await
}

/// Why an account in `state` may not sign in, in words for its owner.
pub(crate) fn denial(state: &str) -> Option<&'static str> {
    match UserState::parse(state)? {
        UserState::Active => None,
        UserState::Unverified => {
            Some("verify your email address first; you can ask for a new code")
        }
        UserState::Invited => Some("accept your invitation first, from the link in its email"),
        UserState::Provisioned => Some(
            "this account is not activated yet; use your activation email or your organization's sign-in",
        ),
        UserState::Suspended => Some("this account is suspended; ask your administrator"),
        UserState::Locked => Some(
            "this account is locked after too many failed sign-ins; try again later, reset your password, or ask your administrator",
        ),
        UserState::Deactivated => Some("this account has been deactivated"),
    }
}

/// The system as it locks or unlocks an account, with the attempt's context.
fn lockout_actor(ctx: &Context) -> Caller {
    Caller {
        ctx: ctx.clone(),
        ..Caller::system("lockout")
    }
}

pub(crate) async fn lock(
    app: &App,
    org: &OrgRow,
    u: &UserRow,
    failures: i64,
    ctx: &Context,
) -> Result<()> {
    let system = lockout_actor(ctx);
    let mut tx = app.db.begin().await?;
    let details = [("failures", serde_json::json!(failures))];
    crate::users::transition_in(
        app,
        &mut tx,
        &system,
        &org.id,
        &u.id,
        LifecycleEvent::Lock,
        &details,
    )
    .await?;
    tx.commit().await?;
    metrics::counter!("muster_lifecycle_transitions_total", "event" => "lock").increment(1);
    Ok(())
}

/// A locked account whose cool-down has passed unlocks at its next good password.
async fn unlock_after_cooldown(
    app: &App,
    org: &OrgRow,
    keys: &Keys,
    user: UserRow,
    ctx: &Context,
) -> Result<UserRow> {
    let cooldown = i64::from(keys.policy.cooldown_minutes) * 60_000;
    let since = throttle::last_failure(app, keys)
        .await?
        .unwrap_or(user.updated_at);
    if app.now_ms() - since < cooldown {
        return Ok(user);
    }
    let system = lockout_actor(ctx);
    let mut tx = app.db.begin().await?;
    let details = [("reason", serde_json::json!("cool-down over"))];
    let (row, _) = crate::users::transition_in(
        app,
        &mut tx,
        &system,
        &org.id,
        &user.id,
        LifecycleEvent::Unlock,
        &details,
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub(crate) async fn failed_event(
    app: &App,
    org: &OrgRow,
    u: &UserRow,
    why: &str,
    ctx: &Context,
) -> Result<()> {
    let me = self_caller(org, &u.id, &u.email, ctx.clone());
    let mut tx = app.db.begin().await?;
    let ev = Event::new(&org.id, "auth.login_failed")
        .target("user", &u.id)
        .detail("reason", why)
        .security();
    audit::record(app, &mut tx, &me, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// How a sign-in was proved: its methods (`password`, `password+totp`…),
/// the assurance level reached, and its risk evaluation.
pub(crate) struct Proof<'a> {
    pub method: &'a str,
    pub level: i32,
    pub attempt: Option<&'a crate::risk::Attempt>,
}

/// Opens a session at assurance `level` for a user who has just proved who
/// they are (`mfa::challenge::enter` decides whether a second factor comes
/// first).
pub(crate) async fn open_session(
    app: &App,
    org: &OrgRow,
    user: &UserRow,
    keys: Option<&Keys>,
    ctx: Context,
    proof: Proof<'_>,
) -> Result<SignedIn> {
    let Proof {
        method,
        level,
        attempt,
    } = proof;
    let rules = crate::org_units::policies_for(app, org, user).await?;
    let policy: SessionPolicy = rules.session.clone();
    let now = app.now_ms();
    let id = uuid::Uuid::now_v7();
    let secret = secrets::random_secret();
    let row = SessionRow {
        id: id.simple().to_string(),
        org_id: org.id.clone(),
        user_id: user.id.clone(),
        secret_hash: secrets::hash_secret(&secret),
        created_at: now,
        last_seen_at: now,
        expires_at: now + policy.absolute_ms(),
        revoked_at: None,
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.clone(),
        mfa_level: level,
        level_at: now,
    };
    let me = self_caller(org, &user.id, &user.email, ctx);
    // Where the sign-in came from, for the risk engine's next evaluation.
    let (device, sign_in) = match attempt {
        Some(a) => {
            let (d, s) = crate::devices::sign_in_rows(app, org, user, &me.ctx, a);
            (d, Some((s, a.prune_history)))
        }
        None => (None, None),
    };
    let email = attempt.zip(sign_in.as_ref()).and_then(|(a, (s, _))| {
        crate::devices::new_device_email(app, rules.risk.new_device_email, user, a, s)
    });
    let mut ev = Event::new(&org.id, "auth.login")
        .target("user", &user.id)
        .detail("session", &row.id)
        .detail("method", method)
        .detail("level", level);
    if let Some(a) = attempt {
        ev = ev.detail("risk", &a.assessment);
    }
    let event = audit::sealed(app, &me, ev).await?;
    let opening = muster_store::openings::Opening {
        device: device.as_ref(),
        sign_in: sign_in.as_ref().map(|(s, prune)| (s, *prune)),
        // A success clears the account's failures (a write only when there are some).
        clear_failures: keys
            .filter(|k| k.account_failed)
            .map(|k| k.account.as_str()),
        session: &row,
        // The statement checks the grain again; this only spares it `users`.
        touch: muster_store::schedules::sign_in_due(keys.and_then(|k| k.last_sign_in_at), now),
        email: email.as_ref(),
        event: &event,
    };
    muster_store::openings::open(&app.db, &opening).await?;
    app.event_written();
    if opening.email.is_some() {
        crate::signin::email_committed(app);
    }
    metrics::counter!("muster_signins_total").increment(1);
    Ok(SignedIn {
        session_token: tokens::format(SESSION_TOKEN_PREFIX, id, &secret),
        cookie: SessionCookie {
            max_age_s: policy.absolute_ms() / 1000,
        },
        session: view(row, Some(&id.simple().to_string())),
    })
}

/// Whether a bearer or cookie value is a session token (rather than an API token).
pub fn is_session_token(token: &str) -> bool {
    token.starts_with(SESSION_TOKEN_PREFIX) && token.as_bytes().get(3) == Some(&b'_')
}

/// Authenticates a session token. What it reads may come from the session
/// cache, which never trusts a copy older than a change made in this process
/// (so a revocation, a state change or a role change made here counts from
/// the next request), nor one older than another process's change it has
/// heard of, nor one older than a second. Every failure is the same
/// `Unauthenticated`.
pub async fn authenticate_session(app: &App, token: &str, ctx: Context) -> Result<Caller> {
    let parsed = tokens::parse(SESSION_TOKEN_PREFIX, token).ok_or(AppError::Unauthenticated)?;
    let id = parsed.id.simple().to_string();
    let row = app
        .sessions
        .get(&app.sessions.auth, &id, || async {
            Ok(muster_store::sessions::for_auth(&app.db, &id).await?)
        })
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let row = Arc::try_unwrap(row).unwrap_or_else(|shared| (*shared).clone());
    let now = app.now_ms();
    let policies = app.policies.get(&row.org_id, &row.org_settings);
    let live = live(
        parsed.secret,
        &row.secret_hash,
        row.revoked_at,
        (row.created_at, row.expires_at),
        row.last_seen_at,
        &policies.session,
        &row.user_state,
        now,
    );
    if !live {
        return Err(AppError::Unauthenticated);
    }
    let s = (
        row.org_id.as_str(),
        row.user_id.as_str(),
        id.as_str(),
        row.mfa_level,
    );
    moved(app, &row.org_settings, s, row.seen_ip.as_deref(), &ctx).await?;
    touch(app, &id, row.last_seen_at, now);
    let recent = now - row.level_at <= policies.mfa.step_up_ms();
    let session = crate::caller::SessionRef {
        id,
        recent_level: if recent { row.mfa_level } else { 1 },
        admin_needs_mfa: policies.mfa.mode != crate::mfa::MfaMode::Off,
    };
    let caller = Caller {
        principal: Principal::User {
            permissions: PermissionSet::from_stored(row.permissions.as_deref().unwrap_or("")),
            scoped: crate::caller::parse_scoped(row.scoped.as_deref()),
            org_id: row.org_id,
            org_slug: row.org_slug,
            user_id: row.user_id,
            email: row.user_email,
            token_id: None,
            token_name: None,
            session: Some(session),
        },
        ctx,
    };
    // The access policy again on every request: a session whose address
    // moved into a denied range is refused from its next request on.
    crate::guard::check(app, &caller, &policies.access).await?;
    Ok(caller)
}

/// A session used from another address than its last: counted, and ended
/// (audited, `Unauthenticated`) when the changes come too fast for the
/// risk policy.
async fn moved(
    app: &App,
    settings: &str,
    (org_id, user_id, id, level): (&str, &str, &str, i32),
    seen_ip: Option<&str>,
    ctx: &Context,
) -> Result<()> {
    let Some(ip) = ctx.ip.as_deref().filter(|ip| seen_ip != Some(*ip)) else {
        return Ok(());
    };
    let Some(a) = crate::risk::session_moved(app, (org_id, settings), id, level, ip).await? else {
        return Ok(());
    };
    let system = Caller {
        ctx: ctx.clone(),
        ..Caller::system("risk")
    };
    let mut tx = app.db.begin().await?;
    muster_store::sessions::revoke(&mut tx, org_id, user_id, id, app.now_ms()).await?;
    let ev = Event::new(org_id, "session.ended_by_risk")
        .target("user", user_id)
        .detail("session", id)
        .detail("risk", &a)
        .security();
    audit::record(app, &mut tx, &system, ev).await?;
    tx.commit().await?;
    Err(AppError::Unauthenticated)
}

/// Whether a session still lets its holder in: the secret matches, it is
/// neither revoked nor past its absolute or idle end, and its user may sign in.
/// Both ends follow the organization's session policy as it is now (a
/// tightened policy applies to open sessions at once), and never exceed the
/// end the session was opened with.
#[allow(clippy::too_many_arguments)]
fn live(
    secret: &str,
    secret_hash: &str,
    revoked_at: Option<i64>,
    (created_at, expires_at): (i64, i64),
    last_seen_at: i64,
    policy: &SessionPolicy,
    user_state: &str,
    now: i64,
) -> bool {
    secrets::secret_matches(secret, secret_hash)
        && revoked_at.is_none()
        && now < expires_at
        && now < created_at + policy.absolute_ms()
        && now < last_seen_at + policy.idle_ms()
        && UserState::parse(user_state).is_some_and(UserState::can_sign_in)
}

/// Activity is recorded at most once a minute, off the request's path.
fn touch(app: &App, id: &str, last_seen_at: i64, now: i64) {
    if now - last_seen_at > 60_000 {
        let db = app.db.clone();
        let sid = id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = muster_store::sessions::touch(&db, &sid, now).await {
                tracing::warn!(error = %e, "could not record session activity");
            }
        });
    }
}

/// `GET /me` with a session: the same checks as `authenticate_session`, in
/// one query that also reads the user (no permissions are needed to read
/// one's own account), kept in the session cache like it.
pub async fn me(app: &App, token: &str, ctx: Context) -> Result<crate::users::UserView> {
    let parsed = tokens::parse(SESSION_TOKEN_PREFIX, token).ok_or(AppError::Unauthenticated)?;
    let id = parsed.id.simple().to_string();
    let row = app
        .sessions
        .get(&app.sessions.me, &id, || async {
            Ok(muster_store::sessions::with_user(&app.db, &id).await?)
        })
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let row = Arc::try_unwrap(row).unwrap_or_else(|shared| (*shared).clone());
    let now = app.now_ms();
    let policies = app.policies.get(&row.user.org_id, &row.org_settings);
    let ok = live(
        parsed.secret,
        &row.secret_hash,
        row.revoked_at,
        (row.session_created_at, row.session_expires_at),
        row.last_seen_at,
        &policies.session,
        &row.user.state,
        now,
    );
    if !ok {
        return Err(AppError::Unauthenticated);
    }
    let s = (
        row.user.org_id.as_str(),
        row.user.id.as_str(),
        id.as_str(),
        row.mfa_level,
    );
    moved(app, &row.org_settings, s, row.seen_ip.as_deref(), &ctx).await?;
    if !policies.access.is_empty() {
        // Audited as the user (the organization's slug is not needed here).
        let caller = Caller {
            principal: Principal::User {
                org_id: row.user.org_id.clone(),
                org_slug: String::new(),
                user_id: row.user.id.clone(),
                email: row.user.email.clone(),
                token_id: None,
                token_name: None,
                session: None,
                permissions: PermissionSet::default(),
                scoped: Vec::new(),
            },
            ctx,
        };
        crate::guard::check(app, &caller, &policies.access).await?;
    }
    touch(app, &id, row.last_seen_at, now);
    row.user.try_into()
}

fn own(caller: &Caller) -> Result<(&str, &str, Option<&str>)> {
    match &caller.principal {
        Principal::User {
            org_id,
            user_id,
            session,
            ..
        } => Ok((org_id, user_id, session.as_ref().map(|s| s.id.as_str()))),
        _ => Err(AppError::NotFound("user")),
    }
}

/// Ends the caller's session.
pub async fn logout(app: &App, caller: &Caller) -> Result<()> {
    let (org_id, user_id, Some(sid)) = own(caller)? else {
        return Err(AppError::invalid(
            "session",
            "this request was not made with a session",
        ));
    };
    end_session(app, caller, org_id, user_id, sid, "auth.logout").await
}

/// The caller's live sessions, newest first; `current` marks this one.
pub async fn sessions(app: &App, caller: &Caller) -> Result<Vec<SessionView>> {
    let (org_id, user_id, current) = own(caller)?;
    let rows =
        muster_store::sessions::live_for_user(&app.db, org_id, user_id, app.now_ms()).await?;
    Ok(rows.into_iter().map(|s| view(s, current)).collect())
}

/// Ends one of the caller's own sessions; another user's is not found.
pub async fn revoke_session(app: &App, caller: &Caller, id: &str) -> Result<()> {
    let (org_id, user_id, _) = own(caller)?;
    end_session(app, caller, org_id, user_id, id, "session.revoked").await
}

async fn end_session(
    app: &App,
    caller: &Caller,
    org_id: &str,
    user_id: &str,
    id: &str,
    action: &str,
) -> Result<()> {
    let mut tx = app.db.begin().await?;
    if !muster_store::sessions::revoke(&mut tx, org_id, user_id, id, app.now_ms()).await? {
        return Err(AppError::NotFound("session"));
    }
    let ev = Event::new(org_id, action)
        .target("user", user_id)
        .detail("session", id);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}
