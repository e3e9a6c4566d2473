//! The email outbox (migration 0005): rows written with the change that
//! causes an email, claimed and delivered by a worker, retried with back-off.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    /// What to render: `invitation`.
    pub kind: String,
    /// The row the email is about (an invitation's id).
    pub subject_id: String,
    pub to_address: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

pub(crate) const COLS: &str = "id, org_id, user_id, kind, subject_id, to_address, created_at, attempts, next_attempt_at, sent_at, last_error";

pub async fn insert(tx: &mut Tx, r: &OutboxRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO email_outbox (id, org_id, user_id, kind, subject_id, to_address, created_at, attempts, next_attempt_at, sent_at, last_error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(&r.id).bind(&r.org_id).bind(&r.user_id).bind(&r.kind).bind(&r.subject_id)
        .bind(&r.to_address).bind(r.created_at).bind(r.attempts).bind(r.next_attempt_at)
        .bind(r.sent_at).bind(&r.last_error)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Up to `limit` unsent emails whose time has come, oldest first.
pub async fn due(db: &Db, now: i64, limit: i64) -> Result<Vec<OutboxRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM email_outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT CAST($2 AS BIGINT)"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(now).bind(limit).fetch_all(c).await)?)
}

/// How many emails wait to be sent.
pub async fn unsent(db: &Db) -> Result<i64> {
    Ok(
        on_db!(db, c => sqlx::query_scalar("SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NULL")
        .fetch_one(c).await)?,
    )
}

/// Takes a row for this worker: moves its next attempt to `lease_until`, so
/// that another instance's worker leaves it alone meanwhile. `false` when
/// another worker took it first.
pub async fn claim(db: &Db, r: &OutboxRow, lease_until: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE email_outbox SET next_attempt_at = $3 WHERE id = $1 AND next_attempt_at = $2 AND sent_at IS NULL")
        .bind(&r.id).bind(r.next_attempt_at).bind(lease_until)
        .execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n == 1)
}

pub async fn mark_sent(tx: &mut Tx, id: &str, now: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE email_outbox SET sent_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1")
        .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn mark_failed(db: &Db, id: &str, next_attempt_at: i64, error: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    on_tx!(tx, c => sqlx::query(
        "UPDATE email_outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1")
        .bind(id).bind(next_attempt_at).bind(error).execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await
}

/// When the newest email of `kind` to the user was queued.
pub async fn latest_of(db: &Db, user_id: &str, kind: &str) -> Result<Option<i64>> {
    Ok(on_db!(db, c => sqlx::query_scalar(
        "SELECT MAX(created_at) FROM email_outbox WHERE user_id = $1 AND kind = $2")
        .bind(user_id).bind(kind).fetch_one(c).await)?)
}
