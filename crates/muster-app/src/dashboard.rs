//! The admin console's dashboard (issue 8): users per lifecycle state, and
//! the last 30 days of sign-ups, activations, deactivations, failed sign-ins
//! and risk denials, read from the audit log so that the figures and the
//! record can never disagree.

use crate::caller::{Caller, org_with};
use crate::{App, AppError, Result};
use muster_core::{Permission, UserState};

/// How many days the charts cover, today included.
pub const DAYS: usize = 30;

const DAY_MS: i64 = 86_400_000;

/// One chart: a count per day, oldest first, and the audit actions it adds up.
#[derive(Debug, Clone)]
pub struct Series {
    pub key: &'static str,
    pub label: &'static str,
    pub actions: &'static [&'static str],
    pub per_day: Vec<i64>,
}

impl Series {
    pub fn total(&self) -> i64 {
        self.per_day.iter().sum()
    }
}

/// The charts, and the audit actions behind each (`user.<event>` for
/// lifecycle transitions, see `users::transition`).
const CHARTS: [(&str, &str, &[&str]); 5] = [
    ("signups", "Sign-ups and new accounts", &["user.created"]),
    (
        "activations",
        "Activations",
        &[
            "user.verify_email",
            "user.accept_invitation",
            "user.activate",
        ],
    ),
    ("deactivations", "Deactivations", &["user.deactivate"]),
    ("failed", "Failed sign-ins", &["auth.login_failed"]),
    ("risk", "Sign-ins refused by risk", &["auth.risk_denied"]),
];

#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Every lifecycle state with its count (zero included), in the state
    /// machine's order; `None` when the caller may not read every user.
    pub states: Option<Vec<(UserState, i64)>>,
    /// `None` when the caller may not read the audit log.
    pub charts: Option<Vec<Series>>,
    /// The first day the charts show, as days since 1970-01-01 (UTC).
    pub first_day: i64,
}

/// What the caller may see of the dashboard: each part needs its own
/// organization-wide permission (`users.read`, `audit.read`); a caller with
/// neither is refused.
pub async fn get(app: &App, caller: &Caller, slug: &str) -> Result<Dashboard> {
    let today = app.now_ms().div_euclid(DAY_MS);
    let first_day = today - (DAYS as i64 - 1);
    let states = match permitted(org_with(app, caller, slug, Permission::UsersRead).await)? {
        Some(org) => {
            let counts = muster_store::dashboard::state_counts(&app.db, &org.id).await?;
            Some(
                UserState::ALL
                    .into_iter()
                    .map(|s| {
                        let n = counts
                            .iter()
                            .find(|(k, _)| k == s.as_str())
                            .map_or(0, |(_, n)| *n);
                        (s, n)
                    })
                    .collect(),
            )
        }
        None => None,
    };
    let charts = match permitted(org_with(app, caller, slug, Permission::AuditRead).await)? {
        Some(org) => {
            let actions: Vec<&str> = CHARTS.iter().flat_map(|c| c.2.iter().copied()).collect();
            let rows = muster_store::dashboard::daily_actions(
                &app.db,
                &org.id,
                &actions,
                first_day * DAY_MS,
            )
            .await?;
            Some(
                CHARTS
                    .iter()
                    .map(|(key, label, acts)| {
                        let mut per_day = vec![0; DAYS];
                        for (action, day, n) in &rows {
                            if let (true, Ok(i)) = (
                                acts.contains(&action.as_str()),
                                usize::try_from(day - first_day),
                            ) && let Some(slot) = per_day.get_mut(i)
                            {
                                *slot += n;
                            }
                        }
                        Series {
                            key,
                            label,
                            actions: acts,
                            per_day,
                        }
                    })
                    .collect(),
            )
        }
        None => None,
    };
    if states.is_none() && charts.is_none() {
        return Err(AppError::Forbidden(Permission::UsersRead.as_str()));
    }
    Ok(Dashboard {
        states,
        charts,
        first_day,
    })
}

/// `Forbidden` becomes "not shown"; every other error stays one (another
/// tenant's organization is still `NotFound`).
fn permitted<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(AppError::Forbidden(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
