//! Users. Every query names the organization: a user id alone never reaches a row.

mod list;
pub use list::{ListQuery, list};

use crate::roles::AssignmentRow;
use crate::{Db, Result, Tx};
use muster_core::audit::StoredEvent;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub org_id: String,
    pub user_name: String,
    pub email: String,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub external_id: Option<String>,
    pub state: String,
    pub source: String,
    pub managed_by: String,
    pub profile: String,
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// The user's organizational unit; `None` is the root. Written at
    /// creation; later only through `org_units::place_user` (an update of
    /// the row leaves it alone).
    #[sqlx(default)]
    pub ou_id: Option<String>,
    /// Who invited a guest (a user id, or the operator's name); set by
    /// `set_inviter` only.
    #[sqlx(default)]
    pub invited_by: Option<String>,
}

pub(crate) const COLS: &str = "id, org_id, user_name, email, email_verified, display_name, given_name, family_name, \
    external_id, state, source, managed_by, profile, password_hash, created_at, updated_at, version, ou_id, invited_by";

/// Inserts a user; `scim_values` is what an IdP wrote (SCIM creations) and
/// `audit_key` its sealed audit key (see `erasure`), in the same row so that a
/// creation writes the row once.
pub async fn insert(
    tx: &mut Tx,
    u: &UserRow,
    scim_values: Option<&str>,
    audit_key: Option<&str>,
) -> Result<()> {
    const SQL: &str = concat!(
        "INSERT INTO users (",
        user_columns!(),
        ", scim_values, audit_key) ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
    );
    on_tx!(tx, c => bind_user!(sqlx::query(SQL), u).bind(scim_values).bind(audit_key).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A new user with its role assignments and its audit event, all or nothing.
pub async fn insert_new(
    db: &Db,
    u: &UserRow,
    assignments: &[AssignmentRow],
    event: &StoredEvent,
    idp_values: Option<&str>,
    audit_key: Option<&str>,
) -> Result<()> {
    let new = NewUser {
        row: u,
        assignments,
        event,
        idp_values,
        audit_key,
        invitation: None,
    };
    insert_all(db, std::slice::from_ref(&new)).await
}

/// New users with their role assignments and audit events, all or nothing, in
/// one transaction.
///
pub use crate::creations::{Connection, insert_checked};

/// User creation is the hottest write (sign-ups, SCIM and bulk provisioning).
/// On SQLite every statement is a hop to the connection's worker thread while
/// the single writer is held, so the whole transaction goes as one
/// multi-statement query: `BEGIN IMMEDIATE; …; COMMIT` (sqlx numbers `$N`
/// across the statements), rolled back by hand if any part fails. PostgreSQL
/// writes them with one statement, committed on its own, and a transaction
/// only when they need several (`creations`).
pub async fn insert_all(db: &Db, users: &[NewUser<'_>]) -> Result<()> {
    let one_query = users.iter().all(|u| u.invitation.is_none());
    if one_query && crate::creations::insert_pg_alone(db, users).await? {
        return Ok(());
    }
    let (Db::Sqlite { write, .. }, true) = (db, one_query) else {
        let mut tx = db.begin().await?;
        if one_query {
            crate::creations::insert_pg(&mut tx, users).await?;
        } else {
            for n in users {
                insert_parts(&mut tx, n).await?;
            }
        }
        return tx.commit().await;
    };
    let mut sql = String::from("BEGIN IMMEDIATE; ");
    let mut n = 0;
    let params = |n: &mut usize, count: usize| -> String {
        let list: Vec<String> = (*n + 1..=*n + count).map(|i| format!("${i}")).collect();
        *n += count;
        list.join(", ")
    };
    for u in users {
        sql.push_str(&format!(
            "INSERT INTO users ({}, scim_values, audit_key) VALUES ({}); ",
            user_columns!(),
            params(&mut n, 22)
        ));
        for _ in u.assignments {
            sql.push_str(&format!(
                "INSERT INTO role_assignments ({}) VALUES ({}); ",
                assignment_columns!(),
                params(&mut n, 10)
            ));
        }
        let first_event_param = n + 1;
        sql.push_str(&format!(
            "INSERT INTO audit_events ({}) VALUES ({}); ",
            event_columns!(),
            params(&mut n, 12)
        ));
        sql.push_str(&format!(
            "INSERT INTO audit_pending (event_id, org_id) VALUES (${first_event_param}, ${}); ",
            first_event_param + 1
        ));
    }
    sql.push_str("COMMIT;");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for u in users {
        q = bind_user!(q, u.row).bind(u.idp_values).bind(u.audit_key);
        for a in u.assignments {
            q = bind_assignment!(q, a);
        }
        q = bind_event!(q, u.event);
    }
    let mut conn = write.acquire().await?;
    let r = q.execute(&mut *conn).await;
    // A commit like `Tx::commit`'s, counted for the session cache the same way.
    crate::db::note_commit();
    match r {
        Ok(_) => Ok(()),
        Err(e) => {
            // A failed statement leaves the transaction open on this pooled
            // connection; close it before the connection goes back.
            if let Err(rb) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                tracing::debug!(error = %rb, "rollback after a failed user insert");
            }
            Err(e.into())
        }
    }
}

/// A new user and what is written with it (see `insert_new`).
pub struct NewUser<'a> {
    pub row: &'a UserRow,
    pub assignments: &'a [AssignmentRow],
    pub event: &'a StoredEvent,
    pub idp_values: Option<&'a str>,
    /// The new user's sealed audit key (see `erasure`).
    pub audit_key: Option<&'a str>,
    /// An invitation and its email, for a user created `invited`.
    pub invitation: Option<&'a crate::invitations::NewInvitation>,
}

async fn insert_parts(tx: &mut Tx, n: &NewUser<'_>) -> Result<()> {
    insert(tx, n.row, n.idp_values, n.audit_key).await?;
    for a in n.assignments {
        crate::roles::assign(tx, a).await?;
    }
    if let Some(inv) = n.invitation {
        crate::invitations::insert(tx, &n.row.org_id, &n.row.id, inv, n.row.created_at).await?;
    }
    crate::audit::insert(tx, n.event).await
}

/// Many new users in one transaction, in order, each under its own
/// savepoint: one that fails (a unique conflict, say) is rolled back alone and
/// reported in its slot; the rest share one durable commit (SCIM Bulk
/// provisioning). `Err` means the transaction itself failed and nothing was
/// written.
pub async fn insert_many(db: &Db, users: &[NewUser<'_>]) -> Result<Vec<Result<()>>> {
    let mut out: Vec<Result<()>> = Vec::with_capacity(users.len());
    if users.is_empty() {
        return Ok(out);
    }
    let mut tx = db.begin().await?;
    for n in users {
        exec(&mut tx, "SAVEPOINT new_user").await?;
        match insert_parts(&mut tx, n).await {
            Ok(()) => {
                exec(&mut tx, "RELEASE SAVEPOINT new_user").await?;
                out.push(Ok(()));
            }
            Err(e) => {
                exec(&mut tx, "ROLLBACK TO SAVEPOINT new_user").await?;
                exec(&mut tx, "RELEASE SAVEPOINT new_user").await?;
                out.push(Err(e));
            }
        }
    }
    tx.commit().await?;
    Ok(out)
}

async fn exec(tx: &mut Tx, sql: &'static str) -> Result<()> {
    on_tx!(tx, c => sqlx::query(sql).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<UserRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM users WHERE org_id = $1 AND id = $2"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

/// Reads a user inside a transaction, locking the row on PostgreSQL so that
/// concurrent lifecycle changes to one user are applied one after the other.
pub async fn get_for_update(tx: &mut Tx, org_id: &str, id: &str) -> Result<Option<UserRow>> {
    let lock = match tx.backend() {
        crate::Backend::Postgres => " FOR UPDATE",
        crate::Backend::Sqlite => "",
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM users WHERE org_id = $1 AND id = $2{lock}"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

pub async fn by_email(db: &Db, org_id: &str, email: &str) -> Result<Option<UserRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM users WHERE org_id = $1 AND email_key = $2"
    ));
    Ok(
        on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(email.to_lowercase()).fetch_optional(c).await)?,
    )
}

pub async fn exists_in(db: &Db, org_id: &str, id: &str) -> Result<bool> {
    let n: i64 = on_db!(db, c => sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).fetch_one(c).await)?;
    Ok(n > 0)
}

pub async fn exists(tx: &mut Tx, org_id: &str, id: &str) -> Result<bool> {
    let n: i64 = on_tx!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).fetch_one(c).await)?;
    Ok(n > 0)
}

