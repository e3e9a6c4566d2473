//! Webhook endpoints, their subscriptions, and the delivery outbox and log
//! (migration 0013). Deliveries are written by a trigger on `audit_events`,
//! so every path that writes an event queues its webhooks in the same
//! transaction; this module reads and updates them.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub description: String,
    /// The patterns as the admin wrote them, space-separated (`user.*`).
    pub event_types: String,
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
}

const ENDPOINT_COLS: &str = "id, org_id, url, description, event_types, secret_sealed, \
    previous_secret_sealed, previous_until, created_at, updated_at, disabled_at, disabled_reason";

/// The SQL LIKE pattern of a subscription: `user.*` → `user.%`, `*` → `%`,
/// with LIKE's own wildcards in names escaped.
pub fn like_pattern(event_type: &str) -> String {
    let escaped = event_type.replace('\\', "\\\\").replace('_', "\\_");
    match escaped.strip_suffix('*') {
        Some(prefix) => format!("{prefix}%"),
        None => escaped,
    }
}

pub async fn insert(tx: &mut Tx, e: &EndpointRow) -> Result<()> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_endpoints ({ENDPOINT_COLS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ));
    on_tx!(tx, c => sqlx::query(sql)
        .bind(&e.id).bind(&e.org_id).bind(&e.url).bind(&e.description).bind(&e.event_types)
        .bind(&e.secret_sealed).bind(&e.previous_secret_sealed).bind(e.previous_until)
        .bind(e.created_at).bind(e.updated_at).bind(e.disabled_at).bind(&e.disabled_reason)
        .execute(c).await.map(|r| r.rows_affected()))?;
    set_subscriptions(tx, &e.id, &e.event_types).await
}

/// Writes every field but the id, organization and creation time.
pub async fn update(tx: &mut Tx, e: &EndpointRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, secret_sealed = $6,
             previous_secret_sealed = $7, previous_until = $8, updated_at = $9, disabled_at = $10,
             disabled_reason = $11
         WHERE id = $1 AND org_id = $2")
        .bind(&e.id).bind(&e.org_id).bind(&e.url).bind(&e.description).bind(&e.event_types)
        .bind(&e.secret_sealed).bind(&e.previous_secret_sealed).bind(e.previous_until)
        .bind(e.updated_at).bind(e.disabled_at).bind(&e.disabled_reason)
        .execute(c).await.map(|r| r.rows_affected()))?;
    set_subscriptions(tx, &e.id, &e.event_types).await
}

async fn set_subscriptions(tx: &mut Tx, endpoint_id: &str, event_types: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM webhook_subscriptions WHERE endpoint_id = $1")
        .bind(endpoint_id).execute(c).await.map(|r| r.rows_affected()))?;
    let mut patterns: Vec<String> = event_types.split_whitespace().map(like_pattern).collect();
    patterns.sort();
    patterns.dedup();
    for p in patterns {
        on_tx!(tx, c => sqlx::query(
            "INSERT INTO webhook_subscriptions (endpoint_id, pattern) VALUES ($1, $2)")
            .bind(endpoint_id).bind(&p).execute(c).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Removes the endpoint with its outbox and log.
pub async fn delete(tx: &mut Tx, org_id: &str, id: &str) -> Result<bool> {
    for sql in [
        "DELETE FROM webhook_attempts WHERE endpoint_id = $1",
        "DELETE FROM webhook_deliveries WHERE endpoint_id = $1",
        "DELETE FROM webhook_subscriptions WHERE endpoint_id = $1",
    ] {
        on_tx!(tx, c => sqlx::query(sql).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    }
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND org_id = $2")
        .bind(id).bind(org_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<EndpointRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1 AND org_id = $2"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(id).bind(org_id).fetch_optional(c).await)?)
}

/// The endpoint, locked against concurrent changes until `tx` ends.
pub async fn get_for_update(tx: &mut Tx, org_id: &str, id: &str) -> Result<Option<EndpointRow>> {
    let lock = match tx.backend() {
        crate::Backend::Sqlite => "",
        crate::Backend::Postgres => " FOR UPDATE",
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1 AND org_id = $2{lock}"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(id).bind(org_id).fetch_optional(c).await)?)
}

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<EndpointRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE org_id = $1 ORDER BY created_at, id"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).fetch_all(c).await)?)
}

/// Enabled endpoints whose oldest undelivered message is due by `now`:
/// the work of one dispatcher pass.
pub async fn with_due_head(db: &Db, now: i64) -> Result<Vec<EndpointRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints w
         WHERE w.disabled_at IS NULL AND EXISTS (
             SELECT 1 FROM webhook_deliveries d
             WHERE d.endpoint_id = w.id AND d.status = 'pending' AND d.next_attempt_at <= $1
               AND d.event_id = (SELECT MIN(h.event_id) FROM webhook_deliveries h
                                 WHERE h.endpoint_id = w.id AND h.status = 'pending'))
         ORDER BY w.id"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(now).fetch_all(c).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub endpoint_id: String,
    pub event_id: String,
    pub org_id: String,
    pub event_type: String,
    pub created_at: i64,
    /// `pending`, `delivered` or `failed` (given up; redeliver by hand).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

const DELIVERY_COLS: &str = "endpoint_id, event_id, org_id, event_type, created_at, status, attempts, \
    next_attempt_at, last_attempt_at, last_status, last_error, delivered_at";

/// The endpoint's undelivered messages in event order (ids are time-ordered).
pub async fn pending(db: &Db, endpoint_id: &str, limit: i64) -> Result<Vec<DeliveryRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLS} FROM webhook_deliveries
         WHERE endpoint_id = $1 AND status = 'pending' ORDER BY event_id LIMIT CAST($2 AS BIGINT)"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(endpoint_id).bind(limit).fetch_all(c).await)?)
}

pub async fn delivery(db: &Db, endpoint_id: &str, event_id: &str) -> Result<Option<DeliveryRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE endpoint_id = $1 AND event_id = $2"
    ));
    Ok(
        on_db!(db, c => sqlx::query_as(sql).bind(endpoint_id).bind(event_id).fetch_optional(c).await)?,
    )
}

