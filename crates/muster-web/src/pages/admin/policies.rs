//! The console's access policy: which networks, countries and device
//! operating systems may sign in, enforced the same way on every surface.
//! A policy that would shut out the admin's own request is saved only when
//! they confirm it.

use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::State;
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

fn render(
    s: &AppState,
    c: &Console,
    status: StatusCode,
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
        oses,
        may_write: c.may(Permission::PoliciesWrite),
        ask_confirm,
        notice,
        error,
    };
    c.send(s, super::render(status, &page))
}

pub async fn page(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap) -> Response {
    let c = console!(s, headers, ctx, "/admin/policies");
    match muster_app::signin::get_policy::<AccessPolicy>(&s.app, &c.caller, &c.slug, "access").await
    {
        Ok(p) => render(&s, &c, StatusCode::OK, Fields::of(&p), false, None, None),
        Err(e) => c.error_page(&s, e),
    }
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
    let opts = muster_app::guard::SaveOptions {
        confirm_lockout: f.confirm_lockout,
    };
    let saved = match f.policy() {
        Ok(p) => muster_app::guard::set_policy(&s.app, &c.caller, &c.slug, p, opts).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(p) => {
            let note = "The access policy is saved: it applies to every sign-in from now on.";
            render(
                &s,
                &c,
                StatusCode::OK,
                Fields::of(&p),
                false,
                Some(note.into()),
                None,
            )
        }
        Err(e @ AppError::Internal(_)) => c.error_page(&s, e),
        Err(e) => {
            let lockout =
                matches!(&e, AppError::Conflict { field, .. } if *field == "confirm_lockout");
            let (status, text) = crate::error::page_message(e);
            let text = if lockout {
                "This policy would refuse your own current sign-in. Check it, then tick the box below to save it anyway.".to_owned()
            } else {
                text
            };
            render(&s, &c, status, f, lockout, None, Some(text))
        }
    }
}
