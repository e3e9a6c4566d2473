//! Access policies on every surface (issue 5 §5): the organization's rules
//! over network, country and device OS, checked at sign-in and again on
//! every authenticated request (session or API token), so that a session
//! whose address moves into a denied range is refused on its next request.
//! SCIM tokens carry their own network allow-list instead (`scim::tokens`).
//!
//! The policies an organization's settings hold are parsed and compiled once
//! per settings text and kept in memory: a request compares the text it read
//! from the database with the cached one (never a stale copy: a change is a
//! different text), then evaluates the compiled form — a binary search over
//! merged ranges, however many CIDRs there are.

use crate::audit::{self, Event};
use crate::mfa::MfaPolicy;
use crate::signin::SessionPolicy;
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;
use muster_core::access_policy::{AccessPolicy, Compiled, Refusal, Request};
use muster_core::audit::Context;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The policies of one organization that requests consult.
#[derive(Debug, Default)]
pub struct OrgPolicies {
    pub session: SessionPolicy,
    pub mfa: MfaPolicy,
    pub access: Compiled,
    pub risk: crate::risk::RiskPolicy,
    /// The risk policy's `deny_networks`, parsed.
    pub risk_deny: Vec<ipnet::IpNet>,
}

/// Settings text → its compiled policies. Keyed by the text itself: an
/// organization's OUs each have their own effective text (see
/// `org_units`), and a changed policy is a different key, never a stale hit.
#[derive(Debug, Default)]
pub struct PolicyCache(RwLock<HashMap<Arc<str>, Arc<OrgPolicies>>>);

/// Texts no longer in use are dropped wholesale past this many entries.
const CACHE_ENTRIES: usize = 4096;

impl PolicyCache {
    /// The policies in `settings` (an organization's or an OU's effective
    /// settings), compiled once per distinct text.
    pub fn get(&self, _org_id: &str, settings: &str) -> Arc<OrgPolicies> {
        if let Ok(map) = self.0.read()
            && let Some(p) = map.get(settings)
        {
            return p.clone();
        }
        let access: AccessPolicy = crate::signin::setting_in(settings, "access");
        let risk: crate::risk::RiskPolicy = crate::signin::setting_in(settings, "risk");
        let p = Arc::new(OrgPolicies {
            // Checked when saved, like the access policy below.
            risk_deny: risk.networks().unwrap_or_default(),
            risk,
            session: crate::signin::setting_in(settings, "session"),
            mfa: crate::signin::setting_in(settings, "mfa"),
            // Stored policies were compiled when saved; one that no longer
            // compiles (never expected) refuses nothing rather than everyone.
            access: access.compile().unwrap_or_default(),
        });
        if let Ok(mut map) = self.0.write() {
            if map.len() >= CACHE_ENTRIES {
                map.clear();
            }
            map.insert(Arc::from(settings), p.clone());
        }
        p
    }
}

/// The request as the rules see it: address, its country (when a rule
/// needs one and a GeoIP database is set), user agent.
fn request<'a>(
    app: &App,
    rules: &Compiled,
    ctx: &'a Context,
    country: &'a mut Option<String>,
) -> Request<'a> {
    let ip = ctx.ip.as_deref().and_then(|i| i.parse().ok());
    if rules.uses_countries()
        && let (Some(geo), Some(ip)) = (&app.geo, ip)
    {
        *country = geo.lookup(ip).country;
    }
    Request {
        ip,
        country: country.as_deref(),
        user_agent: ctx.user_agent.as_deref(),
    }
}

/// The rule that refuses this request under `rules`, if any.
pub fn refusal(app: &App, rules: &Compiled, ctx: &Context) -> Option<Refusal> {
    if rules.is_empty() {
        return None;
    }
    let mut country = None;
    rules.evaluate(&request(app, rules, ctx, &mut country))
}

/// Checks an authenticated request; a refusal is audited and answered
/// `AccessDenied` (the credential stays valid from an allowed place).
pub(crate) async fn check(app: &App, caller: &Caller, rules: &Compiled) -> Result<()> {
    let Some(r) = refusal(app, rules, &caller.ctx) else {
        return Ok(());
    };
    let Some(org_id) = org_of(caller) else {
        return Err(AppError::AccessDenied(r.explain()));
    };
    let mut ev = Event::new(org_id, "access.denied")
        .detail("rule", r.as_str())
        .security();
    if let Some(u) = caller.user_id() {
        ev = ev.target("user", u);
    }
    let mut tx = app.db.begin().await?;
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    metrics::counter!("muster_access_denied_total", "rule" => r.as_str()).increment(1);
    Err(AppError::AccessDenied(r.explain()))
}

fn org_of(c: &Caller) -> Option<&str> {
    match &c.principal {
        crate::Principal::User { org_id, .. } => Some(org_id),
        _ => None,
    }
}

/// Audits a refused security policy (`policy.<key>_rejected`, with why):
/// an attempt to change who may get in is on the record even when it fails.
/// Returns the error to answer.
pub(crate) async fn rejected(
    app: &App,
    caller: &Caller,
    org_id: &str,
    key: &str,
    e: AppError,
) -> Result<AppError> {
    let action = format!("policy.{key}_rejected");
    let ev = Event::new(org_id, &action)
        .detail("reason", e.to_string())
        .security();
    let mut tx = app.db.begin().await?;
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(e)
}

/// The conflict answered when access rules about to be saved would refuse
/// the request saving them (wherever they are set), unless confirmed.
pub(crate) fn refuse_lockout(app: &App, rules: &Compiled, ctx: &Context) -> Result<()> {
    match refusal(app, rules, ctx) {
        Some(r) => Err(AppError::Conflict {
            field: "confirm_lockout",
            message: format!(
                "this policy would refuse your own current request ({} rule); save with confirm_lockout=true if that is intended",
                r.as_str()
            ),
        }),
        None => Ok(()),
    }
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct SaveOptions {
    /// Save even though the policy would refuse the caller's own current
    /// address or device.
    #[serde(default)]
    pub confirm_lockout: bool,
}

/// Saves the access policy (`policies.write`). Refused with a clear error:
/// bad entries, a policy that contradicts itself, a country rule without a
/// GeoIP database, and — unless confirmed — a policy that would shut out
/// the caller's own current request.
pub async fn set_policy(
    app: &App,
    caller: &Caller,
    slug: &str,
    new: AccessPolicy,
    opts: SaveOptions,
) -> Result<AccessPolicy> {
    let org = crate::caller::org_with(app, caller, slug, Permission::PoliciesWrite).await?;
    let checked = new
        .compile()
        .map_err(|e| AppError::invalid(e.field, e.message))
        .and_then(|c| {
            if new.uses_countries() && app.geo.is_none() {
                return Err(AppError::invalid(
                    "countries",
                    "country rules need a GeoIP database: set MUSTER_GEOIP_DB and restart first",
                ));
            }
            Ok(c)
        });
    let compiled = match checked {
        Ok(c) => c,
        Err(e) => return Err(rejected(app, caller, &org.id, "access", e).await?),
    };
    if !opts.confirm_lockout {
        refuse_lockout(app, &compiled, &caller.ctx)?;
    }
    crate::orgs::update_setting(
        app,
        caller,
        &org.id,
        "access",
        "policy.access_changed",
        &new,
    )
    .await?;
    Ok(new)
}
