//! Organization policies that every user inherits (DESIGN.md, Policies),
//! stored in the organization's settings. Today: the password policy.

use crate::audit::{self, Event};
use crate::caller::org_with;
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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

fn read(settings: &str) -> PasswordPolicy {
    serde_json::from_str::<Value>(settings)
        .ok()
        .and_then(|s| serde_json::from_value(s.get("password_policy")?.clone()).ok())
        .unwrap_or_default()
}

/// The policy of the organization `org_id`.
pub(crate) async fn password_policy(app: &App, org_id: &str) -> Result<PasswordPolicy> {
    let org = muster_store::orgs::by_id(&app.db, org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    Ok(read(&org.settings))
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
    let mut tx = app.db.begin().await?;
    let row = muster_store::orgs::get_in(&mut tx, &org.id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let before = read(&row.settings);
    let mut settings: Value = serde_json::from_str(&row.settings).unwrap_or_else(|_| json!({}));
    if let Some(o) = settings.as_object_mut() {
        o.insert("password_policy".into(), json!(new));
    }
    muster_store::orgs::update_settings(&mut tx, &org.id, &settings.to_string(), app.now_ms())
        .await?;
    let ev = Event::new(&org.id, "policy.password_changed")
        .target("organization", &org.id)
        .change("password_policy", &before, &new)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
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
