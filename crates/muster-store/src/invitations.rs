//! Invitations: a pending invitation holds the hash of the secret its link
//! carries. The secret is minted when the email is sent (`rotate_secret`), so
//! it never rests anywhere in clear.

use crate::{Result, Tx};

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
