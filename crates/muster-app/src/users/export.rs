//! The record that someone took the user list out of Muster. An export
//! carries personal data, so the audit log says who took which selection,
//! as it says who read or changed anything else.

use super::ListParams;
use crate::audit::{self, Event};
use crate::caller::org_reach;
use crate::{App, Caller, Result};
use muster_core::Permission;
use serde_json::{Map, Value, json};

/// Records `users.exported` (a security event): the users `p` selects are
/// about to be sent. Recorded before the first byte leaves (the export is
/// streamed, so its size is known only at its end); `users.read` is
/// needed, as for the reading itself.
pub async fn exported(app: &App, caller: &Caller, org_slug: &str, p: &ListParams) -> Result<()> {
    let (org, _) = org_reach(app, caller, org_slug, Permission::UsersRead).await?;
    let mut filters = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            filters.insert(k.to_owned(), v);
        }
    };
    put("q", p.search.as_ref().map(|v| json!(v)));
    put("state", p.state.as_ref().map(|v| json!(v)));
    put("org_unit", p.org_unit.as_ref().map(|v| json!(v)));
    put("source", p.source.as_ref().map(|v| json!(v)));
    put("mfa_enrolled", p.mfa_enrolled.map(|v| json!(v)));
    put("workspace", p.workspace.as_ref().map(|v| json!(v)));
    let mut tx = app.db.begin().await?;
    let ev = Event::new(&org.id, "users.exported")
        .target("organization", &org.id)
        .detail("filters", Value::Object(filters))
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}
