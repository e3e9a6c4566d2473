//! `POST /Users`, one at a time or many at once (Bulk). A creation settles
//! its special cases — re-provisioning by externalId, an existing local
//! account with the same email — through the one write path; what is left
//! is a new row, written with its role, event and IdP values. A lone
//! creation is written as a new row first and looks for its special case
//! only when that write conflicts; Bulk reads first (a conflict would undo
//! the shared write of the documents around it).

use super::users::{
    apply_input, check_manager, hash_password, idp_values, render, scim_org, set_active,
    uniqueness, write as write_user,
};
use super::{ExistingEmail, Preconditions, policy};
use crate::audit::{self, Event};
use crate::caller::OrgRef;
use crate::error::conflict;
use crate::users::{USER_CONFLICTS, created, insert_new_user, new_user_parts};
use crate::{App, AppError, Caller, Result};
use futures::StreamExt;
use muster_core::users::{CreationSource, ManagedBy};
use muster_core::{Permission, UserId, UserState};
use muster_scim::ScimError;
use muster_scim::resources::{AccessDates, canonical, parse_user};
use muster_scim::schema::Resource;
use muster_store::users::{NewUser, UserRow};
use serde_json::Value;

/// What a checked document asks for.
enum Creation {
    /// A new user to insert.
    New(Box<NewRow>),
    /// The IdP deleted this user earlier and the account was kept: the same
    /// externalId brings it back, history and all.
    Reprovision { id: String, doc: Value },
    /// A local account has this email: the SCIM policy refuses or links.
    LocalEmail { id: String, doc: Value },
}

struct NewRow {
    row: UserRow,
    /// What the IdP wrote, for drift.
    values: String,
    /// `active` as sent: `false` deactivates right after the creation.
    active: Option<bool>,
    /// Start and end dates as sent, checked: scheduled right after the
    /// creation.
    dates: AccessDates,
}

pub async fn create(app: &App, caller: &Caller, base: &str, body: Value) -> Result<Value> {
    let org = scim_org(app, caller, Permission::UsersWrite).await?;
    // Most creations are plain new users, written without first reading for
    // the special cases: each of those collides with a unique index (a kept
    // user's externalId, a local account's email), so only a conflict sends
    // the document through the read that tells them apart. The conflicting
    // statement wrote nothing.
    if let Creation::New(n) = check(app, &org, body.clone(), Special::Later).await? {
        let doc = render(base, &n.row, None, AccessDates::default());
        match write_new(app, caller, &org, &n).await {
            Ok(()) => return finish(app, caller, base, &org, *n, doc).await,
            Err(AppError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    create_checked(app, caller, base, &org, body).await
}

/// `create` for a document that may be a special case: read first.
async fn create_checked(
    app: &App,
    caller: &Caller,
    base: &str,
    org: &OrgRef,
    body: Value,
) -> Result<Value> {
    let pre = Preconditions::default();
    match check(app, org, body, Special::Read).await? {
        Creation::New(n) => insert_one(app, caller, base, org, *n).await,
        Creation::Reprovision { id, doc } => {
            let action = Some("scim.user_reprovisioned");
            write_user(app, caller, base, org, &id, &pre, action, true, |current| {
                let mut d = doc.clone();
                super::dates::keep_if_absent(&current, &mut d);
                Ok(d)
            })
            .await
        }
        Creation::LocalEmail { id, doc } => {
            if policy(app, &org.id).await?.existing_email == ExistingEmail::Refuse {
                let ev = Event::new(&org.id, "scim.user_refused")
                    .target("user", &id)
                    .detail(
                        "reason",
                        "a local account has this email; the SCIM policy refuses to link it",
                    );
                let mut tx = app.db.begin().await?;
                audit::record(app, &mut tx, caller, ev).await?;
                tx.commit().await?;
                return Err(ScimError::uniqueness(
                    "a local account has this email; an administrator must link it or change the SCIM policy",
                )
                .into());
            }
            let action = Some("scim.user_linked");
            write_user(app, caller, base, org, &id, &pre, action, true, |current| {
                let mut d = doc.clone();
                super::dates::keep_if_absent(&current, &mut d);
                Ok(d)
            })
            .await
        }
    }
}

/// Many creations, as Bulk sends them: their results in order. The plain new
/// users among them share one transaction (each under its own savepoint, so a
/// conflict fails only its own operation) and one durable commit.
///
/// Checking the documents only reads, so it runs several at a time. Anything
/// other than a plain new user (re-provisioning, linking, `active:false`)
/// writes: the new users before it are written first, it then goes through
/// `create` on its own, and the documents after it are checked again, so the
/// outcome is what one-by-one creation in request order gives.
pub async fn create_many(
    app: &App,
    caller: &Caller,
    base: &str,
    bodies: Vec<Value>,
) -> Result<Vec<Result<Value>>> {
    let org = scim_org(app, caller, Permission::UsersWrite).await?;
    let mut out: Vec<Option<Result<Value>>> = bodies.iter().map(|_| None).collect();
    let mut from = 0;
    while from < bodies.len() {
        let rest: Vec<Value> = bodies.get(from..).unwrap_or_default().to_vec();
        let org_ref = &org;
        let checked: Vec<Result<Creation>> = futures::stream::iter(
            rest.into_iter()
                .map(|b| check(app, org_ref, b, Special::Read)),
        )
        .buffered(CHECK_CONCURRENCY)
        .collect()
        .await;
        let mut batch: Vec<(usize, NewRow)> = Vec::new();
        let mut special = None;
        for (k, c) in checked.into_iter().enumerate() {
            let i = from + k;
            match c {
                Ok(Creation::New(n))
                    if n.active != Some(false) && n.dates == AccessDates::default() =>
                {
                    batch.push((i, *n))
                }
                Ok(_) => {
                    special = Some(i);
                    break;
                }
                Err(e) => {
                    if let Some(slot) = out.get_mut(i) {
                        *slot = Some(Err(e));
                    }
                }
            }
        }
        insert_batch(app, caller, base, &org, batch, &mut out).await;
        match special {
            Some(i) => {
                let body = bodies.get(i).cloned().unwrap_or(Value::Null);
                let r = create_checked(app, caller, base, &org, body).await;
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(r);
                }
                from = i + 1;
            }
            None => from = bodies.len(),
        }
    }
    Ok(out
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(AppError::NotFound("user"))))
        .collect())
}

