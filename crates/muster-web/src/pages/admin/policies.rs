//! The console's access policy: which networks, countries and device
//! operating systems may sign in, enforced the same way on every surface.
//! A policy that would shut out the admin's own request is saved only when
//! they confirm it. With `?unit=` the page shows and sets one unit's own
//! access policy, which replaces the organization's for its subtree.

use super::policy_hub::{Here, Where, here_of, unreadable};
use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_core::Permission;
use muster_core::access_policy::{AccessPolicy, DeviceOs, ListRule, OsRule};

const OSES: [DeviceOs; 6] = [
    DeviceOs::Windows,
    DeviceOs::Macos,
    DeviceOs::Ios,
    DeviceOs::Android,
    DeviceOs::Linux,
    DeviceOs::Chromeos,
];

#[derive(askama::Template)]
#[template(path = "admin/policies.html")]
struct Page<'a> {
    chrome: &'a Chrome,
    f: Fields,
    /// The unit whose own policy the form sets; the organization's if none.
    here: Option<Here>,
    /// `(os, allowed, denied)` for the checkboxes.
    oses: Vec<(&'static str, bool, bool)>,
    may_write: bool,
    /// The last save would shut the admin out: offer to confirm.
    ask_confirm: bool,
    notice: Option<String>,
    error: Option<String>,
}

/// The form as typed: lists one entry per line (or comma-separated).
#[derive(Default)]
struct Fields {
    networks_allow: String,
    networks_deny: String,
    countries_allow: String,
    countries_deny: String,
    os_allow: Vec<String>,
    os_deny: Vec<String>,
    confirm_lockout: bool,
    unit: Option<String>,
    inherit: bool,
}

impl Fields {
    fn of(p: &AccessPolicy) -> Self {
        let os = |v: &[DeviceOs]| v.iter().map(|o| o.as_str().to_owned()).collect();
        Self {
            networks_allow: p.networks.allow.join("\n"),
            networks_deny: p.networks.deny.join("\n"),
            countries_allow: p.countries.allow.join("\n"),
            countries_deny: p.countries.deny.join("\n"),
            os_allow: os(&p.device_os.allow),
            os_deny: os(&p.device_os.deny),
            confirm_lockout: false,
            unit: None,
            inherit: false,
        }
    }

    fn parse(body: &str) -> (Self, Option<String>) {
        let mut f = Self::default();
        let mut csrf = None;
        for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
            let v = v.into_owned();
            match k.as_ref() {
                "networks_allow" => f.networks_allow = v,
                "networks_deny" => f.networks_deny = v,
                "countries_allow" => f.countries_allow = v,
                "countries_deny" => f.countries_deny = v,
                "os_allow" => f.os_allow.push(v),
                "os_deny" => f.os_deny.push(v),
                "confirm_lockout" => f.confirm_lockout = v == "yes",
                "unit" => f.unit = Some(v).filter(|u| !u.is_empty()),
                "inherit" => f.inherit = v == "yes",
                "csrf" => csrf = Some(v),
                _ => {}
            }
        }
        (f, csrf)
    }

    /// The policy the form describes; an unknown OS is bad input.
    fn policy(&self) -> Result<AccessPolicy, AppError> {
        let list = |s: &str| -> Vec<String> {
            s.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let os = |v: &[String]| -> Result<Vec<DeviceOs>, AppError> {
            v.iter()
                .map(|name| {
                    OSES.into_iter()
                        .find(|o| o.as_str() == name)
                        .ok_or_else(|| {
                            AppError::invalid(
                                "device_os",
                                format!("unknown operating system '{name}'"),
                            )
                        })
                })
                .collect()
        };
        Ok(AccessPolicy {
            networks: ListRule {
                allow: list(&self.networks_allow),
                deny: list(&self.networks_deny),
            },
            countries: ListRule {
                allow: list(&self.countries_allow),
                deny: list(&self.countries_deny),
            },
            device_os: OsRule {
                allow: os(&self.os_allow)?,
                deny: os(&self.os_deny)?,
            },
        })
    }
}

