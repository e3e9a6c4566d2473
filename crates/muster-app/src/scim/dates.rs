//! Start and end dates over SCIM (issue 6 §4): Muster's lifecycle extension
//! (`urn:muster:params:scim:schemas:extension:lifecycle:2.0:User`, attributes
//! `startDate` and `endDate`) shows a user's pending dated transitions and
//! sets them, the same rows as `PUT /api/v1/orgs/{org}/users/{id}/schedule`,
//! carried out by the same scheduler.
//!
//! What an IdP sends is settled against what is pending: an unchanged date
//! stays, a missing one is cleared, a future one is scheduled, and a past one
//! is refused — unless it is a date this user's schedule already carried out,
//! which a full-replace PUT (Okta's) sends again on every sync.

use crate::{App, Result};
use muster_scim::ScimError;
use muster_scim::resources::AccessDates;
use muster_scim::schema::LIFECYCLE;
use serde_json::Value;
use std::collections::HashMap;

const ACTIONS: [(&str, &str); 2] = [("activate", "startDate"), ("deactivate", "endDate")];

fn set(d: &mut AccessDates, action: &str, at: Option<i64>) {
    match action {
        "activate" => d.start = at,
        _ => d.end = at,
    }
}

fn get(d: &AccessDates, action: &str) -> Option<i64> {
    match action {
        "activate" => d.start,
        _ => d.end,
    }
}

/// Above this many users, their dates are read from the organization's whole
/// (short) list of pending dates rather than bound one id per parameter: a
/// filter no index serves renders up to 200,000 users at once.
const BY_ID: usize = 1000;

/// The pending dates of these users, by user id (absent: none).
pub(super) async fn pending(
    app: &App,
    org_id: &str,
    ids: &[&str],
) -> Result<HashMap<String, AccessDates>> {
    let rows = if ids.len() <= BY_ID {
        muster_store::schedules::pending_of(&app.db, org_id, ids).await?
    } else {
        muster_store::schedules::pending_in_org(&app.db, org_id).await?
    };
    let mut out: HashMap<String, AccessDates> = HashMap::new();
    for r in rows {
        set(
            out.entry(r.user_id.clone()).or_default(),
            &r.action,
            Some(r.due_at),
        );
    }
    Ok(out)
}

pub(super) async fn pending_one(app: &App, org_id: &str, id: &str) -> Result<AccessDates> {
    Ok(pending(app, org_id, &[id])
        .await?
        .remove(id)
        .unwrap_or_default())
}

/// The dates to keep pending when the IdP sends `sent` for a user whose
/// pending dates are `current` (`id` is `None` for a user not yet created).
pub(super) async fn settle(
    app: &App,
    org_id: &str,
    id: Option<&str>,
    current: AccessDates,
    sent: AccessDates,
) -> Result<AccessDates> {
    let now = app.now_ms();
    let mut out = AccessDates::default();
    let mut history = None;
    for (action, attr) in ACTIONS {
        let at = match get(&sent, action) {
            None => None,
            Some(t) if Some(t) == get(&current, action) || t > now => Some(t),
            Some(t) => {
                if history.is_none()
                    && let Some(id) = id
                {
                    history = Some(muster_store::schedules::of_user(&app.db, org_id, id).await?);
                }
                let carried_out = history
                    .iter()
                    .flatten()
                    .any(|r| r.done_at.is_some() && r.action == action && r.due_at == t);
                if !carried_out {
                    return Err(ScimError::value(format!(
                        "{LIFECYCLE}:{attr}: {} is in the past; give a future date, or leave it out",
                        crate::paging::rfc3339(t)
                    ))
                    .into());
                }
                None
            }
        };
        set(&mut out, action, at);
    }
    if let (Some(s), Some(e)) = (out.start, out.end)
        && e <= s
    {
        return Err(
            ScimError::value(format!("{LIFECYCLE}:endDate must come after startDate")).into(),
        );
    }
    Ok(out)
}

/// A full-replace document that leaves the lifecycle extension out keeps the
/// current dates: IdPs that map no dates send PUTs without it, and those must
/// not cancel dates an administrator set. Clearing takes the extension with
/// the date left out (or `null`), or a PATCH `remove`.
pub(super) fn keep_if_absent(current: &Value, doc: &mut Value) {
    if let (Some(o), Some(dates)) = (doc.as_object_mut(), current.get(LIFECYCLE))
        && !o.keys().any(|k| k.eq_ignore_ascii_case(LIFECYCLE))
    {
        o.insert(LIFECYCLE.into(), dates.clone());
    }
}
