//! The one access-revocation primitive. Every transition that takes access
//! away (suspend, lock, deactivate, delete — and later password and MFA reset)
//! calls `revoke_all`, from every surface, inside its own transaction: when
//! that transaction commits, no session or token of the user works any more.

use crate::{App, Result};
use muster_store::Tx;
pub use muster_store::access::Revoked;

pub async fn revoke_all(app: &App, tx: &mut Tx, org_id: &str, user_id: &str) -> Result<Revoked> {
    let revoked = muster_store::access::revoke_all(tx, org_id, user_id, app.now_ms()).await?;
    metrics::counter!("muster_access_revocations_total").increment(1);
    Ok(revoked)
}
