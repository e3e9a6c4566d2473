//! One batch of checked lines matched against the organization and written:
//! new users through the one creation path (`users::new_user_parts` and the
//! store's batch insert, as SCIM Bulk does), existing ones updated in place.
//! A line is matched by externalId, then by email (issue 9); a line that
//! changes nothing writes nothing, which is what makes a second run a no-op.

use super::line::{Candidate, RowError};
use crate::audit::{self, Event};
use crate::caller::OrgRef;
use crate::error::conflict;
use crate::users::{USER_CONFLICTS, created, new_user_parts};
use crate::{App, AppError, Caller, Result};
use muster_core::users::{CreationSource, ManagedBy, Profile};
use muster_core::{
    InvitationId, LifecycleEvent, OutboxEmailId, RoleAssignmentId, UserId, UserState,
};
use muster_store::invitations::NewInvitation;
use muster_store::outbox::OutboxRow;
use muster_store::roles::AssignmentRow;
use muster_store::users::{Match, NewUser, UserRow};
use serde_json::{Value, json};

/// What a batch did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub errors: Vec<RowError>,
    /// Users written before the manager they name: (line, user id, reference).
    pub pending: Vec<(i64, String, String)>,
}

pub(super) struct Ctx<'a> {
    pub app: &'a App,
    pub caller: &'a Caller,
    pub org: &'a OrgRef,
    /// Named in every audit event the import writes.
    pub run: Value,
    pub dry_run: bool,
    /// `--invite`: new users start `invited`, each with an invitation and
    /// its email, valid this long (ms).
    pub invite_for: Option<i64>,
    /// Managers already found, by how the file names them: an HR export
    /// names the same few managers on many rows.
    pub managers: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// A user the line would change, and how.
struct Change {
    line: i64,
    id: String,
    version: i64,
    after: UserRow,
    add_roles: Vec<String>,
    /// `active` in the file differs from the user's state.
    lifecycle: Option<LifecycleEvent>,
}

pub(super) async fn batch(ctx: &Ctx<'_>, cands: Vec<Candidate>) -> Result<Outcome> {
    let mut out = Outcome::default();
    let ext_ids: Vec<&str> = cands
        .iter()
        .filter_map(|c| c.profile.external_id.as_deref())
        .collect();
    let keys: Vec<String> = cands.iter().map(|c| c.email.key()).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let found =
        muster_store::users::matches_many(&ctx.app.db, &ctx.org.id, &ext_ids, &key_refs).await?;
    let mut news: Vec<(Candidate, UserRow)> = Vec::new();
    let mut changes: Vec<Change> = Vec::new();
    for c in cands {
        let line = c.line;
        match plan(ctx, &found, c, &mut out).await {
            Ok(Plan::New(c, row)) => news.push((*c, *row)),
            Ok(Plan::Change(ch)) => changes.push(*ch),
            Ok(Plan::Same) => out.unchanged += 1,
            Err(e) => out.errors.push(row_error(line, e)),
        }
    }
    if ctx.dry_run {
        out.created += news.len() as u64;
        out.updated += changes.len() as u64;
        out.pending.clear();
        return Ok(out);
    }
    create(ctx, news, &mut out).await?;
    for ch in changes {
        let line = ch.line;
        match update(ctx, ch).await {
            Ok(true) => out.updated += 1,
            Ok(false) => out.unchanged += 1,
            Err(e) => out.errors.push(row_error(line, e)),
        }
    }
    Ok(out)
}

enum Plan {
    New(Box<Candidate>, Box<UserRow>),
    Change(Box<Change>),
    Same,
}

