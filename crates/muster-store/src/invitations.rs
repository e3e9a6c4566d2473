//! Invitations: a pending invitation holds the hash of the secret its link
//! carries. The secret is minted when the email is sent (`rotate_secret`), so
//! it never rests anywhere in clear.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub id: String,
    pub expires_at: i64,
    /// The email that sends it, written in the same transaction.
    pub email: crate::outbox::OutboxRow,
}

/// Writes an invitation for a new user, with an unusable secret until its
/// email mints one, and the email.
pub async fn insert(
    tx: &mut Tx,
    org_id: &str,
    user_id: &str,
    inv: &NewInvitation,
    now: i64,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO invitations (id, org_id, user_id, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&inv.id).bind(org_id).bind(user_id).bind(format!("unsent:{}", inv.id))
        .bind(now).bind(inv.expires_at).execute(c).await.map(|r| r.rows_affected()))?;
    crate::outbox::insert(tx, &inv.email).await
}

/// Replaces a pending invitation's secret hash; `None` when it is no longer
/// pending (accepted, revoked, expired, or its user gone). Returns its expiry.
pub async fn rotate_secret(
    tx: &mut Tx,
    id: &str,
    secret_hash: &str,
    now: i64,
) -> Result<Option<i64>> {
    Ok(on_tx!(tx, c => sqlx::query_scalar(
        "UPDATE invitations SET secret_hash = $2 WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL \
         AND expires_at > $3 RETURNING expires_at")
        .bind(id).bind(secret_hash).bind(now).fetch_optional(c).await)?)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLS: &str =
    "i.id, i.org_id, i.user_id, u.email, i.created_at, i.expires_at, i.accepted_at, i.revoked_at";

/// The organization's invitations, newest first, up to `limit`.
pub async fn list(db: &Db, org_id: &str, limit: i64) -> Result<Vec<InvitationRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM invitations i JOIN users u ON u.id = i.user_id \
         WHERE i.org_id = $1 ORDER BY i.created_at DESC, i.id DESC LIMIT CAST($2 AS BIGINT)"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(limit).fetch_all(c).await)?)
}

pub async fn get_in(tx: &mut Tx, org_id: &str, id: &str) -> Result<Option<InvitationRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM invitations i JOIN users u ON u.id = i.user_id WHERE i.org_id = $1 AND i.id = $2"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

/// The invitation whose link secret hashes to `secret_hash`.
pub async fn by_secret(db: &Db, secret_hash: &str) -> Result<Option<InvitationRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM invitations i JOIN users u ON u.id = i.user_id WHERE i.secret_hash = $1"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(secret_hash).fetch_optional(c).await)?)
}

/// Marks a pending invitation accepted; `false` when it no longer is
/// pending (two acceptances at once: exactly one wins).
pub async fn accept(tx: &mut Tx, id: &str, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE invitations SET accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2")
        .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn revoke(tx: &mut Tx, org_id: &str, id: &str, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE invitations SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL")
        .bind(org_id).bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// A pending invitation gets a new lifetime (re-sent); its old link dies when
/// the new email mints a new secret.
pub async fn renew(tx: &mut Tx, org_id: &str, id: &str, expires_at: i64, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE invitations SET expires_at = $3, secret_hash = $5 WHERE org_id = $1 AND id = $2 \
         AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $4")
        .bind(org_id).bind(id).bind(expires_at).bind(now).bind(format!("unsent:{id}"))
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
