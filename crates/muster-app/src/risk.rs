//! Risk-based authentication (issue 5 §4): gathers the signals of a sign-in
//! (or of a session that keeps changing address), asks the pure engine in
//! `muster_core::risk`, and maps its level to the assurance the
//! organization's risk policy requires. Every evaluation, reasons and all,
//! goes into the sign-in's audit event.

use crate::signin::{LockoutPolicy, account_key, setting};
use crate::{App, AppError, Caller, Result, secrets};
use ipnet::IpNet;
use muster_core::Permission;
use muster_core::audit::Context;
use muster_core::risk::{self, Assessment, Level, Seen, Signals};
use muster_store::orgs::OrgRow;
use muster_store::users::UserRow;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What a risk level asks of a sign-in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Required {
    /// Password or federated sign-in alone.
    L1,
    /// Plus a second factor (enrolled now if the user has none).
    L2,
    /// A passkey.
    L3,
    /// Refused.
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RiskPolicy {
    pub enabled: bool,
    pub low: Required,
    pub medium: Required,
    pub high: Required,
    /// Addresses and CIDRs whose sign-ins count as high risk.
    pub deny_networks: Vec<String>,
    /// Email the user when their account is signed in from a new device.
    pub new_device_email: bool,
}

impl Default for RiskPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            low: Required::L1,
            medium: Required::L2,
            // "L3 or deny": deny until the user can prove a passkey.
            high: Required::Deny,
            deny_networks: Vec::new(),
            new_device_email: true,
        }
    }
}

impl RiskPolicy {
    pub(crate) fn networks(&self) -> Result<Vec<IpNet>> {
        if self.deny_networks.len() > 10_000 {
            return Err(AppError::invalid("deny_networks", "at most 10,000 entries"));
        }
        self.deny_networks
            .iter()
            .map(|s| {
                let t = s.trim();
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        AppError::invalid(
                            "deny_networks",
                            format!("'{s}' is not an IP address or CIDR"),
                        )
                    })
            })
            .collect()
    }

    /// A riskier level never asks for less than a safer one.
    pub(crate) fn check(&self) -> Result<()> {
        if self.low > self.medium || self.medium > self.high {
            return Err(AppError::invalid(
                "high",
                "a riskier level cannot require less than a safer one (low ≤ medium ≤ high)",
            ));
        }
        self.networks().map(|_| ())
    }

    pub fn required(&self, level: Level) -> Required {
        if !self.enabled {
            return Required::L1;
        }
        match level {
            Level::Low => self.low,
            Level::Medium => self.medium,
            Level::High => self.high,
        }
    }
}

pub async fn set_policy(
    app: &App,
    caller: &Caller,
    slug: &str,
    new: RiskPolicy,
) -> Result<RiskPolicy> {
    let org = crate::caller::org_with(app, caller, slug, Permission::PoliciesWrite).await?;
    if let Err(e) = new.check() {
        return Err(crate::guard::rejected(app, caller, &org.id, "risk", e).await?);
    }
    crate::orgs::update_setting(app, caller, &org.id, "risk", "policy.risk_changed", &new).await?;
    Ok(new)
}

/// One sign-in's evaluation, carried to the session it opens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub assessment: Assessment,
    pub required: Required,
    pub known_device: bool,
    pub has_history: bool,
    pub country: Option<String>,
    pub coords: Option<(f64, f64)>,
    /// The hash of the device cookie (never the cookie).
    #[serde(skip)]
    pub device_hash: Option<String>,
    /// That device's row as found, when known (`None` after the attempt
    /// was stored for a second step: the device is then written again).
    #[serde(skip)]
    pub seen_device: Option<muster_store::devices::SeenDevice>,
    /// The history read holds sign-ins past its retention: prune it.
    #[serde(default)]
    pub prune_history: bool,
}

/// How many of a user's last sign-ins the risk engine compares a sign-in with.
pub(crate) const HISTORY_SIGN_INS: i64 = 50;

/// Prefix of a device cookie (`msd_<id>_<secret>`).
pub const DEVICE_PREFIX: &str = "msd";

/// The hash a device is known by, for a well-formed device cookie.
pub fn device_hash(ctx: &Context) -> Option<String> {
    let t = ctx.device.as_deref()?;
    muster_core::tokens::parse(DEVICE_PREFIX, t)?;
    Some(secrets::hash_secret(t))
}

