//! Who is calling, and what they may touch.
//!
//! Tenant isolation lives here: `org` resolves the organization a request names
//! and answers `NotFound` — never `Forbidden` — when it is not the caller's, so
//! another tenant's existence is not even confirmed. Permissions are read from
//! the database when each request is authenticated: no copy outlives a request.

use crate::{App, AppError, Result, secrets};
use muster_core::audit::{Actor, ActorKind, Context};
use muster_core::{Permission, PermissionSet, UserState, tokens};

#[derive(Debug, Clone)]
pub enum Principal {
    /// Someone at the server's console (the CLI): trusted, unrestricted.
    Operator { name: String },
    /// A user of one organization, through an API token (or, later, a session).
    User {
        org_id: String,
        org_slug: String,
        user_id: String,
        email: String,
        token_id: Option<String>,
        token_name: Option<String>,
        /// The sign-in session the request came with (none for API tokens).
        session: Option<SessionRef>,
        /// Read from the database when this request was authenticated; never
        /// carried over from an earlier request.
        permissions: PermissionSet,
    },
    /// Someone not signed in (a failed sign-in, a code for an unknown
    /// address): audited under what they claimed to be, allowed nothing.
    Anonymous { claimed: String },
    /// An IdP, through a SCIM token of one organization.
    ScimToken {
        org_id: String,
        org_slug: String,
        token_id: String,
        token_name: String,
    },
}

/// A browser or app session behind a request, and the assurance it holds.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub id: String,
    /// The level proved within the organization's step-up window: the
    /// session's level if proved recently enough, else 1.
    pub recent_level: i32,
    /// Whether the organization's MFA policy makes admin actions need L2.
    pub admin_needs_mfa: bool,
}

/// What a SCIM token may do: provision users and groups, nothing else.
pub const SCIM_PERMISSIONS: [Permission; 4] = [
    Permission::UsersRead,
    Permission::UsersWrite,
    Permission::UsersLifecycle,
    Permission::GroupsWrite,
];

#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub ctx: Context,
}

impl Caller {
    pub fn operator(name: &str) -> Self {
        Self {
            principal: Principal::Operator {
                name: name.to_owned(),
            },
            ctx: Context::default(),
        }
    }

    /// Muster itself (the lockout, the mailer, a scheduler): trusted like an
    /// operator, audited as the system.
    pub fn system(name: &str) -> Self {
        Self::operator(&format!("system:{name}"))
    }

