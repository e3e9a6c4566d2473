//! Use-case errors. The web layer maps these to HTTP in one place; the CLI
//! prints them. `Internal` carries the cause for the log, never for a client.

use muster_core::lifecycle::TransitionError;
use muster_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Unknown, or belongs to another organization: the two look the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    #[error("{message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("this action needs the '{0}' permission")]
    Forbidden(&'static str),
    #[error("{0}")]
    Refused(String),
    /// The organization's access policy refuses this request (network,
    /// country or device); the message says which, for the person refused.
    #[error("{0}")]
    AccessDenied(&'static str),
    /// The session must prove a second factor again before this action.
    #[error("{0}")]
    StepUpRequired(&'static str),
    /// The credentials were right but this account may not sign in (or act)
    /// now; the message says why and what to do.
    #[error("{0}")]
    SignInDenied(String),
    /// Too many failed attempts: try again after this many seconds.
    #[error("too many attempts; try again in {0} s")]
    TooManyAttempts(u64),
    /// Too many requests from one client address: try again after this many seconds.
    #[error("too many requests; try again in {0} s")]
    RateLimited(u64),
    /// A SCIM protocol error (bad filter, path, PATCH…), already typed.
    #[error(transparent)]
    Scim(#[from] muster_scim::ScimError),
    /// `If-Match` named a version that is no longer current.
    #[error("the resource changed since that version")]
    PreconditionFailed,
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl AppError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e)
    }
}

/// Turns a unique-constraint failure into the conflict a person can act on.
/// `cases` pairs a fragment of the index or column name with the field.
pub(crate) fn conflict(e: StoreError, cases: &[(&str, &'static str, &str)]) -> AppError {
    if let StoreError::Conflict(what) = &e {
        for (needle, field, message) in cases {
            if what.contains(needle) {
                return AppError::Conflict {
                    field,
                    message: (*message).to_owned(),
                };
            }
        }
    }
    AppError::Internal(e)
}