/// Gathers the signals of a sign-in by `user` and evaluates them (public
/// for the benchmark; sign-ins call it through `mfa::challenge::enter`).
pub async fn evaluate(app: &App, org: &OrgRow, user: &UserRow, ctx: &Context) -> Result<Attempt> {
    evaluate_with(app, org, user, ctx, None).await
}

/// `evaluate`, reusing the failure counters a password sign-in's throttle
/// check has just read.
pub(crate) async fn evaluate_with(
    app: &App,
    org: &OrgRow,
    user: &UserRow,
    ctx: &Context,
    keys: Option<&crate::signin::throttle::Keys>,
) -> Result<Attempt> {
    let rules = crate::org_units::policies_for(app, org, user).await?;
    let policy = &rules.risk;
    let hash = device_hash(ctx);
    // A password sign-in's first read found them already.
    let (history, seen_device) = match keys.and_then(|k| k.prior.clone()) {
        Some(prior) => prior,
        None => {
            let seen = match &hash {
                Some(h) => muster_store::devices::find(&app.db, &user.id, h)
                    .await?
                    .as_ref()
                    .map(Into::into),
                None => None,
            };
            let b = muster_store::devices::baseline(&app.db, &user.id, HISTORY_SIGN_INS).await?;
            (b, seen)
        }
    };
    let ip: Option<IpAddr> = ctx.ip.as_deref().and_then(|i| i.parse().ok());
    let place = match (&app.geo, ip) {
        (Some(g), Some(ip)) => g.lookup(ip),
        _ => crate::geo::Place::default(),
    };
    let now = app.now_ms();
    // A password sign-in's throttle check read the counters already.
    let (user_failures, ip_failures) = match keys.and_then(|k| k.seen) {
        Some(seen) => seen,
        None => {
            let lockout: LockoutPolicy = setting(org, "lockout");
            let window = i64::from(lockout.cooldown_minutes) * 60_000;
            let ip_key = ctx.ip.as_deref().map(|i| format!("ip:{i}"));
            let (acct, by_ip) = muster_store::failures::get_pair(
                &app.db,
                &account_key(&org.id, &user.email),
                ip_key.as_deref(),
            )
            .await?;
            let recent = |f: Option<muster_store::failures::Failures>| {
                f.filter(|f| now - f.last_failure_at <= window)
                    .map_or(0, |f| f.failures)
            };
            (recent(acct), recent(by_ip))
        }
    };
    let denylisted = match ip {
        Some(ip) => rules.risk_deny.iter().any(|n| n.contains(&ip)),
        None => false,
    };
    let last_seen = history.last_located.map(|(at_ms, lat, lon)| Seen {
        at_ms,
        coords: (lat, lon),
    });
    let known_device = seen_device.is_some();
    let signals = Signals {
        known_device,
        has_history: history.sign_ins > 0,
        country: place.country.clone(),
        known_countries: history.countries,
        last_seen,
        here: place.coords.map(|coords| Seen { at_ms: now, coords }),
        user_failures,
        ip_failures,
        denylisted_ip: denylisted,
        session_ip_changes: 0,
    };
    let assessment = risk::assess(&signals);
    metrics::counter!("muster_risk_evaluations_total", "level" => assessment.level.as_str())
        .increment(1);
    Ok(Attempt {
        required: policy.required(assessment.level),
        assessment,
        known_device,
        has_history: signals.has_history,
        country: place.country,
        coords: place.coords,
        device_hash: hash,
        seen_device,
        prune_history: history
            .oldest_at
            .is_some_and(|at| now - at > muster_store::devices::HISTORY_MS),
    })
}

/// A session used from a new address: counted, and when the changes come
/// too fast, evaluated. Returns the evaluation when the organization's
/// policy then asks for more than the session proved (the caller ends it).
pub(crate) async fn session_moved(
    app: &App,
    (org_id, settings): (&str, &str),
    session_id: &str,
    level: i32,
    ip: &str,
) -> Result<Option<Assessment>> {
    let changes =
        muster_store::devices::session_moved(&app.db, session_id, ip, app.now_ms()).await?;
    if changes < risk::RAPID_IP_CHANGES {
        return Ok(None);
    }
    let policy = &app.policies.get(org_id, settings).risk;
    let a = risk::assess(&Signals {
        known_device: true,
        session_ip_changes: changes,
        ..Signals::default()
    });
    let needed = policy.required(a.level);
    let proved = match level {
        3 => Required::L3,
        2 => Required::L2,
        _ => Required::L1,
    };
    Ok((needed > proved).then_some(a))
}
