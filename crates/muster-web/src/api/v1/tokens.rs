//! `/orgs/{org}/api-tokens`.

use crate::extract::{Auth, Json};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use muster_app::tokens::{CreatedToken, TokenInput, TokenView};

/// Your tokens; everyone's with `sessions.revoke`. Secrets are never listed.
#[utoipa::path(get, path = "/orgs/{org}/api-tokens", tag = "api-tokens", params(("org" = String, Path)), responses((status = 200, body = Vec<TokenView>)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(muster_app::tokens::list(&s.app, &c, &org).await?))
}

/// Creates a token acting as you. The secret is in this answer only.
#[utoipa::path(post, path = "/orgs/{org}/api-tokens", tag = "api-tokens", params(("org" = String, Path)), request_body = TokenInput,
    responses((status = 201, body = CreatedToken), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<TokenInput>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(muster_app::tokens::create(&s.app, &c, &org, None, b).await?),
    ))
}

/// Revokes a token: refused from the very next request.
#[utoipa::path(delete, path = "/orgs/{org}/api-tokens/{id}", tag = "api-tokens", params(("org" = String, Path), ("id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn revoke(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::tokens::revoke(&s.app, &c, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
