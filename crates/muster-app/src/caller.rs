//! Who is calling, and what they may touch.
//!
//! Tenant isolation lives here: `org` resolves the organization a request names
//! and answers `NotFound` — never `Forbidden` — when it is not the caller's, so
//! another tenant's existence is not even confirmed. An API token's
//! permissions are read from the database for each request (together with
//! concurrent requests' tokens, `token_reads`); a session's may come from a
//! copy at most a second old (`signin::cache`).

use crate::{App, AppError, Result, secrets};
use muster_core::audit::{Actor, ActorKind, Context};
use muster_core::{Permission, PermissionSet, UserState, tokens};
use muster_store::tokens::TokenAuthRow;

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
        /// Roles scoped to organizational units and workspaces, read the
        /// same way.
        scoped: Vec<ScopedGrant>,
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

/// Permissions that hold within one OU's subtree or one workspace (issue 7
/// §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedGrant {
    /// An OU's path (`/root/…/ou/`: every unit whose path starts with it),
    /// or `ws:<id>` for a workspace.
    pub path: String,
    pub permissions: PermissionSet,
}

/// The stored form the authentication queries return: `path perms…`
/// entries separated by `;` (see `muster_store::roles::effective_columns`).
/// Grants of one path are merged.
pub fn parse_scoped(s: Option<&str>) -> Vec<ScopedGrant> {
    let mut out: Vec<ScopedGrant> = Vec::new();
    for entry in s.unwrap_or("").split(';') {
        let Some((path, perms)) = entry.trim().split_once(' ') else {
            continue;
        };
        let perms = PermissionSet::from_stored(perms);
        match out.iter_mut().find(|g| g.path == path) {
            Some(g) => g.permissions.extend(perms.iter()),
            None => out.push(ScopedGrant {
                path: path.to_owned(),
                permissions: perms,
            }),
        }
    }
    out
}

/// Where the caller may use a permission in an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Everywhere in the organization.
    Organization,
    /// Only in these OU subtrees (paths).
    Within(Vec<String>),
}

impl Reach {
    /// Whether an OU with path `path` is within reach.
    pub fn covers(&self, path: &str) -> bool {
        match self {
            Self::Organization => true,
            Self::Within(paths) => paths.iter().any(|p| path.starts_with(p.as_str())),
        }
    }

