//! Audit events, the pending queue and the hash chain (see muster_core::audit).

use crate::{Db, Result, Tx};
use muster_core::audit::{self, Link, StoredEvent};

#[derive(Debug, Clone, sqlx::FromRow)]
struct EventRow {
    id: String,
    org_id: String,
    occurred_at: i64,
    actor_kind: String,
    actor_id: Option<String>,
    actor_label: Option<String>,
    action: String,
    target_kind: Option<String>,
    target_id: Option<String>,
    severity: String,
    changes: String,
    context: String,
}

impl From<EventRow> for StoredEvent {
    fn from(r: EventRow) -> Self {
        Self {
            id: r.id,
            org_id: r.org_id,
            occurred_at: r.occurred_at,
            actor_kind: r.actor_kind,
            actor_id: r.actor_id,
            actor_label: r.actor_label,
            action: r.action,
            target_kind: r.target_kind,
            target_id: r.target_id,
            severity: r.severity,
            changes: r.changes,
            context: r.context,
        }
    }
}

const COLS: &str = "e.id, e.org_id, e.occurred_at, e.actor_kind, e.actor_id, e.actor_label, e.action, \
    e.target_kind, e.target_id, e.severity, e.changes, e.context";

/// Writes the event and queues it for sealing, in the caller's transaction.
/// PostgreSQL does both in one statement (a data-modifying CTE) to save a
/// round trip on every audited change; SQLite runs in process and needs two.
pub async fn insert(tx: &mut Tx, e: &StoredEvent) -> Result<()> {
    const INSERT: &str = concat!(
        "INSERT INTO audit_events (",
        event_columns!(),
        ") ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    const INSERT_AND_QUEUE: &str = concat!(
        "WITH e AS (INSERT INTO audit_events (",
        event_columns!(),
        ") ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id, org_id) ",
        "INSERT INTO audit_pending (event_id, org_id) SELECT id, org_id FROM e"
    );
    let sql = match tx.backend() {
        crate::Backend::Sqlite => INSERT,
        crate::Backend::Postgres => INSERT_AND_QUEUE,
    };
    on_tx!(tx, c => bind_event!(sqlx::query(sql), e).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    if tx.backend() == crate::Backend::Sqlite {
        on_tx!(tx, c => sqlx::query("INSERT INTO audit_pending (event_id, org_id) VALUES ($1, $2)")
            .bind(&e.id).bind(&e.org_id).execute(c).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// An event with its place in the chain, once sealed.
#[derive(Debug, Clone)]
pub struct ListedEvent {
    pub event: StoredEvent,
    pub seq: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    /// Exact action, or a prefix when it ends with `.` (e.g. `user.`).
    pub action: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub after: Option<String>,
    pub limit: i64,
    /// Only events of this kind of actor (`scim_token`, `user`…).
    pub actor_kind: Option<String>,
    /// Newest first, `after` then meaning "older than" (the console's view).
    pub newest_first: bool,
}

#[derive(sqlx::FromRow)]
struct ListedRow {
    #[sqlx(flatten)]
    e: EventRow,
    seq: Option<i64>,
}

/// Events in the order they happened (ids are time-ordered), filtered.
pub async fn list(db: &Db, org_id: &str, q: &EventQuery) -> Result<Vec<ListedEvent>> {
    let (action_exact, action_prefix) = match q.action.as_deref() {
        Some(a) if a.ends_with('.') => (
            None,
            Some(format!("{}%", a.replace('%', "").replace('_', "\\_"))),
        ),
        Some(a) => (Some(a.to_owned()), None),
        None => (None, None),
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS}, c.seq FROM audit_events e LEFT JOIN audit_chain c ON c.event_id = e.id
         WHERE e.org_id = $1
           AND ($2 IS NULL OR e.actor_id = $2)
           AND ($3 IS NULL OR e.target_id = $3)
           AND ($4 IS NULL OR e.action = $4)
           AND ($5 IS NULL OR e.action LIKE CAST($5 AS TEXT) ESCAPE '\\')
           AND ($6 IS NULL OR e.occurred_at >= $6)
           AND ($7 IS NULL OR e.occurred_at < $7)
           AND ($8 IS NULL OR e.id {after} $8)
           AND ($10 IS NULL OR e.actor_kind = $10)
         ORDER BY e.id {order} LIMIT CAST($9 AS BIGINT)",
        after = if q.newest_first { "<" } else { ">" },
        order = if q.newest_first { "DESC" } else { "ASC" },
    ));
    let rows: Vec<ListedRow> = on_db!(db, c => sqlx::query_as(sql)
        .bind(org_id).bind(&q.actor_id).bind(&q.target_id).bind(action_exact).bind(action_prefix)
        .bind(q.since).bind(q.until).bind(&q.after).bind(q.limit).bind(&q.actor_kind)
        .fetch_all(c).await)?;
    Ok(rows
        .into_iter()
        .map(|r| ListedEvent {
            seq: r.seq,
            event: r.e.into(),
        })
        .collect())
}

/// One event of the organization by id, with its place in the chain.
pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<ListedEvent>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS}, c.seq FROM audit_events e LEFT JOIN audit_chain c ON c.event_id = e.id
         WHERE e.org_id = $1 AND e.id = $2"
    ));
    let row: Option<ListedRow> =
        on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?;
    Ok(row.map(|r| ListedEvent {
        seq: r.seq,
        event: r.e.into(),
    }))
}

