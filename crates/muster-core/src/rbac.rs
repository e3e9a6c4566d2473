//! Permissions, built-in roles and role-assignment scopes (DESIGN.md §1 "Roles
//! and groups"). Effective permissions are computed afresh on every request by
//! the store; this module only knows what the strings mean.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Permission {
    #[serde(rename = "users.read")]
    UsersRead,
    #[serde(rename = "users.write")]
    UsersWrite,
    #[serde(rename = "users.lifecycle")]
    UsersLifecycle,
    #[serde(rename = "groups.write")]
    GroupsWrite,
    #[serde(rename = "roles.write")]
    RolesWrite,
    #[serde(rename = "policies.write")]
    PoliciesWrite,
    #[serde(rename = "sessions.revoke")]
    SessionsRevoke,
    #[serde(rename = "audit.read")]
    AuditRead,
    #[serde(rename = "scim.manage")]
    ScimManage,
    #[serde(rename = "webhooks.manage")]
    WebhooksManage,
    #[serde(rename = "org.manage")]
    OrgManage,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Self::UsersRead,
        Self::UsersWrite,
        Self::UsersLifecycle,
        Self::GroupsWrite,
        Self::RolesWrite,
        Self::PoliciesWrite,
        Self::SessionsRevoke,
        Self::AuditRead,
        Self::ScimManage,
        Self::WebhooksManage,
        Self::OrgManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsersRead => "users.read",
            Self::UsersWrite => "users.write",
            Self::UsersLifecycle => "users.lifecycle",
            Self::GroupsWrite => "groups.write",
            Self::RolesWrite => "roles.write",
            Self::PoliciesWrite => "policies.write",
            Self::SessionsRevoke => "sessions.revoke",
            Self::AuditRead => "audit.read",
            Self::ScimManage => "scim.manage",
            Self::WebhooksManage => "webhooks.manage",
            Self::OrgManage => "org.manage",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether using it changes something (every permission but the two
    /// that only read): such admin actions need a recent second factor.
    pub fn changes(self) -> bool {
        !matches!(self, Self::UsersRead | Self::AuditRead)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(BTreeSet<Permission>);

impl PermissionSet {
    pub fn contains(&self, p: Permission) -> bool {
        self.0.contains(&p)
    }
    pub fn extend(&mut self, other: impl IntoIterator<Item = Permission>) {
        self.0.extend(other);
    }
    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        self.0.iter().copied()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Stored form: space-separated permission strings. Unknown words (from a
    /// newer version) are ignored rather than granted.
    pub fn from_stored(s: &str) -> Self {
        Self(s.split_whitespace().filter_map(Permission::parse).collect())
    }
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// The roles every organization starts with; they cannot be edited or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinRole {
    Owner,
    Admin,
    Member,
    Auditor,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 4] = [Self::Owner, Self::Admin, Self::Member, Self::Auditor];

    pub fn key(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Auditor => "auditor",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::Owner => "Full control of the organization",
            Self::Admin => "Manages users, groups, roles and policies",
            Self::Member => "An ordinary member, with no administrative rights",
            Self::Auditor => "Reads users and the audit log",
        }
    }

    pub fn permissions(self) -> PermissionSet {
        use Permission as P;
        match self {
            Self::Owner => P::ALL.into_iter().collect(),
            Self::Admin => P::ALL.into_iter().filter(|p| *p != P::OrgManage).collect(),
            Self::Member => PermissionSet::default(),
            Self::Auditor => [P::UsersRead, P::AuditRead].into_iter().collect(),
        }
    }
}

/// Where a role assignment applies. Only the organization scope is granted
/// today; OU and workspace scopes are part of the model so that storage and
/// checks never assume a single scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Scope {
    Organization,
    OrgUnit(String),
    Workspace(String),
}

impl Scope {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Organization => "organization",
            Self::OrgUnit(_) => "org_unit",
            Self::Workspace(_) => "workspace",
        }
    }
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Organization => None,
            Self::OrgUnit(id) | Self::Workspace(id) => Some(id),
        }
    }
    pub fn from_stored(kind: &str, id: Option<String>) -> Option<Self> {
        match (kind, id) {
            ("organization", _) => Some(Self::Organization),
            ("org_unit", Some(id)) => Some(Self::OrgUnit(id)),
            ("workspace", Some(id)) => Some(Self::Workspace(id)),
            _ => None,
        }
    }
}

/// A role key: lower-case words with dots, hyphens or underscores.
pub fn valid_role_key(s: &str) -> bool {
    (2..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_strings_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(Permission::parse("users.*"), None);
    }

    #[test]
    fn stored_sets_ignore_unknown_words() {
        let s = PermissionSet::from_stored("users.read bogus audit.read");
        assert!(s.contains(Permission::UsersRead) && s.contains(Permission::AuditRead));
        assert_eq!(s.iter().count(), 2);
        assert_eq!(PermissionSet::from_stored(&s.to_stored()), s);
    }

    #[test]
    fn only_the_owner_manages_the_organization() {
        for r in BuiltinRole::ALL {
            assert_eq!(
                r.permissions().contains(Permission::OrgManage),
                r == BuiltinRole::Owner
            );
        }
        assert_eq!(BuiltinRole::Member.permissions().iter().count(), 0);
    }

    #[test]
    fn scopes_round_trip_through_storage() {
        for s in [
            Scope::Organization,
            Scope::OrgUnit("ou1".into()),
            Scope::Workspace("w".into()),
        ] {
            assert_eq!(
                Scope::from_stored(s.kind(), s.id().map(str::to_owned)),
                Some(s)
            );
        }
        assert_eq!(Scope::from_stored("org_unit", None), None);
    }
}
