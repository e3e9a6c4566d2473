//! `/orgs/{org}/users`: create, read, list, edit, lifecycle, delete.

use crate::extract::{Auth, AuthForCreation, Json, Query};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use muster_app::AppError;
use muster_app::legal_holds::{LegalHold, PlaceHold};
use muster_app::paging::Page;
use muster_app::scheduler::{AccessDates, Schedule};
use muster_app::users::{ListParams, NewUser, UserView};
use muster_core::LifecycleEvent;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Case-insensitive search in email, user name and names.
    q: Option<String>,
    /// Only users in this lifecycle state.
    state: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 500; default 50.
    limit: Option<i64>,
    /// Only users in this organizational unit and the units below it.
    org_unit: Option<String>,
    /// Only users created this way: `signup`, `google`, `invitation`, `scim`,
    /// `admin`, `import`, `sso`, `guest`.
    source: Option<String>,
    /// Only users with (`true`) or without (`false`) a second factor.
    mfa_enrolled: Option<bool>,
    /// Only users holding a role in this workspace (id or code), themselves
    /// or through a group.
    workspace: Option<String>,
}

#[utoipa::path(get, path = "/orgs/{org}/users", tag = "users", params(("org" = String, Path), ListQuery),
    responses((status = 200, body = Page<UserView>), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<UserView>>, ApiError> {
    let p = ListParams {
        search: q.q,
        state: q.state,
        cursor: q.cursor,
        limit: q.limit,
        org_unit: q.org_unit,
        source: q.source,
        mfa_enrolled: q.mfa_enrolled,
        workspace: q.workspace,
    };
    Ok(Json(muster_app::users::list(&s.app, &c, &org, p).await?))
}

#[utoipa::path(post, path = "/orgs/{org}/users", tag = "users", params(("org" = String, Path)), request_body = NewUser,
    responses((status = 201, body = UserView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(s): State<AppState>,
    AuthForCreation(who): AuthForCreation,
    Path(org): Path<String>,
    Json(b): Json<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(muster_app::users::create_for(&s.app, who, &org, b).await?),
    ))
}

#[utoipa::path(get, path = "/orgs/{org}/users/{id}", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(muster_app::users::get(&s.app, &c, &org, &id).await?))
}

/// A JSON merge patch (RFC 7396) of `email`, `user_name` and `profile`.
/// Send `If-Match: "<version>"` to refuse the edit if the user changed meanwhile.
#[utoipa::path(patch, path = "/orgs/{org}/users/{id}", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses((status = 200, body = UserView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(patch): Json<Value>,
) -> Result<Json<UserView>, ApiError> {
    let if_version = match headers.get("if-match") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(|s| s.trim_matches('"'))
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| {
                    AppError::invalid("If-Match", "give the user's version, e.g. \"3\"")
                })?,
        ),
    };
    Ok(Json(
        muster_app::users::update(&s.app, &c, &org, &id, patch, if_version).await?,
    ))
}

/// Deletes a deactivated user, irreversibly. Its audit history stays.
#[utoipa::path(delete, path = "/orgs/{org}/users/{id}", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::users::transition(&s.app, &c, &org, &id, LifecycleEvent::Delete).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Suspend,
    Unsuspend,
    Deactivate,
    Reactivate,
    Unlock,
}

/// A lifecycle action. Suspend and deactivate end every session and token of
/// the user before answering.
#[utoipa::path(post, path = "/orgs/{org}/users/{id}/{action}", tag = "users",
    params(("org" = String, Path), ("id" = String, Path), ("action" = Action, Path)),
    responses((status = 200, body = UserView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn lifecycle(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, action)): Path<(String, String, String)>,
) -> Result<Json<UserView>, ApiError> {
    let event = match action.as_str() {
        "suspend" => LifecycleEvent::Suspend,
        "unsuspend" => LifecycleEvent::Unsuspend,
        "deactivate" => LifecycleEvent::Deactivate,
        "reactivate" => LifecycleEvent::Reactivate,
        "unlock" => LifecycleEvent::Unlock,
        _ => return Err(AppError::NotFound("action").into()),
    };
    let user = muster_app::users::transition(&s.app, &c, &org, &id, event).await?;
    Ok(Json(user.ok_or(AppError::NotFound("user"))?))
}

/// What the organization's IdP manages and will overwrite: each attribute it
/// last wrote over SCIM whose local value now differs.
#[utoipa::path(get, path = "/orgs/{org}/users/{id}/drift", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Vec<muster_app::scim::users::Drift>), (status = 404, body = crate::error::Problem)))]
pub async fn drift(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Vec<muster_app::scim::users::Drift>>, ApiError> {
    Ok(Json(
        muster_app::scim::users::drift(&s.app, &c, &org, &id).await?,
    ))
}

/// Whether the user is on legal hold, which blocks deletion.
#[utoipa::path(get, path = "/orgs/{org}/users/{id}/legal-hold", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = LegalHold), (status = 404, body = crate::error::Problem)))]
pub async fn legal_hold(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<LegalHold>, ApiError> {
    Ok(Json(
        muster_app::legal_holds::get(&s.app, &c, &org, &id).await?,
    ))
}

/// Places a legal hold (or restates its reason): until it is lifted the
/// user cannot be deleted by an admin, the IdP or the scheduler.
#[utoipa::path(put, path = "/orgs/{org}/users/{id}/legal-hold", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    request_body = PlaceHold,
    responses((status = 200, body = LegalHold), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn place_legal_hold(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Json(b): Json<PlaceHold>,
) -> Result<Json<LegalHold>, ApiError> {
    Ok(Json(
        muster_app::legal_holds::set(&s.app, &c, &org, &id, Some(b)).await?,
    ))
}

/// Lifts the legal hold.
#[utoipa::path(delete, path = "/orgs/{org}/users/{id}/legal-hold", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = LegalHold), (status = 404, body = crate::error::Problem)))]
pub async fn lift_legal_hold(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<LegalHold>, ApiError> {
    Ok(Json(
        muster_app::legal_holds::set(&s.app, &c, &org, &id, None).await?,
    ))
}

/// The user's pending start and end dates, and the dated transitions done.
#[utoipa::path(get, path = "/orgs/{org}/users/{id}/schedule", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Schedule), (status = 404, body = crate::error::Problem)))]
pub async fn schedule(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(
        muster_app::scheduler::get_schedule(&s.app, &c, &org, &id).await?,
    ))
}

/// Sets the user's start date (access is granted then) and end date (the
/// user is deactivated then); a date left out or `null` is cleared. Dates
/// must lie in the future.
#[utoipa::path(put, path = "/orgs/{org}/users/{id}/schedule", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    request_body = AccessDates,
    responses((status = 200, body = Schedule), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn set_schedule(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Json(b): Json<AccessDates>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(
        muster_app::scheduler::set_schedule(&s.app, &c, &org, &id, b).await?,
    ))
}
