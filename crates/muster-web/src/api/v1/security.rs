//! The risk policy and devices over the JSON API (issue 5 §4, §6): thin
//! handlers over `muster_app::risk` and `muster_app::devices`.

use crate::extract::{Auth, Ctx, Json};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use muster_app::devices::{DeviceView, Rename};
use muster_app::mfa::Enrolled;
use muster_app::mfa::challenge::ChallengeRef;
use muster_app::mfa::passkeys::{self, Ceremony, DiscoverFinish, DiscoverStart, RegisterInput};
use muster_app::risk::RiskPolicy;
use muster_app::signin::Entry;

/// How risk levels map to the assurance a sign-in needs, and the networks
/// that count as high risk.
#[utoipa::path(get, path = "/orgs/{org}/risk-policy", tag = "policies", params(("org" = String, Path)),
    responses((status = 200, body = RiskPolicy)))]
pub async fn get_risk(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<RiskPolicy>, ApiError> {
    Ok(Json(
        muster_app::signin::get_policy(&s.app, &c, &org, "risk").await?,
    ))
}

#[utoipa::path(put, path = "/orgs/{org}/risk-policy", tag = "policies", params(("org" = String, Path)), request_body = RiskPolicy,
    responses((status = 200, body = RiskPolicy), (status = 422, body = crate::error::Problem)))]
pub async fn set_risk(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<RiskPolicy>,
) -> Result<Json<RiskPolicy>, ApiError> {
    Ok(Json(
        muster_app::risk::set_policy(&s.app, &c, &org, b).await?,
    ))
}

/// The signed-in user's devices; `current` marks this one.
#[utoipa::path(get, path = "/me/devices", tag = "me", responses((status = 200, body = Vec<DeviceView>)))]
pub async fn my_devices(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<Vec<DeviceView>>, ApiError> {
    Ok(Json(muster_app::devices::mine(&s.app, &c).await?))
}

#[utoipa::path(patch, path = "/me/devices/{id}", tag = "me", params(("id" = String, Path)), request_body = Rename,
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn rename_device(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(b): Json<Rename>,
) -> Result<StatusCode, ApiError> {
    muster_app::devices::rename(&s.app, &c, &id, b).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets a device: its next sign-in is from an unknown device.
#[utoipa::path(delete, path = "/me/devices/{id}", tag = "me", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn forget_device(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    muster_app::devices::forget(&s.app, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's devices, for an admin.
#[utoipa::path(get, path = "/orgs/{org}/users/{id}/devices", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Vec<DeviceView>), (status = 404, body = crate::error::Problem)))]
pub async fn user_devices(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Vec<DeviceView>>, ApiError> {
    Ok(Json(
        muster_app::devices::of_user(&s.app, &c, &org, &id).await?,
    ))
}

/// Clears a user's trusted devices.
#[utoipa::path(delete, path = "/orgs/{org}/users/{id}/devices", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn clear_devices(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::devices::clear(&s.app, &c, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts registering a passkey: pass `options` to `navigator.credentials.create()`.
#[utoipa::path(post, path = "/me/passkeys/register/start", tag = "me",
    responses((status = 200, body = Ceremony), (status = 403, body = crate::error::Problem)))]
pub async fn passkey_register_start(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<Ceremony>, ApiError> {
    Ok(Json(passkeys::register_start(&s.app, &c).await?))
}

/// Finishes registering a passkey with the browser's answer.
#[utoipa::path(post, path = "/me/passkeys/register/finish", tag = "me", request_body = RegisterInput,
    responses((status = 200, body = Enrolled), (status = 422, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn passkey_register_finish(
    State(s): State<AppState>,
    Auth(c): Auth,
    Json(b): Json<RegisterInput>,
) -> Result<Json<Enrolled>, ApiError> {
    Ok(Json(passkeys::register_finish(&s.app, &c, b).await?))
}

/// Options to answer a sign-in's MFA challenge with a passkey; then
/// `POST /auth/mfa` with `method: passkey`, `ceremony_id` and `assertion`.
#[utoipa::path(post, path = "/auth/mfa/passkey", tag = "sign-in", security(()), request_body = ChallengeRef,
    responses((status = 200, body = Ceremony), (status = 409, body = crate::error::Problem)))]
pub async fn mfa_passkey(
    State(s): State<AppState>,
    Json(b): Json<ChallengeRef>,
) -> Result<Json<Ceremony>, ApiError> {
    Ok(Json(
        muster_app::mfa::challenge::passkey_options(&s.app, b).await?,
    ))
}

/// Options to step up with a passkey; then `POST /me/step-up` with
/// `method: passkey`, `ceremony_id` and `assertion`.
#[utoipa::path(post, path = "/me/step-up/passkey", tag = "me",
    responses((status = 200, body = Ceremony), (status = 409, body = crate::error::Problem)))]
pub async fn step_up_passkey(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<Ceremony>, ApiError> {
    Ok(Json(muster_app::mfa::step_up_passkey(&s.app, &c).await?))
}

/// Starts a passwordless sign-in with a passkey.
#[utoipa::path(post, path = "/auth/passkey/start", tag = "sign-in", security(()), request_body = DiscoverStart,
    responses((status = 200, body = Ceremony), (status = 422, body = crate::error::Problem)))]
pub async fn passkey_start(
    State(s): State<AppState>,
    Json(b): Json<DiscoverStart>,
) -> Result<Json<Ceremony>, ApiError> {
    Ok(Json(passkeys::discover_start(&s.app, b).await?))
}

/// Finishes a passwordless sign-in: a session at L3 (token in the body and the cookie).
#[utoipa::path(post, path = "/auth/passkey/finish", tag = "sign-in", security(()), request_body = DiscoverFinish,
    responses((status = 200, body = Entry), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn passkey_finish(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Json(b): Json<DiscoverFinish>,
) -> Result<Response, ApiError> {
    let entry = passkeys::discover_finish(&s.app, b, ctx).await?;
    let res = axum::Json(&entry).into_response();
    Ok(crate::cookies::with_entry(&s.public_url, &entry, res))
}
