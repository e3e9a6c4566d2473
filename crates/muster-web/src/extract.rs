//! Extractors: the bearer caller, and JSON / query extractors whose rejections
//! are problem details rather than axum's plain text.

use crate::AppState;
use crate::error::{ApiError, problem};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use muster_app::{AppError, Caller};
use muster_core::audit::Context;
use serde::de::DeserializeOwned;

fn header_str(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect())
}

pub fn context(parts: &Parts) -> Context {
    Context {
        ip: parts
            .extensions
            .get::<crate::client::ClientIp>()
            .map(|c| c.0.to_string()),
        user_agent: header_str(parts, "user-agent"),
        request_id: header_str(parts, "x-request-id"),
        device: parts
            .extensions
            .get::<crate::client::DeviceCookie>()
            .map(|d| d.0.clone()),
    }
}

fn bearer(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
}

/// The signed-in user for `GET /me`. With a session one query answers
/// (identity and user together, no permissions: the caller reads only
/// itself); with an API token, the usual authentication then a read.
pub struct Me(pub muster_app::users::UserView);

impl FromRequestParts<AppState> for Me {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = match bearer(parts) {
            Some(t) if muster_app::signin::login::is_session_token(&t) => Some(t),
            Some(_) => None,
            None => crate::cookies::session(parts),
        };
        if let Some(t) = session {
            let ctx = context(parts);
            return Ok(Self(
                muster_app::signin::login::me(&state.app, &t, ctx).await?,
            ));
        }
        let Auth(c) = Auth::from_request_parts(parts, state).await?;
        Ok(Self(muster_app::users::me(&state.app, &c).await?))
    }
}

/// The authenticated caller of an `/api/v1` request.
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ctx = context(parts);
        let caller = match bearer(parts) {
            Some(t) if muster_app::signin::login::is_session_token(&t) => {
                muster_app::signin::login::authenticate_session(&state.app, &t, ctx).await?
            }
            Some(t) => muster_app::caller::authenticate_api_token(&state.app, &t, ctx).await?,
            None => {
                let t = crate::cookies::session(parts).ok_or(AppError::Unauthenticated)?;
                muster_app::signin::login::authenticate_session(&state.app, &t, ctx).await?
            }
        };
        Ok(Self(caller))
    }
}

/// The caller of a user creation: like `Auth`, except that an API token this
/// instance read before may give an unconfirmed caller, which only the
/// creation's own write confirms (`muster_app::caller::Unconfirmed`).
pub struct AuthForCreation(pub muster_app::caller::ForCreation);

impl FromRequestParts<AppState> for AuthForCreation {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use muster_app::caller::ForCreation;
        match bearer(parts) {
            Some(t) if !muster_app::signin::login::is_session_token(&t) => {
                let ctx = context(parts);
                let who =
                    muster_app::caller::authenticate_for_creation(&state.app, &t, ctx).await?;
                Ok(Self(who))
            }
            _ => {
                let Auth(c) = Auth::from_request_parts(parts, state).await?;
                Ok(Self(ForCreation::Confirmed(c)))
            }
        }
    }
}

/// `axum::Json` with problem-detail rejections.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> Response {
    let msg = muster_app::users::clean_serde(&r.body_text());
    match r {
        JsonRejection::JsonDataError(_) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid", msg, None)
        }
        JsonRejection::JsonSyntaxError(_) => {
            problem(StatusCode::BAD_REQUEST, "malformed-json", msg, None)
        }
        JsonRejection::MissingJsonContentType(_) => problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the body as application/json",
            None,
        ),
        JsonRejection::BytesRejection(_) => problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("the body is over {} bytes", crate::BODY_LIMIT),
            None,
        ),
        _ => problem(StatusCode::BAD_REQUEST, "bad-request", msg, None),
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` with problem-detail rejections.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                e.body_text(),
                None,
            )),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The request's context (client IP, user agent, request id) for a caller
/// who is not signed in yet.
pub struct Ctx(pub Context);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(context(parts)))
    }
}
