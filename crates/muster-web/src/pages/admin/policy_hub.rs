//! The console's policies: where each inheritable policy comes from down
//! the tree of organizational units, and the organization's session,
//! password, MFA and risk policies as forms (the access policy has its own
//! page). Each form is read into the policy's own type through serde, as a
//! REST body would be, and saved by the same use case as the REST API.

use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::mfa::MfaPolicy;
use muster_app::policies::PasswordPolicy;
use muster_app::risk::RiskPolicy;
use muster_app::signin::SessionPolicy;
use muster_core::Permission;
use serde_json::{Value, json};
use std::collections::HashMap;

type Fields = HashMap<String, String>;

/// The inheritable policies, in the order the table shows them.
const NAMES: [&str; 5] = ["password", "mfa", "session", "access", "risk"];

/// One unit of the tree: its depth, name, and for each policy whether the
/// unit sets it itself.
struct UnitRow {
    depth: usize,
    name: String,
    sets: Vec<bool>,
}

#[derive(askama::Template)]
#[template(path = "admin/policies_hub.html")]
struct Page<'a> {
    chrome: &'a Chrome,
    names: [&'static str; 5],
    units: Vec<UnitRow>,
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
    (
        "groups",
        "Members of chosen groups (set through the REST API)",
    ),
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

async fn show(
    s: &AppState,
    c: &Console,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let (app, caller, slug) = (&s.app, &c.caller, c.slug.as_str());
    let built = async {
        let password = muster_app::policies::get_password_policy(app, caller, slug).await?;
        let mfa: MfaPolicy = muster_app::signin::get_policy(app, caller, slug, "mfa").await?;
        let risk: RiskPolicy = muster_app::signin::get_policy(app, caller, slug, "risk").await?;
        Ok::<_, AppError>(Page {
            chrome: c.chrome(),
            names: NAMES,
            units: tree(muster_app::org_units::list(app, caller, slug).await?),
            session: muster_app::signin::get_policy(app, caller, slug, "session").await?,
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

pub async fn page(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap) -> Response {
    let c = console!(s, headers, ctx, "/admin/policies");
    show(&s, &c, StatusCode::OK, None, None).await
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

/// Saves one of the organization's policies from its form.
pub async fn save(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: String,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/policies");
    let mut f: Fields = HashMap::new();
    let mut methods: Vec<String> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        if k == "methods" {
            methods.push(v.into_owned());
        } else {
            f.insert(k.into_owned(), v.into_owned());
        }
    }
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let (app, caller, slug) = (&s.app, &c.caller, c.slug.as_str());
    let on = |k: &str| json!(f.get(k).is_some_and(|v| v == "yes"));
    let saved: Result<(), AppError> = async {
        match name.as_str() {
            "session" => {
                let cur: SessionPolicy = muster_app::signin::get_policy(app, caller, slug, "session").await?;
                let p = overlay(&cur, json!({"idle_minutes": number(&f, "idle_minutes"), "absolute_hours": number(&f, "absolute_hours")}))?;
                p.check()?;
                muster_app::signin::set_policy(app, caller, slug, "session", p).await.map(|_| ())
            }
            "password" => {
                let cur = muster_app::policies::get_password_policy(app, caller, slug).await?;
                let p = overlay(&cur, json!({"rule": text(&f, "rule"), "min_length": number(&f, "min_length")}))?;
                muster_app::policies::set_password_policy(app, caller, slug, p).await.map(|_| ())
            }
            "mfa" => {
                let cur: MfaPolicy = muster_app::signin::get_policy(app, caller, slug, "mfa").await?;
                let p = overlay(&cur, json!({"mode": text(&f, "mode"), "methods": methods, "step_up_minutes": number(&f, "step_up_minutes")}))?;
                muster_app::mfa::set_policy(app, caller, slug, p).await.map(|_| ())
            }
            "risk" => {
                let cur: RiskPolicy = muster_app::signin::get_policy(app, caller, slug, "risk").await?;
                let p = overlay(&cur, json!({"enabled": on("enabled"), "low": text(&f, "low"), "medium": text(&f, "medium"),
                    "high": text(&f, "high"), "new_device_email": on("new_device_email")}))?;
                muster_app::risk::set_policy(app, caller, slug, p).await.map(|_| ())
            }
            _ => Err(AppError::NotFound("policy")),
        }
    }
    .await;
    match saved {
        Ok(()) => {
            let note = format!(
                "The {name} policy is saved: it applies from the very next request, wherever a unit does not set its own."
            );
            show(&s, &c, StatusCode::OK, Some(note), None).await
        }
        Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show(
                &s,
                &c,
                status,
                None,
                Some(format!("The {name} policy was not saved: {text}")),
            )
            .await
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