/// Clears the dead rows that sealing leaves in the queue and the chain heads.
/// Every event passes through `audit_pending` once (inserted, then deleted),
/// so on PostgreSQL the table is all dead tuples unless vacuumed; we do not
/// rely on autovacuum being on and tuned (on this project's machines it is
/// off, and the queue's dead rows halved throughput within 10,000 users).
/// SQLite reuses freed pages itself.
pub async fn vacuum_queue(db: &Db) -> Result<()> {
    if let Db::Postgres(p, ..) = db {
        sqlx::raw_sql("VACUUM (SKIP_LOCKED) audit_pending, audit_heads")
            .execute(p)
            .await?;
    }
    Ok(())
}

/// Organizations with events waiting to be sealed.
pub async fn orgs_pending(db: &Db) -> Result<Vec<String>> {
    Ok(
        on_db!(db, c => sqlx::query_scalar("SELECT DISTINCT org_id FROM audit_pending").fetch_all(c).await)?,
    )
}

/// Appends up to `batch` pending events of one organization to its chain, in
/// one transaction; returns how many were sealed. Safe with several instances:
/// the chain head is locked (PostgreSQL) or the writer is single (SQLite).
pub async fn seal(db: &Db, org_id: &str, batch: i64) -> Result<usize> {
    let mut tx = db.begin().await?;
    on_tx!(tx, c => sqlx::query("INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING")
        .bind(org_id).bind(audit::GENESIS).execute(c).await.map(|r| r.rows_affected()))?;
    let lock = match tx.backend() {
        crate::Backend::Postgres => " FOR UPDATE",
        crate::Backend::Sqlite => "",
    };
    let head_sql = sqlx::AssertSqlSafe(format!(
        "SELECT seq, hash FROM audit_heads WHERE org_id = $1{lock}"
    ));
    let (mut seq, mut hash): (i64, String) =
        on_tx!(tx, c => sqlx::query_as(head_sql).bind(org_id).fetch_one(c).await)?;
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM audit_pending p JOIN audit_events e ON e.id = p.event_id
         WHERE p.org_id = $1 ORDER BY p.event_id LIMIT CAST($2 AS BIGINT)"
    ));
    let rows: Vec<EventRow> =
        on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(batch).fetch_all(c).await)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut links = Vec::with_capacity(rows.len());
    for row in rows {
        let ev = StoredEvent::from(row);
        seq += 1;
        hash = audit::chain_hash(&hash, seq, &ev);
        links.push(Link {
            seq,
            event_id: ev.id,
            hash: hash.clone(),
        });
    }
    on_tx!(tx, c => {
        let mut qb = sqlx::QueryBuilder::new("INSERT INTO audit_chain (org_id, seq, event_id, hash) ");
        qb.push_values(&links, |mut b, l| {
            b.push_bind(org_id).push_bind(l.seq).push_bind(&l.event_id).push_bind(&l.hash);
        });
        qb.build().execute(&mut *c).await.map(|r| r.rows_affected())
    })?;
    on_tx!(tx, c => {
        let mut qb = sqlx::QueryBuilder::new("DELETE FROM audit_pending WHERE event_id IN (");
        let mut sep = qb.separated(", ");
        for l in &links {
            sep.push_bind(&l.event_id);
        }
        qb.push(")");
        qb.build().execute(&mut *c).await.map(|r| r.rows_affected())
    })?;
    on_tx!(tx, c => sqlx::query("UPDATE audit_heads SET seq = $2, hash = $3 WHERE org_id = $1")
        .bind(org_id).bind(seq).bind(&hash).execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(links.len())
}

