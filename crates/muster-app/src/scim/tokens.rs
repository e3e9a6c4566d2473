//! SCIM tokens: named, shown once, stored hashed, optionally expiring and
//! IP-restricted, rotated with an overlap window, revocable, last use kept.

use crate::audit::{self, Event};
use crate::caller::org_with;
use crate::paging::rfc3339;
use crate::{App, AppError, Caller, Principal, Result, secrets};
use ipnet::IpNet;
use muster_core::audit::Context;
use muster_core::{Permission, ScimTokenId, tokens};
use muster_store::scim::ScimTokenRow;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScimTokenView {
    pub id: String,
    pub name: String,
    /// Networks the token is accepted from; empty for anywhere.
    pub ip_allow: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<String>,
    /// The token that replaced this one, once rotated.
    pub rotated_to: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
}

impl From<ScimTokenRow> for ScimTokenView {
    fn from(t: ScimTokenRow) -> Self {
        Self {
            ip_allow: t.ip_allow.split_whitespace().map(str::to_owned).collect(),
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
            last_used_at: t.last_used_at.map(rfc3339),
            id: t.id,
            name: t.name,
            rotated_to: t.rotated_to,
            last_used_ip: t.last_used_ip,
        }
    }
}

/// A token just made: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedScimToken {
    #[serde(flatten)]
    pub token: ScimTokenView,
    /// Shown once; paste it into the IdP now.
    pub secret: String,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimTokenInput {
    pub name: String,
    /// Days until the token expires (1 to 3650); absent for no expiry.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
    /// Addresses or CIDR ranges the IdP calls from; empty for anywhere.
    #[serde(default)]
    pub ip_allow: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    /// How long the old token keeps working, in hours (0 to 720; default 24),
    /// while the IdP is switched to the new one.
    #[serde(default)]
    pub overlap_hours: Option<i64>,
}

fn parse_networks(list: &[String]) -> Result<String> {
    if list.len() > 50 {
        return Err(AppError::invalid("ip_allow", "at most 50 entries"));
    }
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        let s = s.trim();
        let net = s
            .parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                AppError::invalid("ip_allow", format!("'{s}' is not an address or CIDR range"))
            })?;
        out.push(net.trunc().to_string());
    }
    Ok(out.join(" "))
}

async fn insert(
    app: &App,
    caller: &Caller,
    org_id: &str,
    name: String,
    expires_at: Option<i64>,
    ip_allow: String,
    rotated_from: Option<(&str, i64)>,
) -> Result<CreatedScimToken> {
    let id = ScimTokenId::new();
    let secret = secrets::random_secret();
    let row = ScimTokenRow {
        id: id.to_string(),
        org_id: org_id.to_owned(),
        name,
        secret_hash: secrets::hash_secret(&secret),
        ip_allow,
        created_at: app.now_ms(),
        expires_at,
        revoked_at: None,
        rotated_to: None,
        last_used_at: None,
        last_used_ip: None,
    };
    let mut tx = app.db.begin().await?;
    let mut ev = Event::new(org_id, "scim_token.created")
        .target("scim_token", &row.id)
        .detail("name", &row.name)
        .security();
    if let Some((old, until)) = rotated_from {
        if !muster_store::scim::rotate(&mut tx, org_id, old, &row.id, until).await? {
            return Err(AppError::Refused(
                "only a token that is neither revoked nor already rotated can be rotated".into(),
            ));
        }
        ev = ev
            .detail("rotated_from", old)
            .detail("old_token_expires_at", rfc3339(until));
    }
    muster_store::scim::insert(&mut tx, &row).await?;
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(CreatedScimToken {
        secret: tokens::format(tokens::SCIM_TOKEN_PREFIX, id.0, &secret),
        token: row.into(),
    })
}

pub async fn create(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    input: ScimTokenInput,
) -> Result<CreatedScimToken> {
    let org = org_with(app, caller, org_slug, Permission::ScimManage).await?;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "name",
            "give a name of 1 to 128 characters",
        ));
    }
    let expires_at = match input.expires_in_days {
        None => None,
        Some(d) if (1..=3650).contains(&d) => Some(app.now_ms() + d * 86_400_000),
        Some(_) => {
            return Err(AppError::invalid(
                "expires_in_days",
                "must be between 1 and 3650",
            ));
        }
    };
    let ip_allow = parse_networks(&input.ip_allow)?;
    insert(app, caller, &org.id, name, expires_at, ip_allow, None).await
}

