//! Coming in and signing in (issue 4): sign-up with email verification,
//! password sign-in with server-side sessions, brute-force protection,
//! password reset and change. The pages and the JSON sign-in API of DESIGN.md
//! both call these functions.
//!
//! No answer here reveals whether an email is registered: sign-up, sign-in
//! and reset do the same work, and answer the same, for known and unknown
//! addresses (one argon2id computation each, and the rest off the reply's path).

pub mod account;
pub mod cache;
pub mod login;
pub mod signup;
pub(crate) mod throttle;

use crate::{App, AppError, Caller, Principal, Result};
use muster_core::PermissionSet;
use muster_core::audit::Context;
use muster_core::orgs::{OrgKind, PERSONAL_SLUG};
use muster_store::orgs::OrgRow;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use crate::mfa::Entry;
pub use login::{LoginInput, SessionCookie, SessionView, SignedIn};
pub use signup::{NewOrganization, SignUpInput, VerifyInput};

/// A one-time code and link is good for this long after its email is sent.
pub const CODE_VALID_MS: i64 = 5 * 60_000;
/// A new code may be asked for this long after the last one was sent.
pub const RESEND_AFTER_MS: i64 = 60_000;
/// Wrong codes tolerated before a code is spent.
pub const CODE_ATTEMPTS: i32 = 5;
/// Prefix of the token in an email's link (`mse_<id>_<secret>`).
pub const EMAIL_TOKEN_PREFIX: &str = "mse";
/// Prefix of a session token (`msn_<id>_<secret>`).
pub const SESSION_TOKEN_PREFIX: &str = "msn";

/// How long a session lives (DESIGN.md §1, Policies). The defaults are
/// Okta's: two hours without activity, a day at most.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SessionPolicy {
    /// 5 to 43 200 (30 days).
    pub idle_minutes: u32,
    /// 1 to 8 760 (a year).
    pub absolute_hours: u32,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_minutes: 120,
            absolute_hours: 24,
        }
    }
}

impl SessionPolicy {
    pub fn check(&self) -> Result<()> {
        if !(5..=43_200).contains(&self.idle_minutes) {
            return Err(AppError::invalid(
                "idle_minutes",
                "must be between 5 and 43200",
            ));
        }
        if !(1..=8_760).contains(&self.absolute_hours) {
            return Err(AppError::invalid(
                "absolute_hours",
                "must be between 1 and 8760",
            ));
        }
        Ok(())
    }
    pub(crate) fn idle_ms(&self) -> i64 {
        i64::from(self.idle_minutes) * 60_000
    }
    pub(crate) fn absolute_ms(&self) -> i64 {
        i64::from(self.absolute_hours) * 3_600_000
    }
}

/// Brute-force protection: after `delay_after` failures each further attempt
/// must wait (1 s, doubling, at most a minute); after `lock_after` the
/// account is `locked` for `cooldown_minutes` (or until an admin unlocks it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutPolicy {
    pub delay_after: u32,
    pub lock_after: u32,
    pub cooldown_minutes: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            delay_after: 3,
            lock_after: 10,
            cooldown_minutes: 15,
        }
    }
}

impl LockoutPolicy {
    pub fn check(&self) -> Result<()> {
        if !(1..=100).contains(&self.lock_after) || self.delay_after > self.lock_after {
            return Err(AppError::invalid(
                "lock_after",
                "must be 1 to 100, and not below delay_after",
            ));
        }
        if !(1..=10_080).contains(&self.cooldown_minutes) {
            return Err(AppError::invalid(
                "cooldown_minutes",
                "must be between 1 and 10080",
            ));
        }
        Ok(())
    }
}

/// Who may sign up, and what a new account gets when its email is verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SignupPolicy {
    /// Self sign-up into this organization. Default: on for the personal
    /// directory, off for business organizations (people come in by
    /// invitation, SCIM or SSO there).
    pub open: Option<bool>,
    /// Role keys granted at verification. Default: `member`.
    pub default_roles: Vec<String>,
    /// Group ids joined at verification.
    pub default_groups: Vec<String>,
    /// People with an address at a domain the organization verified may
    /// sign up into it even when sign-up is otherwise closed.
    pub join_verified_domains: bool,
}

