//! Users: the SCIM core and enterprise attributes (RFC 7643 §4.1, §4.3) plus
//! free custom attributes, how the account was created and who manages it.

use crate::{EmailAddress, OrgId, UserId, UserState};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreationSource {
    Signup,
    Google,
    Invitation,
    Scim,
    Admin,
    Import,
    Sso,
    /// An external collaborator invited into a workspace (issue 7 §5).
    Guest,
}

impl CreationSource {
    pub const ALL: [CreationSource; 8] = [
        Self::Signup,
        Self::Google,
        Self::Invitation,
        Self::Scim,
        Self::Admin,
        Self::Import,
        Self::Sso,
        Self::Guest,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Google => "google",
            Self::Invitation => "invitation",
            Self::Scim => "scim",
            Self::Admin => "admin",
            Self::Import => "import",
            Self::Sso => "sso",
            Self::Guest => "guest",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ManagedBy {
    Local,
    Scim,
}

impl ManagedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Scim => "scim",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "local" => Some(Self::Local),
            "scim" => Some(Self::Scim),
            _ => None,
        }
    }
}

/// A typed value of a multi-valued attribute (RFC 7643 §2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MultiValue {
    pub value: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Kept as sent: an IdP that says `false` reads `false` back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

impl MultiValue {
    pub fn is_primary(&self) -> bool {
        self.primary == Some(true)
    }
}

/// The SCIM enterprise extension (RFC 7643 §4.3). `manager` holds the id of a
/// user of the same organization.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enterprise {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_center: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
}

impl Enterprise {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The attributes a person or an IdP edits. Searchable ones (user name, email,
/// names, external id) are columns; the rest is stored as one JSON document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The full name as the IdP formats it (SCIM `name.formatted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honorific_suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    /// Every address with its type, as the IdP listed them. The account's own
    /// `email` (unique, used to sign in) is the primary one; this list may
    /// add others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<MultiValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<MultiValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Enterprise::is_empty")]
    pub enterprise: Enterprise,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub custom_attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidProfile {
    pub field: &'static str,
    pub reason: String,
}

/// Limits that keep one user's row small and its JSON cheap to parse.
const MAX_TEXT: usize = 256;
const MAX_VALUES: usize = 10;
const MAX_CUSTOM_BYTES: usize = 16 * 1024;

impl Profile {
    pub fn validate(&self) -> Result<(), InvalidProfile> {
        let texts: [(&'static str, &Option<String>); 20] = [
            ("formatted_name", &self.formatted_name),
            ("user_type", &self.user_type),
            ("profile_url", &self.profile_url),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("middle_name", &self.middle_name),
            ("honorific_prefix", &self.honorific_prefix),
            ("honorific_suffix", &self.honorific_suffix),
            ("display_name", &self.display_name),
            ("nick_name", &self.nick_name),
            ("title", &self.title),
            ("locale", &self.locale),
            ("timezone", &self.timezone),
            ("preferred_language", &self.preferred_language),
            ("external_id", &self.external_id),
            (
                "enterprise.employee_number",
                &self.enterprise.employee_number,
            ),
            ("enterprise.cost_center", &self.enterprise.cost_center),
            ("enterprise.organization", &self.enterprise.organization),
            ("enterprise.division", &self.enterprise.division),
            ("enterprise.department", &self.enterprise.department),
        ];
        for (field, v) in texts {
            if let Some(v) = v {
                if v.chars().count() > MAX_TEXT {
                    return Err(InvalidProfile {
                        field,
                        reason: format!("at most {MAX_TEXT} characters"),
                    });
                }
                if v.chars().any(char::is_control) {
                    return Err(InvalidProfile {
                        field,
                        reason: "control characters are not allowed".into(),
                    });
                }
            }
        }
        if self.external_id.as_deref() == Some("") {
            return Err(InvalidProfile {
                field: "external_id",
                reason: "must not be empty".into(),
            });
        }
        for (field, list) in [
            ("phone_numbers", &self.phone_numbers),
            ("emails", &self.emails),
        ] {
            if list.len() > MAX_VALUES {
                return Err(InvalidProfile {
                    field,
                    reason: format!("at most {MAX_VALUES}"),
                });
            }
            if list.iter().filter(|p| p.is_primary()).count() > 1 {
                return Err(InvalidProfile {
                    field,
                    reason: "at most one may be primary".into(),
                });
            }
            for v in list {
                let too_long = v.value.chars().count() > MAX_TEXT
                    || v.kind
                        .as_ref()
                        .is_some_and(|k| k.chars().count() > MAX_TEXT);
                if too_long || v.value.chars().any(char::is_control) {
                    return Err(InvalidProfile {
                        field,
                        reason: format!("each value: at most {MAX_TEXT} printable characters"),
                    });
                }
            }
        }
        let custom = serde_json::to_string(&self.custom_attributes).unwrap_or_default();
        if custom.len() > MAX_CUSTOM_BYTES {
            return Err(InvalidProfile {
                field: "custom_attributes",
                reason: format!("at most {MAX_CUSTOM_BYTES} bytes"),
            });
        }
        Ok(())
    }
}

/// A user as the rest of the system sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
    pub user_name: String,
    pub email: EmailAddress,
    pub email_verified: bool,
    pub state: UserState,
    pub source: CreationSource,
    pub managed_by: ManagedBy,
    pub profile: Profile,
    pub has_password: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Bumped on every change; the base of ETags and optimistic concurrency.
    pub version: i64,
}

/// A user name: what the person types to sign in (SCIM `userName`).
pub fn valid_user_name(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= MAX_TEXT && !s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_limits_are_enforced_with_the_field_named() {
        let p = Profile {
            title: Some("x".repeat(300)),
            ..Profile::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "title");
        let p = Profile {
            given_name: Some("a\u{0}b".into()),
            ..Profile::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "given_name");
        let two = MultiValue {
            value: "1".into(),
            kind: None,
            primary: Some(true),
        };
        let p = Profile {
            phone_numbers: vec![two.clone(), two],
            ..Profile::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "phone_numbers");
        assert!(Profile::default().validate().is_ok());
    }

    #[test]
    fn unknown_profile_fields_are_refused() {
        let r: Result<Profile, _> = serde_json::from_str(r#"{"given_name":"A","shoe_size":42}"#);
        assert!(r.is_err());
    }
}
