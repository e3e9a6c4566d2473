//! The one access-revocation primitive. Every transition that takes access
//! away (suspend, lock, deactivate, delete — and later password and MFA reset)
//! calls `revoke_all`, from every surface, inside its own transaction: when
//! that transaction commits, no session or token of the user works any more.

use crate::{App, Result};
use muster_store::Tx;
pub use muster_store::access::Revoked;
use serde::Serialize;

/// The deprovisioning receipt an access-removing event carries: what was
/// ended, by id and by count, and when (issue 6 §1).
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    /// RFC 3339: the moment of the revoking transaction.
    pub at: String,
    pub counts: Counts,
    #[serde(flatten)]
    pub ids: Revoked,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub sessions: usize,
    pub api_tokens: usize,
    pub invitations: usize,
    pub email_tokens: usize,
    pub total: usize,
}

pub async fn revoke_all(app: &App, tx: &mut Tx, org_id: &str, user_id: &str) -> Result<Receipt> {
    let now = app.now_ms();
    let ids = muster_store::access::revoke_all(tx, org_id, user_id, now).await?;
    metrics::counter!("muster_access_revocations_total").increment(1);
    Ok(Receipt {
        at: crate::paging::rfc3339(now),
        counts: Counts {
            sessions: ids.sessions.len(),
            api_tokens: ids.api_tokens.len(),
            invitations: ids.invitations.len(),
            email_tokens: ids.email_tokens.len(),
            total: ids.total(),
        },
        ids,
    })
}
