//! `/orgs/{org}/org-units`: the OU tree, each unit's policies, and which
//! unit a user is in (issue 7 §1).

use crate::extract::{Auth, Json, Query};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use muster_app::guard::SaveOptions;
use muster_app::org_units::policies::EffectivePolicy;
use muster_app::org_units::{NewOrgUnit, OrgUnitUpdate, OrgUnitView};
use muster_app::users::UserView;
use serde::Deserialize;
use serde_json::Value;

/// The units the caller can see, parents before children.
#[utoipa::path(get, path = "/orgs/{org}/org-units", tag = "org units", params(("org" = String, Path)),
    responses((status = 200, body = Vec<OrgUnitView>), (status = 403, body = crate::error::Problem)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
) -> Result<Json<Vec<OrgUnitView>>, ApiError> {
    Ok(Json(muster_app::org_units::list(&s.app, &c, &org).await?))
}

/// Creates a unit (`users.write`); under the root unless `parent_id` says.
#[utoipa::path(post, path = "/orgs/{org}/org-units", tag = "org units", params(("org" = String, Path)), request_body = NewOrgUnit,
    responses((status = 201, body = OrgUnitView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Json(b): Json<NewOrgUnit>,
) -> Result<(StatusCode, Json<OrgUnitView>), ApiError> {
    let v = muster_app::org_units::create(&s.app, &c, &org, b).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

#[utoipa::path(get, path = "/orgs/{org}/org-units/{id}", tag = "org units", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = OrgUnitView), (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<OrgUnitView>, ApiError> {
    Ok(Json(
        muster_app::org_units::get(&s.app, &c, &org, &id).await?,
    ))
}

/// Renames a unit and/or moves it, with everything below it, under another
/// (a move under itself or its own units is refused).
#[utoipa::path(patch, path = "/orgs/{org}/org-units/{id}", tag = "org units", params(("org" = String, Path), ("id" = String, Path)), request_body = OrgUnitUpdate,
    responses((status = 200, body = OrgUnitView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn update(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Json(b): Json<OrgUnitUpdate>,
) -> Result<Json<OrgUnitView>, ApiError> {
    Ok(Json(
        muster_app::org_units::update(&s.app, &c, &org, &id, b).await?,
    ))
}

/// Deletes an empty unit (no units, users or scoped roles in it).
#[utoipa::path(delete, path = "/orgs/{org}/org-units/{id}", tag = "org units", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    muster_app::org_units::delete(&s.app, &c, &org, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Each inheritable policy as it holds in the unit, and the level it comes
/// from (this unit, an ancestor, the organization, or the default).
#[utoipa::path(get, path = "/orgs/{org}/org-units/{id}/policies", tag = "org units", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = EffectivePolicy), (status = 404, body = crate::error::Problem)))]
pub async fn policies(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<EffectivePolicy>, ApiError> {
    Ok(Json(
        muster_app::org_units::policies::of_unit(&s.app, &c, &org, &id).await?,
    ))
}

/// Sets one policy (`password`, `mfa`, `session`, `access` or `risk`) for
/// the unit and everything below it that does not set its own. The body is
/// the policy as the organization-level endpoint takes it, checked the
/// same way.
#[utoipa::path(put, path = "/orgs/{org}/org-units/{id}/policies/{policy}", tag = "org units",
    params(("org" = String, Path), ("id" = String, Path), ("policy" = String, Path), SaveOptions), request_body = Object,
    responses((status = 200, body = EffectivePolicy), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn set_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, policy)): Path<(String, String, String)>,
    Query(opts): Query<SaveOptions>,
    Json(b): Json<Value>,
) -> Result<Json<EffectivePolicy>, ApiError> {
    Ok(Json(
        muster_app::org_units::policies::set(&s.app, &c, &org, &id, &policy, Some(b), &opts)
            .await?,
    ))
}

/// Removes the unit's own policy: it inherits again. Removing an access
/// policy that leaves the caller's own request refused by the one above
/// needs `confirm_lockout=true`.
#[utoipa::path(delete, path = "/orgs/{org}/org-units/{id}/policies/{policy}", tag = "org units",
    params(("org" = String, Path), ("id" = String, Path), ("policy" = String, Path), SaveOptions),
    responses((status = 200, body = EffectivePolicy), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
pub async fn clear_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id, policy)): Path<(String, String, String)>,
    Query(opts): Query<SaveOptions>,
) -> Result<Json<EffectivePolicy>, ApiError> {
    Ok(Json(
        muster_app::org_units::policies::set(&s.app, &c, &org, &id, &policy, None, &opts).await?,
    ))
}

/// The policies that hold for a user, and the level each comes from.
#[utoipa::path(get, path = "/orgs/{org}/users/{id}/effective-policy", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = EffectivePolicy), (status = 404, body = crate::error::Problem)))]
pub async fn effective_policy(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<EffectivePolicy>, ApiError> {
    Ok(Json(
        muster_app::org_units::policies::of_user(&s.app, &c, &org, &id).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    org_unit_id: String,
}

/// Moves the user into another organizational unit; the unit's policies
/// hold for the user's next request.
#[utoipa::path(put, path = "/orgs/{org}/users/{id}/org-unit", tag = "users", params(("org" = String, Path), ("id" = String, Path)), request_body = Placement,
    responses((status = 200, body = UserView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn place_user(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
    Json(b): Json<Placement>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(
        muster_app::org_units::place_user(&s.app, &c, &org, &id, &b.org_unit_id).await?,
    ))
}

/// Every role the user holds, in every scope (organization, unit,
/// workspace): its own, and those inherited from its groups (read-only
/// here: change them on the group).
#[utoipa::path(get, path = "/orgs/{org}/users/{id}/roles", tag = "users", params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Vec<muster_app::roles::HeldRoleView>), (status = 404, body = crate::error::Problem)))]
pub async fn user_roles(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, id)): Path<(String, String)>,
) -> Result<Json<Vec<muster_app::roles::HeldRoleView>>, ApiError> {
    Ok(Json(
        muster_app::roles::of_user(&s.app, &c, &org, &id).await?,
    ))
}
