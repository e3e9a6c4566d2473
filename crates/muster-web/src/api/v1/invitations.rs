//! `/orgs/{org}/invitations` and `/auth/accept-invitation`.

use crate::extract::{Auth, Ctx, Json};
use crate::{ApiError, AppState, cookies};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use muster_app::invitations::{AcceptInput, InvitationView, InviteInput, InviteReport};
use muster_app::signin::Entry;

/// Invites one or many addresses with roles and groups; each gets an email
/// with a link to set a password. Addresses that already have an account are
/// reported as skipped.
#[utoipa::path(post, path = "/orgs/{org}/invitations", tag = "invitations", params(("org" = String, Path)), request_body = InviteInput,
    responses((status = 201, body = InviteReport), (status = 422, body = crate::error::Problem)))]
pub async fn invite(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<InviteInput>,
) -> Result<(StatusCode, Json<InviteReport>), ApiError> {
    let r = muster_app::invitations::invite(&s.app, &c, &org, b).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// The organization's invitations with their state, newest first.
#[utoipa::path(get, path = "/orgs/{org}/invitations", tag = "invitations", params(("org" = String, Path)),
    responses((status = 200, body = Vec<InvitationView>)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<Vec<InvitationView>>, ApiError> {
    Ok(Json(muster_app::invitations::list(&s.app, &c, &org).await?))
}

/// Sends a pending invitation again with a new lifetime; the old link stops working.
#[utoipa::path(post, path = "/orgs/{org}/invitations/{id}/resend", tag = "invitations", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = InvitationView), (status = 409, body = crate::error::Problem)))]
pub async fn resend(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<InvitationView>, ApiError> {
    Ok(Json(
        muster_app::invitations::resend(&s.app, &c, &org, &id).await?,
    ))
}

/// Revokes a pending invitation; the invited account stays `invited` and cannot sign in.
#[utoipa::path(delete, path = "/orgs/{org}/invitations/{id}", tag = "invitations", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 409, body = crate::error::Problem)))]
pub async fn revoke(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::invitations::revoke(&s.app, &c, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accepts an invitation with the link's token and a password; signs in.
#[utoipa::path(post, path = "/auth/accept-invitation", tag = "sign-in", security(()), request_body = AcceptInput,
    responses((status = 200, body = Entry), (status = 422, body = crate::error::Problem)))]
pub async fn accept(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Json(b): Json<AcceptInput>,
) -> Result<Response, ApiError> {
    let entry = muster_app::invitations::accept(&s.app, b, ctx).await?;
    let res = axum::Json(&entry).into_response();
    Ok(cookies::with_entry(&s.public_url, &entry, res))
}
