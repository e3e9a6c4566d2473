//! The JSON sign-in API of DESIGN.md §2 (`/auth/…`, `/me/…`): thin handlers
//! over `muster_app::signin`, the use cases the pages call too.

use crate::extract::{Auth, Ctx, Json};
use crate::{ApiError, AppState, cookies};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use muster_app::signin::account::{
    EmailChange, EmailChangeCode, PasswordChange, ResetInput, ResetRequest,
};
use muster_app::signin::signup::ResendInput;
use muster_app::signin::{self, Entry, LoginInput, SessionView, SignUpInput, VerifyInput};
use serde_json::json;

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "accepted", "detail": "if the request can be acted on, an email is on its way"})),
    )
        .into_response()
}

/// Signs up (personal, into `org`, or a new business organization). `202`
/// whether or not the address was registered; the email says what to do.
#[utoipa::path(post, path = "/auth/signup", tag = "sign-in", security(()), request_body = SignUpInput,
    responses((status = 202), (status = 422, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn signup(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Json(b): Json<SignUpInput>,
) -> Result<Response, ApiError> {
    signin::signup::signup(&s.app, b, ctx).await?;
    Ok(accepted())
}

/// Sends a new verification code (at most once a minute). Always `202`.
#[utoipa::path(post, path = "/auth/resend-verification", tag = "sign-in", security(()), request_body = ResendInput, responses((status = 202)))]
pub async fn resend(
    State(s): State<AppState>,
    Json(b): Json<ResendInput>,
) -> Result<Response, ApiError> {
    signin::signup::resend(&s.app, b).await?;
    Ok(accepted())
}

/// Verifies an address with `email` + `code`, or the link's `token`.
#[utoipa::path(post, path = "/auth/verify-email", tag = "sign-in", security(()), request_body = VerifyInput,
    responses((status = 200), (status = 422, body = crate::error::Problem)))]
pub async fn verify_email(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Json(b): Json<VerifyInput>,
) -> Result<Response, ApiError> {
    signin::signup::verify_email(&s.app, b, ctx).await?;
    Ok((StatusCode::OK, axum::Json(json!({"status": "verified"}))).into_response())
}

/// Signs in; the session token is in the body and in the session cookie.
#[utoipa::path(post, path = "/auth/login", tag = "sign-in", security(()), request_body = LoginInput,
    responses((status = 200, body = Entry), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn login(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Json(b): Json<LoginInput>,
) -> Result<Response, ApiError> {
    let entry = signin::login::login(&s.app, b, ctx).await?;
    let res = axum::Json(&entry).into_response();
    Ok(cookies::with_entry(&s.public_url, &entry, res))
}

/// Ends this session and clears its cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "sign-in", responses((status = 204), (status = 401, body = crate::error::Problem)))]
pub async fn logout(State(s): State<AppState>, Auth(c): Auth) -> Result<Response, ApiError> {
    signin::login::logout(&s.app, &c).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, cookies::clear(&s.public_url));
    Ok(res)
}

/// Sends a password reset code and link. Always `202`.
#[utoipa::path(post, path = "/auth/password-reset", tag = "sign-in", security(()), request_body = ResetRequest, responses((status = 202)))]
pub async fn request_reset(
    State(s): State<AppState>,
    Json(b): Json<ResetRequest>,
) -> Result<Response, ApiError> {
    signin::account::request_reset(&s.app, b).await?;
    Ok(accepted())
}

/// Sets a new password with the reset code or link; every session ends.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "sign-in", security(()), request_body = ResetInput,
    responses((status = 204), (status = 422, body = crate::error::Problem)))]
pub async fn reset_password(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Json(b): Json<ResetInput>,
) -> Result<StatusCode, ApiError> {
    signin::account::reset_password(&s.app, b, ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user's live sessions; `current` marks this one.
#[utoipa::path(get, path = "/me/sessions", tag = "me", responses((status = 200, body = Vec<SessionView>)))]
pub async fn my_sessions(
    State(s): State<AppState>,
    Auth(c): Auth,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    Ok(Json(signin::login::sessions(&s.app, &c).await?))
}

/// Ends one of the signed-in user's sessions.
#[utoipa::path(delete, path = "/me/sessions/{id}", tag = "me", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn revoke_my_session(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    signin::login::revoke_session(&s.app, &c, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the password (the current one required); other sessions end.
#[utoipa::path(post, path = "/me/password", tag = "me", request_body = PasswordChange,
    responses((status = 204), (status = 422, body = crate::error::Problem)))]
pub async fn change_password(
    State(s): State<AppState>,
    Auth(c): Auth,
    Json(b): Json<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    signin::account::change_password(&s.app, &c, b).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts an email change: the new address gets a code and a link.
#[utoipa::path(post, path = "/me/email", tag = "me", request_body = EmailChange,
    responses((status = 202), (status = 422, body = crate::error::Problem)))]
pub async fn change_email(
    State(s): State<AppState>,
    Auth(c): Auth,
    Json(b): Json<EmailChange>,
) -> Result<Response, ApiError> {
    signin::account::change_email(&s.app, &c, b).await?;
    Ok(accepted())
}

/// Confirms an email change with the code sent to the new address.
#[utoipa::path(post, path = "/me/email/confirm", tag = "me", request_body = EmailChangeCode,
    responses((status = 204), (status = 422, body = crate::error::Problem)))]
pub async fn confirm_email(
    State(s): State<AppState>,
    Auth(c): Auth,
    Json(b): Json<EmailChangeCode>,
) -> Result<StatusCode, ApiError> {
    signin::account::confirm_email_change(&s.app, &c, b).await?;
    Ok(StatusCode::NO_CONTENT)
}