/// Writes every editable column and bumps the version.
pub async fn update(tx: &mut Tx, u: &UserRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE users SET user_name = $3, user_name_key = $4, email = $5, email_key = $6,
            email_verified = $7, display_name = $8, given_name = $9, family_name = $10,
            external_id = $11, state = $12, managed_by = $13, profile = $14, password_hash = $15,
            updated_at = $16, version = version + 1
         WHERE org_id = $1 AND id = $2")
        .bind(&u.org_id).bind(&u.id).bind(&u.user_name).bind(u.user_name.to_lowercase())
        .bind(&u.email).bind(u.email.to_lowercase()).bind(u.email_verified)
        .bind(&u.display_name).bind(&u.given_name).bind(&u.family_name).bind(&u.external_id)
        .bind(&u.state).bind(&u.managed_by).bind(&u.profile).bind(&u.password_hash).bind(u.updated_at)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records who invited a guest, once.
pub async fn set_inviter(tx: &mut Tx, org_id: &str, id: &str, inviter: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE users SET invited_by = $3 WHERE org_id = $1 AND id = $2 AND invited_by IS NULL")
        .bind(org_id).bind(id).bind(inviter).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn set_state(tx: &mut Tx, org_id: &str, id: &str, state: &str, now: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE users SET state = $3, state_since = $4, updated_at = $4, version = version + 1 WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).bind(state).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete(tx: &mut Tx, org_id: &str, id: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM users WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// `%term%`, lower-cased, with LIKE's own wildcards escaped.
pub(crate) fn like_pattern(term: &str) -> String {
    let mut p = String::with_capacity(term.len() + 2);
    p.push('%');
    for ch in term.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// An indexed equality that narrows a SCIM filter to a handful of rows; the
/// rest of the filter is then evaluated exactly on those rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Id(String),
    UserName(String),
    ExternalId(String),
    Email(String),
}

/// Users the IdP deleted under a "deactivate" policy are kept but hidden
/// from SCIM; every SCIM read adds this condition.
/// Written as an equality so that `users_scim (org_id, scim_hidden, id)`
/// serves it in id order on both databases.
const SCIM_VISIBLE: &str = "scim_hidden = FALSE";

/// SCIM lookups: by an indexed attribute, among users SCIM can see.
pub async fn lookup(db: &Db, org_id: &str, by: &Lookup) -> Result<Vec<UserRow>> {
    let (cond, value) = match by {
        Lookup::Id(v) => ("id = $2", v.clone()),
        Lookup::UserName(v) => ("user_name_key = $2", v.to_lowercase()),
        Lookup::ExternalId(v) => ("external_id = $2", v.clone()),
        Lookup::Email(v) => ("email_key = $2", v.to_lowercase()),
    };
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM users WHERE org_id = $1 AND {cond} AND {SCIM_VISIBLE} ORDER BY id"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(value).fetch_all(c).await)?)
}

/// A user that a SCIM creation collides with, and whether SCIM sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Match {
    #[sqlx(flatten)]
    pub row: UserRow,
    pub scim_hidden: bool,
    /// Which of the two it matched on.
    pub by_external_id: bool,
}

/// The users with this externalId or this email, in one round trip: what a
/// SCIM creation must know before it creates (re-provisioning, linking).
pub async fn matches(
    db: &Db,
    org_id: &str,
    external_id: Option<&str>,
    email: &str,
) -> Result<Vec<Match>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS}, scim_hidden, TRUE AS by_external_id FROM users WHERE org_id = $1 AND external_id = $2 \
         UNION ALL \
         SELECT {COLS}, scim_hidden, FALSE AS by_external_id FROM users WHERE org_id = $1 AND email_key = $3"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql)
        .bind(org_id).bind(external_id).bind(email.to_lowercase()).fetch_all(c).await)?)
}

