//! `/orgs/{org}/roles` and `/orgs/{org}/role-assignments`.

use crate::extract::{Auth, Json, Query};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use muster_app::roles::{AssignmentInput, AssignmentView, RoleInput, RoleUpdate, RoleView};
use serde::Deserialize;

#[utoipa::path(get, path = "/orgs/{org}/roles", tag = "roles", params(("org" = String, Path)), responses((status = 200, body = Vec<RoleView>)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<Vec<RoleView>>, ApiError> {
    Ok(Json(muster_app::roles::list(&s.app, &c, &org).await?))
}

#[utoipa::path(post, path = "/orgs/{org}/roles", tag = "roles", params(("org" = String, Path)), request_body = RoleInput,
    responses((status = 201, body = RoleView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<RoleInput>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(muster_app::roles::create(&s.app, &c, &org, b).await?),
    ))
}

#[utoipa::path(get, path = "/orgs/{org}/roles/{id}", tag = "roles", params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = RoleView)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<RoleView>, ApiError> {
    Ok(Json(muster_app::roles::get(&s.app, &c, &org, &id).await?))
}

#[utoipa::path(patch, path = "/orgs/{org}/roles/{id}", tag = "roles", params(("org" = String, Path), ("id" = String, Path)), request_body = RoleUpdate, responses((status = 200, body = RoleView)))]
pub async fn update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Json(b): Json<RoleUpdate>,
) -> Result<Json<RoleView>, ApiError> {
    Ok(Json(
        muster_app::roles::update(&s.app, &c, &org, &id, b).await?,
    ))
}

#[utoipa::path(delete, path = "/orgs/{org}/roles/{id}", tag = "roles", params(("org" = String, Path), ("id" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::roles::delete(&s.app, &c, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AssignmentQuery {
    user_id: Option<String>,
    group_id: Option<String>,
}

#[utoipa::path(get, path = "/orgs/{org}/role-assignments", tag = "roles", params(("org" = String, Path), AssignmentQuery), responses((status = 200, body = Vec<AssignmentView>)))]
pub async fn list_assignments(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Query(q): Query<AssignmentQuery>,
) -> Result<Json<Vec<AssignmentView>>, ApiError> {
    Ok(Json(
        muster_app::roles::assignments(
            &s.app,
            &c,
            &org,
            q.user_id.as_deref(),
            q.group_id.as_deref(),
        )
        .await?,
    ))
}

/// Grants a role to a user or a group. The caller must hold every permission
/// of the role itself.
#[utoipa::path(post, path = "/orgs/{org}/role-assignments", tag = "roles", params(("org" = String, Path)), request_body = AssignmentInput,
    responses((status = 201, body = AssignmentView), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn assign(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<AssignmentInput>,
) -> Result<(StatusCode, Json<AssignmentView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(muster_app::roles::assign(&s.app, &c, &org, b).await?),
    ))
}

#[utoipa::path(delete, path = "/orgs/{org}/role-assignments/{id}", tag = "roles", params(("org" = String, Path), ("id" = String, Path)), responses((status = 204)))]
pub async fn unassign(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::roles::unassign(&s.app, &c, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