/// How many documents of a Bulk request are checked at once.
const CHECK_CONCURRENCY: usize = 8;

/// Writes checked new users in one transaction and puts each outcome in its
/// slot of `out`.
async fn insert_batch(
    app: &App,
    caller: &Caller,
    base: &str,
    org: &OrgRef,
    batch: Vec<(usize, NewRow)>,
    out: &mut [Option<Result<Value>>],
) {
    let mut parts = Vec::with_capacity(batch.len());
    let mut ready = Vec::with_capacity(batch.len());
    for (i, n) in batch {
        match new_user_parts(app, caller, org, &n.row, &member(), &[]).await {
            Ok(p) => {
                parts.push(p);
                ready.push((i, n));
            }
            Err(e) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(Err(e));
                }
            }
        }
    }
    let news: Vec<NewUser<'_>> = ready
        .iter()
        .zip(&parts)
        .map(|((_, n), (assignments, event, audit_key))| NewUser {
            row: &n.row,
            assignments,
            event,
            idp_values: Some(&n.values),
            audit_key: Some(audit_key),
            invitation: None,
        })
        .collect();
    // The whole batch goes at once when nothing in it conflicts (the usual
    // case: one multi-statement transaction on SQLite, one statement writing
    // every table on PostgreSQL); otherwise one savepoint per user says which
    // failed.
    let all_at_once = muster_store::users::insert_all(&app.db, &news)
        .await
        .is_ok();
    let written = if all_at_once {
        Ok(news.iter().map(|_| Ok(())).collect())
    } else {
        muster_store::users::insert_many(&app.db, &news).await
    };
    drop(news);
    match written {
        Ok(results) => {
            let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
            for ((i, n), r) in ready.into_iter().zip(results) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(
                        r.map(|()| render(base, &n.row, None, AccessDates::default()))
                            .map_err(|e| uniqueness(conflict(e, USER_CONFLICTS))),
                    );
                }
            }
            created(app, ok);
        }
        Err(e) => {
            // The shared transaction failed (a deadlock with a concurrent
            // writer, say): nothing of it was written; write them one by one.
            tracing::debug!(error = %e, "bulk creation batch retried one by one");
            for (i, n) in ready {
                let r = insert_one(app, caller, base, org, n).await;
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(r);
                }
            }
        }
    }
}

fn member() -> Vec<String> {
    vec!["member".to_owned()]
}

async fn insert_one(
    app: &App,
    caller: &Caller,
    base: &str,
    org: &OrgRef,
    n: NewRow,
) -> Result<Value> {
    let doc = render(base, &n.row, None, AccessDates::default());
    write_new(app, caller, org, &n).await.map_err(uniqueness)?;
    finish(app, caller, base, org, n, doc).await
}