/// The users with any of these external ids or email keys, in one round
/// trip: what an import batch matches its rows against.
pub async fn matches_many(
    db: &Db,
    org_id: &str,
    external_ids: &[&str],
    email_keys: &[&str],
) -> Result<Vec<Match>> {
    if external_ids.is_empty() && email_keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLS}, scim_hidden, TRUE AS by_external_id FROM users WHERE org_id = $1 AND external_id IN ({}) \
         UNION ALL \
         SELECT {COLS}, scim_hidden, FALSE AS by_external_id FROM users WHERE org_id = $1 AND email_key IN ({})",
        crate::db::in_list(2, external_ids.len()),
        crate::db::in_list(2 + external_ids.len(), email_keys.len()),
    );
    on_db!(db, c => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(org_id);
        for v in external_ids.iter().chain(email_keys) {
            q = q.bind(*v);
        }
        Ok(q.fetch_all(c).await?)
    })
}

/// The emails of these users (an export names managers by address).
pub async fn emails_of(db: &Db, org_id: &str, ids: &[&str]) -> Result<Vec<(String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, email FROM users WHERE org_id = $1 AND id IN ({})",
        crate::db::in_list(2, ids.len())
    );
    on_db!(db, c => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(org_id);
        for id in ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(c).await?)
    })
}

