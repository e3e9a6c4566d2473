//! A user as the API shows it.

use crate::paging::rfc3339;
use crate::{AppError, Result};
use muster_core::UserState;
use muster_core::users::{CreationSource, ManagedBy, Profile};
use muster_store::users::UserRow;
use serde::Serialize;

/// A user as the API shows it. Never carries a password hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub user_name: String,
    pub email: String,
    pub email_verified: bool,
    pub state: UserState,
    pub source: CreationSource,
    pub managed_by: ManagedBy,
    pub profile: Profile,
    pub has_password: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
    pub version: i64,
    /// The organizational unit the user is in (the organization's id for
    /// the root unit).
    pub org_unit_id: String,
    /// For a guest (`source` `guest`): who invited it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<String>,
}

impl TryFrom<UserRow> for UserView {
    type Error = AppError;
    fn try_from(u: UserRow) -> Result<Self> {
        let corrupt = |what: &str| {
            AppError::Internal(muster_store::StoreError::Corrupt(format!(
                "user {}: {what}",
                u.id
            )))
        };
        Ok(Self {
            state: UserState::parse(&u.state).ok_or_else(|| corrupt("state"))?,
            source: CreationSource::parse(&u.source).ok_or_else(|| corrupt("source"))?,
            managed_by: ManagedBy::parse(&u.managed_by).ok_or_else(|| corrupt("managed_by"))?,
            profile: serde_json::from_str(&u.profile).map_err(|_| corrupt("profile"))?,
            has_password: u.password_hash.is_some(),
            org_unit_id: u.ou_id.clone().unwrap_or_else(|| u.org_id.clone()),
            invited_by: u.invited_by.clone(),
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
            id: u.id,
            user_name: u.user_name,
            email: u.email,
            email_verified: u.email_verified,
            version: u.version,
        })
    }
}
