//! MFA over the JSON API (issue 5 §1–§3): the sign-in challenge
//! (`/auth/mfa…`), a user's own factors and step-up (`/me/…`), and what an
//! admin sees and resets (`/orgs/{org}/users/{id}/mfa…`). Thin handlers over
//! `muster_app::mfa`, which the pages call too.

use crate::extract::{Auth, Ctx, Json, Query};
use crate::{ApiError, AppState, cookies};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use muster_app::guard::SaveOptions;
use muster_app::mfa::challenge::{ChallengeRef, Completed, EnrolInput, MfaInput};
use muster_app::mfa::{
    CodeInput, Enrolled, MfaPolicy, MfaStatus, StepUpInput, TotpSetup, TotpStart,
};
use muster_core::access_policy::AccessPolicy;

/// Answers a sign-in's MFA challenge; a good code opens the session (token
/// in the body and the cookie), with recovery codes when it enrolled the
/// first factor.
#[utoipa::path(post, path = "/auth/mfa", tag = "sign-in", security(()), request_body = MfaInput,
    responses((status = 200, body = Completed), (status = 422, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn complete(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Json(b): Json<MfaInput>,
) -> Result<Response, ApiError> {
    let done = muster_app::mfa::challenge::complete(&s.app, b, ctx).await?;
    let res = axum::Json(&done).into_response();
    Ok(cookies::with_session(&s.public_url, &done.signed, res))
}

/// Emails a code for the challenge (at most once a minute).
#[utoipa::path(post, path = "/auth/mfa/email", tag = "sign-in", security(()), request_body = ChallengeRef,
    responses((status = 202), (status = 409, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn email_code(
    State(s): State<AppState>,
    Json(b): Json<ChallengeRef>,
) -> Result<StatusCode, ApiError> {
    muster_app::mfa::challenge::email_code(&s.app, b).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Enrols a first factor during sign-in when the policy requires MFA:
/// `totp` answers the seed to scan; `email` sends a code (202).
#[utoipa::path(post, path = "/auth/mfa/enrol", tag = "sign-in", security(()), request_body = EnrolInput,
    responses((status = 200, body = TotpSetup), (status = 202), (status = 409, body = crate::error::Problem)))]
pub async fn enrol(
    State(s): State<AppState>,
    Json(b): Json<EnrolInput>,
) -> Result<Response, ApiError> {
    Ok(match muster_app::mfa::challenge::enrol(&s.app, b).await? {
        Some(setup) => Json(setup).into_response(),
        None => StatusCode::ACCEPTED.into_response(),
    })
}

/// The signed-in user's MFA: what the policy asks, factors, recovery codes left.
#[utoipa::path(get, path = "/me/mfa", tag = "me", responses((status = 200, body = MfaStatus)))]
pub async fn status(State(s): State<AppState>, Auth(c): Auth) -> Result<Json<MfaStatus>, ApiError> {
    Ok(Json(muster_app::mfa::my_status(&s.app, &c).await?))
}

/// Starts an authenticator app: scan `qr_svg` or type `secret`, then confirm with a code.
#[utoipa::path(post, path = "/me/mfa/totp", tag = "me", request_body = TotpStart,
    responses((status = 201, body = TotpSetup), (status = 403, body = crate::error::Problem)))]
pub async fn start_totp(
    State(s): State<AppState>,
    Auth(c): Auth,
    Json(b): Json<TotpStart>,
) -> Result<(StatusCode, Json<TotpSetup>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(muster_app::mfa::start_totp(&s.app, &c, b).await?),
    ))
}

/// Confirms an authenticator app with a code from it.
#[utoipa::path(post, path = "/me/mfa/totp/{id}/confirm", tag = "me", params(("id" = String, Path)), request_body = CodeInput,
    responses((status = 200, body = Enrolled), (status = 422, body = crate::error::Problem)))]
pub async fn confirm_totp(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Json(b): Json<CodeInput>,
) -> Result<Json<Enrolled>, ApiError> {
    Ok(Json(
        muster_app::mfa::confirm_totp(&s.app, &c, &id, b).await?,
    ))
}

/// Turns on email codes for the account's verified address.
#[utoipa::path(post, path = "/me/mfa/email", tag = "me",
    responses((status = 200, body = Enrolled), (status = 409, body = crate::error::Problem)))]