/// Writes the new user with its role and event; a unique value taken is the
/// store's `Conflict`, as is.
async fn write_new(app: &App, caller: &Caller, org: &OrgRef, n: &NewRow) -> Result<()> {
    insert_new_user(
        app,
        caller,
        org,
        n.row.clone(),
        &member(),
        Some(&n.values),
        None,
    )
    .await?;
    Ok(())
}

/// What follows a new user's write: `active:false` and dates as sent, each
/// its own audited change. `doc` is the user as written.
async fn finish(
    app: &App,
    caller: &Caller,
    base: &str,
    org: &OrgRef,
    n: NewRow,
    doc: Value,
) -> Result<Value> {
    if n.active != Some(false) && n.dates == AccessDates::default() {
        return Ok(doc);
    }
    let state = UserState::parse(&n.row.state).unwrap_or(UserState::Provisioned);
    let id = n.row.id.clone();
    set_active(app, caller, org, &id, state, n.active).await?;
    if n.dates != AccessDates::default() {
        schedule(app, caller, org, &id, n.dates).await?;
    }
    let row = muster_store::users::get(&app.db, &org.id, &id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    Ok(render(base, &row, None, n.dates))
}

/// The dates a new user was created with, as their own audited change (the
/// creation went through the group commit, which writes users only).
async fn schedule(
    app: &App,
    caller: &Caller,
    org: &OrgRef,
    id: &str,
    dates: AccessDates,
) -> Result<()> {
    let mut tx = app.db.begin().await?;
    muster_store::users::get_for_update(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    crate::scheduler::replace_dates(&mut tx, &org.id, id, dates.start, dates.end, app.now_ms())
        .await?;
    let ev = Event::new(&org.id, "user.schedule_changed")
        .target("user", id)
        .change("start", (), dates.start.map(crate::paging::rfc3339))
        .change("end", (), dates.end.map(crate::paging::rfc3339));
    audit::record(app, &mut tx, caller, ev).await?;
    Ok(tx.commit().await?)
}

/// Whether `check` looks for the users a document may be meant for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
    Read,
    /// Not yet: the caller writes the document as a new user and reads only
    /// when that conflicts (`create`).
    Later,
}

/// Checks a document and finds what it asks for. Only reads.
async fn check(app: &App, org: &OrgRef, body: Value, special: Special) -> Result<Creation> {
    let doc = canonical(Resource::User, body)?;
    let input = parse_user(&doc)?;
    check_manager(app, &org.id, None, &input).await?;
    let found = match special {
        Special::Read => {
            muster_store::users::matches(
                &app.db,
                &org.id,
                input.profile.external_id.as_deref(),
                &input.email.key(),
            )
            .await?
        }
        Special::Later => Vec::new(),
    };
    if let Some(m) = found.iter().find(|m| m.by_external_id && m.scim_hidden) {
        let mut doc = doc.clone();
        if let Some(o) = doc.as_object_mut() {
            o.entry("active").or_insert(Value::Bool(true));
        }
        return Ok(Creation::Reprovision {
            id: m.row.id.clone(),
            doc,
        });
    }
    // An IdP never silently takes over a local account with the same email.
    if let Some(m) = found
        .iter()
        .find(|m| !m.by_external_id && m.row.managed_by == ManagedBy::Local.as_str())
    {
        return Ok(Creation::LocalEmail {
            id: m.row.id.clone(),
            doc,
        });
    }
    let dates =
        super::dates::settle(app, &org.id, None, AccessDates::default(), input.dates).await?;
    let hash = hash_password(app, &org.id, None, &input).await?;
    let now = app.now_ms();
    let state = if hash.is_some() {
        UserState::Active
    } else {
        UserState::Provisioned
    };
    let mut row = UserRow {
        id: UserId::new().to_string(),
        org_id: org.id.clone(),
        user_name: String::new(),
        email: String::new(),
        email_verified: false,
        display_name: None,
        given_name: None,
        family_name: None,
        external_id: None,
        state: state.as_str().into(),
        source: CreationSource::Scim.as_str().into(),
        managed_by: ManagedBy::Scim.as_str().into(),
        profile: "{}".into(),
        password_hash: None,
        created_at: now,
        updated_at: now,
        version: 1,
        ou_id: None,
        invited_by: None,
    };
    let active = input.active;
    apply_input(&mut row, input, hash, false);
    Ok(Creation::New(Box::new(NewRow {
        row,
        values: idp_values(&doc),
        active,
        dates,
    })))
}
