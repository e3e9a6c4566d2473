//! `/api/v1`: routes and the OpenAPI document, built together by utoipa-axum
//! so that they cannot drift apart.

mod audit;
mod auth;
mod domains;
mod federation;
mod groups;
mod invitations;
mod mfa;
mod org_units;
mod orgs;
mod roles;
mod scim;
mod security;
mod tokens;
mod users;
mod webhooks;
mod workspaces;

use crate::AppState;
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Muster admin API", version = "1", description = "Identity lifecycle administration. Errors are RFC 9457 problem details."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(crate::error::Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = doc.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    let r = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orgs::me))
        .routes(routes!(orgs::get_org, orgs::update_org))
        .routes(routes!(
            orgs::get_password_policy,
            orgs::set_password_policy
        ))
        .routes(routes!(orgs::get_session_policy, orgs::set_session_policy))
        .routes(routes!(
            orgs::get_lifecycle_policy,
            orgs::set_lifecycle_policy
        ))
        .routes(routes!(
            orgs::get_audit_retention,
            orgs::set_audit_retention
        ))
        .routes(routes!(orgs::get_lockout_policy, orgs::set_lockout_policy))
        .routes(routes!(orgs::get_signup_policy, orgs::set_signup_policy))
        .routes(routes!(invitations::list, invitations::invite))
        .routes(routes!(invitations::revoke))
        .routes(routes!(invitations::resend))
        .routes(routes!(invitations::accept))
        .routes(routes!(
            federation::get_sso,
            federation::put_sso,
            federation::delete_sso
        ))
        .routes(routes!(federation::start))
        .routes(routes!(auth::signup))
        .routes(routes!(auth::resend))
        .routes(routes!(auth::verify_email))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::request_reset))
        .routes(routes!(auth::reset_password))
        .routes(routes!(auth::my_sessions))
        .routes(routes!(auth::revoke_my_session))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::change_email))
        .routes(routes!(auth::confirm_email))
        .routes(routes!(mfa::complete))
        .routes(routes!(mfa::email_code))
        .routes(routes!(mfa::enrol))
        .routes(routes!(mfa::status))
        .routes(routes!(mfa::start_totp))
        .routes(routes!(mfa::confirm_totp))
        .routes(routes!(mfa::enable_email))
        .routes(routes!(mfa::remove))
        .routes(routes!(mfa::recovery_codes))
        .routes(routes!(mfa::step_up))
        .routes(routes!(mfa::step_up_email))
        .routes(routes!(mfa::user_status))
        .routes(routes!(mfa::reset))
        .routes(routes!(mfa::get_policy, mfa::set_policy))
        .routes(routes!(mfa::get_access, mfa::set_access))
        .routes(routes!(security::get_risk, security::set_risk))
        .routes(routes!(security::my_devices))
        .routes(routes!(security::rename_device, security::forget_device))
        .routes(routes!(security::user_devices, security::clear_devices))
        .routes(routes!(security::passkey_register_start))
        .routes(routes!(security::passkey_register_finish))
        .routes(routes!(security::mfa_passkey))
        .routes(routes!(security::step_up_passkey))
        .routes(routes!(security::passkey_start))
        .routes(routes!(security::passkey_finish))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(users::lifecycle))
        .routes(routes!(users::drift))
        .routes(routes!(
            users::legal_hold,
            users::place_legal_hold,
            users::lift_legal_hold
        ))
        .routes(routes!(users::schedule, users::set_schedule))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::get, groups::update, groups::delete))
        .routes(routes!(groups::members))
        .routes(routes!(groups::add_user, groups::remove_user))
        .routes(routes!(groups::add_group, groups::remove_group))
        .routes(routes!(roles::list, roles::create))
        .routes(routes!(roles::get, roles::update, roles::delete))
        .routes(routes!(roles::list_assignments, roles::assign))
        .routes(routes!(roles::unassign))
        .routes(routes!(tokens::list, tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(scim::list, scim::create))
        .routes(routes!(scim::revoke))
        .routes(routes!(scim::rotate))
        .routes(routes!(scim::get_policy, scim::set_policy))
        .routes(routes!(audit::list))
        .routes(routes!(audit::export))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::delivery))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(org_units::list, org_units::create))
        .routes(routes!(
            org_units::get,
            org_units::update,
            org_units::delete
        ))
        .routes(routes!(org_units::policies))
        .routes(routes!(org_units::set_policy, org_units::clear_policy))
        .routes(routes!(org_units::effective_policy))
        .routes(routes!(org_units::place_user))
        .routes(routes!(org_units::user_roles))
        .routes(routes!(workspaces::list, workspaces::create))
        .routes(routes!(
            workspaces::get,
            workspaces::rename,
            workspaces::delete
        ))
        .routes(routes!(workspaces::members))
        .routes(routes!(workspaces::add_member, workspaces::remove_member))
        .routes(routes!(workspaces::link_group, workspaces::unlink_group))
        .routes(routes!(workspaces::access))
        .routes(routes!(workspaces::mine))
        .routes(routes!(workspaces::invite_guest))
        .routes(routes!(domains::list, domains::claim))
        .routes(routes!(domains::verify))
        .routes(routes!(domains::remove));
    let doc = r.get_openapi().clone();
    r.route(
        "/openapi.json",
        axum::routing::get(move || async move { Json(doc) }),
    )
}

/// The OpenAPI document as served (the snapshot test reads it from here too).
pub fn openapi() -> utoipa::openapi::OpenApi {
    router().split_for_parts().1
}
