//! Webhooks (issue 6 §6): an organization's endpoints, subscribed to event
//! types, receive every matching audit event as a Standard Webhooks message
//! (`delivery`). The outbox rows are written by the database with the event
//! (migration 0013), so no path that records an event can forget them.
//!
//! Event types are audit actions (`user.deactivate`, `scim.user_deleted`);
//! a subscription names one, a category (`user.*`) or everything (`*`).

pub mod delivery;
pub mod targets;

use crate::audit::{self, Event};
use crate::caller::{OrgRef, org_with};
use crate::paging::rfc3339;
use crate::{App, AppError, Caller, Result};
use base64::Engine;
use muster_core::Permission;
use muster_store::webhooks::EndpointRow;
use rand::Rng as _;
use serde::{Deserialize, Serialize};

/// The categories of events Muster records, the first part of every type.
pub const CATEGORIES: &[&str] = &[
    "access",
    "api_token",
    "auth",
    "device",
    "email",
    "group",
    "invitation",
    "mfa",
    "org",
    "policy",
    "role",
    "scim",
    "scim_token",
    "session",
    "sso",
    "user",
    "webhook",
];

/// How long a rotated-out secret keeps signing beside the new one.
const ROTATION_OVERLAP_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why it was turned off (by an admin, or after persistent failure).
    pub disabled_reason: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<String>,
    /// Until when the previous secret still signs, after a rotation.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub previous_secret_until: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

impl EndpointView {
    fn new(e: EndpointRow, now: i64) -> Self {
        Self {
            event_types: e
                .event_types
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            enabled: e.disabled_at.is_none(),
            disabled_at: e.disabled_at.map(rfc3339),
            previous_secret_until: e.previous_until.filter(|u| *u > now).map(rfc3339),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
            disabled_reason: e.disabled_reason,
            id: e.id,
            url: e.url,
            description: e.description,
        }
    }
}

/// An endpoint just made or re-keyed: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify every delivery's `webhook-signature` with it.
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    pub url: String,
    /// Event types (`user.deactivate`), categories (`user.*`) or `*`.
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// `true` turns a disabled endpoint back on: queued messages resume in
    /// order. `false` turns it off: nothing new is queued for it.
    pub enabled: Option<bool>,
}

fn check_event_types(list: &[String]) -> Result<String> {
    let bad = |msg: String| AppError::invalid("event_types", msg);
    if list.is_empty() || list.len() > 50 {
        return Err(bad("name 1 to 50 event types".into()));
    }
    let mut out: Vec<&str> = Vec::with_capacity(list.len());
    for t in list {
        let t = t.trim();
        let (category, rest) = t.split_once('.').unwrap_or((t, ""));
        let ok = t == "*"
            || (CATEGORIES.contains(&category)
                && (rest == "*"
                    || (!rest.is_empty()
                        && rest.len() <= 64
                        && rest
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.'))));
        if !ok {
            return Err(bad(format!(
                "'{t}' is not an event type: use `*`, a category such as `user.*` ({}), or an action such as `user.deactivate`",
                CATEGORIES.join(", ")
            )));
        }
        out.push(t);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out.join(" "))
}

fn check_description(d: Option<String>) -> Result<String> {
    let d = d.unwrap_or_default().trim().to_owned();
    if d.chars().count() > 500 || d.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "description",
            "at most 500 characters, one line",
        ));
    }
    Ok(d)
}

fn check_url(app: &App, url: &str) -> Result<String> {
    app.webhook_targets
        .check(url.trim())
        .map(String::from)
        .map_err(|why| AppError::invalid("url", why))
}

/// A new signing secret: 32 random bytes, as Standard Webhooks writes them.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn seal_secret(app: &App, endpoint_id: &str, secret: &str) -> String {
    app.key.seal(&format!("webhook:{endpoint_id}"), secret)
}

pub async fn list(app: &App, caller: &Caller, org_slug: &str) -> Result<Vec<EndpointView>> {
    let org = org_with(app, caller, org_slug, Permission::WebhooksManage).await?;
    let now = app.now_ms();
    Ok(muster_store::webhooks::list(&app.db, &org.id)
        .await?
        .into_iter()
        .map(|e| EndpointView::new(e, now))
        .collect())
}

