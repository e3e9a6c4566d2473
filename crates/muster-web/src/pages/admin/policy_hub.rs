//! The console's policies: where each inheritable policy comes from down
//! the tree of organizational units, and the session, password, MFA and
//! risk policies as forms (the access policy has its own page) — the
//! organization's, or with `?unit=` one unit's, which then holds for its
//! subtree. Each form is read into the policy's own type through serde over
//! the value that holds there, as a REST body would be, and saved by the
//! same use case as the REST API.

use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::mfa::MfaPolicy;
use muster_app::org_units::policies::EffectivePolicy;
use muster_app::policies::PasswordPolicy;
use muster_app::risk::RiskPolicy;
use muster_app::signin::SessionPolicy;
use muster_core::Permission;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::HashMap;

type Fields = HashMap<String, String>;

/// The inheritable policies, in the order the table shows them.
const NAMES: [&str; 5] = ["password", "mfa", "session", "access", "risk"];

/// One unit of the tree: its depth, name, and for each policy whether the
/// unit sets it itself.
struct UnitRow {
    id: String,
    depth: usize,
    name: String,
    sets: Vec<bool>,
}

/// The unit whose policies the forms show and set, below the root: what
/// holds there and where each comes from.
pub(super) struct Here {
    pub(super) id: String,
    pub(super) name: String,
    held: EffectivePolicy,
}

impl Here {
    /// What holds in a unit, as the forms show it; `None` for the root
    /// (its policies are the organization's).
    pub(super) fn of(held: EffectivePolicy) -> Option<Self> {
        held.org_unit.parent_id.as_ref()?;
        Some(Self {
            id: held.org_unit.id.clone(),
            name: held.org_unit.name.clone(),
            held,
        })
    }

    /// The policy that holds in the unit, read into its type.
    pub(super) fn value<T: DeserializeOwned + Default>(&self, name: &str) -> T {
        self.held
            .policies
            .get(name)
            .and_then(|v| serde_json::from_value(v.value.clone()).ok())
            .unwrap_or_default()
    }

    pub(super) fn sets_own(&self, name: &str) -> bool {
        self.held
            .policies
            .get(name)
            .is_some_and(|v| v.source.org_unit_id.as_deref() == Some(self.id.as_str()))
    }

