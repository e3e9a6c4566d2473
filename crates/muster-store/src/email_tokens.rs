//! Email tokens: email verification, password reset and email change. Each
//! holds the hashes of a link secret and a 6-digit code, minted when its email
//! is sent (`mint`), so neither rests anywhere in clear.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailTokenRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    /// `verify_email`, `reset_password` or `change_email`.
    pub purpose: String,
    pub secret_hash: String,
    pub code_hash: Option<String>,
    pub attempts: i32,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The address being verified (sign-up: the account's; email change: the new one).
    pub new_email: Option<String>,
    pub sent_at: Option<i64>,
}

const COLS: &str = "id, org_id, user_id, purpose, secret_hash, code_hash, attempts, created_at, \
    expires_at, used_at, revoked_at, new_email, sent_at";

/// A token whose email is yet to be sent: unusable until `mint`. Any earlier
/// pending token of the same purpose is revoked: only the newest email works.
pub async fn insert_pending(
    tx: &mut Tx,
    id: &str,
    org_id: &str,
    user_id: &str,
    purpose: &str,
    new_email: Option<&str>,
    now: i64,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE email_tokens SET revoked_at = $3 WHERE user_id = $1 AND purpose = $2 \
         AND used_at IS NULL AND revoked_at IS NULL")
        .bind(user_id).bind(purpose).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO email_tokens (id, org_id, user_id, purpose, secret_hash, created_at, expires_at, new_email)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(id).bind(org_id).bind(user_id).bind(purpose).bind(format!("unsent:{id}"))
        .bind(now).bind(i64::MAX).bind(new_email).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Stores the hashes of the secrets the email carries and starts the
/// validity clock. `None` when the token is no longer pending.
pub async fn mint(
    tx: &mut Tx,
    id: &str,
    secret_hash: &str,
    code_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<Option<EmailTokenRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "UPDATE email_tokens SET secret_hash = $2, code_hash = $3, sent_at = $4, expires_at = $5 \
         WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL RETURNING {COLS}"
    ));
    Ok(
        on_tx!(tx, c => sqlx::query_as(sql).bind(id).bind(secret_hash).bind(code_hash)
        .bind(now).bind(expires_at).fetch_optional(c).await)?,
    )
}

pub async fn get(db: &Db, id: &str) -> Result<Option<EmailTokenRow>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM email_tokens WHERE id = $1"));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(id).fetch_optional(c).await)?)
}

/// The newest token of `purpose` for the user, whatever its state.
pub async fn latest(db: &Db, user_id: &str, purpose: &str) -> Result<Option<EmailTokenRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM email_tokens WHERE user_id = $1 AND purpose = $2 \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(user_id).bind(purpose).fetch_optional(c).await)?)
}

/// Counts a wrong code; at `max` attempts the token is spent. Returns whether
/// it is still usable.
pub async fn wrong_code(db: &Db, id: &str, max: i32, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let ok = wrong_code_in(&mut tx, id, max, now).await?;
    tx.commit().await?;
    Ok(ok)
}

/// `wrong_code` in the caller's transaction.
pub async fn wrong_code_in(tx: &mut Tx, id: &str, max: i32, now: i64) -> Result<bool> {
    let attempts: Option<i32> = on_tx!(tx, c => sqlx::query_scalar(
        "UPDATE email_tokens SET attempts = attempts + 1, \
         revoked_at = CASE WHEN attempts + 1 >= $2 THEN $3 ELSE revoked_at END \
         WHERE id = $1 RETURNING attempts")
        .bind(id).bind(max).bind(now).fetch_optional(c).await)?;
    Ok(attempts.is_some_and(|a| a < max))
}

/// Spends a token in the caller's transaction; `false` when someone spent,
/// revoked or outlived it first (two concurrent uses: exactly one wins).
pub async fn spend(tx: &mut Tx, id: &str, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE email_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2")
        .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
