//! Policies set on an organizational unit and inherited down its subtree
//! (issue 7 §1). The organization's policy is the root's; a unit may
//! replace any of the inheritable ones for itself and everything below it,
//! and a unit below may replace it again. A whole policy is replaced, never
//! merged field by field: what an admin reads on a unit is exactly what
//! holds there.

use super::visible;
use crate::audit::{self, Event};
use crate::caller::org_reach;
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;
use muster_store::org_units::OrgUnitRow;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The inheritable policies: (name in the API, key in the settings).
pub const INHERITED: [(&str, &str); 5] = [
    ("password", "password_policy"),
    ("mfa", "mfa"),
    ("session", "session"),
    ("access", "access"),
    ("risk", "risk"),
];

fn key_of(name: &str) -> Result<&'static str> {
    INHERITED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, k)| *k)
        .ok_or_else(|| {
            AppError::invalid(
                "policy",
                format!(
                    "'{name}' is not a policy units can set; one of: {}",
                    INHERITED.map(|(n, _)| n).join(", ")
                ),
            )
        })
}

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The API names of the policies a unit's own `policies` sets.
pub(super) fn names_set(policies: &str) -> Vec<String> {
    let set = object(policies);
    INHERITED
        .iter()
        .filter(|(_, k)| set.contains_key(*k))
        .map(|(n, _)| (*n).to_owned())
        .collect()
}

/// A stored value through its type: defaults filled in, shown as the API
/// shows the organization's policy.
fn normalized(name: &str, v: Option<Value>) -> Value {
    fn via<T: serde::de::DeserializeOwned + Serialize + Default>(v: Option<Value>) -> Value {
        let t: T = v
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        serde_json::to_value(t).unwrap_or(Value::Null)
    }
    match name {
        "password" => via::<crate::policies::PasswordPolicy>(v),
        "mfa" => via::<crate::mfa::MfaPolicy>(v),
        "session" => via::<crate::signin::SessionPolicy>(v),
        "access" => via::<muster_core::access_policy::AccessPolicy>(v),
        _ => via::<crate::risk::RiskPolicy>(v),
    }
}

fn parse<T: serde::de::DeserializeOwned>(name: &str, v: Value) -> Result<T> {
    serde_json::from_value(v)
        .map_err(|e| AppError::invalid("policy", format!("not a {name} policy: {e}")))
}

/// The checks each policy gets wherever it is set, the same as the
/// organization-level endpoints apply.
async fn validate(app: &App, org_id: &str, name: &str, v: Value) -> Result<Value> {
    let checked = match name {
        "password" => {
            let p: crate::policies::PasswordPolicy = parse(name, v)?;
            p.validate()?;
            serde_json::to_value(p)
        }
        "mfa" => {
            let p: crate::mfa::MfaPolicy = parse(name, v)?;
            p.check()?;
            for g in &p.groups {
                if muster_store::groups::get(&app.db, org_id, g)
                    .await?
                    .is_none()
                {
                    return Err(AppError::invalid(
                        "groups",
                        format!("no group '{g}' in this organization"),
                    ));
                }
            }
            serde_json::to_value(p)
        }
        "session" => {
            let p: crate::signin::SessionPolicy = parse(name, v)?;
            p.check()?;
            serde_json::to_value(p)
        }
        "access" => {
            let p: muster_core::access_policy::AccessPolicy = parse(name, v)?;
            p.compile()
                .map_err(|e| AppError::invalid(e.field, e.message))?;
            if p.uses_countries() && app.geo.is_none() {
                return Err(AppError::invalid(
                    "countries",
                    "country rules need a GeoIP database: set MUSTER_GEOIP_DB and restart first",
                ));
            }
            serde_json::to_value(p)
        }
        _ => {
            let p: crate::risk::RiskPolicy = parse(name, v)?;
            p.check()?;
            serde_json::to_value(p)
        }
    };
    checked.map_err(|_| AppError::invalid("policy", "could not be stored"))
}

