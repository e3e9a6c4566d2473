//! `muster import` runs and where each stopped (migration 0004), so that a run
//! stopped by Ctrl-C continues after its last written batch.

use crate::{Db, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRun {
    pub id: String,
    pub org_id: String,
    pub fingerprint: String,
    pub file_name: String,
    pub operator: String,
    /// Every line up to this one (a CSV row number or a JSON Lines line) is written.
    pub lines_done: i64,
    pub started_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

const COLS: &str =
    "id, org_id, fingerprint, file_name, operator, lines_done, started_at, updated_at, finished_at";

/// The newest unfinished run of this file in this organization.
pub async fn unfinished(db: &Db, org_id: &str, fingerprint: &str) -> Result<Option<ImportRun>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM import_runs WHERE org_id = $1 AND fingerprint = $2 AND finished_at IS NULL \
         ORDER BY started_at DESC, id DESC LIMIT 1"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(fingerprint).fetch_optional(c).await)?)
}

pub async fn start(db: &Db, r: &ImportRun) -> Result<()> {
    let mut tx = db.begin().await?;
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO import_runs (id, org_id, fingerprint, file_name, operator, lines_done, started_at, updated_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(&r.id).bind(&r.org_id).bind(&r.fingerprint).bind(&r.file_name).bind(&r.operator)
        .bind(r.lines_done).bind(r.started_at).bind(r.updated_at).bind(r.finished_at)
        .execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await
}

/// Records that every line up to `lines_done` is written; `finished` closes the run.
pub async fn advance(db: &Db, id: &str, lines_done: i64, now: i64, finished: bool) -> Result<()> {
    let mut tx = db.begin().await?;
    on_tx!(tx, c => sqlx::query(
        "UPDATE import_runs SET lines_done = $2, updated_at = $3, \
         finished_at = CASE WHEN $4 THEN $3 ELSE finished_at END WHERE id = $1")
        .bind(id).bind(lines_done).bind(now).bind(finished)
        .execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await
}
