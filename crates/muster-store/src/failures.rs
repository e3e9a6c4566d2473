//! Failed sign-in counters (migration 0006), shared by every instance.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Failures {
    pub failures: i64,
    pub first_failure_at: i64,
    pub last_failure_at: i64,
}

pub async fn get(db: &Db, key: &str) -> Result<Option<Failures>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "SELECT failures, first_failure_at, last_failure_at FROM auth_failures WHERE key = $1")
        .bind(key).fetch_optional(c).await)?)
}

/// The counters of up to two keys in one round trip (a sign-in checks its
/// account's and its IP's).
pub async fn get_pair(
    db: &Db,
    a: &str,
    b: Option<&str>,
) -> Result<(Option<Failures>, Option<Failures>)> {
    #[derive(sqlx::FromRow)]
    struct Keyed {
        key: String,
        #[sqlx(flatten)]
        f: Failures,
    }
    let rows: Vec<Keyed> = on_db!(db, c => sqlx::query_as(
        "SELECT key, failures, first_failure_at, last_failure_at FROM auth_failures WHERE key IN ($1, $2)")
        .bind(a).bind(b.unwrap_or(a)).fetch_all(c).await)?;
    let find = |k: &str| rows.iter().find(|r| r.key == k).map(|r| r.f);
    Ok((find(a), b.and_then(find)))
}

/// Counts one failure. A count whose last failure is older than `window_ms`
/// starts again from one. Returns the count after this failure.
pub async fn record(db: &Db, key: &str, now: i64, window_ms: i64) -> Result<Failures> {
    let mut tx = db.begin().await?;
    let f = on_tx!(tx, c => sqlx::query_as(
        "INSERT INTO auth_failures (key, failures, first_failure_at, last_failure_at) VALUES ($1, 1, $2, $2)
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN auth_failures.last_failure_at < $3 THEN 1 ELSE auth_failures.failures + 1 END,
           first_failure_at = CASE WHEN auth_failures.last_failure_at < $3 THEN $2 ELSE auth_failures.first_failure_at END,
           last_failure_at = $2
         RETURNING failures, first_failure_at, last_failure_at")
        .bind(key).bind(now).bind(now - window_ms).fetch_one(c).await)?;
    tx.commit().await?;
    Ok(f)
}

pub async fn clear(tx: &mut Tx, key: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM auth_failures WHERE key = $1")
        .bind(key).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}
