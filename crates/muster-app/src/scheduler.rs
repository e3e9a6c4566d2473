//! Scheduled lifecycle (issue 6 §4): future-dated activation and
//! deactivation (a user's start and end dates), automatic suspension after
//! a number of days without sign-in, and deletion of deactivated users after
//! a grace period — each an ordinary lifecycle transition through
//! `users::transition_in`, audited with the scheduler as the actor.
//!
//! Safe with several instances: one holds the `lifecycle` lease at a time
//! (a row in `job_leases` that expires if its holder dies), and each change
//! re-checks its condition under the user's row lock in its own transaction —
//! a dated transition is claimed by marking its row done in that same
//! transaction — so even two runners at once could not act twice.

use crate::audit::{self, Event};
use crate::caller::org_with;
use crate::users::transition_in;
use crate::{App, AppError, Caller, Result};
use muster_core::{LifecycleEvent, Permission, UserState};
use muster_store::schedules::ScheduledRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;
const LEASE: &str = "lifecycle";
/// Renewed after every batch; a crashed holder blocks the job this long.
const LEASE_MS: i64 = 60_000;
const BATCH: i64 = 200;

/// The organization's automatic lifecycle (`PUT /orgs/{org}/lifecycle-policy`);
/// both off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LifecyclePolicy {
    /// Suspend active users who have not signed in for this many days
    /// (1 to 3650); unset: never.
    pub suspend_after_inactive_days: Option<u32>,
    /// Delete deactivated users this many days after their deactivation
    /// (1 to 3650), unless on legal hold; unset: keep them.
    pub delete_deactivated_after_days: Option<u32>,
}

impl LifecyclePolicy {
    pub fn check(&self) -> Result<()> {
        for (field, v) in [
            (
                "suspend_after_inactive_days",
                self.suspend_after_inactive_days,
            ),
            (
                "delete_deactivated_after_days",
                self.delete_deactivated_after_days,
            ),
        ] {
            if v.is_some_and(|d| !(1..=3650).contains(&d)) {
                return Err(AppError::invalid(
                    field,
                    "give 1 to 3650 days, or leave it out",
                ));
            }
        }
        Ok(())
    }
}

/// A user's start and end dates (RFC 3339), as set.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessDates {
    /// When the user gets access: a provisioned user is activated, a
    /// suspended one unsuspended, a deactivated one reactivated.
    pub start: Option<String>,
    /// When the user is deactivated.
    pub end: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Schedule {
    /// Pending start date, if any.
    pub start: Option<String>,
    /// Pending end date, if any.
    pub end: Option<String>,
    /// Dated transitions already carried out or skipped, newest first.
    pub history: Vec<ScheduleEntry>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScheduleEntry {
    pub action: String,
    pub due_at: String,
    pub done_at: Option<String>,
    pub outcome: Option<String>,
}

pub async fn get_schedule(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
) -> Result<Schedule> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    muster_store::users::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    schedule(app, &org.id, id).await
}

async fn schedule(app: &App, org_id: &str, id: &str) -> Result<Schedule> {
    let rows = muster_store::schedules::of_user(&app.db, org_id, id).await?;
    let pending = |action: &str| {
        rows.iter()
            .find(|r| r.done_at.is_none() && r.action == action)
            .map(|r| crate::paging::rfc3339(r.due_at))
    };
    Ok(Schedule {
        start: pending("activate"),
        end: pending("deactivate"),
        history: rows
            .iter()
            .filter(|r| r.done_at.is_some())
            .map(|r| ScheduleEntry {
                action: r.action.clone(),
                due_at: crate::paging::rfc3339(r.due_at),
                done_at: r.done_at.map(crate::paging::rfc3339),
                outcome: r.outcome.clone(),
            })
            .collect(),
    })
}

fn future(app: &App, field: &str, v: Option<&str>) -> Result<Option<i64>> {
    let Some(s) = v else { return Ok(None) };
    let at = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(muster_core::clock::to_millis)
        .map_err(|_| {
            AppError::invalid(field, "give an RFC 3339 time such as 2027-01-31T17:00:00Z")
        })?;
    if at <= app.now_ms() {
        return Err(AppError::invalid(
            field,
            "this date is in the past; give a future one",
        ));
    }
    Ok(Some(at))
}

