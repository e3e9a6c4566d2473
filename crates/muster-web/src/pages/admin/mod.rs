//! The admin console under `/admin` (issue 8): server-rendered pages for the
//! owners and admins of an organization, over the same use cases as the
//! REST API. A signed-in person sees the console of their own organization;
//! what their roles may not read is left out, what they may read but not
//! change is shown disabled, and the use case checks again on every request
//! (the page never decides alone).

/// The console of a request (`Console::of`), or return the response that
/// ends it there: to sign in first, or a refusal.
macro_rules! console {
    ($s:expr, $headers:expr, $ctx:expr, $here:expr) => {
        match Console::of(&$s, &$headers, $ctx, $here).await {
            Ok(c) => c,
            Err(res) => return res,
        }
    };
}

mod audit;
mod dashboard;
mod groups;
mod invitations;
mod policies;
mod policy_hub;
mod roles;
mod scim;
mod step_up;
mod structure;
mod user_actions;
mod user_page;
mod user_roles;
mod users;
mod webhooks;

use super::{Csrf, csrf_refused, page_safety, readable, render, see_other};
use crate::AppState;
use crate::error::page_message;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use muster_app::{AppError, Caller, Principal};
use muster_core::Permission;
use muster_core::audit::Context;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard::page))
        .route("/admin/users", get(users::list))
        .route("/admin/users.csv", get(users::export))
        .route("/admin/users/{id}", get(user_page::detail))
        .route(
            "/admin/users/{id}/confirm/{action}",
            get(user_actions::confirm),
        )
        .route("/admin/users/{id}/do/{action}", post(user_actions::act))
        .route("/admin/users/{id}/roles", post(user_roles::add))
        .route(
            "/admin/users/{id}/roles/{assignment}/remove",
            post(user_roles::remove),
        )
        .route(
            "/admin/invitations",
            get(invitations::page).post(invitations::invite),
        )
        .route("/admin/invitations/{id}/{action}", post(invitations::act))
        .route("/admin/groups", get(groups::list).post(groups::create))
        .route("/admin/groups/{id}", get(groups::group))
        .route("/admin/groups/{id}/{action}", post(groups::change))
        .route("/admin/structure", get(structure::page))
        .route("/admin/structure/{action}", post(structure::change))
        .route("/admin/workspaces/{id}", get(structure::workspace))
        .route(
            "/admin/workspaces/{id}/{action}",
            post(structure::workspace_change),
        )
        .route("/admin/roles", get(roles::list).post(roles::create))
        .route("/admin/roles/preview", post(roles::preview))
        .route("/admin/roles/{id}", get(roles::role))
        .route("/admin/roles/{id}/{action}", post(roles::change))
        .route("/admin/policies", get(policy_hub::page))
        .route(
            "/admin/policies/access",
            get(policies::page).post(policies::save),
        )
        .route("/admin/policies/{name}", post(policy_hub::save))
        .route("/admin/step-up", get(step_up::page).post(step_up::prove))
        .route("/admin/step-up/email", post(step_up::email))
        .route(
            "/admin/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route("/admin/webhooks/{id}", get(webhooks::endpoint))
        .route("/admin/webhooks/{id}/{action}", post(webhooks::change))
        .route("/admin/audit", get(audit::list))
        .route("/admin/audit/{id}", get(audit::event))
        .route("/admin/scim", get(scim::page))
        .route("/admin/scim/tokens", post(scim::create))
        .route("/admin/scim/tokens/{id}/{action}", post(scim::act))
}

