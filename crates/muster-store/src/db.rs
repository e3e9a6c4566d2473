//! Connecting, migrating and transactions.
//!
//! SQLite runs in WAL mode with `synchronous=FULL`, so a commit is durable
//! across power loss, like PostgreSQL's default. Writes go through a pool of
//! one connection and transactions start with `BEGIN IMMEDIATE`: SQLite has a
//! single writer anyway, and queueing in the pool is cheaper than `SQLITE_BUSY`
//! retries. Reads use a separate pool and never wait for writers (WAL).
//!
//! A bound row count is written `LIMIT CAST($n AS BIGINT)`, never `LIMIT $n`.
//! SQLite (3.51, the one built in) plans a bare bound `LIMIT` with the
//! parameter's value and marks the statement to be prepared again whenever
//! that parameter is bound, which sqlx does at every execution: each run of
//! such a statement was parsed and planned afresh, its cached preparation
//! unused. A sign-in's first read was a quarter of SQLite's own CPU during a
//! burst; cast, SQLite's sign-ins rose from 89 % to 93 % of the argon2id
//! limit (medians of four paired runs; BENCHMARKS.md, "A bound LIMIT"). An
//! expression is only evaluated when the statement runs; PostgreSQL reads
//! the cast of an `int8` parameter as the parameter. A bound `LIKE` pattern
//! marks a statement the same way (SQLite looks for an index optimisation
//! that a case-insensitive `LIKE` gets only on `NOCASE` columns, and we have
//! none), so it is written `LIKE CAST($n AS TEXT)`. The test
//! `bound_limits_and_patterns_are_cast` below keeps both so.

