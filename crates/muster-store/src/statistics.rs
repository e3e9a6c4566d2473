//! Planner statistics on PostgreSQL, kept fresh by the server itself.
//!
//! The server's connections use PostgreSQL's default `plan_cache_mode`
//! (`auto`): after five executions a prepared statement may switch to a
//! generic plan, which saves planning on every request. A generic plan made
//! while a table was nearly empty can pick an index whose estimated cost merely
//! tied with the right one (measured: the SCIM creation's `externalId`/email
//! lookup scanning the organization's index instead of the unique one), and it
//! stays cached until the table's statistics change. Autovacuum's analyze
//! changes them, but autovacuum may be off or slow; so `analyze_stale` does
//! what autoanalyze would (same thresholds), and each `ANALYZE` makes every
//! connection re-plan the statements that touch the table.
//! SQLite plans each statement without table sizes; it needs none of this.

use crate::{Db, Result};

/// Autovacuum's defaults (`autovacuum_analyze_threshold` and
/// `autovacuum_analyze_scale_factor`): analyze once more rows than
/// `50 + 10 %` of the table changed since the last analyze.
const STALE: &str = "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
     WHERE s.schemaname = current_schema() \
       AND s.n_mod_since_analyze > 50 + 0.1 * GREATEST(c.reltuples, 0) \
     ORDER BY s.relname";

/// Any key, the same in every instance: one of them analyzes at a time.
pub const LOCK_KEY: i64 = 0x6d75_7374_6572_0001;

/// Analyzes the tables of the server's schema whose statistics are stale, if
/// no other instance is doing it; returns their names. A no-op on SQLite.
pub async fn analyze_stale(db: &Db) -> Result<Vec<String>> {
    let Db::Postgres(pool, ..) = db else {
        return Ok(Vec::new());
    };
    // A transaction-scoped lock: released by the commit, whatever happens.
    let mut tx = pool.begin().await?;
    let ours: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut *tx)
        .await?;
    if !ours {
        return Ok(Vec::new());
    }
    let stale: Vec<String> = sqlx::query_scalar(STALE).fetch_all(&mut *tx).await?;
    if !stale.is_empty() {
        // Names read from the catalog, each quoted as an identifier.
        let tables: Vec<String> = stale
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect();
        let sql = format!("ANALYZE {}", tables.join(", "));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(stale)
}
