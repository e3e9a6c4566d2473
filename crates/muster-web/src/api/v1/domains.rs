//! `/orgs/{org}/domains`: claiming and verifying email domains (issue 7 §6).

use crate::extract::{Auth, Json};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use muster_app::domains::{DomainInput, DomainView};

#[utoipa::path(get, path = "/orgs/{org}/domains", tag = "domains", params(("org" = String, Path)),
    responses((status = 200, body = Vec<DomainView>), (status = 403, body = crate::error::Problem)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<Vec<DomainView>>, ApiError> {
    Ok(Json(muster_app::domains::list(&s.app, &c, &org).await?))
}

/// Claims a domain (`org.manage`); publish the `txt_record` of the answer at
/// the domain, then verify. Public mail providers cannot be claimed.
#[utoipa::path(post, path = "/orgs/{org}/domains", tag = "domains", params(("org" = String, Path)), request_body = DomainInput,
    responses((status = 201, body = DomainView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn claim(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<DomainInput>,
) -> Result<(StatusCode, Json<DomainView>), ApiError> {
    let v = muster_app::domains::claim(&s.app, &c, &org, b).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Looks the domain's TXT records up now; verified when one carries the token.
#[utoipa::path(post, path = "/orgs/{org}/domains/{domain}/verify", tag = "domains", params(("org" = String, Path), ("domain" = String, Path)),
    responses((status = 200, body = DomainView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn verify(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, domain)): Path<(String, String)>,
) -> Result<Json<DomainView>, ApiError> {
    Ok(Json(
        muster_app::domains::verify(&s.app, &c, &org, &domain).await?,
    ))
}

/// Gives the claim up.
#[utoipa::path(delete, path = "/orgs/{org}/domains/{domain}", tag = "domains", params(("org" = String, Path), ("domain" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn remove(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, domain)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::domains::remove(&s.app, &c, &org, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