/// How many users SCIM sees in the organization, without counting them: on
/// SQLite the count its triggers keep (migration 0003), on PostgreSQL the
/// folded count plus the changes appended since (migration 0021,
/// `scim::fold_counts`), one statement so one snapshot.
pub async fn count_scim(db: &Db, org_id: &str) -> Result<i64> {
    Ok(
        on_db!(db, c => sqlx::query_scalar(count_sql(db.backend())).bind(org_id).fetch_one(c).await)?,
    )
}

fn count_sql(b: crate::Backend) -> &'static str {
    match b {
        crate::Backend::Sqlite => {
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM scim_user_counts WHERE org_id = $1"
        }
        crate::Backend::Postgres => {
            "SELECT CAST(COALESCE((SELECT n FROM scim_user_counts WHERE org_id = $1), 0) \
                  + COALESCE((SELECT SUM(delta) FROM scim_user_count_deltas WHERE org_id = $1), 0) \
             AS BIGINT)"
        }
    }
}

/// A SCIM page of users in id order and the total it is a page of, read in one
/// snapshot so that the two agree.
pub struct ScimPage {
    pub total: i64,
    pub rows: Vec<UserRow>,
}

/// Where a SCIM page starts: a 0-based position (`startIndex`, RFC 7644
/// §3.4.2.4) or after an id (a cursor, RFC 9865).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart {
    Offset(i64),
    After(Option<String>),
}

