//! Sign-in sessions (DESIGN.md §1, Sessions): only the hash of the secret is
//! stored; revocation is a timestamp, so a revoked session stays listed.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// The absolute end; the idle end is `last_seen_at` plus the policy's idle time.
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub mfa_level: i32,
    /// When `mfa_level` was last proved (sign-in or step-up).
    pub level_at: i64,
}

const COLS: &str = "id, org_id, user_id, secret_hash, created_at, last_seen_at, expires_at, revoked_at, ip, user_agent, mfa_level, level_at";

/// A session with what authentication needs about its user and organization.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionAuthRow {
    pub id: String,
    pub org_id: String,
    pub org_slug: String,
    pub org_settings: String,
    pub user_id: String,
    pub user_email: String,
    pub user_state: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub mfa_level: i32,
    pub level_at: i64,
    /// The address the session was last used from.
    pub seen_ip: Option<String>,
    /// Space-separated permission strings of every role the user holds now.
    pub permissions: Option<String>,
    /// OU-scoped roles: `path perms…` entries separated by `;`.
    pub scoped: Option<String>,
}

/// The session, its user, organization (with the settings that hold the
/// session policy) and the user's permissions now, in one round trip: the
/// whole cost of authenticating a request, and no cache that could outlive a
/// revocation.
pub async fn for_auth(db: &Db, id: &str) -> Result<Option<SessionAuthRow>> {
    let effective = crate::roles::effective_columns(db.backend());
    let ctes =
        crate::roles::effective_ctes("(SELECT user_id FROM ses)", "(SELECT org_id FROM ses)");
    let sql = sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE ses AS (SELECT user_id, org_id FROM sessions WHERE id = $1), {ctes}
         SELECT s.id, s.org_id, o.slug AS org_slug, COALESCE(ou.effective, o.settings) AS org_settings, s.user_id,
                u.email AS user_email, u.state AS user_state, s.secret_hash, s.created_at, s.last_seen_at,
                s.expires_at, s.revoked_at, s.mfa_level, s.level_at, COALESCE(s.last_ip, s.ip) AS seen_ip, {effective}
         FROM sessions s JOIN users u ON u.id = s.user_id JOIN orgs o ON o.id = s.org_id
              LEFT JOIN org_units ou ON ou.id = u.ou_id
         WHERE s.id = $1"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(id).fetch_optional(c).await)?)
}

/// A session with its whole user, for `GET /me`: the one query that answers it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionUserRow {
    pub session_id: String,
    pub secret_hash: String,
    pub session_created_at: i64,
    pub last_seen_at: i64,
    pub session_expires_at: i64,
    pub revoked_at: Option<i64>,
    pub org_settings: String,
    pub mfa_level: i32,
    pub seen_ip: Option<String>,
    #[sqlx(flatten)]
    pub user: crate::users::UserRow,
}

/// The session and its user by primary keys; no permission is computed (the
/// caller only reads its own account).
pub async fn with_user(db: &Db, id: &str) -> Result<Option<SessionUserRow>> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let user_cols = crate::users::COLS
            .split(',')
            .map(|c| format!("u.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT s.id AS session_id, s.secret_hash, s.created_at AS session_created_at, s.last_seen_at, s.expires_at AS session_expires_at,
                    s.revoked_at, COALESCE(ou.effective, o.settings) AS org_settings, s.mfa_level, COALESCE(s.last_ip, s.ip) AS seen_ip, {user_cols}
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN orgs o ON o.id = s.org_id
                  LEFT JOIN org_units ou ON ou.id = u.ou_id
             WHERE s.id = $1"
        )
    });
    let sql = sqlx::AssertSqlSafe(sql.as_str());
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(id).fetch_optional(c).await)?)
}

/// Records activity (the idle clock restarts); callers do it at most once a minute.
pub async fn touch(db: &Db, id: &str, now: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    on_tx!(tx, c => sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $2")
        .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await
}

/// The user's sessions that have not ended, newest first.
pub async fn live_for_user(
    db: &Db,
    org_id: &str,
    user_id: &str,
    now: i64,
) -> Result<Vec<SessionRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM sessions WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL \
         AND expires_at > $3 ORDER BY created_at DESC, id DESC"
    ));
    Ok(
        on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(user_id).bind(now).fetch_all(c).await)?,
    )
}

/// Ends one of the user's sessions; `false` when it was not theirs or already ended.
pub async fn revoke(tx: &mut Tx, org_id: &str, user_id: &str, id: &str, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE sessions SET revoked_at = $4 WHERE org_id = $1 AND user_id = $2 AND id = $3 AND revoked_at IS NULL")
        .bind(org_id).bind(user_id).bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Ends every session of the user but `keep` (a password change keeps the
/// session it was made from); returns the ids ended.
pub async fn revoke_others(
    tx: &mut Tx,
    org_id: &str,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
) -> Result<Vec<String>> {
    let mut ids: Vec<String> = on_tx!(tx, c => sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = $4 WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL \
         AND ($3 IS NULL OR id <> $3) RETURNING id")
        .bind(org_id).bind(user_id).bind(keep).bind(now).fetch_all(c).await)?;
    ids.sort();
    Ok(ids)
}