    pub fn actor(&self) -> Actor {
        match &self.principal {
            Principal::Operator { name } => match name.strip_prefix("system:") {
                Some(what) => Actor {
                    label: Some(what.to_owned()),
                    ..Actor::system()
                },
                None => Actor::cli(name),
            },
            Principal::User {
                user_id,
                email,
                token_id: Some(t),
                token_name,
                ..
            } => Actor {
                kind: ActorKind::ApiToken,
                id: Some(t.clone()),
                label: token_name.clone(),
                on_behalf_of: Some(format!("{user_id} ({email})")),
            },
            Principal::User {
                user_id,
                email,
                token_id: None,
                ..
            } => Actor {
                kind: ActorKind::User,
                id: Some(user_id.clone()),
                label: Some(email.clone()),
                on_behalf_of: None,
            },
            Principal::Anonymous { claimed } => Actor {
                kind: ActorKind::User,
                id: None,
                label: Some(claimed.clone()),
                on_behalf_of: None,
            },
            Principal::ScimToken {
                token_id,
                token_name,
                ..
            } => Actor {
                kind: ActorKind::ScimToken,
                id: Some(token_id.clone()),
                label: Some(token_name.clone()),
                on_behalf_of: None,
            },
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        match &self.principal {
            Principal::User { user_id, .. } => Some(user_id),
            Principal::Operator { .. }
            | Principal::ScimToken { .. }
            | Principal::Anonymous { .. } => None,
        }
    }
}

/// Authenticates `Authorization: Bearer mst_…`. Every failure — malformed,
/// unknown, wrong secret, expired, revoked, user not active — is the same
/// `Unauthenticated`, so a client learns nothing about which it was.
pub async fn authenticate_api_token(app: &App, token: &str, ctx: Context) -> Result<Caller> {
    let parsed = tokens::parse(tokens::API_TOKEN_PREFIX, token).ok_or(AppError::Unauthenticated)?;
    let id = parsed.id.to_string();
    let row = muster_store::tokens::for_auth(&app.db, &id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let now = app.now_ms();
    let valid = secrets::secret_matches(parsed.secret, &row.secret_hash)
        && row.revoked_at.is_none()
        && row.expires_at.is_none_or(|e| now < e)
        && UserState::parse(&row.user_state).is_some_and(UserState::can_sign_in);
    if !valid {
        return Err(AppError::Unauthenticated);
    }
    // Last use is recorded at most once a minute, off the request's path.
    if row.last_used_at.is_none_or(|t| now - t > 60_000) {
        let db = app.db.clone();
        tokio::spawn(async move {
            if let Err(e) = muster_store::tokens::touch(&db, &id, now).await {
                tracing::warn!(error = %e, "could not record token use");
            }
        });
    }
    let permissions = PermissionSet::from_stored(row.permissions.as_deref().unwrap_or(""));
    let rules = app.policies.get(&row.org_id, &row.org_settings);
    let caller = Caller {
        principal: Principal::User {
            permissions,
            org_id: row.org_id,
            org_slug: row.org_slug,
            user_id: row.user_id,
            email: row.user_email,
            token_id: Some(row.id),
            token_name: Some(row.name),
            session: None,
        },
        ctx,
    };
    crate::guard::check(app, &caller, &rules.access).await?;
    Ok(caller)
}

/// The organization a request names, once the caller is known to belong to it.
#[derive(Debug, Clone)]
pub struct OrgRef {
    pub id: String,
    pub slug: String,
}

/// The organization a request names, if the caller may see it at all. A
/// user's own organization is known from authentication; operators look it up.
pub async fn org(app: &App, caller: &Caller, slug: &str) -> Result<OrgRef> {
    match &caller.principal {
        Principal::User {
            org_slug, org_id, ..
        } if org_slug == slug => Ok(OrgRef {
            id: org_id.clone(),
            slug: slug.to_owned(),
        }),
        Principal::ScimToken {
            org_slug, org_id, ..
        } if org_slug == slug => Ok(OrgRef {
            id: org_id.clone(),
            slug: slug.to_owned(),
        }),
        Principal::User { .. } | Principal::ScimToken { .. } | Principal::Anonymous { .. } => {
            Err(AppError::NotFound("organization"))
        }
        Principal::Operator { .. } => {
            let row = muster_store::orgs::by_slug(&app.db, slug)
                .await?
                .ok_or(AppError::NotFound("organization"))?;
            Ok(OrgRef {
                id: row.id,
                slug: row.slug,
            })
        }
    }
}

/// Fails unless the caller holds `perm` in the organization.
pub fn require(caller: &Caller, org_id: &str, perm: Permission) -> Result<()> {
    match &caller.principal {
        Principal::Operator { .. } => Ok(()),
        Principal::User {
            org_id: own,
            permissions,
            session,
            ..
        } => {
            if own != org_id {
                return Err(AppError::NotFound("organization"));
            }
            if !permissions.contains(perm) {
                return Err(AppError::Forbidden(perm.as_str()));
            }
            // Admin actions from a session need a recent second factor
            // (issue 5 §3); reading does not. API tokens are their own
            // credential, created from a stepped-up session.
            match session {
                Some(s) if perm.changes() && s.admin_needs_mfa && s.recent_level < 2 => {
                    Err(AppError::StepUpRequired(
                        "admin actions need a second factor proved in the last minutes: step up (POST /api/v1/me/step-up), or set up MFA first",
                    ))
                }
                _ => Ok(()),
            }
        }
        Principal::Anonymous { .. } => Err(AppError::Unauthenticated),
        Principal::ScimToken { org_id: own, .. } => {
            if own != org_id {
                return Err(AppError::NotFound("organization"));
            }
            if SCIM_PERMISSIONS.contains(&perm) {
                Ok(())
            } else {
                Err(AppError::Forbidden(perm.as_str()))
            }
        }
    }
}

/// The organization plus a permission check: the opening of most use cases.
pub async fn org_with(app: &App, caller: &Caller, slug: &str, perm: Permission) -> Result<OrgRef> {
    let org = org(app, caller, slug).await?;
    require(caller, &org.id, perm)?;
    Ok(org)
}
