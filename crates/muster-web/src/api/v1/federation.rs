//! Federated sign-in over the API: an organization's SSO connection
//! (`org.manage`), and the start of a Google or SSO sign-in for apps that
//! send the browser themselves. The provider returns to the
//! `/auth/oidc/callback` page, which both paths share.

use crate::extract::{Auth, Json};
use crate::{ApiError, AppState, cookies};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use muster_app::federation::{self, Provider, SsoInput, SsoView, Start};
use serde::{Deserialize, Serialize};

/// The organization's OpenID Connect connection (never its secret).
#[utoipa::path(get, path = "/orgs/{org}/sso", tag = "sign-in", params(("org" = String, Path)),
    responses((status = 200, body = SsoView), (status = 404, body = crate::error::Problem)))]
pub async fn get_sso(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<SsoView>, ApiError> {
    Ok(Json(
        federation::get_sso(&s.app, &c, &org, &s.public_url).await?,
    ))
}

/// Sets the connection. The issuer's discovery document is read first: an
/// issuer that does not answer is refused (`422`) and nothing is saved.
#[utoipa::path(put, path = "/orgs/{org}/sso", tag = "sign-in", params(("org" = String, Path)), request_body = SsoInput,
    responses((status = 200, body = SsoView), (status = 422, body = crate::error::Problem)))]
pub async fn put_sso(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<SsoInput>,
) -> Result<Json<SsoView>, ApiError> {
    Ok(Json(
        federation::put_sso(&s.app, &c, &org, b, &s.public_url).await?,
    ))
}

/// Removes the connection; its people sign in with passwords again.
#[utoipa::path(delete, path = "/orgs/{org}/sso", tag = "sign-in", params(("org" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
pub async fn delete_sso(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<StatusCode, ApiError> {
    federation::delete_sso(&s.app, &c, &org).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInput {
    /// `google` or `sso` (the organization's own IdP; needs `org`).
    pub provider: String,
    /// Organization slug; default the personal directory.
    #[serde(default)]
    pub org: Option<String>,
    /// A path on this server to land on once signed in.
    #[serde(default)]
    pub next: Option<String>,
    /// An invitation link's token, accepted by this sign-in.
    #[serde(default)]
    pub invitation: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Started {
    /// Send the browser here; it comes back to `/auth/oidc/callback`.
    pub authorization_url: String,
}

/// Starts a Google or SSO sign-in. The answer's cookie binds the sign-in to
/// this browser: the same browser must follow `authorization_url`.
#[utoipa::path(post, path = "/auth/federated/start", tag = "sign-in", security(()), request_body = StartInput,
    responses((status = 200, body = Started), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn start(
    State(s): State<AppState>,
    Json(b): Json<StartInput>,
) -> Result<Response, ApiError> {
    let provider = match b.provider.as_str() {
        "google" => Provider::Google,
        "sso" => Provider::Sso,
        _ => {
            return Err(muster_app::AppError::invalid("provider", "use google or sso").into());
        }
    };
    let start = Start {
        provider,
        org: b.org,
        next: b.next,
        invitation: b.invitation,
    };
    let begun = federation::begin(&s.app, start, &s.public_url).await?;
    let mut res = axum::Json(Started {
        authorization_url: begun.url,
    })
    .into_response();
    if let Some(c) = cookies::set_flow(&s.public_url, &begun.binding) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}
