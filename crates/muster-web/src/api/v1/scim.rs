//! `/orgs/{org}/scim-tokens` and `/orgs/{org}/scim-policy`: connecting an IdP.

use crate::extract::{Auth, Json};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use muster_app::scim::ScimPolicy;
use muster_app::scim::tokens::{CreatedScimToken, RotateInput, ScimTokenInput, ScimTokenView};

/// The organization's SCIM tokens. Secrets are never listed.
#[utoipa::path(get, path = "/orgs/{org}/scim-tokens", tag = "scim", params(("org" = String, Path)), responses((status = 200, body = Vec<ScimTokenView>)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<Vec<ScimTokenView>>, ApiError> {
    Ok(Json(
        muster_app::scim::tokens::list(&s.app, &c, &org).await?,
    ))
}

/// Creates a SCIM token for an IdP. The secret is in this answer only.
#[utoipa::path(post, path = "/orgs/{org}/scim-tokens", tag = "scim", params(("org" = String, Path)), request_body = ScimTokenInput,
    responses((status = 201, body = CreatedScimToken), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<ScimTokenInput>,
) -> Result<(StatusCode, Json<CreatedScimToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(muster_app::scim::tokens::create(&s.app, &c, &org, b).await?),
    ))
}

/// Revokes a SCIM token: the IdP is refused from its very next request.
#[utoipa::path(delete, path = "/orgs/{org}/scim-tokens/{id}", tag = "scim", params(("org" = String, Path), ("id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn revoke(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::scim::tokens::revoke(&s.app, &c, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a token with a new one; the old one keeps working for the overlap.
#[utoipa::path(post, path = "/orgs/{org}/scim-tokens/{id}/rotate", tag = "scim", params(("org" = String, Path), ("id" = String, Path)), request_body = RotateInput,
    responses((status = 201, body = CreatedScimToken), (status = 404, body = crate::error::Problem)))]
pub async fn rotate(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Json(b): Json<RotateInput>,
) -> Result<(StatusCode, Json<CreatedScimToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(muster_app::scim::tokens::rotate(&s.app, &c, &org, &id, b).await?),
    ))
}

/// What SCIM DELETE does, and what happens when the IdP creates a user whose
/// email belongs to a local account.
#[utoipa::path(get, path = "/orgs/{org}/scim-policy", tag = "scim", params(("org" = String, Path)), responses((status = 200, body = ScimPolicy)))]
pub async fn get_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<ScimPolicy>, ApiError> {
    Ok(Json(muster_app::scim::get_policy(&s.app, &c, &org).await?))
}

#[utoipa::path(put, path = "/orgs/{org}/scim-policy", tag = "scim", params(("org" = String, Path)), request_body = ScimPolicy,
    responses((status = 200, body = ScimPolicy), (status = 422, body = crate::error::Problem)))]
pub async fn set_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<ScimPolicy>,
) -> Result<Json<ScimPolicy>, ApiError> {
    Ok(Json(
        muster_app::scim::set_policy(&s.app, &c, &org, b).await?,
    ))
}
