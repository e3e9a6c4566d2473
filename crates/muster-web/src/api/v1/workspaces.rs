//! `/orgs/{org}/workspaces` and `/me/workspaces` (issue 7 §2, §4).

use crate::extract::{Auth, Json};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use muster_app::roles::AssignmentView;
use muster_app::workspaces::{
    Access, MemberView, Principal, RoleInput, WorkspaceInput, WorkspaceView,
};

#[utoipa::path(get, path = "/orgs/{org}/workspaces", tag = "workspaces", params(("org" = String, Path)),
    responses((status = 200, body = Vec<WorkspaceView>), (status = 403, body = crate::error::Problem)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<Vec<WorkspaceView>>, ApiError> {
    Ok(Json(muster_app::workspaces::list(&s.app, &c, &org).await?))
}

/// Creates a workspace (`groups.write`); Muster chooses its read-only code.
#[utoipa::path(post, path = "/orgs/{org}/workspaces", tag = "workspaces", params(("org" = String, Path)), request_body = WorkspaceInput,
    responses((status = 201, body = WorkspaceView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<WorkspaceInput>,
) -> Result<(StatusCode, Json<WorkspaceView>), ApiError> {
    let v = muster_app::workspaces::create(&s.app, &c, &org, b).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// A workspace by id or code.
#[utoipa::path(get, path = "/orgs/{org}/workspaces/{ws}", tag = "workspaces", params(("org" = String, Path), ("ws" = String, Path, description = "id or code")),
    responses((status = 200, body = WorkspaceView), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, ws)): Path<(String, String)>,
) -> Result<Json<WorkspaceView>, ApiError> {
    Ok(Json(
        muster_app::workspaces::get(&s.app, &c, &org, &ws).await?,
    ))
}

/// Renames a workspace; its code is read-only.
#[utoipa::path(patch, path = "/orgs/{org}/workspaces/{ws}", tag = "workspaces", params(("org" = String, Path), ("ws" = String, Path)), request_body = WorkspaceInput,
    responses((status = 200, body = WorkspaceView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn rename(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, ws)): Path<(String, String)>,
    Json(b): Json<WorkspaceInput>,
) -> Result<Json<WorkspaceView>, ApiError> {
    Ok(Json(
        muster_app::workspaces::rename(&s.app, &c, &org, &ws, b).await?,
    ))
}

/// Deletes a workspace and every role held in it (not the default one).
#[utoipa::path(delete, path = "/orgs/{org}/workspaces/{ws}", tag = "workspaces", params(("org" = String, Path), ("ws" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, ws)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::workspaces::delete(&s.app, &c, &org, &ws).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who holds roles in the workspace, directly or through groups.
#[utoipa::path(get, path = "/orgs/{org}/workspaces/{ws}/members", tag = "workspaces", params(("org" = String, Path), ("ws" = String, Path)),
    responses((status = 200, body = Vec<MemberView>), (status = 404, body = crate::error::Problem)))]
pub async fn members(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, ws)): Path<(String, String)>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    Ok(Json(
        muster_app::workspaces::members(&s.app, &c, &org, &ws).await?,
    ))
}

/// Adds a user to the workspace with a role (default `member`).
#[utoipa::path(put, path = "/orgs/{org}/workspaces/{ws}/members/{user_id}", tag = "workspaces",
    params(("org" = String, Path), ("ws" = String, Path), ("user_id" = String, Path)), request_body = RoleInput,
    responses((status = 201, body = AssignmentView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn add_member(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, ws, user)): Path<(String, String, String)>,
    Json(b): Json<RoleInput>,
) -> Result<(StatusCode, Json<AssignmentView>), ApiError> {
    let v = muster_app::workspaces::add(&s.app, &c, &org, &ws, Principal::User(user), b).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Takes the user's own roles in the workspace away.
#[utoipa::path(delete, path = "/orgs/{org}/workspaces/{ws}/members/{user_id}", tag = "workspaces",
    params(("org" = String, Path), ("ws" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn remove_member(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, ws, user)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::workspaces::remove(&s.app, &c, &org, &ws, Principal::User(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Links a group — typically one your IdP pushes over SCIM — to the
/// workspace with a role: its members, at any depth, are members of the
/// workspace with that role for as long as they are in the group.
#[utoipa::path(put, path = "/orgs/{org}/workspaces/{ws}/groups/{group_id}", tag = "workspaces",
    params(("org" = String, Path), ("ws" = String, Path), ("group_id" = String, Path)), request_body = RoleInput,
    responses((status = 201, body = AssignmentView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn link_group(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, ws, group)): Path<(String, String, String)>,
    Json(b): Json<RoleInput>,
) -> Result<(StatusCode, Json<AssignmentView>), ApiError> {
    let v = muster_app::workspaces::add(&s.app, &c, &org, &ws, Principal::Group(group), b).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Unlinks a group: its members lose the access it gave on their next request.
#[utoipa::path(delete, path = "/orgs/{org}/workspaces/{ws}/groups/{group_id}", tag = "workspaces",
    params(("org" = String, Path), ("ws" = String, Path), ("group_id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn unlink_group(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, ws, group)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::workspaces::remove(&s.app, &c, &org, &ws, Principal::Group(group)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a user may do in the workspace: whether it is a member, its roles
/// there and how it holds them, and its permissions there (read afresh on
/// every call).
#[utoipa::path(get, path = "/orgs/{org}/workspaces/{ws}/access/{user_id}", tag = "workspaces",
    params(("org" = String, Path), ("ws" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = Access), (status = 404, body = crate::error::Problem)))]
pub async fn access(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, ws, user)): Path<(String, String, String)>,
) -> Result<Json<Access>, ApiError> {
    Ok(Json(
        muster_app::workspaces::access(&s.app, &c, &org, &ws, &user).await?,
    ))
}

/// The signed-in user's workspaces and what it may do in each.
#[utoipa::path(get, path = "/me/workspaces", tag = "me", responses((status = 200, body = Vec<Access>), (status = 401, body = crate::error::Problem)))]
pub async fn mine(State(s): State<AppState>, Auth(c): Auth) -> Result<Json<Vec<Access>>, ApiError> {
    Ok(Json(muster_app::workspaces::mine(&s.app, &c).await?))
}

/// Invites an external collaborator into the workspace as a guest: with who
/// invited them recorded, a limited role there (default `member`), no
/// organization-wide role, and access that ends after `expires_in_days`.
#[utoipa::path(post, path = "/orgs/{org}/workspaces/{ws}/guests", tag = "workspaces", params(("org" = String, Path), ("ws" = String, Path)),
    request_body = muster_app::guests::GuestInput,
    responses((status = 201, body = muster_app::invitations::InviteReport), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn invite_guest(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, ws)): Path<(String, String)>,
    Json(b): Json<muster_app::guests::GuestInput>,
) -> Result<(StatusCode, Json<muster_app::invitations::InviteReport>), ApiError> {
    let r = muster_app::guests::invite(&s.app, &c, &org, &ws, b).await?;
    Ok((StatusCode::CREATED, Json(r)))
}
