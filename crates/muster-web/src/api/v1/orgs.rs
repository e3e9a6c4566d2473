//! `/me` and `/orgs/{org}`.

use crate::extract::{Auth, Json};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use muster_app::orgs::OrgView;
use muster_app::policies::PasswordPolicy;
use muster_app::users::UserView;
use serde::Deserialize;

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "me", responses((status = 200, body = UserView), (status = 401, body = crate::error::Problem)))]
pub async fn me(State(s): State<AppState>, Auth(c): Auth) -> Result<Json<UserView>, ApiError> {
    Ok(Json(muster_app::users::me(&s.app, &c).await?))
}

#[utoipa::path(get, path = "/orgs/{org}", tag = "organizations", params(("org" = String, Path, description = "organization slug")),
    responses((status = 200, body = OrgView), (status = 404, body = crate::error::Problem)))]
pub async fn get_org(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(muster_app::orgs::get(&s.app, &c, &org).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgUpdate {
    name: String,
}

/// Renames the organization (`org.manage`).
#[utoipa::path(patch, path = "/orgs/{org}", tag = "organizations", params(("org" = String, Path)), request_body = OrgUpdate,
    responses((status = 200, body = OrgView), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update_org(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<OrgUpdate>,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(
        muster_app::orgs::rename(&s.app, &c, &org, &b.name).await?,
    ))
}

/// The password policy every user of the organization is held to.
#[utoipa::path(get, path = "/orgs/{org}/password-policy", tag = "policies", params(("org" = String, Path)), responses((status = 200, body = PasswordPolicy)))]
pub async fn get_password_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<PasswordPolicy>, ApiError> {
    Ok(Json(
        muster_app::policies::get_password_policy(&s.app, &c, &org).await?,
    ))
}

#[utoipa::path(put, path = "/orgs/{org}/password-policy", tag = "policies", params(("org" = String, Path)), request_body = PasswordPolicy,
    responses((status = 200, body = PasswordPolicy), (status = 422, body = crate::error::Problem)))]
pub async fn set_password_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<PasswordPolicy>,
) -> Result<Json<PasswordPolicy>, ApiError> {
    Ok(Json(
        muster_app::policies::set_password_policy(&s.app, &c, &org, b).await?,
    ))
}
