//! The user lifecycle state machine of DESIGN.md §1, as pure code.
//!
//! `transition` is the only place that decides whether a lifecycle event is legal
//! in a state; every surface (REST, CLI, SCIM, pages, scheduler) goes through the
//! use case that calls it, so the rules cannot differ between surfaces.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    Unverified,
    Invited,
    Provisioned,
    Active,
    Suspended,
    Locked,
    Deactivated,
}

impl UserState {
    pub const ALL: [UserState; 7] = [
        Self::Unverified,
        Self::Invited,
        Self::Provisioned,
        Self::Active,
        Self::Suspended,
        Self::Locked,
        Self::Deactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unverified => "unverified",
            Self::Invited => "invited",
            Self::Provisioned => "provisioned",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Locked => "locked",
            Self::Deactivated => "deactivated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether a password (or any local credential) sign-in may succeed.
    pub fn can_sign_in(self) -> bool {
        self == Self::Active
    }
}

/// What happened to the user. `Delete` is an event but not a state: the row goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleEvent {
    VerifyEmail,
    AcceptInvitation,
    /// A provisioned user set a credential or signed in through SSO for the first time.
    Activate,
    Suspend,
    Unsuspend,
    /// Too many failures or a high-risk event (system trigger).
    Lock,
    Unlock,
    Deactivate,
    Reactivate,
    Delete,
}

impl LifecycleEvent {
    pub const ALL: [LifecycleEvent; 10] = [
        Self::VerifyEmail,
        Self::AcceptInvitation,
        Self::Activate,
        Self::Suspend,
        Self::Unsuspend,
        Self::Lock,
        Self::Unlock,
        Self::Deactivate,
        Self::Reactivate,
        Self::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::AcceptInvitation => "accept_invitation",
            Self::Activate => "activate",
            Self::Suspend => "suspend",
            Self::Unsuspend => "unsuspend",
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::Deactivate => "deactivate",
            Self::Reactivate => "reactivate",
            Self::Delete => "delete",
        }
    }
}

/// Facts about the user, beyond its state, that some transitions depend on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    /// The user has a password or a linked federated identity.
    pub has_credential: bool,
    /// A legal hold keeps the account from being deleted (issue 6 §4).
    pub legal_hold: bool,
}

/// The outcome of a legal event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    To(UserState),
    Deleted,
}