async fn plan(ctx: &Ctx<'_>, found: &[Match], c: Candidate, out: &mut Outcome) -> Result<Plan> {
    let by_ext = c.profile.external_id.as_deref().and_then(|x| {
        found
            .iter()
            .find(|m| m.by_external_id && m.row.external_id.as_deref() == Some(x))
    });
    let key = c.email.key();
    let by_email = found
        .iter()
        .find(|m| !m.by_external_id && m.row.email.to_lowercase() == key);
    if let (Some(x), Some(e)) = (by_ext, by_email)
        && x.row.id != e.row.id
    {
        return Err(AppError::invalid(
            "email",
            "another user already has this address (not the one with this externalId)",
        ));
    }
    let Some(existing) = by_ext.or(by_email) else {
        let mut row = new_row(ctx, &c);
        if let Some(r) = &c.manager {
            match manager_id(ctx, r).await? {
                Some(id) => set_manager(&mut row, Some(id)),
                None => out.pending.push((c.line, row.id.clone(), r.clone())),
            }
        }
        return Ok(Plan::New(Box::new(c), Box::new(row)));
    };
    let u = &existing.row;
    if u.managed_by == ManagedBy::Scim.as_str() {
        return Err(AppError::Refused(
            "this user is managed by the organization's IdP over SCIM: change it there".into(),
        ));
    }
    let before: Profile = serde_json::from_str(&u.profile).unwrap_or_default();
    let mut profile = merge(&before, &c.profile, &c.covers);
    let covers_manager = c.covers.iter().any(|k| k == "enterprise.manager");
    profile.enterprise.manager = before.enterprise.manager.clone();
    if covers_manager {
        match &c.manager {
            None => profile.enterprise.manager = None,
            Some(r) => match manager_id(ctx, r).await? {
                Some(id) if id != u.id => profile.enterprise.manager = Some(id),
                Some(_) => {
                    return Err(AppError::invalid(
                        "manager",
                        "a user cannot be their own manager",
                    ));
                }
                None => out.pending.push((c.line, u.id.clone(), r.clone())),
            },
        }
    }
    let mut after = u.clone();
    after.user_name = c.user_name.clone().unwrap_or_else(|| u.user_name.clone());
    if after.email != c.email.as_str() {
        after.email = c.email.as_str().to_owned();
        after.email_verified = false;
    }
    apply(&mut after, &profile);
    let add_roles = match &c.roles {
        None => Vec::new(),
        Some(keys) => {
            let held =
                muster_store::roles::assignments(&ctx.app.db, &ctx.org.id, Some(&u.id), None)
                    .await?;
            let mut add = Vec::new();
            for k in keys {
                let role = crate::roles::resolve(ctx.app, &ctx.org.id, k)
                    .await?
                    .ok_or_else(|| {
                        AppError::invalid("roles", format!("no role '{k}' in this organization"))
                    })?;
                if !held
                    .iter()
                    .any(|a| a.role_id == role.id && a.scope_kind == "organization")
                {
                    add.push(k.clone());
                }
            }
            add
        }
    };
    let lifecycle = lifecycle_for(c.active, &u.state);
    let edits = !(after.user_name == u.user_name
        && after.email == u.email
        && profile == before
        && add_roles.is_empty());
    if !edits && lifecycle.is_none() {
        return Ok(Plan::Same);
    }
    Ok(Plan::Change(Box::new(Change {
        line: c.line,
        id: u.id.clone(),
        version: u.version,
        after,
        add_roles,
        lifecycle,
    })))
}

/// The transition that makes a user's state agree with `active` in the file.
fn lifecycle_for(active: Option<bool>, state: &str) -> Option<LifecycleEvent> {
    let deactivated = state == UserState::Deactivated.as_str();
    match active {
        Some(false) if !deactivated => Some(LifecycleEvent::Deactivate),
        Some(true) if deactivated => Some(LifecycleEvent::Reactivate),
        _ => None,
    }
}

