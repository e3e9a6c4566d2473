//! Scheduled lifecycle: future-dated transitions, the inputs of the automatic
//! ones (inactivity, grace period), and job leases shared by all instances.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduledRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    /// `activate` or `deactivate`.
    pub action: String,
    pub due_at: i64,
    pub created_at: i64,
    pub done_at: Option<i64>,
    pub outcome: Option<String>,
}

const COLS: &str = "id, org_id, user_id, action, due_at, created_at, done_at, outcome";

pub async fn insert(tx: &mut Tx, r: &ScheduledRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO scheduled_transitions (id, org_id, user_id, action, due_at, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&r.id).bind(&r.org_id).bind(&r.user_id).bind(&r.action).bind(r.due_at).bind(r.created_at)
        .execute(c).await.map(|x| x.rows_affected()))?;
    Ok(())
}

/// Drops the user's pending `action`, if any (a date changed or cleared).
pub async fn cancel_pending(tx: &mut Tx, org_id: &str, user_id: &str, action: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "DELETE FROM scheduled_transitions WHERE org_id = $1 AND user_id = $2 AND action = $3 AND done_at IS NULL")
        .bind(org_id).bind(user_id).bind(action).execute(c).await.map(|x| x.rows_affected()))?;
    Ok(())
}

/// The user's schedule: pending first, then the latest done, newest first.
pub async fn of_user(db: &Db, org_id: &str, user_id: &str) -> Result<Vec<ScheduledRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM scheduled_transitions WHERE org_id = $1 AND user_id = $2
         ORDER BY done_at IS NOT NULL, due_at DESC LIMIT 20"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(user_id).fetch_all(c).await)?)
}

/// The pending transitions of the organization: few, whatever its size.
pub async fn pending_in_org(db: &Db, org_id: &str) -> Result<Vec<ScheduledRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM scheduled_transitions WHERE org_id = $1 AND done_at IS NULL"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).fetch_all(c).await)?)
}

/// The pending transitions of these users (a SCIM page renders their dates).
/// Keep the list short (a page): each id is a bound parameter.
pub async fn pending_of(db: &Db, org_id: &str, user_ids: &[&str]) -> Result<Vec<ScheduledRow>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLS} FROM scheduled_transitions
         WHERE org_id = $1 AND done_at IS NULL AND user_id IN ({})",
        crate::db::in_list(2, user_ids.len())
    );
    on_db!(db, c => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(org_id);
        for id in user_ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(c).await?)
    })
}

pub async fn due(db: &Db, now: i64, limit: i64) -> Result<Vec<ScheduledRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM scheduled_transitions WHERE done_at IS NULL AND due_at <= $1 ORDER BY due_at, id LIMIT CAST($2 AS BIGINT)"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(now).bind(limit).fetch_all(c).await)?)
}

/// Marks a due row done with its outcome; false when another instance
/// already did (the row lock makes this the one point of decision).
pub async fn claim(tx: &mut Tx, id: &str, now: i64, outcome: &str) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE scheduled_transitions SET done_at = $2, outcome = $3 WHERE id = $1 AND done_at IS NULL")
        .bind(id).bind(now).bind(outcome).execute(c).await.map(|x| x.rows_affected()))?;
    Ok(n == 1)
}