/// A part of a page that needs a permission the caller may lack (often
/// organization-wide): hidden (`None`) when the caller's role does not
/// reach it, while the rest of the page shows.
pub(super) fn org_wide<T>(r: Result<T, AppError>) -> Result<Option<T>, AppError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(AppError::Forbidden(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One entry of the console's navigation.
pub(crate) struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every console page shows around its content.
pub(crate) struct Chrome {
    pub org_name: String,
    pub me: String,
    pub csrf: String,
    pub nav: Vec<NavItem>,
    /// Changes need a second factor proved recently and this session has
    /// none: where to prove one (and come back).
    pub step_up: Option<StepUp>,
}

pub(crate) enum StepUp {
    /// `/admin/step-up?next=…`
    Prove(String),
    /// The admin has no second factor yet: set one up on the account page.
    Enrol,
}

impl Chrome {
    pub fn step_up_href(&self) -> Option<&str> {
        match &self.step_up {
            Some(StepUp::Prove(href)) => Some(href),
            _ => None,
        }
    }

    pub fn must_enrol(&self) -> bool {
        matches!(self.step_up, Some(StepUp::Enrol))
    }
}

/// A signed-in administrator, the organization they run, and their browser's
/// CSRF token.
pub(crate) struct Console {
    pub caller: Caller,
    pub slug: String,
    org_id: String,
    pub csrf: Csrf,
    chrome: Chrome,
}

/// The sections of the console and the permission that shows each one.
const SECTIONS: [(&str, &str, Option<Permission>); 10] = [
    ("/admin", "Dashboard", None),
    ("/admin/users", "Users", Some(Permission::UsersRead)),
    (
        "/admin/invitations",
        "Invitations",
        Some(Permission::UsersRead),
    ),
    ("/admin/groups", "Groups", Some(Permission::UsersRead)),
    ("/admin/roles", "Roles", Some(Permission::UsersRead)),
    (
        "/admin/structure",
        "Units and workspaces",
        Some(Permission::UsersRead),
    ),
    ("/admin/policies", "Policies", Some(Permission::UsersRead)),
    ("/admin/scim", "SCIM", Some(Permission::ScimManage)),
    (
        "/admin/webhooks",
        "Webhooks",
        Some(Permission::WebhooksManage),
    ),
    ("/admin/audit", "Audit log", Some(Permission::AuditRead)),
];

impl Console {
    /// The person behind the request's session, if they administer anything;
    /// otherwise the response to send (sign in first, or a refusal).
    pub async fn of(
        s: &AppState,
        headers: &HeaderMap,
        ctx: Context,
        here: &str,
    ) -> Result<Self, Response> {
        let Some(caller) = super::account::signed_in(s, headers, ctx).await else {
            let enc: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
            return Err(see_other(&format!("/login?next={enc}")));
        };
        let (slug, org_id, email) = match &caller.principal {
            Principal::User {
                org_slug,
                org_id,
                email,
                ..
            } => (org_slug.clone(), org_id.clone(), email.clone()),
            _ => return Err(refusal()),
        };
        let c = Self {
            csrf: Csrf::of(headers),
            chrome: Chrome {
                org_name: String::new(),
                me: email,
                csrf: String::new(),
                nav: Vec::new(),
                step_up: None,
            },
            caller,
            slug,
            org_id,
        };
        if !Permission::ALL.into_iter().any(|p| c.may(p)) {
            return Err(refusal());
        }
        let nav = SECTIONS
            .iter()
            .filter(|(_, _, p)| p.is_none_or(|p| c.may(p)))
            .map(|(href, label, _)| NavItem {
                href,
                label,
                current: *href == "/admin" && here == "/admin"
                    || *href != "/admin" && here.starts_with(href),
            })
            .collect();
        let org_name = muster_app::orgs::public_name(&s.app, &c.slug)
            .await
            .unwrap_or_else(|| c.slug.clone());
        let csrf = c.csrf.token.clone();
        let step_up = c.step_up(s, here).await;
        Ok(Self {
            chrome: Chrome {
                org_name,
                csrf,
                nav,
                step_up,
                ..c.chrome
            },
            ..c
        })
    }

    /// Whether this session must prove a second factor before a change (the
    /// MFA policy is on and none was proved within the step-up window), for
    /// a caller whose roles change anything at all.
    async fn step_up(&self, s: &AppState, here: &str) -> Option<StepUp> {
        let needs = match &self.caller.principal {
            Principal::User {
                session: Some(x), ..
            } => x.admin_needs_mfa && x.recent_level < 2,
            _ => false,
        };
        if !needs
            || !Permission::ALL
                .into_iter()
                .any(|p| p.changes() && self.may(p))
        {
            return None;
        }
        let enrolled = muster_app::mfa::my_status(&s.app, &self.caller)
            .await
            .is_ok_and(|m| !m.factors.is_empty());
        Some(if enrolled {
            let enc: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
            StepUp::Prove(format!("/admin/step-up?next={enc}"))
        } else {
            StepUp::Enrol
        })
    }

    /// Whether any of the caller's roles grants `perm` somewhere in the
    /// organization (a role scoped to an OU counts: the use case narrows).
    /// A permission that needs a fresh second factor still counts: the
    /// action then asks for it.
    pub fn may(&self, perm: Permission) -> bool {
        !matches!(
            muster_app::caller::reach(&self.caller, &self.org_id, perm),
            Err(AppError::Forbidden(_))
        )
    }

    pub fn chrome(&self) -> &Chrome {
        &self.chrome
    }

    /// Sends `res` with the CSRF cookie when this browser had none.
    pub fn send(&self, s: &AppState, res: Response) -> Response {
        self.csrf.send(&s.public_url, res)
    }

    /// The refusal page when a submitted form does not carry this
    /// browser's CSRF token; `None` when it does.
    pub fn csrf_refusal(&self, s: &AppState, submitted: Option<&String>) -> Option<Response> {
        (!self.csrf.accepts(submitted)).then(|| csrf_refused(s, &self.csrf))
    }

    /// The page for an error of a use case, inside the console.
    pub fn error_page(&self, s: &AppState, e: AppError) -> Response {
        let (status, text) = page_message(e);
        let page = ConsoleMessage {
            chrome: &self.chrome,
            heading: match status {
                StatusCode::NOT_FOUND => "Not found",
                StatusCode::FORBIDDEN => "Not allowed",
                _ => "That did not work",
            },
            text,
        };
        self.send(s, render(status, &page))
    }

    /// The user with exactly this email in the caller's organization: a
    /// form names people by address.
    pub async fn user_by_email(&self, s: &AppState, email: &str) -> Result<String, AppError> {
        let p = muster_app::users::ListParams {
            search: Some(email.to_owned()),
            limit: Some(20),
            ..Default::default()
        };
        muster_app::users::list(&s.app, &self.caller, &self.slug, p)
            .await?
            .items
            .into_iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
            .map(|u| u.id)
            .ok_or_else(|| {
                AppError::invalid(
                    "email",
                    format!("no user of this organization has the address {email}"),
                )
            })
    }
}

#[derive(askama::Template)]
#[template(path = "admin/message.html")]
struct ConsoleMessage<'a> {
    chrome: &'a Chrome,
    heading: &'static str,
    text: String,
}

fn refusal() -> Response {
    let mut res = super::message(
        StatusCode::FORBIDDEN,
        "No access to the admin console",
        "The console is for people who administer an organization. Your account has no administrative role; ask an owner of your organization.",
    );
    page_safety(res.headers_mut());
    res
}