/// Sets (or, with `null`, clears) the user's start and end dates.
pub async fn set_schedule(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
    dates: AccessDates,
) -> Result<Schedule> {
    let org = org_with(app, caller, org_slug, Permission::UsersLifecycle).await?;
    let start = future(app, "start", dates.start.as_deref())?;
    let end = future(app, "end", dates.end.as_deref())?;
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(AppError::invalid(
            "end",
            "the end date must come after the start date",
        ));
    }
    let before = schedule(app, &org.id, id).await?;
    let mut tx = app.db.begin().await?;
    muster_store::users::get_for_update(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    replace_dates(&mut tx, &org.id, id, start, end, app.now_ms()).await?;
    let ev = Event::new(&org.id, "user.schedule_changed")
        .target("user", id)
        .change("start", &before.start, start.map(crate::paging::rfc3339))
        .change("end", &before.end, end.map(crate::paging::rfc3339));
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    schedule(app, &org.id, id).await
}

/// Replaces the user's pending start and end dates (`None` clears one); the
/// caller holds the user's row lock and has checked the dates.
pub(crate) async fn replace_dates(
    tx: &mut muster_store::Tx,
    org_id: &str,
    id: &str,
    start: Option<i64>,
    end: Option<i64>,
    now: i64,
) -> Result<()> {
    for (action, at) in [("activate", start), ("deactivate", end)] {
        muster_store::schedules::cancel_pending(tx, org_id, id, action).await?;
        if let Some(due_at) = at {
            let row = ScheduledRow {
                id: uuid::Uuid::now_v7().to_string(),
                org_id: org_id.to_owned(),
                user_id: id.to_owned(),
                action: action.to_owned(),
                due_at,
                created_at: now,
                done_at: None,
                outcome: None,
            };
            muster_store::schedules::insert(tx, &row).await?;
        }
    }
    Ok(())
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub activated: usize,
    pub deactivated: usize,
    pub suspended: usize,
    pub deleted: usize,
    /// Dated transitions that had nothing to do or were refused.
    pub skipped: usize,
}

fn scheduler() -> Caller {
    Caller::operator("system:scheduler")
}

/// Runs everything due, unless another instance holds the lease (`None`).
pub async fn run_due(app: &App) -> Result<Option<RunReport>> {
    let holder = app.instance.as_ref();
    let now = app.now_ms();
    if !muster_store::schedules::acquire_lease(&app.db, LEASE, holder, now, now + LEASE_MS).await? {
        return Ok(None);
    }
    let mut report = RunReport::default();
    let result = run_all(app, &mut report).await;
    muster_store::schedules::release_lease(&app.db, LEASE, holder).await?;
    result.map(|()| Some(report))
}

async fn run_all(app: &App, report: &mut RunReport) -> Result<()> {
    loop {
        let due = muster_store::schedules::due(&app.db, app.now_ms(), BATCH).await?;
        for row in &due {
            dated(app, row, report).await?;
        }
        if (due.len() as i64) < BATCH {
            break;
        }
        renew(app).await?;
    }
    for (org_id, _) in muster_store::orgs::all_ids(&app.db).await? {
        let policy: LifecyclePolicy = crate::orgs::setting(app, &org_id, "lifecycle").await?;
        if let Some(days) = policy.suspend_after_inactive_days {
            inactive(app, &org_id, days, report).await?;
        }
        if let Some(days) = policy.delete_deactivated_after_days {
            expired(app, &org_id, days, report).await?;
        }
    }
    Ok(())
}

/// Keeps the lease while a long run goes on.
async fn renew(app: &App) -> Result<()> {
    let now = app.now_ms();
    let held =
        muster_store::schedules::acquire_lease(&app.db, LEASE, &app.instance, now, now + LEASE_MS)
            .await?;
    if held {
        Ok(())
    } else {
        Err(AppError::Refused(
            "the scheduler lost its lease to another instance".into(),
        ))
    }
}

