//! Multi-factor authentication (issue 5 §1–§3): the organization's MFA
//! policy, a user's factors (TOTP, email codes) and recovery codes, and the
//! assurance level a session reaches. The sign-in step between the password
//! and a session is `challenge`; proving a factor, for sign-in or a step-up,
//! is `prove`.

pub mod challenge;
mod factors;
pub mod passkeys;
mod prove;
pub mod totp;

pub use challenge::{Entry, MfaChallenge};
pub use factors::{
    CodeInput, Enrolled, TotpSetup, TotpStart, confirm_totp, enable_email, regenerate_recovery,
    remove, reset, start_totp,
};
pub(crate) use factors::{email_factor, first_factor_codes, new_totp, recovery_hash};
pub use prove::{StepUpInput, step_up, step_up_email, step_up_passkey};

use crate::paging::rfc3339;
use crate::{App, AppError, Caller, Principal, Result};
use muster_core::{Permission, PermissionSet};
use muster_store::mfa::FactorRow;
use serde::{Deserialize, Serialize};

/// Who must use a second factor (DESIGN.md §1, Policies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaMode {
    /// No MFA at all: nothing can be enrolled, nothing is asked.
    Off,
    /// Whoever enrolled a factor is asked for it.
    #[default]
    Optional,
    /// Everyone.
    Required,
    /// Everyone holding any administrative permission.
    Admins,
    /// Members of the chosen groups (directly or through nested groups).
    Groups,
}

/// A second factor a user can enrol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Totp,
    Email,
    Passkey,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Email => "email",
            Self::Passkey => "passkey",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MfaPolicy {
    pub mode: MfaMode,
    /// With `groups`: the groups whose members must use MFA.
    pub groups: Vec<String>,
    /// What members may enrol. Recovery codes come with the first factor.
    pub methods: Vec<Method>,
    /// Admin actions and sensitive changes made with a browser session need
    /// a second factor proved within this many minutes (1 to 1440).
    pub step_up_minutes: u32,
}

impl Default for MfaPolicy {
    fn default() -> Self {
        Self {
            mode: MfaMode::Optional,
            groups: Vec::new(),
            methods: vec![Method::Totp, Method::Email, Method::Passkey],
            step_up_minutes: 15,
        }
    }
}

impl MfaPolicy {
    pub(crate) fn step_up_ms(&self) -> i64 {
        i64::from(self.step_up_minutes) * 60_000
    }

    pub(crate) fn allows(&self, m: Method) -> bool {
        self.mode != MfaMode::Off && self.methods.contains(&m)
    }

