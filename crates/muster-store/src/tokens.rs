//! API tokens. Only the hash of the secret is stored.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiTokenRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub name: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

const COLS: &str =
    "id, org_id, user_id, name, secret_hash, created_at, expires_at, revoked_at, last_used_at";

pub async fn insert(tx: &mut Tx, t: &ApiTokenRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO api_tokens (id, org_id, user_id, name, secret_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&t.id).bind(&t.org_id).bind(&t.user_id).bind(&t.name).bind(&t.secret_hash)
        .bind(t.created_at).bind(t.expires_at).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A token with what authentication needs to know about its user and org.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenAuthRow {
    pub id: String,
    pub org_id: String,
    pub org_slug: String,
    pub org_settings: String,
    pub user_id: String,
    pub user_email: String,
    pub user_state: String,
    pub name: String,
    pub secret_hash: String,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// Space-separated permission strings of every role the user holds now.
    pub permissions: Option<String>,
    /// OU-scoped roles: `path perms…` entries separated by `;`.
    pub scoped: Option<String>,
    /// Every field above but `last_used_at`, as one text (PostgreSQL only):
    /// equal fingerprints, equal authority.
    pub fingerprint: Option<String>,
}

/// Several tokens, each with its user and organization and the user's
/// effective permissions — everything authentication needs, in one round
/// trip for all of them (`muster_app`'s grouped token reads). The rows of the
/// tokens that exist, in no particular order.
pub async fn for_auth_many(db: &Db, ids: &[String]) -> Result<Vec<TokenAuthRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE {} SELECT * FROM auth",
        auth_ctes(db.backend(), "$1")
    ));
    Ok(match db {
        Db::Postgres(p, ..) => sqlx::query_as(sql).bind(padded(ids)).fetch_all(p).await?,
        Db::Sqlite { read, .. } => {
            let list = serde_json::to_string(ids).unwrap_or_default();
            sqlx::query_as(sql).bind(list).fetch_all(read).await?
        }
    })
}

/// The common table expressions that end in `auth`: one `TokenAuthRow` per
/// existing token whose id is in the list `ids` (a parameter: an array on
/// PostgreSQL, JSON on SQLite). A creation's statement embeds them to check
/// that nothing its caller was authorized with has changed
/// (`creations`), so both read exactly the same fingerprint.
pub(crate) fn auth_ctes(backend: crate::Backend, ids: &str) -> String {
    // `OFFSET 0` keeps PostgreSQL from pulling the inner query up into
    // `auth`, which copied the permission lookups into the fingerprint and
    // ran them twice (0.64 ms a read against 0.09, measured).
    let (tok, fingerprint, fence) = match backend {
        // The fingerprint is the row's text without `last_used_at` (which
        // changes on use, not on authority): a record's text form quotes its
        // fields and marks NULLs, so two different rows never print alike.
        crate::Backend::Postgres => (
            format!("SELECT id AS k, user_id, org_id FROM api_tokens WHERE id = ANY({ids})"),
            "ROW(a.id, a.org_id, a.org_slug, a.org_settings, a.user_id, a.user_email, \
             a.user_state, a.name, a.secret_hash, a.expires_at, a.revoked_at, a.permissions, \
             a.scoped)::text",
            " OFFSET 0",
        ),
        // SQLite reads in-process and keeps no unconfirmed callers.
        crate::Backend::Sqlite => (
            format!(
                "SELECT id AS k, user_id, org_id FROM api_tokens WHERE id IN (SELECT value FROM json_each({ids}))"
            ),
            "NULL",
            "",
        ),
    };
    let ctes = crate::roles::effective_ctes_keyed("tok");
    let effective = crate::roles::effective_columns_keyed(backend, "t.id");
    format!(
        "tok AS ({tok}), {ctes},
         auth AS (SELECT a.*, {fingerprint} AS fingerprint FROM (
            SELECT t.id, t.org_id, o.slug AS org_slug, COALESCE(ou.effective, o.settings) AS org_settings, t.user_id, u.email AS user_email, u.state AS user_state,
                   t.name, t.secret_hash, t.expires_at, t.revoked_at, t.last_used_at, {effective}
            FROM tok JOIN api_tokens t ON t.id = tok.k JOIN users u ON u.id = t.user_id JOIN orgs o ON o.id = t.org_id
                 LEFT JOIN org_units ou ON ou.id = u.ou_id{fence}) a)"
    )
}

/// `ids` padded to `PADDED` with ids that match nothing: planned for its
/// actual length, a short list looks cheaper than the generic plan, so
/// PostgreSQL would plan this 20-relation statement afresh on every read
/// (1–3 ms, measured); at a fixed length it settles on the generic plan
/// (planning 0.02 ms).
pub(crate) fn padded(ids: &[String]) -> Vec<&str> {
    let mut padded: Vec<&str> = ids.iter().map(String::as_str).collect();
    padded.resize(padded.len().max(PADDED), "");
    padded
}

/// What a request was authorized with: its token and the fingerprint of the
/// token's authentication row as read (`TokenAuthRow::fingerprint`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Authority {
    pub token_id: String,
    pub fingerprint: String,
}

/// The length PostgreSQL's token reads are padded to; callers ask for at
/// most this many tokens at once.
pub const PADDED: usize = 64;

pub async fn get_in(tx: &mut Tx, org_id: &str, id: &str) -> Result<Option<ApiTokenRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM api_tokens WHERE org_id = $1 AND id = $2"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

pub async fn list(db: &Db, org_id: &str, user_id: Option<&str>) -> Result<Vec<ApiTokenRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM api_tokens WHERE org_id = $1 AND ($2 IS NULL OR user_id = $2) ORDER BY id"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(user_id).fetch_all(c).await)?)
}

pub async fn revoke(tx: &mut Tx, org_id: &str, id: &str, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE api_tokens SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL")
        .bind(org_id).bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Records use; called at most once a minute per token, outside any request
/// transaction, so authentication stays a read.
pub async fn touch(db: &Db, id: &str, now: i64) -> Result<()> {
    match db {
        Db::Sqlite { write, .. } => {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(write)
                .await?;
        }
        Db::Postgres(p, ..) => {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(p)
                .await?;
        }
    }
    Ok(())
}