use crate::{Result, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a PostgreSQL connection may sit idle in the pool and still be
/// handed out without a ping (see `Db::connect`).
pub(crate) const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// `$from, $from+1, …` for an `IN` list of `n` values (`NULL` when empty).
pub(crate) fn in_list(from: usize, n: usize) -> String {
    let p: Vec<String> = (from..from + n).map(|i| format!("${i}")).collect();
    if p.is_empty() {
        "NULL".to_owned()
    } else {
        p.join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Connections to PostgreSQL, or readers for SQLite.
    pub max_connections: u32,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Db {
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    /// The pool, and the connections held out of it for sign-ins (`lanes`).
    Postgres(PgPool, std::sync::Arc<crate::lanes::Lanes>),
}

pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// A use case's transaction. Dropped without `commit`, it rolls back.
pub struct Tx {
    pub(crate) inner: TxInner,
    /// An organization's own row was written (see `ORG_COMMITS`).
    pub(crate) wrote_org: bool,
    /// A SCIM token was revoked or rotated (see `TOKEN_COMMITS`).
    pub(crate) wrote_token: bool,
}

impl Db {
    /// Opens `sqlite://path` or `postgres://…`. Does not migrate.
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let base = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("invalid SQLite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(base.clone())
                .await?;
            // No ping before handing out a connection: a SQLite connection is
            // a file handle, and the ping is one more trip to its worker thread.
            //
            // Each reader keeps its own page cache, 2 MiB by default: one copy
            // per reader (sixteen by default) of the hot pages the kernel's
            // page cache holds once anyway. At 512 KiB the server's memory after 100,000 users
            // fell from 142–145 MB to 119 MB; the heaviest read measured, the
            // console's dashboard, is ~5 % slower for it (BENCHMARKS.md,
            // "Results (2026-12-06, stop 34, the command above)").
            let read = SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .test_before_acquire(false)
                .connect_with(base.read_only(false).pragma("cache_size", "-512"))
                .await?;
            Ok(Self::Sqlite { read, write })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // PostgreSQL's default plan_cache_mode (auto): a generic plan
            // once a statement has run five times. Such a plan is only as
            // good as the statistics it was made with, which the server
            // keeps fresh itself (`statistics::analyze_stale`).
            //
            // JIT compilation off: PostgreSQL compiles any statement whose
            // estimated cost passes `jit_above_cost`, and the permission
            // lookups of a token read are estimated that high while tables
            // have no statistics yet; compiling cost about 60 ms on every
            // execution of statements that run in a tenth of a millisecond
            // (auto_explain; BENCHMARKS.md, "A creation checked by its own
            // write; JIT off"). Short statements never gain
            // from it.
            let o = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?
                .options([("jit", "off")]);
            // A connection is pinged before it is handed out only when it
            // has been idle for a second or more. sqlx's default pings at
            // every acquire: a round trip to PostgreSQL before each
            // statement, two per sign-in. A connection used within the last
            // second has just answered; one idle longer (a restart, a
            // dropped network path) is still found dead and replaced before
            // anyone uses it. HikariCP's `aliveBypassWindowMs` is the same
            // idea. BENCHMARKS.md, "Fewer wake-ups per sign-in".
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_AFTER_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(o)
                .await?;
            let lanes = std::sync::Arc::new(crate::lanes::Lanes::new(
                pool.clone(),
                opts.max_connections.max(2),
            ));
            Ok(Self::Postgres(pool, lanes))
        } else {
            Err(StoreError::Config(
                "the database URL must start with sqlite:// or postgres://".into(),
            ))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres(..) => Backend::Postgres,
        }
    }

    pub async fn migrate(&self) -> Result<()> {
        match self {
            Self::Sqlite { write, .. } => SQLITE_MIGRATIONS.run(write).await?,
            Self::Postgres(p, ..) => POSTGRES_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    /// True when every migration this build knows is applied (for `/readyz`).
    pub async fn migrations_current(&self) -> Result<bool> {
        let (applied, known): (Vec<i64>, usize) = match self {
            Self::Sqlite { read, .. } => (
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(read)
                    .await?,
                SQLITE_MIGRATIONS.iter().count(),
            ),
            Self::Postgres(p, ..) => (
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(p)
                    .await?,
                POSTGRES_MIGRATIONS.iter().count(),
            ),
        };
        Ok(applied.len() >= known)
    }

    /// The migration file names of each dialect, for the test that keeps them in step.
    pub fn migration_names(backend: Backend) -> Vec<(i64, String)> {
        let m = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        m.iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    }

    pub async fn begin(&self) -> Result<Tx> {
        let inner = match self {
            Self::Sqlite { write, .. } => {
                TxInner::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?)
            }
            Self::Postgres(p, ..) => TxInner::Postgres(p.begin().await?),
        };
        Ok(Tx {
            inner,
            wrote_org: false,
            wrote_token: false,
        })
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Self::Postgres(p, lanes) => {
                // The pool's close waits for every connection to come back.
                lanes.release().await;
                p.close().await;
            }
        }
    }
}

/// Transactions this process has committed (or tried to). A copy of
/// something read before the count moved may be stale: the session cache
/// compares it before trusting what it holds. Process-wide, not per `Db`:
/// tests run many databases in one process, and a count that moves for
/// another database's commit only costs a cache miss.
static COMMITS: AtomicU64 = AtomicU64::new(0);

/// See `COMMITS`.
pub fn commits() -> u64 {
    COMMITS.load(Ordering::SeqCst)
}

/// Committed transactions that wrote an organization's own row (its slug,
/// name or settings): copies of organizations need not be dropped for every
/// sign-in's commit, only for these.
static ORG_COMMITS: AtomicU64 = AtomicU64::new(0);

/// See `ORG_COMMITS`.
pub fn org_commits() -> u64 {
    ORG_COMMITS.load(Ordering::SeqCst)
}

/// Committed writes to a SCIM token (revocation, rotation, last use): copies
/// of a token's authentication need not be dropped for every creation's or
/// sealing's commit during a provisioning run, only for these (and
/// organizations', `ORG_COMMITS`).
static TOKEN_COMMITS: AtomicU64 = AtomicU64::new(0);

/// See `TOKEN_COMMITS`.
pub fn token_commits() -> u64 {
    TOKEN_COMMITS.load(Ordering::SeqCst)
}

/// Counts a write to a SCIM token made outside `Tx`.
pub(crate) fn note_token_write() {
    note_commit();
    TOKEN_COMMITS.fetch_add(1, Ordering::SeqCst);
}

/// Counts a write made outside `Tx` (a test's raw SQL) as a commit, of
/// anything.
pub fn note_write() {
    note_commit();
    ORG_COMMITS.fetch_add(1, Ordering::SeqCst);
    TOKEN_COMMITS.fetch_add(1, Ordering::SeqCst);
}

/// Counts a statement committed on its own, outside `Tx`, that wrote no
/// organization (a sign-in's or a creation's one statement).
pub(crate) fn note_commit() {
    COMMITS.fetch_add(1, Ordering::SeqCst);
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        let r = match self.inner {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
        };
        // Counted after the commit, whatever its outcome (a lost connection
        // may still have committed): a reader that looked at the count before
        // its read sees it move and drops what it read.
        note_commit();
        if self.wrote_org {
            ORG_COMMITS.fetch_add(1, Ordering::SeqCst);
        }
        if self.wrote_token {
            TOKEN_COMMITS.fetch_add(1, Ordering::SeqCst);
        }
        r?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Serialises writers that must see each other's effects inside one
    /// organization (group nesting, chain sealing). SQLite already has a single
    /// writer; PostgreSQL takes a row lock on the organization.
    pub async fn lock_org(&mut self, org_id: &str) -> Result<()> {
        if let TxInner::Postgres(t) = &mut self.inner {
            sqlx::query("SELECT id FROM orgs WHERE id = $1 FOR UPDATE")
                .bind(org_id)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// See the module's note on `LIMIT`: every SQL text under `src/` casts a
    /// bound row count or `LIKE` pattern (`$n`, or a placeholder spliced in
    /// with `{…}`).
    #[test]
    fn bound_limits_and_patterns_are_cast() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = text
                        .lines()
                        .enumerate()
                        .filter(|(_, l)| !l.trim().starts_with("//"));
                    for (i, line) in code {
                        let bare = ["LIMIT ", "LIKE "].iter().any(|k| {
                            line.match_indices(k)
                                .any(|(at, m)| line[at + m.len()..].starts_with(['$', '{']))
                        });
                        if bare {
                            found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        assert!(
            found.is_empty(),
            "write LIMIT CAST($n AS BIGINT), LIKE CAST($n AS TEXT):\n{}",
            found.join("\n")
        );
    }
}