/// Takes (or renews) the lease `name` until `until` unless another holder's
/// lease is still running at `now`.
pub async fn acquire_lease(
    db: &Db,
    name: &str,
    holder: &str,
    now: i64,
    until: i64,
) -> Result<bool> {
    let got: Option<String> = on_db!(db, c => sqlx::query_scalar(
        "INSERT INTO job_leases (name, holder, until_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at
         WHERE job_leases.until_at < $4 OR job_leases.holder = excluded.holder
         RETURNING holder")
        .bind(name).bind(holder).bind(until).bind(now).fetch_optional(c).await)?;
    Ok(got.is_some())
}

pub async fn release_lease(db: &Db, name: &str, holder: &str) -> Result<()> {
    on_db!(db, c => sqlx::query("DELETE FROM job_leases WHERE name = $1 AND holder = $2")
        .bind(name).bind(holder).execute(c).await.map(|x| x.rows_affected()))?;
    Ok(())
}

/// When the user last did something that counts as activity: its last
/// sign-in, or entering its state, whichever is later (an unsuspended user
/// starts afresh).
fn activity(b: crate::Backend) -> &'static str {
    match b {
        crate::Backend::Sqlite => {
            "MAX(COALESCE(last_sign_in_at, 0), COALESCE(state_since, created_at))"
        }
        crate::Backend::Postgres => {
            "GREATEST(COALESCE(last_sign_in_at, 0), COALESCE(state_since, created_at))"
        }
    }
}

/// Active users of `org_id` with no activity since `cutoff`.
pub async fn inactive(db: &Db, org_id: &str, cutoff: i64, limit: i64) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT id FROM users WHERE org_id = $1 AND state = 'active' AND {} < $2 ORDER BY id LIMIT CAST($3 AS BIGINT)",
        activity(db.backend())
    );
    Ok(
        on_db!(db, c => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(org_id).bind(cutoff).bind(limit).fetch_all(c).await)?,
    )
}

/// The latest activity of one user, read in the transaction about to act on it.
pub async fn last_activity(tx: &mut Tx, org_id: &str, user_id: &str) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT {} FROM users WHERE org_id = $1 AND id = $2",
        activity(tx.backend())
    );
    Ok(
        on_tx!(tx, c => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone())).bind(org_id).bind(user_id).fetch_optional(c).await)?,
    )
}

/// Deactivated users of `org_id`, not on legal hold, deactivated before `cutoff`.
pub async fn expired_deactivated(
    db: &Db,
    org_id: &str,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<String>> {
    Ok(on_db!(db, c => sqlx::query_scalar(
        "SELECT id FROM users WHERE org_id = $1 AND state = 'deactivated' AND legal_hold_at IS NULL
           AND COALESCE(state_since, updated_at) < $2 ORDER BY id LIMIT CAST($3 AS BIGINT)")
        .bind(org_id).bind(cutoff).bind(limit).fetch_all(c).await)?)
}

/// Since when the user is in its current state, in the acting transaction.
pub async fn state_since(tx: &mut Tx, org_id: &str, user_id: &str) -> Result<Option<i64>> {
    Ok(on_tx!(tx, c => sqlx::query_scalar(
        "SELECT COALESCE(state_since, updated_at) FROM users WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(user_id).fetch_optional(c).await)?)
}

/// How stale `last_sign_in_at` may be. It feeds inactivity rules counted in
/// days, so a sign-in within a minute of the recorded one writes nothing:
/// the `users` row is not rewritten (eight indexes, the auth-change trigger's
/// check) on every sign-in of a busy account.
pub const SIGN_IN_GRAIN_MS: i64 = 60_000;

/// The `UPDATE` recording a sign-in at `at` as `user`'s latest activity, at
/// most once a `grain` (bound to `SIGN_IN_GRAIN_MS`), over placeholders the
/// caller names: a sign-in's writes (`openings`) embed it on both databases.
pub(crate) fn touch_sql(user: &str, at: &str, grain: &str) -> String {
    // The same condition as `sign_in_due`.
    format!(
        "UPDATE users SET last_sign_in_at = {at} WHERE id = {user} \
         AND (last_sign_in_at IS NULL OR last_sign_in_at <= {at} - {grain})"
    )
}

/// Whether a sign-in at `at` is recorded over `last`, the user's recorded
/// one: `touch_sql`'s condition, for a caller that read `last` and can
/// leave the update out (`openings::Opening::touch`). A device's last use
/// follows the same grain (`devices::SeenDevice::unchanged_by`).
pub fn sign_in_due(last: Option<i64>, at: i64) -> bool {
    last.is_none_or(|last| last <= at - SIGN_IN_GRAIN_MS)
}
