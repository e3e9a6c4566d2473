//! Guests (issue 7 §5): external collaborators invited into one workspace.
//! A guest is an account of the organization whose `source` is `guest`,
//! with who invited it recorded, no organization-wide role, a limited role
//! in the workspace (`member` unless the inviter says otherwise, and never
//! more than the inviter holds there), and an end date after which the
//! scheduler deactivates it — ending every session and token, as any
//! deactivation does. Guests are not in the default workspace, and members
//! without `users.read` see their addresses masked.

use crate::audit::{self, Event};
use crate::caller::require_in_workspace;
use crate::invitations::InviteReport;
use crate::{App, AppError, Caller, Principal, Result};
use muster_core::users::CreationSource;
use muster_core::{EmailAddress, Permission, PermissionSet, RoleAssignmentId};
use muster_store::roles::AssignmentRow;
use muster_store::schedules::ScheduledRow;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestInput {
    pub email: String,
    /// The role in the workspace, key or id; default `member`.
    #[serde(default)]
    pub role: Option<String>,
    /// How long the guest keeps access: 1 to 365 days; default 30.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// Invites a guest into a workspace (`users.write` there or in the whole
/// organization). An address that already has an account is skipped, as
/// with any invitation: add such people as members instead.
pub async fn invite(
    app: &App,
    caller: &Caller,
    slug: &str,
    ws: &str,
    input: GuestInput,
) -> Result<InviteReport> {
    let org = crate::caller::org(app, caller, slug).await?;
    let ws = muster_store::workspaces::get(&app.db, &org.id, ws)
        .await?
        .ok_or(AppError::NotFound("workspace"))?;
    require_in_workspace(caller, &org.id, &ws.id, Permission::UsersWrite)?;
    if ws.is_default {
        return Err(AppError::invalid(
            "workspace",
            "guests are invited into a workspace of their own; the default one is for members",
        ));
    }
    let days = input.expires_in_days.unwrap_or(30);
    if !(1..=365).contains(&days) {
        return Err(AppError::invalid(
            "expires_in_days",
            "must be between 1 and 365",
        ));
    }
    let email =
        EmailAddress::parse(&input.email).map_err(|e| AppError::invalid("email", e.to_string()))?;
    let key = input.role.unwrap_or_else(|| "member".into());
    let role = crate::roles::resolve(app, &org.id, &key)
        .await?
        .ok_or_else(|| {
            AppError::invalid("role", format!("no role '{key}' in this organization"))
        })?;
    if !matches!(caller.principal, Principal::Operator { .. }) {
        for p in PermissionSet::from_stored(&role.permissions).iter() {
            require_in_workspace(caller, &org.id, &ws.id, p)?;
        }
    }
    let report = crate::invitations::send(
        app,
        caller,
        &org,
        vec![email],
        &[],
        &[],
        7,
        CreationSource::Guest,
    )
    .await?;
    let now = app.now_ms();
    let ends = now + i64::from(days) * 86_400_000;
    let inviter = match (caller.user_id(), caller.actor().label) {
        (Some(id), _) => id.to_owned(),
        (None, label) => format!("operator:{}", label.unwrap_or_default()),
    };
    let mut tx = app.db.begin().await?;
    for inv in &report.invited {
        // Someone already invited as a member keeps that standing: the new
        // invitation brings them into the workspace, with no end date.
        let is_guest = muster_store::users::get(&app.db, &org.id, &inv.user_id)
            .await?
            .is_some_and(|u| u.source == CreationSource::Guest.as_str());
        let held =
            muster_store::roles::assignments(&app.db, &org.id, Some(&inv.user_id), None).await?;
        if !held
            .iter()
            .any(|a| a.scope_id.as_deref() == Some(ws.id.as_str()) && a.role_id == role.id)
        {
            let a = AssignmentRow {
                id: RoleAssignmentId::new().to_string(),
                org_id: org.id.clone(),
                role_id: role.id.clone(),
                role_key: role.role_key.clone(),
                user_id: Some(inv.user_id.clone()),
                group_id: None,
                scope_kind: "workspace".into(),
                scope_id: Some(ws.id.clone()),
                created_at: now,
            };
            muster_store::roles::assign(&mut tx, &a).await?;
        }
        if !is_guest {
            continue;
        }
        muster_store::users::set_inviter(&mut tx, &org.id, &inv.user_id, &inviter).await?;
        muster_store::schedules::cancel_pending(&mut tx, &org.id, &inv.user_id, "deactivate")
            .await?;
        let end = ScheduledRow {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: org.id.clone(),
            user_id: inv.user_id.clone(),
            action: "deactivate".into(),
            due_at: ends,
            created_at: now,
            done_at: None,
            outcome: None,
        };
        muster_store::schedules::insert(&mut tx, &end).await?;
        let ev = Event::new(&org.id, "guest.invited")
            .target("user", &inv.user_id)
            .detail("workspace", &ws.id)
            .detail("role", &role.role_key)
            .detail("invited_by", &inviter)
            .detail("access_ends", crate::paging::rfc3339(ends))
            .security();
        audit::record(app, &mut tx, caller, ev).await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// `j***@example.com`: enough to tell people apart, not to write to them.
pub(crate) fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_keep_the_first_letter_and_the_domain() {
        assert_eq!(
            super::mask("jane.doe@partner.example"),
            "j***@partner.example"
        );
        assert_eq!(super::mask("é@x.example"), "é***@x.example");
        assert_eq!(super::mask("nonsense"), "***");
    }
}
