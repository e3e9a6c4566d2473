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
}

fn default_min() -> u16 {
    8
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            rule: PasswordRule::Complexity,
            min_length: default_min(),
        }
    }
}

impl PasswordPolicy {
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

/// The policy of the organization `org_id`.
pub(crate) async fn password_policy(app: &App, org_id: &str) -> Result<PasswordPolicy> {
    crate::orgs::setting(app, org_id, "password_policy").await
}

pub async fn get_password_policy(
    app: &App,
    caller: &Caller,
    org_slug: &str,
) -> Result<PasswordPolicy> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    password_policy(app, &org.id).await
}

pub async fn set_password_policy(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    new: PasswordPolicy,
) -> Result<PasswordPolicy> {
    let org = org_with(app, caller, org_slug, Permission::PoliciesWrite).await?;
    if !(8..=128).contains(&new.min_length) {
        return Err(AppError::invalid("min_length", "must be between 8 and 128"));
    }
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
        };
        assert!(l.check("correct horse battery").is_ok());
        assert!(l.check("short").is_err());
        assert!(l.check(&"x".repeat(257)).is_err());
    }
}
