//! The one mapping from use-case errors to HTTP: RFC 9457 problem details for
//! `/api`. Internal causes are logged in the request's span, never returned.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use muster_app::AppError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

/// RFC 9457 §3.1 members, plus `errors` naming the offending field.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

pub fn problem(
    status: StatusCode,
    slug: &str,
    detail: impl Into<String>,
    field: Option<String>,
) -> Response {
    let detail = detail.into();
    let body = Problem {
        kind: format!("urn:muster:problem:{slug}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        errors: field
            .map(|f| {
                vec![FieldError {
                    field: f,
                    message: detail.clone(),
                }]
            })
            .unwrap_or_default(),
        detail,
    };
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use AppError as E;
        match self.0 {
            E::NotFound(what) => problem(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("{what} not found"),
                None,
            ),
            E::Invalid { field, message } => {
                problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message, field)
            }
            E::Conflict { field, message } => problem(
                StatusCode::CONFLICT,
                "conflict",
                message,
                Some(field.to_owned()),
            ),
            E::Transition(t) => problem(
                StatusCode::CONFLICT,
                "illegal-transition",
                t.to_string(),
                None,
            ),
            E::Unauthenticated => problem(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "missing or invalid credentials",
                None,
            ),
            E::Forbidden(p) => problem(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this action needs the '{p}' permission"),
                None,
            ),
            E::Refused(why) => problem(StatusCode::CONFLICT, "refused", why, None),
            E::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "something went wrong on our side; quote the x-request-id header when reporting it",
                    None,
                )
            }
        }
    }
}