    /// Whether a user with these permissions and groups must use MFA.
    pub(crate) fn requires(&self, perms: &PermissionSet, groups: &[&str]) -> bool {
        match self.mode {
            MfaMode::Off | MfaMode::Optional => false,
            MfaMode::Required => true,
            MfaMode::Admins => !perms.is_empty(),
            MfaMode::Groups => self.groups.iter().any(|g| groups.contains(&g.as_str())),
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if !(1..=1440).contains(&self.step_up_minutes) {
            return Err(AppError::invalid(
                "step_up_minutes",
                "must be between 1 and 1440",
            ));
        }
        if self.mode != MfaMode::Off && self.methods.is_empty() {
            return Err(AppError::invalid(
                "methods",
                "allow at least one method, or set mode to off",
            ));
        }
        // Whoever must use MFA and has none enrols at sign-in, where only an
        // app or email codes can be set up (a passkey needs a session first).
        let enrollable =
            self.methods.contains(&Method::Totp) || self.methods.contains(&Method::Email);
        if matches!(
            self.mode,
            MfaMode::Required | MfaMode::Admins | MfaMode::Groups
        ) && !enrollable
        {
            return Err(AppError::invalid(
                "methods",
                "when MFA is required, allow totp or email too: people without a factor enrol one of them at sign-in",
            ));
        }
        match (self.mode, self.groups.is_empty()) {
            (MfaMode::Groups, true) => Err(AppError::invalid(
                "groups",
                "mode 'groups' needs at least one group",
            )),
            (MfaMode::Groups, false) if self.groups.len() > 100 => {
                Err(AppError::invalid("groups", "at most 100 groups"))
            }
            (MfaMode::Groups, false) => Ok(()),
            (_, false) => Err(AppError::invalid(
                "groups",
                "groups apply only with mode 'groups'",
            )),
            (_, true) => Ok(()),
        }
    }
}

/// Sets the MFA policy; every group it names must exist.
pub async fn set_policy(
    app: &App,
    caller: &Caller,
    slug: &str,
    new: MfaPolicy,
) -> Result<MfaPolicy> {
    let org = crate::caller::org_with(app, caller, slug, Permission::PoliciesWrite).await?;
    let mut checked = new.check();
    for g in &new.groups {
        if checked.is_ok()
            && muster_store::groups::get(&app.db, &org.id, g)
                .await?
                .is_none()
        {
            checked = Err(AppError::invalid(
                "groups",
                format!("no group '{g}' in this organization"),
            ));
        }
    }
    if let Err(e) = checked {
        return Err(crate::guard::rejected(app, caller, &org.id, "mfa", e).await?);
    }
    crate::orgs::update_setting(app, caller, &org.id, "mfa", "policy.mfa_changed", &new).await?;
    Ok(new)
}

/// The MFA policy that holds for the user: its OU's, inherited.
pub(crate) async fn policy(app: &App, org_id: &str, user_id: &str) -> Result<MfaPolicy> {
    crate::org_units::setting_of(app, org_id, user_id, "mfa").await
}

/// Whether the organization's policy makes `user_id` use MFA.
pub(crate) async fn required_for(
    app: &App,
    p: &MfaPolicy,
    org_id: &str,
    user_id: &str,
) -> Result<bool> {
    if matches!(p.mode, MfaMode::Off | MfaMode::Optional) {
        return Ok(false);
    }
    let (perms, groups) = muster_store::mfa::standing(&app.db, org_id, user_id).await?;
    let groups: Vec<&str> = groups.split_whitespace().collect();
    Ok(p.requires(&PermissionSet::from_stored(&perms), &groups))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FactorView {
    pub id: String,
    pub kind: Method,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<String>,
}

fn view(f: &FactorRow) -> Option<FactorView> {
    let kind = match f.kind.as_str() {
        "totp" => Method::Totp,
        "email" => Method::Email,
        "passkey" => Method::Passkey,
        _ => return None,
    };
    f.confirmed_at?;
    Some(FactorView {
        id: f.id.clone(),
        kind,
        name: f.name.clone(),
        created_at: rfc3339(f.created_at),
        last_used_at: f.last_used_at.map(rfc3339),
    })
}

/// A user's MFA, as they (or an admin) see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MfaStatus {
    /// Whether the organization's policy makes this user use MFA.
    pub required: bool,
    /// Methods the organization lets members enrol.
    pub allowed: Vec<Method>,
    pub factors: Vec<FactorView>,
    pub recovery_codes_left: usize,
    /// How long a step-up lasts, in minutes.
    pub step_up_minutes: u32,
}

async fn status_of(app: &App, org_id: &str, user_id: &str) -> Result<MfaStatus> {
    let p = policy(app, org_id, user_id).await?;
    let factors = muster_store::mfa::factors(&app.db, user_id).await?;
    let left = muster_store::mfa::recovery_left(&app.db, user_id)
        .await?
        .len();
    Ok(MfaStatus {
        required: required_for(app, &p, org_id, user_id).await?,
        allowed: p.methods.iter().copied().filter(|m| p.allows(*m)).collect(),
        factors: factors.iter().filter_map(view).collect(),
        recovery_codes_left: left,
        step_up_minutes: p.step_up_minutes,
    })
}

/// The caller's own MFA.
pub async fn my_status(app: &App, caller: &Caller) -> Result<MfaStatus> {
    let (org_id, user_id, _) = own(caller)?;
    status_of(app, org_id, user_id).await
}

/// A user's MFA, for an admin (`users.read`).
pub async fn user_status(app: &App, caller: &Caller, slug: &str, id: &str) -> Result<MfaStatus> {
    let org = crate::caller::org_with(app, caller, slug, Permission::UsersRead).await?;
    muster_store::users::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    status_of(app, &org.id, id).await
}

/// The signed-in user of a browser session. MFA is managed only from a
/// session: an API token may neither enrol nor remove a factor.
pub(crate) fn own(caller: &Caller) -> Result<(&str, &str, &crate::caller::SessionRef)> {
    match &caller.principal {
        Principal::User {
            org_id,
            user_id,
            session: Some(s),
            ..
        } => Ok((org_id, user_id, s)),
        Principal::User { .. } => Err(AppError::Refused(
            "MFA is managed from a signed-in session, not with an API token".into(),
        )),
        _ => Err(AppError::NotFound("user")),
    }
}

/// Changes to a user's factors are sensitive once they have one: the
/// session must have proved a factor recently.
pub(crate) async fn sensitive(app: &App, caller: &Caller) -> Result<Vec<FactorRow>> {
    let (_, user_id, s) = own(caller)?;
    let factors = muster_store::mfa::factors(&app.db, user_id).await?;
    if factors.iter().any(|f| f.confirmed_at.is_some()) && s.recent_level < 2 {
        return Err(AppError::StepUpRequired(
            "confirm with a second factor first (step-up), then try again",
        ));
    }
    Ok(factors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_that_contradict_themselves_are_refused() {
        assert!(MfaPolicy::default().check().is_ok());
        let bad = [
            MfaPolicy {
                mode: MfaMode::Groups,
                ..MfaPolicy::default()
            },
            MfaPolicy {
                groups: vec!["g".into()],
                ..MfaPolicy::default()
            },
            MfaPolicy {
                methods: vec![],
                mode: MfaMode::Required,
                ..MfaPolicy::default()
            },
            MfaPolicy {
                step_up_minutes: 0,
                ..MfaPolicy::default()
            },
            MfaPolicy {
                mode: MfaMode::Required,
                methods: vec![Method::Passkey],
                ..MfaPolicy::default()
            },
        ];
        for p in bad {
            assert!(p.check().is_err(), "{p:?}");
        }
    }

    #[test]
    fn who_must_use_mfa() {
        let admin = PermissionSet::from_stored("users.read");
        let member = PermissionSet::default();
        let p = |mode| MfaPolicy {
            mode,
            groups: vec!["eng".into()],
            ..MfaPolicy::default()
        };
        assert!(!p(MfaMode::Optional).requires(&admin, &["eng"]));
        assert!(!p(MfaMode::Off).requires(&admin, &["eng"]));
        assert!(p(MfaMode::Required).requires(&member, &[]));
        assert!(p(MfaMode::Admins).requires(&admin, &[]));
        assert!(!p(MfaMode::Admins).requires(&member, &["eng"]));
        assert!(p(MfaMode::Groups).requires(&member, &["ops", "eng"]));
        assert!(!p(MfaMode::Groups).requires(&admin, &["ops"]));
    }
}
