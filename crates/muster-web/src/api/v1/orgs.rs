//! `/me` and `/orgs/{org}`.

use crate::extract::{Auth, Json};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use muster_app::orgs::OrgView;
use muster_app::policies::PasswordPolicy;
use muster_app::users::UserView;
use serde::Deserialize;

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "me", responses((status = 200, body = UserView), (status = 401, body = crate::error::Problem)))]
pub async fn me(crate::extract::Me(user): crate::extract::Me) -> Json<UserView> {
    Json(user)
}

#[utoipa::path(get, path = "/orgs/{org}", tag = "organizations", params(("org" = String, Path, description = "organization slug")),
    responses((status = 200, body = OrgView), (status = 404, body = crate::error::Problem)))]
pub async fn get_org(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(muster_app::orgs::get(&s.app, &c, &org).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgUpdate {
    name: String,
}

/// Renames the organization (`org.manage`).
#[utoipa::path(patch, path = "/orgs/{org}", tag = "organizations", params(("org" = String, Path)), request_body = OrgUpdate,
    responses((status = 200, body = OrgView), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn update_org(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<OrgUpdate>,
) -> Result<Json<OrgView>, ApiError> {
    Ok(Json(
        muster_app::orgs::rename(&s.app, &c, &org, &b.name).await?,
    ))
}

/// The password policy every user of the organization is held to.
#[utoipa::path(get, path = "/orgs/{org}/password-policy", tag = "policies", params(("org" = String, Path)), responses((status = 200, body = PasswordPolicy)))]
pub async fn get_password_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<PasswordPolicy>, ApiError> {
    Ok(Json(
        muster_app::policies::get_password_policy(&s.app, &c, &org).await?,
    ))
}

#[utoipa::path(put, path = "/orgs/{org}/password-policy", tag = "policies", params(("org" = String, Path)), request_body = PasswordPolicy,
    responses((status = 200, body = PasswordPolicy), (status = 422, body = crate::error::Problem)))]
pub async fn set_password_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<PasswordPolicy>,
) -> Result<Json<PasswordPolicy>, ApiError> {
    Ok(Json(
        muster_app::policies::set_password_policy(&s.app, &c, &org, b).await?,
    ))
}

macro_rules! policy_routes {
    ($get:ident, $set:ident, $path:literal, $key:literal, $ty:ty, $doc:literal) => {
        policy_routes!($get, $set, $path, $key, $ty, $doc, |app, c, org, b| muster_app::signin::set_policy(app, c, org, $key, b));
    };
    ($get:ident, $set:ident, $path:literal, $key:literal, $ty:ty, $doc:literal, |$app:ident, $c:ident, $org:ident, $b:ident| $setter:expr) => {
        #[doc = $doc]
        #[utoipa::path(get, path = $path, tag = "policies", params(("org" = String, Path)), responses((status = 200, body = $ty)))]
        pub async fn $get(
            State(s): State<AppState>,
            Auth(c): Auth,
            Path(org): Path<String>,
        ) -> Result<Json<$ty>, ApiError> {
            Ok(Json(muster_app::signin::get_policy(&s.app, &c, &org, $key).await?))
        }

        #[utoipa::path(put, path = $path, tag = "policies", params(("org" = String, Path)), request_body = $ty,
            responses((status = 200, body = $ty), (status = 422, body = crate::error::Problem)))]
        pub async fn $set(
            State(s): State<AppState>,
            Auth(c): Auth,
            Path(org): Path<String>,
            Json(b): Json<$ty>,
        ) -> Result<Json<$ty>, ApiError> {
            b.check()?;
            let ($app, $c, $org, $b) = (&s.app, &c, &org, b);
            Ok(Json($setter.await?))
        }
    };
}

policy_routes!(
    get_session_policy,
    set_session_policy,
    "/orgs/{org}/session-policy",
    "session",
    muster_app::signin::SessionPolicy,
    "How long sessions last without activity, and at most."
);
policy_routes!(
    get_lockout_policy,
    set_lockout_policy,
    "/orgs/{org}/lockout-policy",
    "lockout",
    muster_app::signin::LockoutPolicy,
    "When failed sign-ins slow down and lock an account."
);
policy_routes!(
    get_signup_policy,
    set_signup_policy,
    "/orgs/{org}/signup-policy",
    "signup",
    muster_app::signin::SignupPolicy,
    "Whether people may sign up, and the roles and groups they get.",
    |app, c, org, b| muster_app::signin::set_signup_policy(app, c, org, b)
);
policy_routes!(
    get_audit_retention,
    set_audit_retention,
    "/orgs/{org}/audit-retention",
    "audit_retention",
    muster_app::retention::RetentionPolicy,
    "How many days of audit events stay in the database; `muster audit archive` moves older ones to signed archive files."
);
policy_routes!(
    get_lifecycle_policy,
    set_lifecycle_policy,
    "/orgs/{org}/lifecycle-policy",
    "lifecycle",
    muster_app::scheduler::LifecyclePolicy,
    "Automatic lifecycle: suspension after days without sign-in, deletion of deactivated users after a grace period."
);