/// One page of the users SCIM sees. A position in the second half of the
/// organization is read backwards from the end, so that no page skips more
/// than half of the index: a page near the end of a million users costs what
/// one near the start does. A cursor seeks the index directly: flat at any
/// depth. `limit` 0 reads the total only.
pub async fn scim_page(db: &Db, org_id: &str, start: &PageStart, limit: i64) -> Result<ScimPage> {
    macro_rules! run {
        ($tx:expr) => {{
            let total: i64 = sqlx::query_scalar(count_sql(db.backend()))
                .bind(org_id)
                .fetch_one(&mut *$tx)
                .await?;
            let rows = if limit <= 0 {
                Vec::new()
            } else {
                match start {
                    PageStart::After(after) => {
                        let sql = sqlx::AssertSqlSafe(format!(
                            "SELECT {COLS} FROM users WHERE org_id = $1 AND {SCIM_VISIBLE} \
                             AND id > $2 ORDER BY id LIMIT CAST($3 AS BIGINT)"
                        ));
                        sqlx::query_as(sql)
                            .bind(org_id)
                            .bind(after.as_deref().unwrap_or(""))
                            .bind(limit)
                            .fetch_all(&mut *$tx)
                            .await?
                    }
                    PageStart::Offset(off) if *off >= total => Vec::new(),
                    PageStart::Offset(off) if off.saturating_mul(2) <= total => {
                        let sql = sqlx::AssertSqlSafe(format!(
                            "SELECT {COLS} FROM users WHERE org_id = $1 AND {SCIM_VISIBLE} \
                             ORDER BY id LIMIT CAST($2 AS BIGINT) OFFSET $3"
                        ));
                        sqlx::query_as(sql)
                            .bind(org_id)
                            .bind(limit)
                            .bind(*off)
                            .fetch_all(&mut *$tx)
                            .await?
                    }
                    PageStart::Offset(off) => {
                        // Rows [off, off + limit) ascending are rows
                        // [total - off - limit, total - off) descending.
                        let end = total - off;
                        let back_off = (end - limit).max(0);
                        let sql = sqlx::AssertSqlSafe(format!(
                            "SELECT {COLS} FROM users WHERE org_id = $1 AND {SCIM_VISIBLE} \
                             ORDER BY id DESC LIMIT CAST($2 AS BIGINT) OFFSET $3"
                        ));
                        let mut rows: Vec<UserRow> = sqlx::query_as(sql)
                            .bind(org_id)
                            .bind(end - back_off)
                            .bind(back_off)
                            .fetch_all(&mut *$tx)
                            .await?;
                        rows.reverse();
                        rows
                    }
                }
            };
            ScimPage { total, rows }
        }};
    }
    match db {
        Db::Sqlite { read, .. } => {
            // A deferred transaction: its first read fixes the WAL snapshot.
            let mut tx = read.begin().await?;
            let page = run!(tx);
            tx.rollback().await?;
            Ok(page)
        }
        Db::Postgres(p, ..) => {
            let mut tx = p.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
            let page = run!(tx);
            tx.rollback().await?;
            Ok(page)
        }
    }
}

/// `update`, but only if the row is still at `version`: false when another
/// writer got there first (the caller re-reads and re-applies its change).
pub async fn update_if_version(tx: &mut Tx, u: &UserRow, version: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE users SET user_name = $3, user_name_key = $4, email = $5, email_key = $6,
            email_verified = $7, display_name = $8, given_name = $9, family_name = $10,
            external_id = $11, state = $12, managed_by = $13, profile = $14, password_hash = $15,
            updated_at = $16, version = version + 1
         WHERE org_id = $1 AND id = $2 AND version = $17")
        .bind(&u.org_id).bind(&u.id).bind(&u.user_name).bind(u.user_name.to_lowercase())
        .bind(&u.email).bind(u.email.to_lowercase()).bind(u.email_verified)
        .bind(&u.display_name).bind(&u.given_name).bind(&u.family_name).bind(&u.external_id)
        .bind(&u.state).bind(&u.managed_by).bind(&u.profile).bind(&u.password_hash).bind(u.updated_at)
        .bind(version).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