pub async fn enable_email(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<Enrolled>, ApiError> {
    Ok(Json(muster_app::mfa::enable_email(&s.app, &c).await?))
}

/// Removes a factor (needs a recent step-up).
#[utoipa::path(delete, path = "/me/mfa/{id}", tag = "me", params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn remove(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    muster_app::mfa::remove(&s.app, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the recovery codes (needs a recent step-up); shown once.
#[utoipa::path(post, path = "/me/mfa/recovery-codes", tag = "me",
    responses((status = 200, body = Enrolled), (status = 403, body = crate::error::Problem)))]
pub async fn recovery_codes(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<Enrolled>, ApiError> {
    Ok(Json(
        muster_app::mfa::regenerate_recovery(&s.app, &c).await?,
    ))
}

/// Proves a second factor again: the session is L2 for the policy's step-up window.
#[utoipa::path(post, path = "/me/step-up", tag = "me", request_body = StepUpInput,
    responses((status = 204), (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn step_up(
    State(s): State<AppState>,
    Auth(c): Auth,
    Json(b): Json<StepUpInput>,
) -> Result<StatusCode, ApiError> {
    muster_app::mfa::step_up(&s.app, &c, b).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Emails a code for a step-up (at most once a minute).
#[utoipa::path(post, path = "/me/step-up/email", tag = "me",
    responses((status = 202), (status = 409, body = crate::error::Problem)))]
pub async fn step_up_email(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<StatusCode, ApiError> {
    muster_app::mfa::step_up_email(&s.app, &c).await?;
    Ok(StatusCode::ACCEPTED)
}

/// A user's MFA, for an admin.
#[utoipa::path(get, path = "/orgs/{org}/users/{id}/mfa", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = MfaStatus), (status = 404, body = crate::error::Problem)))]
pub async fn user_status(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<MfaStatus>, ApiError> {
    Ok(Json(
        muster_app::mfa::user_status(&s.app, &c, &org, &id).await?,
    ))
}

/// Resets a user's MFA: every factor and recovery code goes, and every session ends.
#[utoipa::path(post, path = "/orgs/{org}/users/{id}/mfa/reset", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn reset(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::mfa::reset(&s.app, &c, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who must use MFA, what may be enrolled, and the step-up window.
#[utoipa::path(get, path = "/orgs/{org}/mfa-policy", tag = "policies", params(("org" = String, Path)),
    responses((status = 200, body = MfaPolicy)))]
pub async fn get_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<MfaPolicy>, ApiError> {
    Ok(Json(
        muster_app::signin::get_policy(&s.app, &c, &org, "mfa").await?,
    ))
}

#[utoipa::path(put, path = "/orgs/{org}/mfa-policy", tag = "policies", params(("org" = String, Path)), request_body = MfaPolicy,
    responses((status = 200, body = MfaPolicy), (status = 422, body = crate::error::Problem)))]
pub async fn set_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<MfaPolicy>,
) -> Result<Json<MfaPolicy>, ApiError> {
    Ok(Json(
        muster_app::mfa::set_policy(&s.app, &c, &org, b).await?,
    ))
}

/// Who may come in from where: network, country and device OS rules.
#[utoipa::path(get, path = "/orgs/{org}/access-policy", tag = "policies", params(("org" = String, Path)),
    responses((status = 200, body = AccessPolicy)))]
pub async fn get_access(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<AccessPolicy>, ApiError> {
    Ok(Json(
        muster_app::signin::get_policy(&s.app, &c, &org, "access").await?,
    ))
}

/// Saves the access policy. One that would refuse the caller's own request
/// is saved only with `confirm_lockout=true`.
#[utoipa::path(put, path = "/orgs/{org}/access-policy", tag = "policies", params(("org" = String, Path), SaveOptions), request_body = AccessPolicy,
    responses((status = 200, body = AccessPolicy), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn set_access(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Query(opts): Query<SaveOptions>,
    Json(b): Json<AccessPolicy>,
) -> Result<Json<AccessPolicy>, ApiError> {
    Ok(Json(
        muster_app::guard::set_policy(&s.app, &c, &org, b, opts).await?,
    ))
}
