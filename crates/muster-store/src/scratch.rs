//! A scratch set on disk for one `muster import` run: the keys (emails,
//! external ids, user names) already seen in the file, with the line that
//! claimed each. It lives in a temporary SQLite file rather than in memory so
//! that the importer's memory stays flat whatever the file's size (issue 9:
//! several gigabytes under 100 MB).

use crate::Result;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection as Conn};
use std::path::PathBuf;

/// One connection, not a pool: the run uses it one step at a time, and a
/// pool's maintenance task was seen spinning at 100 % CPU against `close()`
/// in sqlx 0.9.0, hanging the import at its end.
pub struct Scratch {
    conn: tokio::sync::Mutex<SqliteConnection>,
    path: PathBuf,
}

impl Scratch {
    /// A fresh set in the system's temporary directory, deleted by `close`.
    pub async fn create() -> Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "muster-import-{}.db",
            uuid::Uuid::now_v7().simple()
        ));
        // Nothing here must survive a crash: no journal, no fsync.
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off);
        let mut conn = Conn::connect_with(&opts).await?;
        sqlx::raw_sql(
            "CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE failed (line INTEGER PRIMARY KEY);
             CREATE TABLE refs (line INTEGER PRIMARY KEY, ref TEXT NOT NULL, email_key TEXT NOT NULL, ext_key TEXT NOT NULL);
             CREATE TABLE pending (line INTEGER PRIMARY KEY, user_id TEXT NOT NULL, ref TEXT NOT NULL);",
        )
        .execute(&mut conn)
        .await?;
        Ok(Self {
            conn: tokio::sync::Mutex::new(conn),
            path,
        })
    }

    /// Claims each `(key, line)`; for each, the earlier line that claimed the
    /// same key, or `None` when this line is the first (or already held it).
    pub async fn claim(&self, keys: &[(String, i64)]) -> Result<Vec<Option<i64>>> {
        let mut first: std::collections::HashMap<String, i64> = Default::default();
        let mut c = self.conn.lock().await;
        let mut tx = c.begin().await?;
        // One statement per 1,000 keys: a statement per key costs more in
        // round trips to SQLite's thread than the insert itself.
        for chunk in keys.chunks(1000) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            // On conflict the stored row comes back as it is: the first claimant.
            let sql = format!(
                "INSERT INTO seen (key, line) VALUES {} \
                 ON CONFLICT (key) DO UPDATE SET line = seen.line RETURNING key, line",
                values.join(", ")
            );
            let mut q = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql));
            for (k, l) in chunk {
                q = q.bind(k).bind(l);
            }
            first.extend(q.fetch_all(&mut *tx).await?);
        }
        tx.commit().await?;
        Ok(keys
            .iter()
            .map(|(k, l)| first.get(k).copied().filter(|f| f != l))
            .collect())
    }

    /// Remembers lines that failed the check, so the writing pass skips them.
    pub async fn mark_failed(&self, lines: &[i64]) -> Result<()> {
        let mut c = self.conn.lock().await;
        let mut tx = c.begin().await?;
        for l in lines {
            sqlx::query("INSERT OR IGNORE INTO failed (line) VALUES ($1)")
                .bind(l)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Which of `lines` failed the check.
    pub async fn failed_among(&self, from: i64, to: i64) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar(
                "SELECT line FROM failed WHERE line BETWEEN $1 AND $2 ORDER BY line",
            )
            .bind(from)
            .bind(to)
            .fetch_all(&mut *self.conn.lock().await)
            .await?,
        )
    }

    /// Remembers the manager each line names — as written, and as the email
    /// and externalId keys it would match — checked once the file is seen.
    pub async fn add_refs(&self, refs: &[(i64, String, String, String)]) -> Result<()> {
        let mut c = self.conn.lock().await;
        let mut tx = c.begin().await?;
        for (line, r, email_key, ext_key) in refs {
            sqlx::query("INSERT OR REPLACE INTO refs (line, ref, email_key, ext_key) VALUES ($1, $2, $3, $4)")
                .bind(line)
                .bind(r)
                .bind(email_key)
                .bind(ext_key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` remembered managers after `line`, in line order, of
    /// lines that have not failed already, each with the line of the file
    /// that holds that user (and did not fail), if any.
    pub async fn refs_after(
        &self,
        line: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, Option<i64>)>> {
        Ok(sqlx::query_as(
            "SELECT r.line, r.ref, \
               (SELECT s.line FROM seen s WHERE s.key IN (r.email_key, r.ext_key) \
                  AND NOT EXISTS (SELECT 1 FROM failed f WHERE f.line = s.line) LIMIT 1) \
             FROM refs r WHERE r.line > $1 \
               AND NOT EXISTS (SELECT 1 FROM failed f WHERE f.line = r.line) \
             ORDER BY r.line LIMIT CAST($2 AS BIGINT)",
        )
        .bind(line)
        .bind(limit)
        .fetch_all(&mut *self.conn.lock().await)
        .await?)
    }

    /// Users written before the manager they name: set once the file is done.
    pub async fn add_pending(&self, items: &[(i64, String, String)]) -> Result<()> {
        let mut c = self.conn.lock().await;
        let mut tx = c.begin().await?;
        for (line, user, r) in items {
            sqlx::query("INSERT OR REPLACE INTO pending (line, user_id, ref) VALUES ($1, $2, $3)")
                .bind(line)
                .bind(user)
                .bind(r)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn pending_after(&self, line: i64, limit: i64) -> Result<Vec<(i64, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT line, user_id, ref FROM pending WHERE line > $1 ORDER BY line LIMIT CAST($2 AS BIGINT)",
        )
        .bind(line)
        .bind(limit)
        .fetch_all(&mut *self.conn.lock().await)
        .await?)
    }

    pub async fn close(self) {
        let _ = self.conn.into_inner().close().await;
        let _ = std::fs::remove_file(&self.path);
    }
}
