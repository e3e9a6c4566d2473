//! `/orgs/{org}/webhooks`: endpoints, their secrets, and their delivery log.

use crate::extract::{Auth, Json, Query};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use muster_app::paging::Page;
use muster_app::webhooks::delivery::{DeliveryQuery, DeliveryView};
use muster_app::webhooks::{EndpointChanges, EndpointView, EndpointWithSecret, NewEndpoint};

/// The organization's webhook endpoints. Secrets are never listed.
#[utoipa::path(get, path = "/orgs/{org}/webhooks", tag = "webhooks", params(("org" = String, Path)),
    responses((status = 200, body = Vec<EndpointView>), (status = 403, body = crate::error::Problem)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<Vec<EndpointView>>, ApiError> {
    Ok(Json(muster_app::webhooks::list(&s.app, &c, &org).await?))
}

/// Adds an endpoint. Its signing secret is in this answer only.
#[utoipa::path(post, path = "/orgs/{org}/webhooks", tag = "webhooks", params(("org" = String, Path)), request_body = NewEndpoint,
    responses((status = 201, body = EndpointWithSecret), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<NewEndpoint>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(muster_app::webhooks::create(&s.app, &c, &org, b).await?),
    ))
}

#[utoipa::path(get, path = "/orgs/{org}/webhooks/{id}", tag = "webhooks", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = EndpointView), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<EndpointView>, ApiError> {
    Ok(Json(
        muster_app::webhooks::get(&s.app, &c, &org, &id).await?,
    ))
}

/// Changes the URL, event types or description, or turns the endpoint off
/// and on again.
#[utoipa::path(patch, path = "/orgs/{org}/webhooks/{id}", tag = "webhooks", params(("org" = String, Path), ("id" = String, Path)), request_body = EndpointChanges,
    responses((status = 200, body = EndpointView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Json(b): Json<EndpointChanges>,
) -> Result<Json<EndpointView>, ApiError> {
    Ok(Json(
        muster_app::webhooks::update(&s.app, &c, &org, &id, b).await?,
    ))
}

/// Removes the endpoint with its queued messages and delivery log.
#[utoipa::path(delete, path = "/orgs/{org}/webhooks/{id}", tag = "webhooks", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::webhooks::delete(&s.app, &c, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret, shown once; the previous one keeps signing beside
/// it for 24 hours.
#[utoipa::path(post, path = "/orgs/{org}/webhooks/{id}/rotate-secret", tag = "webhooks", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = EndpointWithSecret), (status = 404, body = crate::error::Problem)))]
pub async fn rotate_secret(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    Ok(Json(
        muster_app::webhooks::rotate_secret(&s.app, &c, &org, &id).await?,
    ))
}

/// The delivery log, newest first.
#[utoipa::path(get, path = "/orgs/{org}/webhooks/{id}/deliveries", tag = "webhooks", params(("org" = String, Path), ("id" = String, Path), DeliveryQuery),
    responses((status = 200, body = Page<DeliveryView>), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn deliveries(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<Page<DeliveryView>>, ApiError> {
    Ok(Json(
        muster_app::webhooks::delivery::list(&s.app, &c, &org, &id, q).await?,
    ))
}

/// One message, with every attempt.
#[utoipa::path(get, path = "/orgs/{org}/webhooks/{id}/deliveries/{webhook_id}", tag = "webhooks",
    params(("org" = String, Path), ("id" = String, Path), ("webhook_id" = String, Path)),
    responses((status = 200, body = DeliveryView), (status = 404, body = crate::error::Problem)))]
pub async fn delivery(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, webhook_id)): Path<(String, String, String)>,
) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(
        muster_app::webhooks::delivery::get(&s.app, &c, &org, &id, &webhook_id).await?,
    ))
}

/// Sends the message again now, with the same `webhook-id`; the answer's
/// log shows how it went.
#[utoipa::path(post, path = "/orgs/{org}/webhooks/{id}/deliveries/{webhook_id}/redeliver", tag = "webhooks",
    params(("org" = String, Path), ("id" = String, Path), ("webhook_id" = String, Path)),
    responses((status = 200, body = DeliveryView), (status = 404, body = crate::error::Problem)))]
pub async fn redeliver(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, webhook_id)): Path<(String, String, String)>,
) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(
        muster_app::webhooks::delivery::redeliver(&s.app, &c, &org, &id, &webhook_id).await?,
    ))
}