    /// The paths to filter a listing by; `None` for everywhere.
    pub fn paths(&self) -> Option<Vec<String>> {
        match self {
            Self::Organization => None,
            Self::Within(p) => Some(p.clone()),
        }
    }
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
/// `Unauthenticated`, so a client learns nothing about which it was. The
/// token is read after the request arrived (`token_reads`): a revocation or
/// role change committed before counts.
pub async fn authenticate_api_token(app: &App, token: &str, ctx: Context) -> Result<Caller> {
    let parsed = tokens::parse(tokens::API_TOKEN_PREFIX, token).ok_or(AppError::Unauthenticated)?;
    let id = parsed.id.to_string();
    let row = app
        .token_reads
        .read(&app.db, id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let caller = api_caller(app, parsed.secret, &row, ctx).ok_or(AppError::Unauthenticated)?;
    let rules = app.policies.get(&row.org_id, &row.org_settings);
    crate::guard::check(app, &caller, &rules.access).await?;
    Ok(caller)
}

/// A caller for a user creation, which may start before its token is read
/// again: see `Unconfirmed`.
pub enum ForCreation {
    Confirmed(Caller),
    Unconfirmed(Unconfirmed),
}

/// A caller authorized from this instance's last read of its token
/// (`TokenReads::recent`) rather than from a read made after the request
/// arrived. Only a user creation accepts one (`users::create_for`): its write
/// checks in the same statement that the token, its user, organization and
/// permissions still read exactly as they did (`authority`), and writes
/// nothing otherwise; the request is then authorized afresh and starts over.
/// A creation so saves the read's round trip and still honours every change
/// committed before its write — a stronger guarantee than a read before it.
pub struct Unconfirmed {
    pub(crate) caller: Caller,
    pub(crate) authority: muster_store::tokens::Authority,
    token: String,
}

impl Unconfirmed {
    /// The caller as a read made now gives it.
    pub(crate) async fn confirm(self, app: &App) -> Result<Caller> {
        app.token_reads.count_refusal();
        authenticate_api_token(app, &self.token, self.caller.ctx).await
    }
}

/// `authenticate_api_token`, or — when this instance read the token before,
/// the secret matches and the caller would be let in — an `Unconfirmed`
/// caller from that read. Anything else reads afresh, so every refusal
/// (and its audit) comes from a fresh read.
pub async fn authenticate_for_creation(
    app: &App,
    token: &str,
    ctx: Context,
) -> Result<ForCreation> {
    let recent = tokens::parse(tokens::API_TOKEN_PREFIX, token).and_then(|p| {
        let row = app.token_reads.recent(&p.id.to_string())?;
        Some((p, row))
    });
    if let Some((parsed, row)) = recent
        && let Some(fingerprint) = row.fingerprint.clone()
        && let Some(caller) = api_caller(app, parsed.secret, &row, ctx.clone())
        && crate::guard::refusal(
            app,
            &app.policies.get(&row.org_id, &row.org_settings).access,
            &ctx,
        )
        .is_none()
    {
        let authority = muster_store::tokens::Authority {
            token_id: row.id.clone(),
            fingerprint,
        };
        return Ok(ForCreation::Unconfirmed(Unconfirmed {
            caller,
            authority,
            token: token.to_owned(),
        }));
    }
    Ok(ForCreation::Confirmed(
        authenticate_api_token(app, token, ctx).await?,
    ))
}

/// The caller of token `row`, if `secret` is its secret (compared in
/// constant time) and the token, its user and organization let it in.
fn api_caller(app: &App, secret: &str, row: &TokenAuthRow, ctx: Context) -> Option<Caller> {
    let now = app.now_ms();
    let valid = secrets::secret_matches(secret, &row.secret_hash)
        && row.revoked_at.is_none()
        && row.expires_at.is_none_or(|e| now < e)
        && UserState::parse(&row.user_state).is_some_and(UserState::can_sign_in);
    if !valid {
        return None;
    }
    // Last use is recorded at most once a minute, off the request's path.
    if row.last_used_at.is_none_or(|t| now - t > 60_000) {
        app.token_reads.used(&row.id, now);
        let (db, id) = (app.db.clone(), row.id.clone());
        tokio::spawn(async move {
            if let Err(e) = muster_store::tokens::touch(&db, &id, now).await {
                tracing::warn!(error = %e, "could not record token use");
            }
        });
    }
    Some(Caller {
        principal: Principal::User {
            permissions: PermissionSet::from_stored(row.permissions.as_deref().unwrap_or("")),
            scoped: parse_scoped(row.scoped.as_deref()),
            org_id: row.org_id.clone(),
            org_slug: row.org_slug.clone(),
            user_id: row.user_id.clone(),
            email: row.user_email.clone(),
            token_id: Some(row.id.clone()),
            token_name: Some(row.name.clone()),
            session: None,
        },
        ctx,
    })
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

/// Fails unless the caller holds `perm` in the whole organization.
pub fn require(caller: &Caller, org_id: &str, perm: Permission) -> Result<()> {
    match reach(caller, org_id, perm)? {
        Reach::Organization => Ok(()),
        Reach::Within(_) => Err(AppError::Forbidden(perm.as_str())),
    }
}

/// Where the caller may use `perm` in the organization: everywhere, or
/// within the OU subtrees its scoped roles name. `Forbidden` when nowhere.
pub fn reach(caller: &Caller, org_id: &str, perm: Permission) -> Result<Reach> {
    match &caller.principal {
        Principal::Operator { .. } => Ok(Reach::Organization),
        Principal::User {
            org_id: own,
            permissions,
            scoped,
            session,
            ..
        } => {
            if own != org_id {
                return Err(AppError::NotFound("organization"));
            }
            let reach = if permissions.contains(perm) {
                Reach::Organization
            } else {
                let paths: Vec<String> = scoped
                    .iter()
                    .filter(|g| g.path.starts_with('/') && g.permissions.contains(perm))
                    .map(|g| g.path.clone())
                    .collect();
                if paths.is_empty() {
                    return Err(AppError::Forbidden(perm.as_str()));
                }
                Reach::Within(paths)
            };
            // Admin actions from a session need a recent second factor
            // (issue 5 §3); reading does not. API tokens are their own
            // credential, created from a stepped-up session.
            match session {
                Some(s) if perm.changes() && s.admin_needs_mfa && s.recent_level < 2 => {
                    Err(AppError::StepUpRequired(
                        "admin actions need a second factor proved in the last minutes: step up (POST /api/v1/me/step-up), or set up MFA first",
                    ))
                }
                _ => Ok(reach),
            }
        }
        Principal::Anonymous { .. } => Err(AppError::Unauthenticated),
        Principal::ScimToken { org_id: own, .. } => {
            if own != org_id {
                return Err(AppError::NotFound("organization"));
            }
            if SCIM_PERMISSIONS.contains(&perm) {
                Ok(Reach::Organization)
            } else {
                Err(AppError::Forbidden(perm.as_str()))
            }
        }
    }
}

/// Fails unless the caller holds `perm` in the workspace `ws_id`: in the
/// whole organization, or through a role scoped to that workspace.
pub fn require_in_workspace(
    caller: &Caller,
    org_id: &str,
    ws_id: &str,
    perm: Permission,
) -> Result<()> {
    let forbidden = match require(caller, org_id, perm) {
        Ok(()) => return Ok(()),
        Err(e @ AppError::Forbidden(_)) => e,
        Err(e) => return Err(e),
    };
    let key = format!("ws:{ws_id}");
    match &caller.principal {
        Principal::User {
            scoped, session, ..
        } if scoped
            .iter()
            .any(|g| g.path == key && g.permissions.contains(perm)) =>
        {
            match session {
                Some(s) if perm.changes() && s.admin_needs_mfa && s.recent_level < 2 => {
                    Err(AppError::StepUpRequired(
                        "admin actions need a second factor proved in the last minutes: step up (POST /api/v1/me/step-up), or set up MFA first",
                    ))
                }
                _ => Ok(()),
            }
        }
        _ => Err(forbidden),
    }
}

/// The organization and where the caller may use `perm` in it.
pub async fn org_reach(
    app: &App,
    caller: &Caller,
    slug: &str,
    perm: Permission,
) -> Result<(OrgRef, Reach)> {
    let org = org(app, caller, slug).await?;
    let reach = reach(caller, &org.id, perm)?;
    Ok((org, reach))
}

/// Fails with `NotFound("user")` unless the user is within `reach`: an
/// admin scoped to an OU learns nothing of users outside it. Costs a query
/// only for scoped callers.
pub async fn user_in_reach(app: &App, org_id: &str, user_id: &str, reach: &Reach) -> Result<()> {
    if *reach == Reach::Organization {
        return Ok(());
    }
    let unit = muster_store::org_units::of_user(&app.db, org_id, user_id).await?;
    match unit {
        Some(u) if reach.covers(&u.path) => Ok(()),
        _ => Err(AppError::NotFound("user")),
    }
}

/// The organization plus a permission check: the opening of most use cases.
pub async fn org_with(app: &App, caller: &Caller, slug: &str, perm: Permission) -> Result<OrgRef> {
    let org = org(app, caller, slug).await?;
    require(caller, &org.id, perm)?;
    Ok(org)
}
