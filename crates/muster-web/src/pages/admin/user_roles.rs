//! Adding and removing a user's own roles from their page in the console.
//! Roles reached through a group are changed on the group.

use super::Console;
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use muster_app::AppError;
use muster_app::roles::AssignmentInput;
use std::collections::HashMap;

async fn done(
    s: &AppState,
    c: &Console,
    user: &str,
    result: Result<(), AppError>,
    what: &str,
) -> Response {
    match result {
        Ok(()) => super::see_other(&format!("/admin/users/{user}?done={what}")),
        Err(e @ AppError::Internal(_)) => c.error_page(s, e),
        // Refused or invalid: the user's page again with why; nothing changed.
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            super::user_page::show(s, c, user, status, None, Some(text)).await
        }
    }
}

pub async fn add(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let c = console!(s, headers, ctx, &format!("/admin/users/{id}"));
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    let Some(role) = f.get("role").filter(|r| !r.is_empty()) else {
        let e = AppError::invalid("role", "choose a role to add");
        return done(&s, &c, &id, Err(e), "role-added").await;
    };
    let input = AssignmentInput {
        role: role.clone(),
        user_id: Some(id.clone()),
        group_id: None,
        scope: None,
    };
    let r = muster_app::roles::assign(&s.app, &c.caller, &c.slug, input)
        .await
        .map(|_| ());
    done(&s, &c, &id, r, "role-added").await
}

pub async fn remove(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, assignment)): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let c = console!(s, headers, ctx, &format!("/admin/users/{id}"));
    if let Some(res) = c.csrf_refusal(&s, f.get("csrf")) {
        return res;
    }
    // Only an assignment of this user: a forged form cannot reach another's.
    let mine = match muster_app::roles::of_user(&s.app, &c.caller, &c.slug, &id).await {
        Ok(held) => held
            .iter()
            .any(|h| !h.inherited && h.assignment_id == assignment),
        Err(e) => return c.error_page(&s, e),
    };
    let r = if mine {
        muster_app::roles::unassign(&s.app, &c.caller, &c.slug, &assignment).await
    } else {
        Err(AppError::NotFound("role assignment"))
    };
    done(&s, &c, &id, r, "role-removed").await
}
