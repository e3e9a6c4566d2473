//! Organization policies that every user inherits (DESIGN.md, Policies),
//! stored in the organization's settings. Today: the password policy.

use crate::caller::org_with;
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasswordRule {
    /// Upper case, lower case, a digit and a special character.
    #[default]
    Complexity,
    /// Length only (NIST SP 800-63B style).
    Length,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    #[serde(default)]
    pub rule: PasswordRule,
    /// 8 to 128; default 8.
    #[serde(default = "default_min")]
    pub min_length: u16,
    /// With the length rule: passwords known from breaches that are refused,
    /// besides Muster's built-in list of the most common ones (at most 10,000,
    /// compared case-insensitively).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breached_passwords: Vec<String>,
}

/// The most common breached passwords, built in (`breached.txt`).
fn builtin_breached(pw: &str) -> bool {
    static LIST: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("breached.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
    .contains(pw.to_lowercase().as_str())
}

fn default_min() -> u16 {
    8
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            rule: PasswordRule::Complexity,
            min_length: default_min(),
            breached_passwords: Vec::new(),
        }
    }
}

impl PasswordPolicy {
    /// Whether the policy itself is acceptable, wherever it is set.
    pub fn validate(&self) -> Result<()> {
        if !(8..=128).contains(&self.min_length) {
            return Err(AppError::invalid("min_length", "must be between 8 and 128"));
        }
        if self.breached_passwords.len() > 10_000
            || self
                .breached_passwords
                .iter()
                .any(|p| p.chars().count() > 256)
        {
            return Err(AppError::invalid(
                "breached_passwords",
                "at most 10,000 passwords of at most 256 characters",
            ));
        }
        Ok(())
    }

    fn is_breached(&self, pw: &str) -> bool {
        builtin_breached(pw)
            || self
                .breached_passwords
                .iter()
                .any(|b| b.to_lowercase() == pw.to_lowercase())
    }

    pub fn check(&self, pw: &str) -> Result<()> {
        let n = pw.chars().count();
        let long_enough = n >= usize::from(self.min_length) && n <= 256;
        let ok = long_enough
            && match self.rule {
                PasswordRule::Length => true,
                PasswordRule::Complexity => {
                    pw.chars().any(char::is_uppercase)
                        && pw.chars().any(char::is_lowercase)
                        && pw.chars().any(|c| c.is_ascii_digit())
                        && pw.chars().any(|c| !c.is_alphanumeric())
                }
            };
        if ok && self.rule == PasswordRule::Length && self.is_breached(pw) {
            return Err(AppError::invalid(
                "password",
                "this password is known from data breaches; choose another",
            ));
        }
        if ok {
            return Ok(());
        }
        let min = self.min_length;
        Err(AppError::invalid(
            "password",
            match self.rule {
                PasswordRule::Length => format!("use {min} to 256 characters"),
                PasswordRule::Complexity => format!(
                    "use {min} to 256 characters with an upper-case letter, a lower-case letter, a digit and a special character"
                ),
            },
        ))
    }
}

/// The policy that holds for `user_id` (its OU's, inherited down the
/// tree), or for a new account of the organization `org_id` (the root's).
pub(crate) async fn password_policy(
    app: &App,
    org_id: &str,
    user_id: Option<&str>,
) -> Result<PasswordPolicy> {
    match user_id {
        Some(u) => crate::org_units::setting_of(app, org_id, u, "password_policy").await,
        None => crate::orgs::setting(app, org_id, "password_policy").await,
    }
}

pub async fn get_password_policy(
    app: &App,
    caller: &Caller,
    org_slug: &str,
) -> Result<PasswordPolicy> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    password_policy(app, &org.id, None).await
}

pub async fn set_password_policy(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    new: PasswordPolicy,
) -> Result<PasswordPolicy> {
    let org = org_with(app, caller, org_slug, Permission::PoliciesWrite).await?;
    new.validate()?;
    crate::orgs::update_setting(
        app,
        caller,
        &org.id,
        "password_policy",
        "policy.password_changed",
        &new,
    )
    .await?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_demands_complexity_and_length_only_demands_length() {
        let d = PasswordPolicy::default();
        assert!(d.check("Str0ng!pass").is_ok());
        for weak in [
            "short1!",
            "alllower1!",
            "ALLUPPER1!",
            "NoDigits!!",
            "NoSpecial1",
        ] {
            assert!(d.check(weak).is_err(), "{weak}");
        }
        let l = PasswordPolicy {
            rule: PasswordRule::Length,
            min_length: 12,
            breached_passwords: vec!["Tr0ub4dor&3xyz".into()],
        };
        assert!(l.check("correct horse battery").is_ok());
        // Breached: built in, the organization's own, in any case.
        assert!(l.check("Qwerty123456").is_ok(), "not on the list");
        let l8 = PasswordPolicy {
            min_length: 8,
            ..l.clone()
        };
        assert!(l8.check("Password123").is_err());
        assert!(l8.check("QWERTYUIOP").is_err());
        assert!(l.check("tr0ub4dor&3XYZ").is_err());
        // The complexity rule does not consult the list.
        assert!(PasswordPolicy::default().check("P@ssw0rd").is_ok());
        assert!(l.check("short").is_err());
        assert!(l.check(&"x".repeat(257)).is_err());
    }
}
