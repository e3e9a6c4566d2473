//! `POST /Users`, one at a time or many at once (Bulk). A creation first
//! settles its special cases — re-provisioning by externalId, an existing
//! local account with the same email — through the one write path; what is
//! left is a new row, written with its role, event and IdP values.

use super::users::{
    apply_input, check_manager, hash_password, idp_values, render, scim_org, set_active,
    uniqueness, write,
};
use super::{ExistingEmail, Preconditions, policy};
use crate::audit::{self, Event};
use crate::caller::OrgRef;
use crate::error::conflict;
use crate::users::{USER_CONFLICTS, created, insert_new_user, new_user_parts};
use crate::{App, AppError, Caller, Result};
use muster_core::users::{CreationSource, ManagedBy};
use muster_core::{Permission, UserId, UserState};
use muster_scim::ScimError;
use muster_scim::resources::{canonical, parse_user};
use muster_scim::schema::Resource;
use muster_store::users::{NewUser, UserRow};
use serde_json::Value;

/// A creation once its special cases are settled.
enum Creation {
    /// Re-provisioned or linked: already written, here is the document.
    Done(Value),
    /// A new user to insert.
    New(Box<NewRow>),
}

struct NewRow {
    row: UserRow,
    /// What the IdP wrote, for drift.
    values: String,
    /// `active` as sent: `false` deactivates right after the creation.
    active: Option<bool>,
}

pub async fn create(app: &App, caller: &Caller, base: &str, body: Value) -> Result<Value> {
    let org = scim_org(app, caller, Permission::UsersWrite).await?;
    match settle(app, caller, base, &org, body).await? {
        Creation::Done(doc) => Ok(doc),
        Creation::New(n) => insert_one(app, caller, base, &org, *n).await,
    }
}

/// Many creations, as Bulk sends them: their results in order. The plain new
/// users among them share one transaction (each under its own savepoint, so a
/// conflict fails only its own operation) and one durable commit; the rest go
/// through `create`'s own paths one by one.
pub async fn create_many(
    app: &App,
    caller: &Caller,
    base: &str,
    bodies: Vec<Value>,
) -> Result<Vec<Result<Value>>> {
    let org = scim_org(app, caller, Permission::UsersWrite).await?;
    let mut out: Vec<Result<Value>> = Vec::with_capacity(bodies.len());
    let mut batch: Vec<(usize, NewRow, Vec<_>, _)> = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let settled = match settle(app, caller, base, &org, body).await {
            Ok(Creation::New(n)) if n.active != Some(false) => {
                match new_user_parts(app, caller, &org, &n.row, &member()).await {
                    Ok((assignments, event)) => {
                        batch.push((i, *n, assignments, event));
                        out.push(Err(AppError::NotFound("user"))); // filled in below
                        continue;
                    }
                    Err(e) => Err(e),
                }
            }
            Ok(Creation::New(n)) => insert_one(app, caller, base, &org, *n).await,
            Ok(Creation::Done(doc)) => Ok(doc),
            Err(e) => Err(e),
        };
        out.push(settled);
    }
    let news: Vec<NewUser<'_>> = batch
        .iter()
        .map(|(_, n, assignments, event)| NewUser {
            row: &n.row,
            assignments,
            event,
            idp_values: Some(&n.values),
        })
        .collect();
    match muster_store::users::insert_many(&app.db, &news).await {
        Ok(results) => {
            drop(news);
            let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
            for ((i, n, _, _), r) in batch.into_iter().zip(results) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = r
                        .map(|()| render(base, &n.row, None))
                        .map_err(|e| uniqueness(conflict(e, USER_CONFLICTS)));
                }
            }
            created(app, ok);
        }
        Err(e) => {
            // The shared transaction failed (a deadlock with a concurrent
            // batch, say): nothing of it was written; write them one by one.
            tracing::debug!(error = %e, "bulk creation batch retried one by one");
            drop(news);
            for (i, n, _, _) in batch {
                let r = insert_one(app, caller, base, &org, n).await;
                if let Some(slot) = out.get_mut(i) {
                    *slot = r;
                }
            }
        }
    }
    Ok(out)
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
    let state = UserState::parse(&n.row.state).unwrap_or(UserState::Provisioned);
    let id = n.row.id.clone();
    let doc = render(base, &n.row, None);
    insert_new_user(app, caller, org, n.row, &member(), Some(&n.values))
        .await
        .map_err(uniqueness)?;
    if n.active == Some(false) {
        set_active(app, caller, org, &id, state, n.active).await?;
        let row = muster_store::users::get(&app.db, &org.id, &id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        return Ok(render(base, &row, None));
    }
    Ok(doc)
}

async fn settle(
    app: &App,
    caller: &Caller,
    base: &str,
    org: &OrgRef,
    body: Value,
) -> Result<Creation> {
    let doc = canonical(Resource::User, body)?;
    let input = parse_user(&doc)?;
    check_manager(app, &org.id, None, &input).await?;
    // Re-provisioning: the IdP deleted this user earlier and the account was
    // kept; the same externalId brings it back, history and all.
    if let Some(x) = &input.profile.external_id
        && let Some(existing) = muster_store::users::by_external_id(&app.db, &org.id, x).await?
        && !muster_store::users::scim_visible(&app.db, &org.id, &existing.id).await?
    {
        let mut doc = doc.clone();
        if let Some(o) = doc.as_object_mut() {
            o.entry("active").or_insert(Value::Bool(true));
        }
        let pre = Preconditions::default();
        let action = Some("scim.user_reprovisioned");
        let v = write(
            app,
            caller,
            base,
            org,
            &existing.id,
            &pre,
            action,
            true,
            |_| Ok(doc.clone()),
        )
        .await?;
        return Ok(Creation::Done(v));
    }
    // An IdP never silently takes over a local account with the same email.
    if let Some(existing) =
        muster_store::users::by_email(&app.db, &org.id, &input.email.key()).await?
        && existing.managed_by == ManagedBy::Local.as_str()
    {
        if policy(app, &org.id).await?.existing_email == ExistingEmail::Refuse {
            let ev = Event::new(&org.id, "scim.user_refused")
                .target("user", &existing.id)
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
        let pre = Preconditions::default();
        let action = Some("scim.user_linked");
        let v = write(
            app,
            caller,
            base,
            org,
            &existing.id,
            &pre,
            action,
            true,
            |_| Ok(doc.clone()),
        )
        .await?;
        return Ok(Creation::Done(v));
    }
    let hash = hash_password(app, &org.id, &input).await?;
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
    };
    let active = input.active;
    apply_input(&mut row, input, hash, false);
    Ok(Creation::New(Box::new(NewRow {
        row,
        values: idp_values(&doc),
        active,
    })))
}
