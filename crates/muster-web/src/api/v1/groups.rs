//! `/orgs/{org}/groups`: groups and their members.

use crate::extract::{Auth, Json, Query};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use muster_app::groups::{GroupInput, GroupView, MemberKind, MemberView};
use muster_app::paging::Page;
use serde::Deserialize;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/orgs/{org}/groups", tag = "groups", params(("org" = String, Path), PageQuery), responses((status = 200, body = Page<GroupView>)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<GroupView>>, ApiError> {
    Ok(Json(
        muster_app::groups::list(&s.app, &c, &org, q.cursor, q.limit).await?,
    ))
}

#[utoipa::path(post, path = "/orgs/{org}/groups", tag = "groups", params(("org" = String, Path)), request_body = GroupInput,
    responses((status = 201, body = GroupView), (status = 409, body = crate::error::Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<GroupInput>,
) -> Result<(StatusCode, Json<GroupView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(muster_app::groups::create(&s.app, &c, &org, b).await?),
    ))
}

#[utoipa::path(get, path = "/orgs/{org}/groups/{id}", tag = "groups", params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = GroupView), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<GroupView>, ApiError> {
    Ok(Json(muster_app::groups::get(&s.app, &c, &org, &id).await?))
}

#[utoipa::path(patch, path = "/orgs/{org}/groups/{id}", tag = "groups", params(("org" = String, Path), ("id" = String, Path)), request_body = GroupInput, responses((status = 200, body = GroupView)))]
pub async fn update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Json(b): Json<GroupInput>,
) -> Result<Json<GroupView>, ApiError> {
    Ok(Json(
        muster_app::groups::update(&s.app, &c, &org, &id, b).await?,
    ))
}

#[utoipa::path(delete, path = "/orgs/{org}/groups/{id}", tag = "groups", params(("org" = String, Path), ("id" = String, Path)), responses((status = 204)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::groups::delete(&s.app, &c, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/orgs/{org}/groups/{id}/members", tag = "groups", params(("org" = String, Path), ("id" = String, Path)), responses((status = 200, body = Vec<MemberView>)))]
pub async fn members(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    Ok(Json(
        muster_app::groups::members(&s.app, &c, &org, &id).await?,
    ))
}

fn status(changed: bool) -> StatusCode {
    if changed {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    }
}

/// Adds a user: 201 when added, 204 when already a member.
#[utoipa::path(put, path = "/orgs/{org}/groups/{id}/members/users/{user_id}", tag = "groups",
    params(("org" = String, Path), ("id" = String, Path), ("user_id" = String, Path)), responses((status = 201), (status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn add_user(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, m)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    Ok(status(
        muster_app::groups::add_member(&s.app, &c, &org, &id, MemberKind::User, &m).await?,
    ))
}

#[utoipa::path(delete, path = "/orgs/{org}/groups/{id}/members/users/{user_id}", tag = "groups",
    params(("org" = String, Path), ("id" = String, Path), ("user_id" = String, Path)), responses((status = 204)))]
pub async fn remove_user(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, m)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::groups::remove_member(&s.app, &c, &org, &id, MemberKind::User, &m).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Nests a group: 201 when added, 204 when already nested, 409 for a cycle.
#[utoipa::path(put, path = "/orgs/{org}/groups/{id}/members/groups/{group_id}", tag = "groups",
    params(("org" = String, Path), ("id" = String, Path), ("group_id" = String, Path)), responses((status = 201), (status = 204), (status = 409, body = crate::error::Problem)))]
pub async fn add_group(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, m)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    Ok(status(
        muster_app::groups::add_member(&s.app, &c, &org, &id, MemberKind::Group, &m).await?,
    ))
}

#[utoipa::path(delete, path = "/orgs/{org}/groups/{id}/members/groups/{group_id}", tag = "groups",
    params(("org" = String, Path), ("id" = String, Path), ("group_id" = String, Path)), responses((status = 204)))]
pub async fn remove_group(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, m)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::groups::remove_member(&s.app, &c, &org, &id, MemberKind::Group, &m).await?;
    Ok(StatusCode::NO_CONTENT)
}