/// The delivery log of an endpoint, newest first, after the cursor `before`.
pub async fn deliveries(
    db: &Db,
    endpoint_id: &str,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<DeliveryRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLS} FROM webhook_deliveries
         WHERE endpoint_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR event_id < $3)
         ORDER BY event_id DESC LIMIT CAST($4 AS BIGINT)"
    ));
    Ok(
        on_db!(db, c => sqlx::query_as(sql).bind(endpoint_id).bind(status).bind(before)
        .bind(limit).fetch_all(c).await)?,
    )
}

/// What one attempt found.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub attempt: i64,
    pub at: i64,
    /// 1 when an admin asked for it.
    pub manual: i64,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

pub async fn attempts(db: &Db, endpoint_id: &str, event_id: &str) -> Result<Vec<AttemptRow>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "SELECT attempt, at, manual, http_status, error, duration_ms FROM webhook_attempts
         WHERE endpoint_id = $1 AND event_id = $2 ORDER BY attempt")
        .bind(endpoint_id).bind(event_id).fetch_all(c).await)?)
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again at this time.
    Retry(i64),
    /// Given up.
    Failed,
}

/// Logs an attempt and moves the delivery on, in one transaction. A manual
/// attempt never makes a delivered message undelivered.
pub async fn record_attempt(
    tx: &mut Tx,
    d: &DeliveryRow,
    a: &AttemptRow,
    outcome: Outcome,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO webhook_attempts (endpoint_id, event_id, attempt, at, manual, http_status, error, duration_ms)
         VALUES ($1, $2, (SELECT COALESCE(MAX(attempt), 0) + 1 FROM webhook_attempts WHERE endpoint_id = $1 AND event_id = $2),
                 $3, $4, $5, $6, $7)")
        .bind(&d.endpoint_id).bind(&d.event_id).bind(a.at).bind(a.manual).bind(a.http_status)
        .bind(&a.error).bind(a.duration_ms)
        .execute(c).await.map(|r| r.rows_affected()))?;
    let (status, next, delivered_at) = match outcome {
        Outcome::Delivered => ("delivered", d.next_attempt_at, Some(a.at)),
        Outcome::Retry(at) => ("pending", at, None),
        Outcome::Failed => ("failed", d.next_attempt_at, None),
    };
    on_tx!(tx, c => sqlx::query(
        "UPDATE webhook_deliveries SET
             status = CASE WHEN status = 'delivered' THEN status ELSE $3 END,
             attempts = attempts + 1, next_attempt_at = $4, last_attempt_at = $5,
             last_status = $6, last_error = $7, delivered_at = COALESCE(delivered_at, $8)
         WHERE endpoint_id = $1 AND event_id = $2")
        .bind(&d.endpoint_id).bind(&d.event_id).bind(status).bind(next).bind(a.at)
        .bind(a.http_status).bind(&a.error).bind(delivered_at)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Turns the endpoint off (no new deliveries are queued for it) and says why.
pub async fn disable(tx: &mut Tx, id: &str, now: i64, reason: &str) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3, updated_at = $2
         WHERE id = $1 AND disabled_at IS NULL")
        .bind(id).bind(now).bind(reason).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The organization's active owners (role assigned directly), to be told
/// when an endpoint was turned off.
pub async fn owners(tx: &mut Tx, org_id: &str) -> Result<Vec<(String, String)>> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT DISTINCT u.id, u.email FROM users u
         JOIN role_assignments a ON a.user_id = u.id
         JOIN roles r ON r.id = a.role_id
         WHERE u.org_id = $1 AND r.role_key = 'owner' AND r.builtin AND u.state = 'active'
         ORDER BY u.id")
        .bind(org_id).fetch_all(c).await)?)
}
