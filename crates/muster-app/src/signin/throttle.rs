//! Brute-force protection: failure counters per account and per client IP,
//! kept in the database so that every instance enforces the same limits.
//! Progressive delay (1 s, doubling, at most a minute) once a counter passes
//! its threshold; the account itself is locked by `login` at the policy's limit.

use super::{LockoutPolicy, account_key};
use crate::{App, AppError, Result};
use muster_store::failures::{self, Failures};

/// A client IP may fail this often, over all accounts, before it is slowed.
const IP_DELAY_AFTER: i64 = 20;
/// The longest an attempt is made to wait.
const MAX_DELAY_MS: i64 = 60_000;

pub(crate) struct Keys {
    pub account: String,
    pub ip: Option<String>,
    pub policy: LockoutPolicy,
    /// Whether `check` found failures on the account (a success then clears them).
    pub account_failed: bool,
    /// What `check` read, for the risk engine: recent failures of the
    /// account and of the client address (`None` before `check`).
    pub seen: Option<(i64, i64)>,
    /// `Some(false)` when the sign-in's first read found no confirmed second
    /// factor (so there are none to offer); `None` when it did not look.
    pub has_factors: Option<bool>,
    /// What the first read found for the risk engine: the user's baseline
    /// and the client's device if known (`None` when it did not look).
    pub prior: Option<(
        muster_store::devices::Baseline,
        Option<muster_store::devices::SeenDevice>,
    )>,
    /// The user's last recorded sign-in as the first read found it (`None`
    /// also when it did not look: the sign-in is then recorded).
    pub last_sign_in_at: Option<i64>,
}

impl Keys {
    pub fn new(org_id: &str, email: &str, ip: Option<&str>, policy: LockoutPolicy) -> Self {
        Self {
            account: account_key(org_id, email),
            ip: ip.map(|i| format!("ip:{i}")),
            policy,
            account_failed: true,
            seen: None,
            has_factors: None,
            prior: None,
            last_sign_in_at: None,
        }
    }

    fn window_ms(&self) -> i64 {
        i64::from(self.policy.cooldown_minutes) * 60_000
    }
}

/// How long after its last failure a counter makes the next attempt wait.
pub(crate) fn delay_ms(failures: i64, delay_after: i64) -> i64 {
    if failures < delay_after {
        return 0;
    }
    let doublings = (failures - delay_after).clamp(0, 16);
    (1_000i64 << doublings).min(MAX_DELAY_MS)
}

fn wait_ms(f: Option<Failures>, delay_after: i64, window_ms: i64, now: i64) -> i64 {
    let Some(f) = f else { return 0 };
    if now - f.last_failure_at > window_ms {
        return 0;
    }
    (f.last_failure_at + delay_ms(f.failures, delay_after) - now).max(0)
}

/// Refuses an attempt that comes too soon after earlier failures.
pub(crate) async fn check(app: &App, k: &mut Keys) -> Result<()> {
    let (account, ip) = failures::get_pair(&app.db, &k.account, k.ip.as_deref()).await?;
    judge(app, k, account, ip)
}

/// `check` with counters already read (a password sign-in reads them with
/// its user, in one round trip).
pub(crate) fn judge(
    app: &App,
    k: &mut Keys,
    account: Option<Failures>,
    ip: Option<Failures>,
) -> Result<()> {
    let now = app.now_ms();
    let window = k.window_ms();
    k.account_failed = account.is_some();
    let recent = |f: Option<Failures>| {
        f.filter(|f| now - f.last_failure_at <= window)
            .map_or(0, |f| f.failures)
    };
    k.seen = Some((recent(account), recent(ip)));
    let wait = wait_ms(account, i64::from(k.policy.delay_after), window, now).max(wait_ms(
        ip,
        IP_DELAY_AFTER,
        window,
        now,
    ));
    if wait > 0 {
        metrics::counter!("muster_signin_throttled_total").increment(1);
        return Err(AppError::TooManyAttempts(
            u64::try_from((wait + 999) / 1000).unwrap_or(1),
        ));
    }
    Ok(())
}

/// Counts a failure against both keys; returns the account's count.
pub(crate) async fn failed(app: &App, k: &Keys) -> Result<i64> {
    let now = app.now_ms();
    if let Some(ip) = &k.ip {
        failures::record(&app.db, ip, now, k.window_ms()).await?;
    }
    Ok(failures::record(&app.db, &k.account, now, k.window_ms())
        .await?
        .failures)
}

/// When the account's last failure was (the start of a lockout's cool-down).
pub(crate) async fn last_failure(app: &App, k: &Keys) -> Result<Option<i64>> {
    Ok(failures::get(&app.db, &k.account)
        .await?
        .map(|f| f.last_failure_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_starts_at_the_threshold_doubles_and_is_capped() {
        assert_eq!(delay_ms(0, 3), 0);
        assert_eq!(delay_ms(2, 3), 0);
        assert_eq!(delay_ms(3, 3), 1_000);
        assert_eq!(delay_ms(4, 3), 2_000);
        assert_eq!(delay_ms(8, 3), 32_000);
        assert_eq!(delay_ms(9, 3), 60_000);
        assert_eq!(delay_ms(1_000, 3), 60_000);
    }

    #[test]
    fn an_old_failure_makes_nobody_wait() {
        let f = Failures {
            failures: 9,
            first_failure_at: 0,
            last_failure_at: 1_000,
        };
        assert_eq!(wait_ms(Some(f), 3, 900_000, 2_000), 59_000);
        assert_eq!(wait_ms(Some(f), 3, 900_000, 61_000), 0);
        assert_eq!(wait_ms(Some(f), 3, 900_000, 1_000_000), 0);
        assert_eq!(wait_ms(None, 3, 900_000, 2_000), 0);
    }
}
