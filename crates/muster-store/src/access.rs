//! The storage half of the one access-revocation primitive: everything that
//! lets a user in — sessions, API tokens, pending invitations, verification and
//! reset tokens — ended in the caller's transaction.

use crate::{Result, Tx};
use serde::Serialize;

/// What was revoked, by id: the deprovisioning receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub sessions: Vec<String>,
    pub api_tokens: Vec<String>,
    pub invitations: Vec<String>,
    pub email_tokens: Vec<String>,
}

impl Revoked {
    pub fn total(&self) -> usize {
        self.sessions.len()
            + self.api_tokens.len()
            + self.invitations.len()
            + self.email_tokens.len()
    }
}

pub async fn revoke_all(tx: &mut Tx, org_id: &str, user_id: &str, now: i64) -> Result<Revoked> {
    let mut r = Revoked {
        sessions: returning(tx, "UPDATE sessions SET revoked_at = $3 WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id", org_id, user_id, now).await?,
        api_tokens: returning(tx, "UPDATE api_tokens SET revoked_at = $3 WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id", org_id, user_id, now).await?,
        invitations: returning(tx, "UPDATE invitations SET revoked_at = $3 WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL AND accepted_at IS NULL RETURNING id", org_id, user_id, now).await?,
        email_tokens: returning(tx, "UPDATE email_tokens SET revoked_at = $3 WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL AND used_at IS NULL RETURNING id", org_id, user_id, now).await?,
    };
    // RETURNING order is unspecified; a receipt should read the same every time.
    r.sessions.sort();
    r.api_tokens.sort();
    r.invitations.sort();
    r.email_tokens.sort();
    Ok(r)
}

async fn returning(
    tx: &mut Tx,
    sql: &'static str,
    org_id: &str,
    user_id: &str,
    now: i64,
) -> Result<Vec<String>> {
    Ok(
        on_tx!(tx, c => sqlx::query_scalar(sql).bind(org_id).bind(user_id).bind(now).fetch_all(c).await)?,
    )
}

/// Counts what still grants access to a user; used by tests and the receipt check.
pub async fn live_grants(tx: &mut Tx, user_id: &str) -> Result<i64> {
    Ok(on_tx!(tx, c => sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL)
              + (SELECT COUNT(*) FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL)
              + (SELECT COUNT(*) FROM invitations WHERE user_id = $1 AND revoked_at IS NULL AND accepted_at IS NULL)
              + (SELECT COUNT(*) FROM email_tokens WHERE user_id = $1 AND revoked_at IS NULL AND used_at IS NULL)")
        .bind(user_id).fetch_one(c).await)?)
}

/// A bare grant row of each kind, for the onboarding work to build on and for
/// tests of the primitive. `kind` is one of the four tables above.
pub async fn insert_grant(
    tx: &mut Tx,
    kind: GrantKind,
    id: &str,
    org_id: &str,
    user_id: &str,
    now: i64,
) -> Result<()> {
    let sql = match kind {
        GrantKind::Session => {
            "INSERT INTO sessions (id, org_id, user_id, secret_hash, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $5, $6)"
        }
        GrantKind::Invitation => {
            "INSERT INTO invitations (id, org_id, user_id, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)"
        }
        GrantKind::EmailToken => {
            "INSERT INTO email_tokens (id, org_id, user_id, purpose, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, 'verify_email', $4, $5, $6)"
        }
    };
    on_tx!(tx, c => sqlx::query(sql).bind(id).bind(org_id).bind(user_id).bind(format!("unused:{id}"))
        .bind(now).bind(now + 86_400_000).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub enum GrantKind {
    Session,
    Invitation,
    EmailToken,
}