/// The existing profile with the keys the line covers taken from the line.
fn merge(before: &Profile, line: &Profile, covers: &[String]) -> Profile {
    let (Ok(Value::Object(mut b)), Ok(Value::Object(n))) =
        (serde_json::to_value(before), serde_json::to_value(line))
    else {
        return before.clone();
    };
    for k in covers {
        match k.split_once('.') {
            Some((outer, inner)) => {
                let new = n.get(outer).and_then(|o| o.get(inner)).cloned();
                let slot = b.entry(outer.to_owned()).or_insert_with(|| json!({}));
                if let Value::Object(o) = slot {
                    match new {
                        Some(v) => o.insert(inner.to_owned(), v),
                        None => o.remove(inner),
                    };
                }
                if slot.as_object().is_some_and(serde_json::Map::is_empty) {
                    b.remove(outer);
                }
            }
            None => {
                match n.get(k.as_str()) {
                    Some(v) => b.insert(k.clone(), v.clone()),
                    None => b.remove(k.as_str()),
                };
            }
        }
    }
    serde_json::from_value(Value::Object(b)).unwrap_or_else(|_| before.clone())
}

/// A user id for a manager written as an id, an externalId or an email.
async fn manager_id(ctx: &Ctx<'_>, r: &str) -> Result<Option<String>> {
    if let Some(id) = ctx.managers.lock().ok().and_then(|m| m.get(r).cloned()) {
        return Ok(Some(id));
    }
    let id = find_manager(ctx.app, &ctx.org.id, r).await?;
    if let (Some(id), Ok(mut cache)) = (&id, ctx.managers.lock()) {
        // Bounded: a file where every row names another manager gains
        // nothing from a cache that grows with it.
        if cache.len() >= 10_000 {
            cache.clear();
        }
        cache.insert(r.to_owned(), id.clone());
    }
    Ok(id)
}

/// The user a manager reference names in the organization: by externalId,
/// then email, then id.
pub(super) async fn find_manager(app: &App, org_id: &str, r: &str) -> Result<Option<String>> {
    let found = muster_store::users::matches(&app.db, org_id, Some(r), &r.to_lowercase()).await?;
    if let Some(m) = found.iter().find(|m| m.by_external_id).or(found.first()) {
        return Ok(Some(m.row.id.clone()));
    }
    Ok(muster_store::users::exists_in(&app.db, org_id, r)
        .await?
        .then(|| r.to_owned()))
}

fn set_manager(row: &mut UserRow, id: Option<String>) {
    let mut p: Profile = serde_json::from_str(&row.profile).unwrap_or_default();
    p.enterprise.manager = id;
    apply(row, &p);
}

/// Writes a profile into a row, with the columns that mirror it.
fn apply(row: &mut UserRow, p: &Profile) {
    row.display_name = p.display_name.clone();
    row.given_name = p.given_name.clone();
    row.family_name = p.family_name.clone();
    row.external_id = p.external_id.clone();
    row.profile = serde_json::to_string(p).unwrap_or_else(|_| "{}".into());
}

fn new_row(ctx: &Ctx<'_>, c: &Candidate) -> UserRow {
    let now = ctx.app.now_ms();
    let mut row = UserRow {
        id: UserId::new().to_string(),
        org_id: ctx.org.id.clone(),
        user_name: c
            .user_name
            .clone()
            .unwrap_or_else(|| c.email.as_str().to_owned()),
        email: c.email.as_str().to_owned(),
        email_verified: false,
        display_name: None,
        given_name: None,
        family_name: None,
        external_id: None,
        state: if ctx.invite_for.is_some() {
            UserState::Invited
        } else {
            UserState::Provisioned
        }
        .as_str()
        .into(),
        source: CreationSource::Import.as_str().into(),
        managed_by: ManagedBy::Local.as_str().into(),
        profile: String::new(),
        password_hash: None,
        created_at: now,
        updated_at: now,
        version: 1,
        ou_id: None,
        invited_by: None,
    };
    apply(&mut row, &c.profile);
    row
}

