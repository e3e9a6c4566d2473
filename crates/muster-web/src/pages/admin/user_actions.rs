//! The lifecycle actions of a user's page, each behind a confirmation page
//! that says what will happen, carried out through the same use cases as
//! the REST API.

use super::{Chrome, Console};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::users::UserView;
use muster_core::lifecycle::{Facts, transition};
use muster_core::{LifecycleEvent, Permission};
use std::collections::HashMap;

type Fields = HashMap<String, String>;

/// A lifecycle action as the console offers it.
pub(super) struct Action {
    pub slug: &'static str,
    pub label: &'static str,
    /// The caller's roles allow it (an action the user's state does not
    /// allow is not listed at all).
    pub enabled: bool,
}

const ACTIONS: [(&str, &str, LifecycleEvent, &str); 6] = [
    (
        "suspend",
        "Suspend",
        LifecycleEvent::Suspend,
        "The user is signed out everywhere at once: every session, API token, pending invitation and reset link ends. They cannot sign in until you unsuspend them. Their groups, roles and history stay.",
    ),
    (
        "unsuspend",
        "Unsuspend",
        LifecycleEvent::Unsuspend,
        "The user can sign in again with their existing credentials. Sessions ended by the suspension stay ended.",
    ),
    (
        "unlock",
        "Unlock",
        LifecycleEvent::Unlock,
        "The lock from too many failed sign-ins is lifted now instead of at the end of the cool-down, and the failure counter starts again.",
    ),
    (
        "deactivate",
        "Deactivate",
        LifecycleEvent::Deactivate,
        "The user is signed out everywhere at once: every session, API token, pending invitation and reset link ends. They cannot sign in; their audit history stays. You can reactivate them later.",
    ),
    (
        "reactivate",
        "Reactivate",
        LifecycleEvent::Reactivate,
        "The account is restored with its groups and roles. A user with a password or a linked sign-in can sign in again; one without goes back to waiting for activation.",
    ),
    (
        "delete",
        "Delete",
        LifecycleEvent::Delete,
        "The user is deleted for good: profile, credentials, group memberships and role assignments are removed and cannot be restored. The audit history stays, with personal data made unreadable.",
    ),
];

pub(super) fn actions_for(c: &Console, u: &UserView) -> Vec<Action> {
    let may = c.may(Permission::UsersLifecycle);
    ACTIONS
        .iter()
        .filter(|(_, _, event, _)| {
            transition(
                u.state,
                *event,
                Facts {
                    has_credential: u.has_password,
                    legal_hold: false,
                },
            )
            .is_ok()
        })
        .map(|(slug, label, _, _)| Action {
            slug,
            label,
            enabled: may,
        })
        .collect()
}

#[derive(askama::Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage<'a> {
    chrome: &'a Chrome,
    user: UserView,
    slug: &'static str,
    label: &'static str,
    consequence: &'static str,
    /// Deleting asks the admin to type the user's email.
    type_to_confirm: bool,
    error: Option<String>,
}

const RESET_MFA: &str = "Every second factor of the user (authenticator apps, passkeys, email codes, recovery codes) is removed and the user is signed out everywhere. If the organization requires two-step verification, they set it up again at their next sign-in.";

const SIGN_OUT: &str = "Every session of the user ends at once, in every browser and app: each is refused from its very next request, and the user signs in again. API tokens are not sessions and keep working; deactivate the user to end those too.";

fn find_action(slug: &str) -> Option<(&'static str, &'static str, &'static str)> {
    if slug == "reset-mfa" {
        return Some(("reset-mfa", "Reset two-step verification", RESET_MFA));
    }
    if slug == "sign-out" {
        return Some(("sign-out", "Sign out everywhere", SIGN_OUT));
    }
    ACTIONS
        .iter()
        .find(|a| a.0 == slug)
        .map(|(s, l, _, c)| (*s, *l, *c))
}

pub async fn confirm(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let here = format!("/admin/users/{id}");
    let c = console!(s, headers, ctx, &here);
    confirm_page(&s, &c, &id, &action, StatusCode::OK, None).await
}

async fn confirm_page(
    s: &AppState,
    c: &Console,
    id: &str,
    action: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let Some((slug, label, consequence)) = find_action(action) else {
        return c.error_page(s, AppError::NotFound("action"));
    };
    let user = match muster_app::users::get(&s.app, &c.caller, &c.slug, id).await {
        Ok(u) => u,
        Err(e) => return c.error_page(s, e),
    };
    let page = ConfirmPage {
        chrome: c.chrome(),
        user,
        slug,
        label,
        consequence,
        type_to_confirm: slug == "delete",
        error,
    };
    c.send(s, super::render(status, &page))
}

/// Carries out a confirmed action through the same use case as the REST
/// API, then shows the user again (or the list, after a deletion).
pub async fn act(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<Fields>,
) -> Response {
    let here = format!("/admin/users/{id}");
    let c = console!(s, headers, ctx, &here);
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let result = if action == "reset-mfa" {
        muster_app::mfa::reset(&s.app, &c.caller, &c.slug, &id).await
    } else if action == "sign-out" {
        muster_app::sessions::end_all(&s.app, &c.caller, &c.slug, &id)
            .await
            .map(|_| ())
    } else {
        let Some((_, _, event, _)) = ACTIONS.iter().find(|a| a.0 == action) else {
            return c.error_page(&s, AppError::NotFound("action"));
        };
        if *event == LifecycleEvent::Delete {
            let typed = f.get("confirm_email").map(|v| v.trim().to_lowercase());
            let user = match muster_app::users::get(&s.app, &c.caller, &c.slug, &id).await {
                Ok(u) => u,
                Err(e) => return c.error_page(&s, e),
            };
            if typed.as_deref() != Some(user.email.to_lowercase().as_str()) {
                let msg = "Type the user's email address exactly to confirm the deletion.";
                return confirm_page(
                    &s,
                    &c,
                    &id,
                    &action,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(msg.into()),
                )
                .await;
            }
        }
        muster_app::users::transition(&s.app, &c.caller, &c.slug, &id, *event)
            .await
            .map(|_| ())
    };
    match result {
        Ok(()) if action == "delete" => super::see_other("/admin/users?done=deleted"),
        Ok(()) => super::see_other(&format!("/admin/users/{id}?done={action}")),
        // A refusal (wrong state, legal hold, step-up needed) is shown on
        // the user's page; nothing changed.
        Err(
            e @ (AppError::Transition(_)
            | AppError::Refused(_)
            | AppError::StepUpRequired(_)
            | AppError::Forbidden(_)
            | AppError::Conflict { .. }),
        ) => {
            let (status, text) = crate::error::page_message(e);
            super::user_page::show(&s, &c, &id, status, None, Some(text)).await
        }
        Err(e) => c.error_page(&s, e),
    }
}