#[derive(sqlx::FromRow)]
struct ChainedRow {
    seq: i64,
    link_event_id: String,
    hash: String,
    #[sqlx(flatten)]
    e: EventRowOpt,
}

/// The event columns of a LEFT JOIN, where the event may be gone.
#[derive(sqlx::FromRow)]
struct EventRowOpt {
    id: Option<String>,
    org_id: Option<String>,
    occurred_at: Option<i64>,
    actor_kind: Option<String>,
    actor_id: Option<String>,
    actor_label: Option<String>,
    action: Option<String>,
    target_kind: Option<String>,
    target_id: Option<String>,
    severity: Option<String>,
    changes: Option<String>,
    context: Option<String>,
}

impl EventRowOpt {
    fn into_event(self) -> Option<StoredEvent> {
        Some(StoredEvent {
            id: self.id?,
            org_id: self.org_id?,
            occurred_at: self.occurred_at?,
            actor_kind: self.actor_kind?,
            actor_id: self.actor_id,
            actor_label: self.actor_label,
            action: self.action?,
            target_kind: self.target_kind,
            target_id: self.target_id,
            severity: self.severity?,
            changes: self.changes?,
            context: self.context?,
        })
    }
}

/// A page of the chain after `after_seq`, each link with its event if it exists.
pub async fn chain_page(
    db: &Db,
    org_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(Link, Option<StoredEvent>)>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT c.seq, c.event_id AS link_event_id, c.hash, {COLS}
         FROM audit_chain c LEFT JOIN audit_events e ON e.id = c.event_id AND e.org_id = c.org_id
         WHERE c.org_id = $1 AND c.seq > $2 ORDER BY c.seq LIMIT CAST($3 AS BIGINT)"
    ));
    let rows: Vec<ChainedRow> = on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(after_seq).bind(limit).fetch_all(c).await)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let ev = r.e.into_event();
            (
                Link {
                    seq: r.seq,
                    event_id: r.link_event_id,
                    hash: r.hash,
                },
                ev,
            )
        })
        .collect())
}

/// Events of the organization neither chained nor waiting to be: inserted
/// behind Muster's back.
pub async fn unchained(db: &Db, org_id: &str) -> Result<Vec<String>> {
    Ok(on_db!(db, c => sqlx::query_scalar(
        "SELECT e.id FROM audit_events e
         WHERE e.org_id = $1
           AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.event_id = e.id)
           AND NOT EXISTS (SELECT 1 FROM audit_pending p WHERE p.event_id = e.id)
         ORDER BY e.id")
        .bind(org_id).fetch_all(c).await)?)
}

/// The recorded head, to check that the chain was not cut short at its end.
pub async fn head(db: &Db, org_id: &str) -> Result<Option<(i64, String)>> {
    Ok(
        on_db!(db, c => sqlx::query_as("SELECT seq, hash FROM audit_heads WHERE org_id = $1")
        .bind(org_id).fetch_optional(c).await)?,
    )
}