/// New users, written together: one transaction for the batch (SQLite as one
/// multi-statement query), or a savepoint each when one of them conflicts.
async fn create(ctx: &Ctx<'_>, news: Vec<(Candidate, UserRow)>, out: &mut Outcome) -> Result<()> {
    let mut parts = Vec::with_capacity(news.len());
    let mut ready = Vec::with_capacity(news.len());
    // `active: false` in the file: created, then deactivated.
    let mut inactive: Vec<String> = Vec::new();
    for (c, row) in news {
        if c.active == Some(false) {
            inactive.push(row.id.clone());
        }
        let keys = c.roles.clone().unwrap_or_else(|| vec!["member".to_owned()]);
        let details = [("import", json!({ "run": ctx.run, "line": c.line }))];
        match new_user_parts(ctx.app, ctx.caller, ctx.org, &row, &keys, &details).await {
            Ok(p) => {
                parts.push(p);
                ready.push((c.line, row));
            }
            Err(e) => {
                out.pending.retain(|p| p.1 != row.id);
                out.errors.push(row_error(c.line, e));
            }
        }
    }
    let invitations: Vec<Option<NewInvitation>> = ready
        .iter()
        .map(|(_, row)| {
            ctx.invite_for.map(|valid| {
                let id = InvitationId::new().to_string();
                NewInvitation {
                    id: id.clone(),
                    expires_at: row.created_at + valid,
                    email: OutboxRow {
                        id: OutboxEmailId::new().to_string(),
                        org_id: row.org_id.clone(),
                        user_id: row.id.clone(),
                        kind: "invitation".into(),
                        subject_id: id,
                        to_address: row.email.clone(),
                        created_at: row.created_at,
                        attempts: 0,
                        next_attempt_at: row.created_at,
                        sent_at: None,
                        last_error: None,
                    },
                }
            })
        })
        .collect();
    let rows: Vec<NewUser<'_>> = ready
        .iter()
        .zip(&parts)
        .zip(&invitations)
        .map(
            |(((_, row), (assignments, event, audit_key)), inv)| NewUser {
                row,
                assignments,
                event,
                idp_values: None,
                audit_key: Some(audit_key),
                invitation: inv.as_ref(),
            },
        )
        .collect();
    // All at once when nothing conflicts (the usual case); otherwise a
    // savepoint each says which rows failed.
    let at_once = muster_store::users::insert_all(&ctx.app.db, &rows)
        .await
        .is_ok();
    let results: Vec<muster_store::Result<()>> = if at_once {
        rows.iter().map(|_| Ok(())).collect()
    } else {
        muster_store::users::insert_many(&ctx.app.db, &rows).await?
    };
    let mut n = 0;
    for ((line, row), r) in ready.iter().zip(results) {
        match r {
            Ok(()) => n += 1,
            Err(e) => {
                out.pending.retain(|p| p.1 != row.id);
                out.errors
                    .push(row_error(*line, conflict(e, USER_CONFLICTS)));
            }
        }
    }
    out.created += n;
    created(ctx.app, n);
    for (line, row) in &ready {
        if inactive.contains(&row.id) && !out.errors.iter().any(|e| e.line == *line) {
            let r = crate::users::transition(
                ctx.app,
                ctx.caller,
                &ctx.org.slug,
                &row.id,
                LifecycleEvent::Deactivate,
            )
            .await;
            if let Err(e) = r {
                out.errors.push(row_error(*line, e));
            }
        }
    }
    Ok(())
}

