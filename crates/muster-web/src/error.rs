//! The one mapping from use-case errors to HTTP: RFC 9457 problem details for
//! `/api`, the SCIM error schema (RFC 7644 §3.12) for `/scim/v2`. Internal
//! causes are logged in the request's span, never returned.

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
            E::StepUpRequired(why) => problem(StatusCode::FORBIDDEN, "step-up-required", why, None),
            E::AccessDenied(why) => problem(StatusCode::FORBIDDEN, "access-denied", why, None),
            E::SignInDenied(why) => problem(StatusCode::FORBIDDEN, "sign-in-denied", why, None),
            E::TooManyAttempts(secs) => {
                let mut res = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-attempts",
                    format!("too many failed attempts; try again in {secs} s"),
                    None,
                );
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                res
            }
            E::RateLimited(secs) => {
                let mut res = problem(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    format!("too many requests from your address; try again in {secs} s"),
                    None,
                );
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                res
            }
            E::Scim(e) => problem(
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                "invalid",
                e.detail,
                None,
            ),
            E::PreconditionFailed => problem(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "the resource changed since that version",
                None,
            ),
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

/// An error on `/scim/v2`, answered in the SCIM error schema.
#[derive(Debug)]
pub struct ScimApiError(pub AppError);

impl From<AppError> for ScimApiError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl From<muster_scim::ScimError> for ScimApiError {
    fn from(e: muster_scim::ScimError) -> Self {
        Self(AppError::Scim(e))
    }
}

pub fn scim_error(e: &muster_scim::ScimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = (status, axum::Json(e.body())).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(muster_scim::MEDIA_TYPE),
    );
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    res
}

impl IntoResponse for ScimApiError {
    fn into_response(self) -> Response {
        scim_error(&scim_error_of(self.0))
    }
}

/// The SCIM error for a use-case error: the one mapping, used for whole
/// responses and for each operation of a Bulk request.
pub fn scim_error_of(e: AppError) -> muster_scim::ScimError {
    use AppError as E;
    use muster_scim::{ScimError, ScimType};
    {
        match e {
            E::Scim(e) => e,
            E::NotFound(what) => ScimError::status(404, format!("{what} not found")),
            E::Invalid { field, message } => ScimError::value(match field {
                Some(f) => format!("{f}: {message}"),
                None => message,
            }),
            E::Conflict {
                field: "version",
                message,
            } => ScimError::status(409, message),
            E::Conflict { message, .. } => ScimError::uniqueness(message),
            E::Transition(t) => ScimError::new(ScimType::InvalidValue, t.to_string()),
            E::Unauthenticated => ScimError::status(401, "missing or invalid SCIM token"),
            E::Forbidden(p) => {
                ScimError::status(403, format!("a SCIM token cannot do this ('{p}')"))
            }
            E::Refused(why) => ScimError::status(409, why),
            E::StepUpRequired(why) | E::AccessDenied(why) => ScimError::status(403, why),
            E::SignInDenied(why) => ScimError::status(403, why),
            E::TooManyAttempts(secs) | E::RateLimited(secs) => {
                ScimError::status(429, format!("too many attempts; try again in {secs} s"))
            }
            E::PreconditionFailed => {
                ScimError::status(412, "the resource changed since that version (ETag)")
            }
            E::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                ScimError::status(
                    500,
                    "something went wrong on our side; quote the x-request-id header when reporting it",
                )
            }
        }
    }
}

/// What a page says about a use-case error, and with which status: the
/// pages' half of the one mapping (the form is re-rendered with the message).
pub fn page_message(e: AppError) -> (StatusCode, String) {
    use AppError as E;
    match e {
        E::Invalid { message, .. } => (StatusCode::UNPROCESSABLE_ENTITY, capitalized(&message)),
        E::Conflict { message, .. } => (StatusCode::CONFLICT, capitalized(&message)),
        E::Unauthenticated => (StatusCode::UNAUTHORIZED, "Wrong email or password.".into()),
        E::SignInDenied(why) => (StatusCode::FORBIDDEN, capitalized(&why)),
        E::TooManyAttempts(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed attempts. Try again in {secs} seconds."),
        ),
        E::RateLimited(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many requests from your address. Try again in {secs} seconds."),
        ),
        E::NotFound(what) => (
            StatusCode::NOT_FOUND,
            capitalized(&format!("{what} not found")),
        ),
        E::Forbidden(_) => (StatusCode::FORBIDDEN, "You may not do that.".into()),
        E::Refused(why) => (StatusCode::CONFLICT, capitalized(&why)),
        E::AccessDenied(why) => (StatusCode::FORBIDDEN, capitalized(why)),
        E::StepUpRequired(_) => (
            StatusCode::FORBIDDEN,
            "Confirm it is you with your second factor first.".into(),
        ),
        E::Transition(t) => (StatusCode::CONFLICT, capitalized(&t.to_string())),
        E::Scim(e) => (StatusCode::BAD_REQUEST, e.detail),
        E::PreconditionFailed => (
            StatusCode::CONFLICT,
            "Something changed meanwhile; try again.".into(),
        ),
        E::Internal(cause) => {
            tracing::error!(error = %cause, "internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Please try again.".into(),
            )
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    let mut out: String = c
        .next()
        .map(|f| f.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(c.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}
