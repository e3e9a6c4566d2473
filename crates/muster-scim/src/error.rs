//! SCIM errors (RFC 7644 §3.12): an HTTP status, an optional `scimType` and a
//! human-readable detail. The web layer renders them; nothing here knows HTTP
//! beyond the status number the RFC ties to each kind.

use serde_json::{Value, json};

/// The `scimType` values of RFC 7644 §3.12, Table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
            Self::Sensitive => "sensitive",
        }
    }

    /// The status the RFC pairs with each type.
    pub fn status(self) -> u16 {
        match self {
            Self::Uniqueness => 409,
            Self::TooMany => 400,
            _ => 400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    pub fn new(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self {
            status: scim_type.status(),
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }
    pub fn status(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }
    pub fn filter(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidFilter, detail)
    }
    pub fn syntax(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidSyntax, detail)
    }
    pub fn path(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidPath, detail)
    }
    pub fn value(detail: impl Into<String>) -> Self {
        Self::new(ScimType::InvalidValue, detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(ScimType::Mutability, detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(ScimType::NoTarget, detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(ScimType::Uniqueness, detail)
    }

    /// The error body of RFC 7644 §3.12; `status` is a string there.
    pub fn body(&self) -> Value {
        let mut v = json!({
            "schemas": [crate::ERROR],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(o)) = (self.scim_type, v.as_object_mut()) {
            o.insert("scimType".into(), Value::String(t.as_str().into()));
        }
        v
    }
}

pub type Result<T> = std::result::Result<T, ScimError>;