/// One existing user changed, with its audit event; `false` when it turns
/// out to be as the line says already.
async fn update(ctx: &Ctx<'_>, ch: Change) -> Result<bool> {
    let app = ctx.app;
    let mut tx = app.db.begin().await?;
    let before = muster_store::users::get_for_update(&mut tx, &ctx.org.id, &ch.id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    if before.version != ch.version {
        return Err(AppError::Conflict {
            field: "version",
            message: "the user changed while the import ran; run the import again".into(),
        });
    }
    let mut after = ch.after;
    after.updated_at = app.now_ms();
    let mut ev = Event::new(&ctx.org.id, "user.updated").target("user", &ch.id);
    if after.email != before.email {
        ev = ev.change("email", &before.email, &after.email);
    }
    if after.user_name != before.user_name {
        ev = ev.change("user_name", &before.user_name, &after.user_name);
    }
    ev = crate::users::profile_changes(
        ev,
        &serde_json::from_str(&before.profile).unwrap_or(Value::Null),
        &serde_json::from_str(&after.profile).unwrap_or(Value::Null),
    );
    let mut granted = Vec::new();
    for key in &ch.add_roles {
        let role = crate::roles::resolve(app, &ctx.org.id, key)
            .await?
            .ok_or_else(|| {
                AppError::invalid("roles", format!("no role '{key}' in this organization"))
            })?;
        crate::roles::check_can_grant(ctx.caller, &ctx.org.id, &role)?;
        muster_store::roles::assign(
            &mut tx,
            &AssignmentRow {
                id: RoleAssignmentId::new().to_string(),
                org_id: ctx.org.id.clone(),
                role_id: role.id.clone(),
                role_key: role.role_key.clone(),
                user_id: Some(ch.id.clone()),
                group_id: None,
                scope_kind: "organization".into(),
                scope_id: None,
                created_at: after.updated_at,
            },
        )
        .await?;
        granted.push(role.role_key);
    }
    if !granted.is_empty() {
        ev = ev.detail("roles_granted", &granted);
    }
    let edited = !ev.changes.is_empty();
    if edited {
        ev = ev.detail("import", json!({ "run": ctx.run, "line": ch.line }));
        muster_store::users::update(&mut tx, &after)
            .await
            .map_err(|e| conflict(e, USER_CONFLICTS))?;
        audit::record(app, &mut tx, ctx.caller, ev).await?;
        tx.commit().await?;
    } else {
        drop(tx);
    }
    // Deactivation and reactivation go through the one lifecycle path, which
    // ends sessions and tokens and writes its own event.
    if let Some(event) = ch.lifecycle {
        crate::users::transition(app, ctx.caller, &ctx.org.slug, &ch.id, event).await?;
        return Ok(true);
    }
    Ok(edited)
}

/// Sets the manager of a user written before its manager's line.
pub(super) async fn set_pending_manager(
    ctx: &Ctx<'_>,
    line: i64,
    user_id: &str,
    r: &str,
) -> Result<()> {
    let Some(mid) = manager_id(ctx, r).await? else {
        return Err(AppError::invalid(
            "manager",
            format!(
                "no user '{r}' was found once the file was done; the user was written without a manager"
            ),
        ));
    };
    let app = ctx.app;
    let mut tx = app.db.begin().await?;
    let Some(mut row) = muster_store::users::get_for_update(&mut tx, &ctx.org.id, user_id).await?
    else {
        return Ok(());
    };
    let mut p: Profile = serde_json::from_str(&row.profile).unwrap_or_default();
    if p.enterprise.manager.as_deref() == Some(mid.as_str()) || mid == user_id {
        return Ok(());
    }
    let before = p.enterprise.manager.clone();
    p.enterprise.manager = Some(mid.clone());
    apply(&mut row, &p);
    row.updated_at = app.now_ms();
    muster_store::users::update(&mut tx, &row).await?;
    let ev = Event::new(&ctx.org.id, "user.updated")
        .target("user", user_id)
        .change("profile.enterprise.manager", before, &mid)
        .detail("import", json!({ "run": ctx.run, "line": line }));
    audit::record(app, &mut tx, ctx.caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// A use-case error as a line of the report.
pub(super) fn row_error(line: i64, e: AppError) -> RowError {
    match e {
        AppError::Invalid { field, message } => {
            RowError::new(line, field.unwrap_or_default(), message)
        }
        AppError::Conflict { field, message } => RowError::new(line, field, message),
        AppError::Refused(m) => RowError::new(line, "", m),
        AppError::Scim(s) => RowError::new(line, "", s.detail),
        AppError::Internal(e) => {
            tracing::warn!(error = %e, line, "an import line could not be written");
            RowError::new(line, "", "could not be written (see the log)")
        }
        other => RowError::new(line, "", other.to_string()),
    }
}