pub async fn list(app: &App, caller: &Caller, org_slug: &str) -> Result<Vec<ScimTokenView>> {
    let org = org_with(app, caller, org_slug, Permission::ScimManage).await?;
    Ok(muster_store::scim::list(&app.db, &org.id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

pub async fn revoke(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<()> {
    let org = org_with(app, caller, org_slug, Permission::ScimManage).await?;
    let mut tx = app.db.begin().await?;
    muster_store::scim::get_in(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("SCIM token"))?;
    if muster_store::scim::revoke(&mut tx, &org.id, id, app.now_ms()).await? {
        let ev = Event::new(&org.id, "scim_token.revoked")
            .target("scim_token", id)
            .security();
        audit::record(app, &mut tx, caller, ev).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A new token with the old one's name and networks; the old one keeps
/// working for the overlap window, then expires.
pub async fn rotate(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    id: &str,
    input: RotateInput,
) -> Result<CreatedScimToken> {
    let org = org_with(app, caller, org_slug, Permission::ScimManage).await?;
    let hours = input.overlap_hours.unwrap_or(24);
    if !(0..=720).contains(&hours) {
        return Err(AppError::invalid(
            "overlap_hours",
            "must be between 0 and 720",
        ));
    }
    let old = {
        let mut tx = app.db.begin().await?;
        let row = muster_store::scim::get_in(&mut tx, &org.id, id)
            .await?
            .ok_or(AppError::NotFound("SCIM token"))?;
        tx.commit().await?;
        row
    };
    let until = app.now_ms() + hours * 3_600_000;
    insert(
        app,
        caller,
        &org.id,
        old.name,
        old.expires_at,
        old.ip_allow,
        Some((id, until)),
    )
    .await
}

/// Authenticates `Authorization: Bearer mss_…`. Every failure — malformed,
/// unknown, wrong secret, expired, revoked, calling from outside the allowed
/// networks — is the same `Unauthenticated`. The token's row may come from
/// the session cache, by its rules: a revocation or rotation made in this
/// process counts from the next request, one made elsewhere once announced
/// (migration 0022), and no copy is older than a second. The secret, the
/// expiry and the address are checked on every request.
pub async fn authenticate(app: &App, token: &str, ctx: Context) -> Result<Caller> {
    let parsed =
        tokens::parse(tokens::SCIM_TOKEN_PREFIX, token).ok_or(AppError::Unauthenticated)?;
    let id = parsed.id.to_string();
    let row = app
        .sessions
        .get(&app.sessions.scim, &id, || async {
            Ok(muster_store::scim::for_auth(&app.db, &id).await?)
        })
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let t = &row.token;
    let now = app.now_ms();
    let ip: Option<IpAddr> = ctx.ip.as_deref().and_then(|s| s.parse().ok());
    let from_allowed = t.ip_allow.is_empty()
        || ip.is_some_and(|ip| {
            t.ip_allow
                .split_whitespace()
                .filter_map(|n| n.parse::<IpNet>().ok())
                .any(|n| n.contains(&ip))
        });
    let valid = secrets::secret_matches(parsed.secret, &t.secret_hash)
        && t.revoked_at.is_none()
        && t.expires_at.is_none_or(|e| now < e)
        && from_allowed;
    if !valid {
        return Err(AppError::Unauthenticated);
    }
    let ip_text = ctx.ip.clone();
    if t.last_used_at.is_none_or(|u| now - u > 60_000) || t.last_used_ip != ip_text {
        let db = app.db.clone();
        let id = id.clone();
        tokio::spawn(async move {
            if let Err(e) = muster_store::scim::touch(&db, &id, now, ip_text.as_deref()).await {
                tracing::warn!(error = %e, "could not record SCIM token use");
            }
        });
    }
    Ok(Caller {
        principal: Principal::ScimToken {
            org_id: t.org_id.clone(),
            org_slug: row.org_slug.clone(),
            token_id: t.id.clone(),
            token_name: t.name.clone(),
        },
        ctx,
    })
}