pub async fn get(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<EndpointView> {
    let org = org_with(app, caller, org_slug, Permission::WebhooksManage).await?;
    let row = found(muster_store::webhooks::get(&app.db, &org.id, id).await?)?;
    Ok(EndpointView::new(row, app.now_ms()))
}

fn found<T>(row: Option<T>) -> Result<T> {
    row.ok_or(AppError::NotFound("webhook endpoint"))
}

pub async fn create(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    input: NewEndpoint,
) -> Result<EndpointWithSecret> {
    let org = org_with(app, caller, org_slug, Permission::WebhooksManage).await?;
    let url = check_url(app, &input.url)?;
    let event_types = check_event_types(&input.event_types)?;
    let description = check_description(input.description)?;
    let now = app.now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let secret = new_secret();
    let row = EndpointRow {
        secret_sealed: seal_secret(app, &id, &secret),
        id,
        org_id: org.id.clone(),
        url,
        description,
        event_types,
        previous_secret_sealed: None,
        previous_until: None,
        created_at: now,
        updated_at: now,
        disabled_at: None,
        disabled_reason: None,
    };
    let mut tx = app.db.begin().await?;
    muster_store::webhooks::insert(&mut tx, &row).await?;
    let ev = Event::new(&org.id, "webhook.created")
        .target("webhook", &row.id)
        .security()
        .impersonal()
        .detail("url", &row.url)
        .detail("event_types", &row.event_types);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(EndpointWithSecret {
        endpoint: EndpointView::new(row, now),
        secret,
    })
}

pub async fn update(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
    ch: EndpointChanges,
) -> Result<EndpointView> {
    let org = org_with(app, caller, org_slug, Permission::WebhooksManage).await?;
    let url = ch.url.as_deref().map(|u| check_url(app, u)).transpose()?;
    let types = ch
        .event_types
        .as_deref()
        .map(check_event_types)
        .transpose()?;
    let description = ch
        .description
        .map(|d| check_description(Some(d)))
        .transpose()?;
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let before = found(muster_store::webhooks::get_for_update(&mut tx, &org.id, id).await?)?;
    let mut after = before.clone();
    after.url = url.unwrap_or(after.url);
    after.event_types = types.unwrap_or(after.event_types);
    after.description = description.unwrap_or(after.description);
    match ch.enabled {
        Some(true) => (after.disabled_at, after.disabled_reason) = (None, None),
        Some(false) if after.disabled_at.is_none() => {
            after.disabled_at = Some(now);
            after.disabled_reason = Some("disabled by an administrator".into());
        }
        _ => {}
    }
    let mut ev = Event::new(&org.id, "webhook.updated")
        .target("webhook", id)
        .security()
        .impersonal();
    for (field, b, a) in [
        ("url", &before.url, &after.url),
        ("event_types", &before.event_types, &after.event_types),
        ("description", &before.description, &after.description),
    ] {
        if b != a {
            ev = ev.change(field, b, a);
        }
    }
    if before.disabled_at.is_some() != after.disabled_at.is_some() {
        ev = ev.change(
            "enabled",
            before.disabled_at.is_none(),
            after.disabled_at.is_none(),
        );
    }
    if !ev.changes.is_empty() {
        after.updated_at = now;
        muster_store::webhooks::update(&mut tx, &after).await?;
        audit::record(app, &mut tx, caller, ev).await?;
    }
    tx.commit().await?;
    app.webhook_queued();
    Ok(EndpointView::new(after, now))
}

pub async fn delete(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<()> {
    let org = org_with(app, caller, org_slug, Permission::WebhooksManage).await?;
    let mut tx = app.db.begin().await?;
    let row = found(muster_store::webhooks::get_for_update(&mut tx, &org.id, id).await?)?;
    muster_store::webhooks::delete(&mut tx, &org.id, id).await?;
    let ev = Event::new(&org.id, "webhook.deleted")
        .target("webhook", id)
        .security()
        .impersonal()
        .detail("url", &row.url);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// A new secret; the old one signs beside it for a day, so receivers can
/// switch without dropping a message (Standard Webhooks: several signatures).
pub async fn rotate_secret(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
) -> Result<EndpointWithSecret> {
    let org = org_with(app, caller, org_slug, Permission::WebhooksManage).await?;
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let mut row = found(muster_store::webhooks::get_for_update(&mut tx, &org.id, id).await?)?;
    let secret = new_secret();
    row.previous_secret_sealed = Some(std::mem::replace(
        &mut row.secret_sealed,
        seal_secret(app, id, &secret),
    ));
    row.previous_until = Some(now + ROTATION_OVERLAP_MS);
    row.updated_at = now;
    muster_store::webhooks::update(&mut tx, &row).await?;
    let ev = Event::new(&org.id, "webhook.secret_rotated")
        .target("webhook", id)
        .security()
        .impersonal()
        .detail("previous_secret_until", rfc3339(now + ROTATION_OVERLAP_MS));
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(EndpointWithSecret {
        endpoint: EndpointView::new(row, now),
        secret,
    })
}

/// The endpoint, for a request about its deliveries.
pub(crate) async fn endpoint(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
) -> Result<(OrgRef, EndpointRow)> {
    let org = org_with(app, caller, org_slug, Permission::WebhooksManage).await?;
    let row = found(muster_store::webhooks::get(&app.db, &org.id, id).await?)?;
    Ok((org, row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_checked_and_kept_sorted() {
        let ok =
            |l: &[&str]| check_event_types(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            ok(&["user.*", "scim.user_deleted", "user.*"])
                .ok()
                .as_deref(),
            Some("scim.user_deleted user.*")
        );
        assert_eq!(ok(&["*"]).ok().as_deref(), Some("*"));
        for bad in [
            &[][..],
            &["users.*"],
            &["user."],
            &["User.created"],
            &["user.cr%"],
            &["*.*"],
        ] {
            assert!(ok(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