impl Outcome {
    /// Whether the user can no longer sign in or use a token afterwards; such
    /// transitions must end every session and token (the revocation primitive).
    pub fn removes_access(self) -> bool {
        match self {
            Self::Deleted => true,
            Self::To(s) => !s.can_sign_in(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {event} a user who is {state}: {reason}", event = event.as_str(), state = state.as_str())]
pub struct TransitionError {
    pub state: UserState,
    pub event: LifecycleEvent,
    pub reason: &'static str,
}

/// The transition table. Anything not listed is refused with a reason a person
/// can act on.
pub fn transition(
    state: UserState,
    event: LifecycleEvent,
    facts: Facts,
) -> Result<Outcome, TransitionError> {
    use LifecycleEvent as E;
    use UserState as S;
    let refuse = |reason| {
        Err(TransitionError {
            state,
            event,
            reason,
        })
    };
    match (event, state) {
        (E::VerifyEmail, S::Unverified) => Ok(Outcome::To(S::Active)),
        (E::VerifyEmail, _) => refuse("only an unverified account verifies its email"),

        (E::AcceptInvitation, S::Invited) => Ok(Outcome::To(S::Active)),
        (E::AcceptInvitation, _) => refuse("only a pending invitation can be accepted"),

        (E::Activate, S::Provisioned) => Ok(Outcome::To(S::Active)),
        (E::Activate, _) => refuse("only a provisioned account is activated"),

        (E::Suspend, S::Active | S::Locked) => Ok(Outcome::To(S::Suspended)),
        (E::Suspend, S::Suspended) => refuse("the account is already suspended"),
        (E::Suspend, _) => refuse("only an active or locked account can be suspended"),

        (E::Unsuspend, S::Suspended) => Ok(Outcome::To(S::Active)),
        (E::Unsuspend, _) => refuse("the account is not suspended"),

        (E::Lock, S::Active) => Ok(Outcome::To(S::Locked)),
        (E::Lock, _) => refuse("only an active account can be locked"),

        (E::Unlock, S::Locked) => Ok(Outcome::To(S::Active)),
        (E::Unlock, _) => refuse("the account is not locked"),

        (E::Deactivate, S::Deactivated) => refuse("the account is already deactivated"),
        (E::Deactivate, _) => Ok(Outcome::To(S::Deactivated)),

        // Reactivation restores the account, not its old sessions; without a
        // credential it goes back to waiting for activation, as in Okta.
        (E::Reactivate, S::Deactivated) if facts.has_credential => Ok(Outcome::To(S::Active)),
        (E::Reactivate, S::Deactivated) => Ok(Outcome::To(S::Provisioned)),
        (E::Reactivate, _) => refuse("only a deactivated account can be reactivated"),

        (E::Delete, S::Deactivated) if facts.legal_hold => {
            refuse("the account is on legal hold; lift the hold before deleting it")
        }
        (E::Delete, S::Deactivated) => Ok(Outcome::Deleted),
        (E::Delete, _) => refuse("deactivate the account before deleting it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleEvent as E;
    use UserState as S;

    /// The whole table, written out by hand: every state × every event.
    /// `None` means refused.
    fn expected(state: S, event: E, f: Facts) -> Option<Outcome> {
        let to = |s| Some(Outcome::To(s));
        match (state, event) {
            (S::Unverified, E::VerifyEmail) => to(S::Active),
            (S::Invited, E::AcceptInvitation) => to(S::Active),
            (S::Provisioned, E::Activate) => to(S::Active),
            (S::Active, E::Suspend) | (S::Locked, E::Suspend) => to(S::Suspended),
            (S::Suspended, E::Unsuspend) => to(S::Active),
            (S::Active, E::Lock) => to(S::Locked),
            (S::Locked, E::Unlock) => to(S::Active),
            (S::Deactivated, E::Deactivate) => None,
            (_, E::Deactivate) => to(S::Deactivated),
            (S::Deactivated, E::Reactivate) => to(if f.has_credential {
                S::Active
            } else {
                S::Provisioned
            }),
            (S::Deactivated, E::Delete) if !f.legal_hold => Some(Outcome::Deleted),
            _ => None,
        }
    }

    #[test]
    fn every_state_and_event_gives_the_documented_outcome() {
        let mut legal = 0;
        for state in S::ALL {
            for event in E::ALL {
                for (has_credential, legal_hold) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    let f = Facts {
                        has_credential,
                        legal_hold,
                    };
                    let got = transition(state, event, f);
                    let want = expected(state, event, f);
                    match (got, want) {
                        (Ok(g), Some(w)) => {
                            assert_eq!(g, w, "{state:?} × {event:?}");
                            legal += 1;
                        }
                        (Err(e), None) => {
                            assert_eq!((e.state, e.event), (state, event));
                            assert!(!e.reason.is_empty());
                        }
                        (got, want) => panic!("{state:?} × {event:?}: got {got:?}, want {want:?}"),
                    }
                }
            }
        }
        // 7 states × 10 events × 4 fact sets = 280 cells: the 16 legal pairs
        // under each fact set, less deletion under a legal hold (2 sets).
        assert_eq!(legal, 16 * 4 - 2);
    }

    #[test]
    fn only_active_users_can_sign_in() {
        for s in S::ALL {
            assert_eq!(s.can_sign_in(), s == S::Active, "{s:?}");
        }
    }

    #[test]
    fn losing_access_is_detected_for_every_access_removing_event() {
        let f = Facts {
            has_credential: true,
            legal_hold: false,
        };
        for (from, ev) in [
            (S::Active, E::Suspend),
            (S::Active, E::Lock),
            (S::Active, E::Deactivate),
            (S::Deactivated, E::Delete),
        ] {
            assert!(transition(from, ev, f).unwrap().removes_access(), "{ev:?}");
        }
        assert!(
            !transition(S::Suspended, E::Unsuspend, f)
                .unwrap()
                .removes_access()
        );
    }

    #[test]
    fn refusal_message_names_state_and_event() {
        let e = transition(S::Deactivated, E::Suspend, Facts::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot suspend a user who is deactivated: only an active or locked account can be suspended"
        );
    }

    #[test]
    fn states_round_trip_through_text() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        assert_eq!(S::parse("gone"), None);
    }
}
