//! Domains organizations claim and verify (migration 0017).

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DomainRow {
    pub org_id: String,
    pub domain: String,
    pub token: String,
    pub verified_at: Option<i64>,
    pub created_at: i64,
}

const COLS: &str = "org_id, domain, token, verified_at, created_at";

pub async fn insert(tx: &mut Tx, d: &DomainRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO org_domains (org_id, domain, token, verified_at, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&d.org_id).bind(&d.domain).bind(&d.token).bind(d.verified_at).bind(d.created_at)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<DomainRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM org_domains WHERE org_id = $1 ORDER BY domain"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).fetch_all(c).await)?)
}

pub async fn get(db: &Db, org_id: &str, domain: &str) -> Result<Option<DomainRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM org_domains WHERE org_id = $1 AND domain = $2"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(domain).fetch_optional(c).await)?)
}

/// Whether some organization other than `org_id` has verified `domain`.
pub async fn verified_elsewhere(tx: &mut Tx, org_id: &str, domain: &str) -> Result<bool> {
    let n: i64 = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM org_domains WHERE domain = $1 AND org_id <> $2 AND verified_at IS NOT NULL")
        .bind(domain).bind(org_id).fetch_one(c).await)?;
    Ok(n > 0)
}

/// Whether `org_id` has verified `domain`.
pub async fn is_verified(db: &Db, org_id: &str, domain: &str) -> Result<bool> {
    let n: i64 = on_db!(db, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM org_domains WHERE org_id = $1 AND domain = $2 AND verified_at IS NOT NULL")
        .bind(org_id).bind(domain).fetch_one(c).await)?;
    Ok(n > 0)
}

/// Marks the claim verified; the unique index refuses a second owner.
pub async fn mark_verified(tx: &mut Tx, org_id: &str, domain: &str, now: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE org_domains SET verified_at = $3 WHERE org_id = $1 AND domain = $2")
        .bind(org_id).bind(domain).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete(tx: &mut Tx, org_id: &str, domain: &str) -> Result<u64> {
    Ok(
        on_tx!(tx, c => sqlx::query("DELETE FROM org_domains WHERE org_id = $1 AND domain = $2")
        .bind(org_id).bind(domain).execute(c).await.map(|r| r.rows_affected()))?,
    )
}
