//! Muster's domain: identifiers, values parsed at the edge, the lifecycle state
//! machine, permissions, audit events and their hash chain. No I/O lives here.

pub mod access_policy;
pub mod audit;
pub mod clock;
pub mod email;
pub mod ids;
pub mod lifecycle;
pub mod orgs;
pub mod rbac;
pub mod risk;
pub mod tokens;
pub mod users;

pub use clock::{Clock, SystemClock};
pub use email::EmailAddress;
pub use ids::*;
pub use lifecycle::{LifecycleEvent, TransitionError, UserState};
pub use orgs::OrgSlug;
pub use rbac::{Permission, PermissionSet, Scope};