#[allow(clippy::too_many_arguments)] // one page, its parts as they vary
fn render(
    s: &AppState,
    c: &Console,
    status: StatusCode,
    here: Option<Here>,
    f: Fields,
    ask_confirm: bool,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let oses = OSES
        .iter()
        .map(|o| {
            let name = o.as_str();
            (
                name,
                f.os_allow.iter().any(|v| v == name),
                f.os_deny.iter().any(|v| v == name),
            )
        })
        .collect();
    let page = Page {
        chrome: c.chrome(),
        f,
        here,
        oses,
        may_write: c.may(Permission::PoliciesWrite),
        ask_confirm,
        notice,
        error,
    };
    c.send(s, super::render(status, &page))
}

pub async fn page(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(w): Query<Where>,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/policies");
    let held = async {
        match here_of(&s, &c, w.unit.as_deref()).await? {
            Some(h) => Ok((h.value::<AccessPolicy>("access"), Some(h))),
            None => {
                muster_app::signin::get_policy::<AccessPolicy>(&s.app, &c.caller, &c.slug, "access")
                    .await
                    .map(|p| (p, None))
            }
        }
    };
    match held.await {
        Ok((p, here)) => render(
            &s,
            &c,
            StatusCode::OK,
            here,
            Fields::of(&p),
            false,
            None,
            None,
        ),
        Err(e) => c.error_page(&s, e),
    }
}

/// Saves what the form describes where it acts: the organization's policy
/// or the unit's own (each with the lockout check) — or lets the unit
/// inherit again. Returns the policy that now holds there and, for a unit,
/// what holds in it as `set` answers it (where each policy comes from).
async fn store(
    s: &AppState,
    c: &Console,
    here: Option<&Here>,
    f: &Fields,
) -> Result<(AccessPolicy, Option<Here>), AppError> {
    let (app, caller, slug) = (&s.app, &c.caller, c.slug.as_str());
    let opts = || muster_app::guard::SaveOptions {
        confirm_lockout: f.confirm_lockout,
    };
    let Some(h) = here else {
        let p = muster_app::guard::set_policy(app, caller, slug, f.policy()?, opts()).await?;
        return Ok((p, None));
    };
    let value = if f.inherit {
        None
    } else {
        Some(serde_json::to_value(f.policy()?).map_err(|_| unreadable())?)
    };
    let held =
        muster_app::org_units::policies::set(app, caller, slug, &h.id, "access", value, &opts())
            .await?;
    let p = held
        .policies
        .get("access")
        .and_then(|v| serde_json::from_value(v.value.clone()).ok())
        .ok_or_else(unreadable)?;
    Ok((p, Here::of(held)))
}

pub async fn save(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: String,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/policies");
    let (f, csrf) = Fields::parse(&body);
    if let Some(res) = c.csrf_refusal(&s, csrf.as_ref()) {
        return res;
    }
    let here = match here_of(&s, &c, f.unit.as_deref()).await {
        Ok(h) => h,
        Err(e) => return c.error_page(&s, e),
    };
    match store(&s, &c, here.as_ref(), &f).await {
        Ok((p, now)) => {
            let note = match &here {
                None => "The access policy is saved: it applies to every sign-in from now on."
                    .to_owned(),
                Some(h) if f.inherit => format!("{} inherits the access policy again.", h.name),
                Some(h) => format!(
                    "The access policy of {} is saved: it holds for its users, and those of the units below that do not set their own, from now on.",
                    h.name
                ),
            };
            render(
                &s,
                &c,
                StatusCode::OK,
                now,
                Fields::of(&p),
                false,
                Some(note),
                None,
            )
        }
        Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => c.error_page(&s, e),
        Err(e) => {
            let lockout =
                matches!(&e, AppError::Conflict { field, .. } if *field == "confirm_lockout");
            let (status, text) = crate::error::page_message(e);
            let text = if lockout {
                "This policy would refuse your own current sign-in. Check it, then tick the box below to save it anyway.".to_owned()
            } else {
                text
            };
            render(&s, &c, status, here, f, lockout, None, Some(text))
        }
    }
}