/// Where an effective value comes from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Source {
    /// `org_unit`, `organization`, or `default` (set nowhere).
    pub level: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_unit_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_unit_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EffectiveValue {
    pub value: Value,
    pub source: Source,
}

/// Each inheritable policy as it holds in one unit, and where it is set.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EffectivePolicy {
    pub org_unit: super::OrgUnitView,
    /// Set when this is a user's effective policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// By policy name: `password`, `mfa`, `session`, `access`, `risk`.
    pub policies: BTreeMap<String, EffectiveValue>,
}

/// Walks from `unit` up to the root: the nearest unit that sets each
/// policy, else the organization, else the default.
async fn effective(
    app: &App,
    org_id: &str,
    unit: &OrgUnitRow,
) -> Result<BTreeMap<String, EffectiveValue>> {
    let units = muster_store::org_units::list(&app.db, org_id).await?;
    let by_id: std::collections::HashMap<&str, &OrgUnitRow> =
        units.iter().map(|u| (u.id.as_str(), u)).collect();
    let mut chain = Vec::new();
    let mut at = Some(unit.id.as_str());
    while let Some(id) = at {
        let Some(u) = by_id.get(id) else { break };
        if u.parent_id.is_some() {
            chain.push(*u);
        }
        at = u.parent_id.as_deref();
        if chain.len() > units.len() {
            break; // a damaged tree must not loop
        }
    }
    let org = muster_store::orgs::by_id(&app.db, org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let org_settings = object(&org.settings);
    let mut out = BTreeMap::new();
    for (name, key) in INHERITED {
        let set_on = chain
            .iter()
            .find_map(|u| object(&u.policies).get(key).cloned().map(|v| (*u, v)));
        let (value, source) = match set_on {
            Some((u, v)) => (
                Some(v),
                Source {
                    level: "org_unit",
                    org_unit_id: Some(u.id.clone()),
                    org_unit_name: Some(u.name.clone()),
                },
            ),
            None => match org_settings.get(key) {
                Some(v) => (
                    Some(v.clone()),
                    Source {
                        level: "organization",
                        org_unit_id: None,
                        org_unit_name: None,
                    },
                ),
                None => (
                    None,
                    Source {
                        level: "default",
                        org_unit_id: None,
                        org_unit_name: None,
                    },
                ),
            },
        };
        out.insert(
            name.to_owned(),
            EffectiveValue {
                value: normalized(name, value),
                source,
            },
        );
    }
    Ok(out)
}

/// The policies that hold in a unit (`users.read` reaching it).
pub async fn of_unit(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<EffectivePolicy> {
    let (org, reach) = org_reach(app, caller, slug, Permission::UsersRead).await?;
    let unit = visible(app, &org.id, id, &reach).await?;
    Ok(EffectivePolicy {
        policies: effective(app, &org.id, &unit).await?,
        org_unit: (&unit).into(),
        user_id: None,
    })
}

/// The policies that hold for a user, and the level each comes from.
pub async fn of_user(
    app: &App,
    caller: &Caller,
    slug: &str,
    user_id: &str,
) -> Result<EffectivePolicy> {
    let (org, reach) = org_reach(app, caller, slug, Permission::UsersRead).await?;
    let unit = muster_store::org_units::of_user(&app.db, &org.id, user_id)
        .await?
        .filter(|u| reach.covers(&u.path))
        .ok_or(AppError::NotFound("user"))?;
    Ok(EffectivePolicy {
        policies: effective(app, &org.id, &unit).await?,
        org_unit: (&unit).into(),
        user_id: Some(user_id.to_owned()),
    })
}

/// Sets (`Some`) or removes (`None`, inheriting again) one policy of a unit
/// (`policies.write` reaching it). The root's policies are the
/// organization's, set at `/orgs/{org}/<name>-policy`. An access policy
/// that would refuse the caller's own request — set here, or inherited
/// from above once this one is removed — is refused unless
/// `opts.confirm_lockout`, as at the organization's level.
pub async fn set(
    app: &App,
    caller: &Caller,
    slug: &str,
    id: &str,
    name: &str,
    value: Option<Value>,
    opts: &crate::guard::SaveOptions,
) -> Result<EffectivePolicy> {
    let (org, reach) = org_reach(app, caller, slug, Permission::PoliciesWrite).await?;
    let key = key_of(name)?;
    let unit = visible(app, &org.id, id, &reach).await?;
    if unit.parent_id.is_none() {
        return Err(AppError::invalid(
            "id",
            "the root unit's policies are the organization's: set them on the organization",
        ));
    }
    let value = match value {
        Some(v) => match validate(app, &org.id, name, v).await {
            Ok(v) => Some(v),
            Err(e) => return Err(crate::guard::rejected(app, caller, &org.id, key, e).await?),
        },
        None => None,
    };
    if name == "access" && !opts.confirm_lockout {
        let then = match &value {
            Some(v) => v.clone(),
            None => inherited_access(app, &org.id, &unit).await?,
        };
        shuts_out_caller(app, caller, &org.id, &unit, &then).await?;
    }
    save(app, caller, &org.id, &unit.id, key, value).await?;
    of_unit(app, caller, slug, id).await
}

/// The access policy `unit` would hold without its own: its parent's.
async fn inherited_access(app: &App, org_id: &str, unit: &OrgUnitRow) -> Result<Value> {
    let parent = match &unit.parent_id {
        Some(p) => muster_store::org_units::get(&app.db, org_id, p).await?,
        None => None,
    };
    let Some(parent) = parent else {
        return Ok(Value::Null);
    };
    Ok(effective(app, org_id, &parent)
        .await?
        .remove("access")
        .map_or(Value::Null, |v| v.value))
}

/// Refuses an access policy for `unit` that would refuse the caller's own
/// request: the caller is in the unit's subtree, no unit between sets an
/// access policy of its own (that one would hold instead), and the policy
/// refuses the request's address, country or device.
async fn shuts_out_caller(
    app: &App,
    caller: &Caller,
    org_id: &str,
    unit: &OrgUnitRow,
    policy: &Value,
) -> Result<()> {
    let Some(user) = caller.user_id() else {
        return Ok(());
    };
    let Some(mine) = muster_store::org_units::of_user(&app.db, org_id, user).await? else {
        return Ok(());
    };
    if !mine.path.starts_with(&unit.path) {
        return Ok(());
    }
    let units = muster_store::org_units::list(&app.db, org_id).await?;
    let nearer = units.iter().any(|u| {
        u.path.len() > unit.path.len()
            && mine.path.starts_with(&u.path)
            && object(&u.policies).contains_key("access")
    });
    if nearer {
        return Ok(());
    }
    let p: muster_core::access_policy::AccessPolicy = match policy {
        Value::Null => return Ok(()),
        v => parse("access", v.clone())?,
    };
    let rules = p
        .compile()
        .map_err(|e| AppError::invalid(e.field, e.message))?;
    crate::guard::refuse_lockout(app, &rules, &caller.ctx)
}

async fn save(
    app: &App,
    caller: &Caller,
    org_id: &str,
    unit_id: &str,
    key: &str,
    value: Option<Value>,
) -> Result<()> {
    let mut tx = app.db.begin().await?;
    let org = muster_store::orgs::get_in(&mut tx, org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let unit = muster_store::org_units::get_in(&mut tx, org_id, unit_id)
        .await?
        .ok_or(AppError::NotFound("organizational unit"))?;
    let mut policies = object(&unit.policies);
    let before = match &value {
        Some(v) => policies.insert(key.to_owned(), v.clone()),
        None => policies.remove(key),
    };
    if before == value {
        return Ok(()); // nothing changes, nothing to record
    }
    let text = Value::Object(policies).to_string();
    muster_store::org_units::set_policies(&mut tx, org_id, unit_id, &text, app.now_ms()).await?;
    muster_store::org_units::refresh(&mut tx, org_id, &org.settings).await?;
    let action = match &value {
        Some(_) => format!("policy.{key}_changed"),
        None => format!("policy.{key}_inherited"),
    };
    let ev = Event::new(org_id, &action)
        .target("org_unit", unit_id)
        .change(key, &before, &value)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}