impl Default for SignupPolicy {
    fn default() -> Self {
        Self {
            open: None,
            default_roles: vec!["member".into()],
            default_groups: Vec::new(),
            join_verified_domains: false,
        }
    }
}

/// The organization a public request names (`org` slug), or the personal
/// directory. A business organization whose owner has not verified their
/// email yet does not exist for anyone else.
pub(crate) async fn public_org(app: &App, slug: Option<&str>) -> Result<OrgRow> {
    let slug = slug.filter(|s| !s.is_empty()).unwrap_or(PERSONAL_SLUG);
    // From the session cache's copy when it can be trusted: a sign-in then
    // costs one read fewer (issue 4's sign-in target).
    let cache = &app.sessions;
    let org = cache
        .get(&cache.orgs, &slug.to_owned(), || async {
            Ok(muster_store::orgs::by_slug(&app.db, slug).await?)
        })
        .await?
        .ok_or_else(|| AppError::invalid("org", "no such organization"))?;
    Ok(Arc::try_unwrap(org).unwrap_or_else(|shared| (*shared).clone()))
}

pub(crate) fn setting<T: serde::de::DeserializeOwned + Default>(o: &OrgRow, key: &str) -> T {
    setting_in(&o.settings, key)
}

/// One policy out of an organization's stored settings; its default when
/// absent or unreadable.
pub(crate) fn setting_in<T: serde::de::DeserializeOwned + Default>(settings: &str, key: &str) -> T {
    serde_json::from_str::<serde_json::Value>(settings)
        .ok()
        .and_then(|s| s.get(key).cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

pub(crate) fn signup_open(o: &OrgRow) -> bool {
    setting::<SignupPolicy>(o, "signup")
        .open
        .unwrap_or(o.kind == OrgKind::Personal.as_str())
}

/// The person acting on their own account (sign-up, verification, sign-in):
/// audited as themselves, holding no permission.
pub(crate) fn self_caller(o: &OrgRow, user_id: &str, email: &str, ctx: Context) -> Caller {
    Caller {
        principal: Principal::User {
            org_id: o.id.clone(),
            org_slug: o.slug.clone(),
            user_id: user_id.to_owned(),
            email: email.to_owned(),
            token_id: None,
            token_name: None,
            session: None,
            permissions: PermissionSet::default(),
            scoped: Vec::new(),
        },
        ctx,
    }
}

/// Someone not (yet) known: a failed attempt, audited under the address tried.
pub(crate) fn anonymous(claimed: &str, ctx: Context) -> Caller {
    Caller {
        principal: Principal::Anonymous {
            claimed: claimed.chars().take(320).collect(),
        },
        ctx,
    }
}

/// The failure counter of an account: organization and address as typed
/// (lower-cased), whether or not such an account exists.
pub(crate) fn account_key(org_id: &str, email: &str) -> String {
    // No address is longer than 320 characters; longer input must not make
    // longer keys.
    let email: String = email.trim().chars().take(320).collect();
    format!("acct:{org_id}:{}", email.to_lowercase())
}

/// A 6-digit code, uniformly drawn.
pub(crate) fn six_digits() -> String {
    use rand::RngExt;
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// A code has 20 bits: its hash is salted with its token's id so that one
/// precomputed table cannot serve every token.
pub(crate) fn code_hash(token_id: &str, code: &str) -> String {
    crate::secrets::hash_secret(&format!("{token_id}:{code}"))
}

/// Policy getters and setters for the REST API (`policies.write`).
pub async fn get_policy<T>(app: &App, caller: &Caller, slug: &str, key: &str) -> Result<T>
where
    T: serde::de::DeserializeOwned + Default,
{
    let org =
        crate::caller::org_with(app, caller, slug, muster_core::Permission::UsersRead).await?;
    crate::orgs::setting(app, &org.id, key).await
}

pub async fn set_policy<T>(app: &App, caller: &Caller, slug: &str, key: &str, new: T) -> Result<T>
where
    T: Serialize + serde::de::DeserializeOwned + Default,
{
    let org =
        crate::caller::org_with(app, caller, slug, muster_core::Permission::PoliciesWrite).await?;
    let action = format!("policy.{key}_changed");
    crate::orgs::update_setting(app, caller, &org.id, key, &action, &new).await?;
    Ok(new)
}

/// Queues an email in the caller's transaction (CONVENTIONS rule 13); the
/// worker renders it, minting any secret it carries, when it sends it.
pub(crate) async fn queue_email(
    app: &App,
    tx: &mut muster_store::Tx,
    org_id: &str,
    user_id: &str,
    kind: &str,
    subject_id: &str,
    to: &str,
) -> Result<()> {
    let row = outbox_row(org_id, user_id, kind, subject_id, to, app.now_ms());
    muster_store::outbox::insert(tx, &row).await?;
    Ok(())
}

/// An email to queue, due at `now`.
pub(crate) fn outbox_row(
    org_id: &str,
    user_id: &str,
    kind: &str,
    subject_id: &str,
    to: &str,
    now: i64,
) -> muster_store::outbox::OutboxRow {
    muster_store::outbox::OutboxRow {
        id: muster_core::OutboxEmailId::new().to_string(),
        org_id: org_id.to_owned(),
        user_id: user_id.to_owned(),
        kind: kind.to_owned(),
        subject_id: subject_id.to_owned(),
        to_address: to.to_owned(),
        created_at: now,
        attempts: 0,
        next_attempt_at: now,
        sent_at: None,
        last_error: None,
    }
}

/// Wakes the outbox worker once the transaction that queued an email committed.
pub(crate) fn email_committed(app: &App) {
    app.outbox.notify_one();
}

/// A new email token of `purpose` and its email, in the caller's transaction.
pub(crate) async fn queue_token_email(
    app: &App,
    tx: &mut muster_store::Tx,
    org_id: &str,
    user_id: &str,
    purpose: &str,
    to: &str,
    new_email: Option<&str>,
) -> Result<()> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    muster_store::email_tokens::insert_pending(
        tx,
        &id,
        org_id,
        user_id,
        purpose,
        new_email,
        app.now_ms(),
    )
    .await?;
    queue_email(app, tx, org_id, user_id, purpose, &id, to).await
}

/// Sets the sign-up policy. Its default roles are granted to whoever signs
/// up, so the caller must be able to grant each of them (`policies.write`
/// alone must not mint admins), and each default must exist.
pub async fn set_signup_policy(
    app: &App,
    caller: &Caller,
    slug: &str,
    new: SignupPolicy,
) -> Result<SignupPolicy> {
    new.check()?;
    let org =
        crate::caller::org_with(app, caller, slug, muster_core::Permission::PoliciesWrite).await?;
    for key in &new.default_roles {
        let role = crate::roles::resolve(app, &org.id, key)
            .await?
            .ok_or_else(|| {
                AppError::invalid(
                    "default_roles",
                    format!("no role '{key}' in this organization"),
                )
            })?;
        crate::roles::check_can_grant(caller, &org.id, &role)?;
    }
    for g in &new.default_groups {
        if muster_store::groups::get(&app.db, &org.id, g)
            .await?
            .is_none()
        {
            return Err(AppError::invalid(
                "default_groups",
                format!("no group '{g}' in this organization"),
            ));
        }
    }
    crate::orgs::update_setting(
        app,
        caller,
        &org.id,
        "signup",
        "policy.signup_changed",
        &new,
    )
    .await?;
    Ok(new)
}

impl SignupPolicy {
    pub fn check(&self) -> Result<()> {
        if self.default_roles.len() > 20 || self.default_groups.len() > 50 {
            return Err(AppError::invalid(
                "default_roles",
                "at most 20 default roles and 50 default groups",
            ));
        }
        Ok(())
    }
}
