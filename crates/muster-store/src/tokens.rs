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
}

/// The token, its user and organization, and the user's effective
/// permissions: everything authentication needs, in one round trip.
pub async fn for_auth(db: &Db, id: &str) -> Result<Option<TokenAuthRow>> {
    let effective = crate::roles::effective_columns(db.backend());
    let ctes =
        crate::roles::effective_ctes("(SELECT user_id FROM tok)", "(SELECT org_id FROM tok)");
    let sql = sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE tok AS (SELECT user_id, org_id FROM api_tokens WHERE id = $1), {ctes}
         SELECT t.id, t.org_id, o.slug AS org_slug, COALESCE(ou.effective, o.settings) AS org_settings, t.user_id, u.email AS user_email, u.state AS user_state,
                t.name, t.secret_hash, t.expires_at, t.revoked_at, t.last_used_at, {effective}
         FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN orgs o ON o.id = t.org_id
              LEFT JOIN org_units ou ON ou.id = u.ou_id
         WHERE t.id = $1"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(id).fetch_optional(c).await)?)
}

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
        Db::Postgres(p) => {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(p)
                .await?;
        }
    }
    Ok(())
}