    /// Where the policy that holds here comes from, in words.
    pub(super) fn whence(&self, name: &str) -> String {
        let Some(v) = self.held.policies.get(name) else {
            return String::new();
        };
        match (v.source.level, v.source.org_unit_name.as_deref()) {
            _ if self.sets_own(name) => format!("{} sets its own.", self.name),
            ("org_unit", Some(unit)) => format!("Inherited from the unit {unit}."),
            ("organization", _) => "Inherited from the organization.".to_owned(),
            _ => "Inherited from the organization, which keeps Muster's default.".to_owned(),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "admin/policies_hub.html")]
struct Page<'a> {
    chrome: &'a Chrome,
    names: [&'static str; 5],
    units: Vec<UnitRow>,
    /// The unit the forms act on; the organization when absent.
    here: Option<Here>,
    /// `(id, name, chosen)` of the groups the MFA policy may name.
    groups: Vec<(String, String, bool)>,
    /// The risk policy's listed networks, one per line.
    deny_networks: String,
    session: SessionPolicy,
    password: PasswordPolicy,
    mfa: MfaPolicy,
    risk: RiskPolicy,
    /// The serde name of the password rule (`complexity`, `length`).
    rule: String,
    /// `(value, label, selected)` of each choice of the forms.
    modes: Vec<Choice>,
    methods: Vec<Choice>,
    /// For each risk level, what it asks for.
    levels: Vec<(&'static str, Vec<Choice>)>,
    may_write: bool,
    notice: Option<String>,
    error: Option<String>,
}

type Choice = (&'static str, &'static str, bool);

fn choices(options: &[(&'static str, &'static str)], on: impl Fn(&str) -> bool) -> Vec<Choice> {
    options.iter().map(|(v, l)| (*v, *l, on(v))).collect()
}

const MODES: [(&str, &str); 5] = [
    ("off", "Nobody: it is off"),
    ("optional", "Whoever set it up"),
    ("admins", "Everyone with an administrative role"),
    ("groups", "Members of the groups chosen below"),
    ("required", "Everyone"),
];
const METHODS: [(&str, &str); 3] = [
    ("totp", "Authenticator app"),
    ("email", "Emailed code"),
    ("passkey", "Passkey"),
];
const ASKS: [(&str, &str); 4] = [
    ("l1", "the password or SSO alone"),
    ("l2", "a second factor"),
    ("l3", "a passkey"),
    ("deny", "nothing: refuse the sign-in"),
];

/// The serde name of a policy's enum value (`l2`, `optional`…).
fn name_of(v: impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The units in tree order (each under its parent), with their depth.
fn tree(units: Vec<muster_app::org_units::OrgUnitView>) -> Vec<UnitRow> {
    let mut sorted = units;
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    sorted
        .into_iter()
        .map(|u| UnitRow {
            id: u.id.clone(),
            depth: u.path.len().saturating_sub(1),
            sets: NAMES
                .iter()
                .map(|n| u.parent_id.is_none() || u.policies_set.iter().any(|s| s == n))
                .collect(),
            name: if u.parent_id.is_none() {
                "The organization".to_owned()
            } else {
                u.name
            },
        })
        .collect()
}

/// A policy value that does not read back into its own type: cannot
/// happen with values Muster wrote, answered as bad input if it does.
pub(super) fn unreadable() -> AppError {
    AppError::invalid("policy", "the stored policy could not be read")
}

/// The policy that holds where the forms act: in the unit, or the
/// organization's own.
async fn current<T: DeserializeOwned + Default>(
    s: &AppState,
    c: &Console,
    here: Option<&Here>,
    name: &str,
) -> Result<T, AppError> {
    match (here, name) {
        (Some(h), _) => Ok(h.value(name)),
        (None, "password") => {
            let p = muster_app::policies::get_password_policy(&s.app, &c.caller, &c.slug).await?;
            serde_json::from_value(serde_json::to_value(p).unwrap_or(Value::Null))
                .map_err(|_| unreadable())
        }
        (None, _) => muster_app::signin::get_policy(&s.app, &c.caller, &c.slug, name).await,
    }
}

/// The unit `?unit=` names, when it is one below the root (the root's
/// policies are the organization's).
pub(super) async fn here_of(
    s: &AppState,
    c: &Console,
    unit: Option<&str>,
) -> Result<Option<Here>, AppError> {
    let Some(id) = unit.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let held = muster_app::org_units::policies::of_unit(&s.app, &c.caller, &c.slug, id).await?;
    Ok(Here::of(held))
}

async fn show(
    s: &AppState,
    c: &Console,
    status: StatusCode,
    unit: Option<&str>,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let (app, caller, slug) = (&s.app, &c.caller, c.slug.as_str());
    let built = async {
        let here = here_of(s, c, unit).await?;
        let password: PasswordPolicy = current(s, c, here.as_ref(), "password").await?;
        let mfa: MfaPolicy = current(s, c, here.as_ref(), "mfa").await?;
        let risk: RiskPolicy = current(s, c, here.as_ref(), "risk").await?;
        let groups = muster_app::groups::list(app, caller, slug, None, Some(500))
            .await?
            .items
            .into_iter()
            .map(|g| {
                let on = mfa.groups.contains(&g.id);
                (g.id, g.name, on)
            })
            .collect();
        Ok::<_, AppError>(Page {
            chrome: c.chrome(),
            names: NAMES,
            units: tree(muster_app::org_units::list(app, caller, slug).await?),
            session: current(s, c, here.as_ref(), "session").await?,
            here,
            groups,
            deny_networks: risk.deny_networks.join("\n"),
            rule: name_of(password.rule),
            modes: choices(&MODES, |v| v == name_of(mfa.mode)),
            methods: choices(&METHODS, |v| mfa.methods.iter().any(|m| name_of(m) == v)),
            levels: [
                ("low", risk.low),
                ("medium", risk.medium),
                ("high", risk.high),
            ]
            .into_iter()
            .map(|(level, asks)| (level, choices(&ASKS, |v| v == name_of(asks))))
            .collect(),
            password,
            mfa,
            risk,
            may_write: c.may(Permission::PoliciesWrite),
            notice,
            error,
        })
    };
    match built.await {
        Ok(page) => c.send(s, super::render(status, &page)),
        Err(e) => c.error_page(s, e),
    }
}

#[derive(serde::Deserialize)]
pub struct Where {
    pub(super) unit: Option<String>,
}

pub async fn page(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(w): Query<Where>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/policies");
    show(&s, &c, StatusCode::OK, w.unit.as_deref(), None, None).await
}

/// The current policy with the form's fields laid over it, read back into
/// its type: a field the form does not show (the MFA policy's groups, the
/// risk policy's networks) keeps its value, and a bad value is refused by
/// the type as a REST body would be.
fn overlay<T: serde::Serialize + serde::de::DeserializeOwned>(
    current: &T,
    fields: Value,
) -> Result<T, AppError> {
    let mut v = serde_json::to_value(current).unwrap_or(Value::Null);
    if let (Value::Object(m), Value::Object(f)) = (&mut v, fields) {
        m.extend(f);
    }
    serde_json::from_value(v)
        .map_err(|e| AppError::invalid("policy", muster_app::users::clean_serde(&e.to_string())))
}

fn number(f: &Fields, k: &str) -> Value {
    match f.get(k).map(|v| v.trim().parse::<u64>()) {
        Some(Ok(n)) => json!(n),
        // Left as typed: the type refuses it with the field's name.
        _ => json!(f.get(k).cloned().unwrap_or_default()),
    }
}

fn text(f: &Fields, k: &str) -> Value {
    json!(f.get(k).cloned().unwrap_or_default())
}

/// The lines (or comma-separated entries) of a text area.
fn lines(f: &Fields, k: &str) -> Value {
    let v = f.get(k).map(String::as_str).unwrap_or_default();
    json!(
        v.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
            .collect::<Vec<_>>()
    )
}

/// The policy a form describes, laid over the one that holds where it acts
/// and checked as its REST endpoint checks it.
async fn from_form(
    s: &AppState,
    c: &Console,
    here: Option<&Here>,
    name: &str,
    f: &Fields,
    lists: &HashMap<String, Vec<String>>,
) -> Result<Value, AppError> {
    let on = |k: &str| json!(f.get(k).is_some_and(|v| v == "yes"));
    let list = |k: &str| json!(lists.get(k).cloned().unwrap_or_default());
    let p = match name {
        "session" => {
            let cur: SessionPolicy = current(s, c, here, name).await?;
            let p = overlay(
                &cur,
                json!({"idle_minutes": number(f, "idle_minutes"), "absolute_hours": number(f, "absolute_hours")}),
            )?;
            p.check()?;
            serde_json::to_value(p)
        }
        "password" => {
            let cur: PasswordPolicy = current(s, c, here, name).await?;
            let p = overlay(
                &cur,
                json!({"rule": text(f, "rule"), "min_length": number(f, "min_length")}),
            )?;
            serde_json::to_value(p)
        }
        "mfa" => {
            let cur: MfaPolicy = current(s, c, here, name).await?;
            let p: MfaPolicy = overlay(
                &cur,
                json!({"mode": text(f, "mode"), "methods": list("methods"),
                "groups": list("groups"), "step_up_minutes": number(f, "step_up_minutes")}),
            )?;
            serde_json::to_value(p)
        }
        "risk" => {
            let cur: RiskPolicy = current(s, c, here, name).await?;
            let p: RiskPolicy = overlay(
                &cur,
                json!({"enabled": on("enabled"), "low": text(f, "low"), "medium": text(f, "medium"),
                "high": text(f, "high"), "deny_networks": lines(f, "deny_networks"), "new_device_email": on("new_device_email")}),
            )?;
            serde_json::to_value(p)
        }
        _ => return Err(AppError::NotFound("policy")),
    };
    p.map_err(|_| unreadable())
}

/// Stores a policy where the form acts: the organization's through its own
/// endpoint's use case, a unit's through the units' one.
async fn store(
    s: &AppState,
    c: &Console,
    here: Option<&Here>,
    name: &str,
    value: Option<Value>,
) -> Result<(), AppError> {
    let (app, caller, slug) = (&s.app, &c.caller, c.slug.as_str());
    if let Some(h) = here {
        let opts = muster_app::guard::SaveOptions::default(); // only access policies lock out
        return muster_app::org_units::policies::set(app, caller, slug, &h.id, name, value, &opts)
            .await
            .map(|_| ());
    }
    let value = value.ok_or(AppError::NotFound("policy"))?;
    fn typed<T: DeserializeOwned>(v: Value) -> Result<T, AppError> {
        serde_json::from_value(v).map_err(|_| unreadable())
    }
    match name {
        "session" => {
            let p: SessionPolicy = typed(value)?;
            muster_app::signin::set_policy(app, caller, slug, "session", p)
                .await
                .map(|_| ())
        }
        "password" => muster_app::policies::set_password_policy(app, caller, slug, typed(value)?)
            .await
            .map(|_| ()),
        "mfa" => muster_app::mfa::set_policy(app, caller, slug, typed(value)?)
            .await
            .map(|_| ()),
        "risk" => muster_app::risk::set_policy(app, caller, slug, typed(value)?)
            .await
            .map(|_| ()),
        _ => Err(AppError::NotFound("policy")),
    }
}

/// Saves one policy from its form — the organization's, or the unit's the
/// form names — or, with `inherit`, lets the unit inherit it again.
pub async fn save(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: String,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/policies");
    let mut f: Fields = HashMap::new();
    let mut lists: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        if k == "methods" || k == "groups" {
            lists
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        } else {
            f.insert(k.into_owned(), v.into_owned());
        }
    }
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let unit = f.get("unit").cloned();
    let inherit = f.get("inherit").is_some_and(|v| v == "yes");
    let saved: Result<String, AppError> = async {
        let here = here_of(&s, &c, unit.as_deref()).await?;
        let whose = here.as_ref().map_or("the organization".to_owned(), |h| {
            format!(
                "{} and the units below it that do not set their own",
                h.name
            )
        });
        if inherit && here.is_some() {
            store(&s, &c, here.as_ref(), &name, None).await?;
            return Ok(format!(
                "The {name} policy is inherited again: {whose} follow the level above."
            ));
        }
        let value = from_form(&s, &c, here.as_ref(), &name, &f, &lists).await?;
        store(&s, &c, here.as_ref(), &name, Some(value)).await?;
        Ok(format!(
            "The {name} policy is saved: it holds for {whose} from the very next request."
        ))
    }
    .await;
    match saved {
        Ok(note) => show(&s, &c, StatusCode::OK, unit.as_deref(), Some(note), None).await,
        Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            let text = format!("The {name} policy was not saved: {text}");
            show(&s, &c, status, unit.as_deref(), None, Some(text)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_overlays_the_policy_and_its_type_refuses_bad_values() {
        let cur = RiskPolicy {
            deny_networks: vec!["10.0.0.0/8".into()],
            ..RiskPolicy::default()
        };
        let p: RiskPolicy = overlay(&cur, json!({"low": "l2"})).unwrap();
        assert_eq!(
            p.deny_networks, cur.deny_networks,
            "fields the form lacks stay"
        );
        assert_eq!(name_of(p.low), "l2");
        assert!(overlay(&cur, json!({"low": "sometimes"})).is_err());
        let s: Result<SessionPolicy, _> =
            overlay(&SessionPolicy::default(), json!({"idle_minutes": "ten"}));
        assert!(s.is_err());
    }
}
