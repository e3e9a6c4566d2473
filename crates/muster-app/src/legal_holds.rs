//! Legal holds (issue 6 §4): a user on hold cannot be deleted — not by an
//! admin, not by the IdP's DELETE under a hard-delete SCIM policy, not by the
//! scheduler's grace period — until the hold is lifted. Deactivation is still
//! allowed: a hold keeps the record, not the access.

use crate::audit::{self, Event};
use crate::caller::org_with;
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;
use muster_store::erasure::Hold;
use serde::{Deserialize, Serialize};

/// The hold on a user, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LegalHold {
    pub held: bool,
    /// RFC 3339, when `held`.
    pub since: Option<String>,
    pub reason: Option<String>,
}

impl From<Option<Hold>> for LegalHold {
    fn from(h: Option<Hold>) -> Self {
        match h {
            Some(h) => Self {
                held: true,
                since: Some(crate::paging::rfc3339(h.since)),
                reason: Some(h.reason),
            },
            None => Self {
                held: false,
                since: None,
                reason: None,
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceHold {
    /// Why, for the record (a case or matter reference): 1 to 500 characters.
    pub reason: String,
}

pub async fn get(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<LegalHold> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    muster_store::users::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    Ok(muster_store::erasure::read_legal_hold(&app.db, &org.id, id)
        .await?
        .into())
}

/// Places a hold (or changes its reason); lifts it with `None`.
pub async fn set(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
    place: Option<PlaceHold>,
) -> Result<LegalHold> {
    let org = org_with(app, caller, org_slug, Permission::UsersLifecycle).await?;
    let reason = place.map(|p| p.reason.trim().to_owned());
    if let Some(r) = &reason
        && (r.is_empty() || r.chars().count() > 500)
    {
        return Err(AppError::invalid(
            "reason",
            "say why the account is held, in 1 to 500 characters",
        ));
    }
    let mut tx = app.db.begin().await?;
    exists(&mut tx, &org.id, id).await?;
    let before = muster_store::erasure::legal_hold(&mut tx, &org.id, id).await?;
    let after = reason.map(|reason| Hold {
        // Re-stating a hold keeps when it began.
        since: before.as_ref().map_or_else(|| app.now_ms(), |b| b.since),
        reason,
    });
    if before == after {
        tx.commit().await?;
        return Ok(after.into());
    }
    muster_store::erasure::set_legal_hold(&mut tx, &org.id, id, after.as_ref()).await?;
    let action = if after.is_some() {
        "user.legal_hold_placed"
    } else {
        "user.legal_hold_lifted"
    };
    let ev = Event::new(&org.id, action)
        .target("user", id)
        .security()
        .change(
            "legal_hold",
            before.as_ref().map(|h| &h.reason),
            after.as_ref().map(|h| &h.reason),
        );
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(after.into())
}

async fn exists(tx: &mut muster_store::Tx, org_id: &str, id: &str) -> Result<()> {
    muster_store::users::get_for_update(tx, org_id, id)
        .await?
        .map(|_| ())
        .ok_or(AppError::NotFound("user"))
}