/// One dated transition, in one transaction with its claim.
async fn dated(app: &App, row: &ScheduledRow, report: &mut RunReport) -> Result<()> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let Some(user) =
        muster_store::users::get_for_update(&mut tx, &row.org_id, &row.user_id).await?
    else {
        return Ok(()); // deleted meanwhile: the row went with it
    };
    let state = UserState::parse(&user.state);
    let event = match (row.action.as_str(), state) {
        ("activate", Some(UserState::Provisioned)) => Some(LifecycleEvent::Activate),
        ("activate", Some(UserState::Suspended)) => Some(LifecycleEvent::Unsuspend),
        ("activate", Some(UserState::Deactivated)) => Some(LifecycleEvent::Reactivate),
        ("deactivate", Some(s)) if s != UserState::Deactivated => Some(LifecycleEvent::Deactivate),
        _ => None,
    };
    let Some(event) = event else {
        let why = format!("nothing to do: the account is {}", user.state);
        if muster_store::schedules::claim(&mut tx, &row.id, now, &why).await? {
            report.skipped += 1;
        }
        return Ok(tx.commit().await?);
    };
    if !muster_store::schedules::claim(&mut tx, &row.id, now, "done").await? {
        return Ok(()); // another runner got there first
    }
    let detail = json!({"id": row.id, "due_at": crate::paging::rfc3339(row.due_at)});
    match transition_in(
        app,
        &mut tx,
        &scheduler(),
        &row.org_id,
        &row.user_id,
        event,
        &[("schedule", detail)],
    )
    .await
    {
        Ok(_) => {
            tx.commit().await?;
            match event {
                LifecycleEvent::Deactivate => report.deactivated += 1,
                _ => report.activated += 1,
            }
            counted(event);
        }
        Err(AppError::Transition(refused)) => {
            // Nothing was written yet; record the refusal instead.
            drop(tx);
            let mut tx = app.db.begin().await?;
            let why = format!("refused: {refused}");
            if muster_store::schedules::claim(&mut tx, &row.id, now, &why).await? {
                let ev = Event::new(&row.org_id, "user.schedule_skipped")
                    .target("user", &row.user_id)
                    .error()
                    .detail("schedule", &row.id)
                    .detail("reason", &why);
                audit::record(app, &mut tx, &scheduler(), ev).await?;
                report.skipped += 1;
            }
            tx.commit().await?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

fn counted(event: LifecycleEvent) {
    metrics::counter!("muster_scheduler_transitions_total", "event" => event.as_str()).increment(1);
}

/// Suspends the organization's users who have not signed in for `days`.
async fn inactive(app: &App, org_id: &str, days: u32, report: &mut RunReport) -> Result<()> {
    let cutoff = app.now_ms() - i64::from(days) * DAY_MS;
    loop {
        let ids = muster_store::schedules::inactive(&app.db, org_id, cutoff, BATCH).await?;
        let mut acted = 0;
        for id in &ids {
            let mut tx = app.db.begin().await?;
            let Some(user) = muster_store::users::get_for_update(&mut tx, org_id, id).await? else {
                continue;
            };
            // Re-checked under the lock: a sign-in since the query wins.
            let last = muster_store::schedules::last_activity(&mut tx, org_id, id).await?;
            if user.state != UserState::Active.as_str() || last.is_none_or(|l| l >= cutoff) {
                continue;
            }
            let why: [(&str, Value); 1] = [(
                "reason",
                json!({"inactive_days": days, "last_activity": last.map(crate::paging::rfc3339)}),
            )];
            transition_in(
                app,
                &mut tx,
                &scheduler(),
                org_id,
                id,
                LifecycleEvent::Suspend,
                &why,
            )
            .await?;
            tx.commit().await?;
            counted(LifecycleEvent::Suspend);
            report.suspended += 1;
            acted += 1;
        }
        if (ids.len() as i64) < BATCH || acted == 0 {
            return Ok(());
        }
        renew(app).await?;
    }
}

/// Deletes the organization's users deactivated more than `days` ago.
async fn expired(app: &App, org_id: &str, days: u32, report: &mut RunReport) -> Result<()> {
    let cutoff = app.now_ms() - i64::from(days) * DAY_MS;
    loop {
        let ids =
            muster_store::schedules::expired_deactivated(&app.db, org_id, cutoff, BATCH).await?;
        let mut acted = 0;
        for id in &ids {
            let mut tx = app.db.begin().await?;
            if muster_store::users::get_for_update(&mut tx, org_id, id)
                .await?
                .is_none()
            {
                continue;
            }
            let since = muster_store::schedules::state_since(&mut tx, org_id, id).await?;
            if since.is_none_or(|s| s >= cutoff) {
                continue;
            }
            let why: [(&str, Value); 1] = [(
                "reason",
                json!({"grace_days": days, "deactivated_at": since.map(crate::paging::rfc3339)}),
            )];
            match transition_in(
                app,
                &mut tx,
                &scheduler(),
                org_id,
                id,
                LifecycleEvent::Delete,
                &why,
            )
            .await
            {
                Ok(_) => {
                    tx.commit().await?;
                    counted(LifecycleEvent::Delete);
                    report.deleted += 1;
                    acted += 1;
                }
                // Reactivated or put on hold since the query: leave it.
                Err(AppError::Transition(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if (ids.len() as i64) < BATCH || acted == 0 {
            return Ok(());
        }
        renew(app).await?;
    }
}

impl App {
    /// Runs the scheduler every `every` until the returned task is aborted.
    pub fn spawn_scheduler(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = run_due(&app).await {
                    tracing::error!(error = %e, "the lifecycle scheduler failed");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}
