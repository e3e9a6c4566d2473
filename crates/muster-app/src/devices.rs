//! Devices (issue 5 §6): the browsers and apps a user signed in from, known
//! by a long-lived device cookie. Users see, rename and forget theirs; an
//! admin can clear a user's. A forgotten device is unknown at its next
//! sign-in (a risk signal, and a new-device email).

use crate::audit::{self, Event};
use crate::paging::rfc3339;
use crate::risk::Attempt;
use crate::{App, AppError, Caller, Principal, Result};
use muster_core::Permission;
use muster_core::access_policy::DeviceOs;
use muster_core::audit::Context;
use muster_store::devices::{DeviceRow, SignInRow};
use muster_store::orgs::OrgRow;
use muster_store::outbox::OutboxRow;
use muster_store::users::UserRow;
use serde::{Deserialize, Serialize};

/// "Chrome on macOS", from a user agent: what a person recognizes.
pub fn name_of(ua: Option<&str>) -> String {
    let Some(ua) = ua else {
        return "Unknown device".into();
    };
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("CriOS/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        "An app"
    };
    let os = match DeviceOs::from_user_agent(ua) {
        Some(DeviceOs::Windows) => "Windows",
        Some(DeviceOs::Macos) => "macOS",
        Some(DeviceOs::Ios) => "iOS",
        Some(DeviceOs::Android) => "Android",
        Some(DeviceOs::Linux) => "Linux",
        Some(DeviceOs::Chromeos) => "ChromeOS",
        None => return browser.to_owned(),
    };
    format!("{browser} on {os}")
}

/// What a successful sign-in records about where it came from: the device
/// (when the client keeps a device cookie) and the history entry the risk
/// engine compares later sign-ins with. Written with the session
/// (`muster_store::openings`). A known device used again from the same
/// address and country within a minute is not rewritten (`None`); the
/// history row then names it here, and otherwise its `device_id` is filled
/// in by the write.
pub(crate) fn sign_in_rows(
    app: &App,
    org: &OrgRow,
    user: &UserRow,
    ctx: &Context,
    a: &Attempt,
) -> (Option<DeviceRow>, SignInRow) {
    let now = app.now_ms();
    let unchanged = a
        .seen_device
        .as_ref()
        .filter(|d| d.unchanged_by(now, ctx.ip.as_deref(), a.country.as_deref()));
    let device = a
        .device_hash
        .as_ref()
        .filter(|_| unchanged.is_none())
        .map(|h| DeviceRow {
            id: uuid::Uuid::now_v7().simple().to_string(),
            org_id: org.id.clone(),
            user_id: user.id.clone(),
            secret_hash: h.clone(),
            name: name_of(ctx.user_agent.as_deref()),
            os: ctx
                .user_agent
                .as_deref()
                .and_then(DeviceOs::from_user_agent)
                .map(|o| o.as_str().to_owned()),
            created_at: now,
            last_seen_at: now,
            last_ip: ctx.ip.clone(),
            last_country: a.country.clone(),
        });
    let sign_in = SignInRow {
        id: uuid::Uuid::now_v7().simple().to_string(),
        org_id: org.id.clone(),
        user_id: user.id.clone(),
        at: now,
        ip: ctx.ip.clone(),
        country: a.country.clone(),
        latitude: a.coords.map(|c| c.0),
        longitude: a.coords.map(|c| c.1),
        device_id: unchanged.map(|d| d.id.clone()),
    };
    (device, sign_in)
}

/// The new-device email to queue with a sign-in from an unknown device.
/// Only a client that keeps a device cookie can be recognized next time;
/// mailing cookie-less scripts at every sign-in would be noise.
pub(crate) fn new_device_email(
    app: &App,
    announce: bool,
    user: &UserRow,
    a: &Attempt,
    sign_in: &SignInRow,
) -> Option<OutboxRow> {
    (a.device_hash.is_some() && !a.known_device && a.has_history && announce).then(|| {
        crate::signin::outbox_row(
            &user.org_id,
            &user.id,
            "new_device",
            &sign_in.id,
            &user.email,
            app.now_ms(),
        )
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub name: String,
    pub os: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub first_seen_at: String,
    /// Its last sign-in, to the minute: one from the same address and
    /// country within a minute of this time does not move it.
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: String,
    pub last_ip: Option<String>,
    pub last_country: Option<String>,
    /// The device this request came from.
    pub current: bool,
}

fn view(d: DeviceRow, current: Option<&str>) -> DeviceView {
    DeviceView {
        current: current == Some(d.secret_hash.as_str()),
        first_seen_at: rfc3339(d.created_at),
        last_seen_at: rfc3339(d.last_seen_at),
        id: d.id,
        name: d.name,
        os: d.os,
        last_ip: d.last_ip,
        last_country: d.last_country,
    }
}

fn me(caller: &Caller) -> Result<(&str, &str)> {
    match &caller.principal {
        Principal::User {
            org_id, user_id, ..
        } => Ok((org_id, user_id)),
        _ => Err(AppError::NotFound("user")),
    }
}

pub async fn mine(app: &App, caller: &Caller) -> Result<Vec<DeviceView>> {
    let (_, user_id) = me(caller)?;
    let current = crate::risk::device_hash(&caller.ctx);
    let rows = muster_store::devices::list(&app.db, user_id).await?;
    Ok(rows
        .into_iter()
        .map(|d| view(d, current.as_deref()))
        .collect())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    pub name: String,
}

pub async fn rename(app: &App, caller: &Caller, id: &str, input: Rename) -> Result<()> {
    let (org_id, user_id) = me(caller)?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AppError::invalid("name", "use 1 to 64 characters"));
    }
    let mut tx = app.db.begin().await?;
    if !muster_store::devices::rename(&mut tx, user_id, id, name).await? {
        return Err(AppError::NotFound("device"));
    }
    let ev = Event::new(org_id, "device.renamed")
        .target("user", user_id)
        .detail("device", id)
        .detail("name", name);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn forget(app: &App, caller: &Caller, id: &str) -> Result<()> {
    let (org_id, user_id) = me(caller)?;
    let mut tx = app.db.begin().await?;
    if !muster_store::devices::forget(&mut tx, user_id, id).await? {
        return Err(AppError::NotFound("device"));
    }
    let ev = Event::new(org_id, "device.forgotten")
        .target("user", user_id)
        .detail("device", id)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// A user's devices, for an admin (`users.read`).
pub async fn of_user(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<Vec<DeviceView>> {
    let org = crate::caller::org_with(app, caller, slug, Permission::UsersRead).await?;
    muster_store::users::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let rows = muster_store::devices::list(&app.db, id).await?;
    Ok(rows.into_iter().map(|d| view(d, None)).collect())
}

/// Clears a user's trusted devices (`sessions.revoke`): every one of them
/// is unknown again at its next sign-in.
pub async fn clear(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<u64> {
    let org = crate::caller::org_with(app, caller, slug, Permission::SessionsRevoke).await?;
    muster_store::users::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let mut tx = app.db.begin().await?;
    let n = muster_store::devices::clear(&mut tx, id).await?;
    let ev = Event::new(&org.id, "device.cleared")
        .target("user", id)
        .detail("devices", n)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_named_as_people_know_them() {
        for (ua, name) in [
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36 Edg/126.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", "An app"),
        ] {
            assert_eq!(name_of(Some(ua)), name, "{ua}");
        }
        assert_eq!(name_of(None), "Unknown device");
    }
}
