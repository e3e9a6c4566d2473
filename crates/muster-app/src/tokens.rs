//! API tokens: shown once, stored hashed, optionally expiring, revocable.

use crate::audit::{self, Event};
use crate::caller::{org, require};
use crate::paging::rfc3339;
use crate::{App, AppError, Caller, Principal, Result, secrets};
use muster_core::{ApiTokenId, Permission, UserState, tokens};
use muster_store::tokens::ApiTokenRow;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub user_id: String,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<String>,
}

impl From<ApiTokenRow> for TokenView {
    fn from(t: ApiTokenRow) -> Self {
        Self {
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
            last_used_at: t.last_used_at.map(rfc3339),
            id: t.id,
            user_id: t.user_id,
            name: t.name,
        }
    }
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: TokenView,
    /// Shown once; store it now.
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    pub name: String,
    /// Days until the token expires (1 to 3650); absent for no expiry.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

/// Creates a token for `user_id` (the CLI), or for the caller itself (the API:
/// a token never acts for anyone but the user who made it).
pub async fn create(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    user_email: Option<&str>,
    input: TokenInput,
) -> Result<CreatedToken> {
    let org = org(app, caller, org_slug).await?;
    let user_id = match (&caller.principal, user_email) {
        (Principal::Operator { .. }, Some(email)) => {
            crate::users::id_by_email(app, &org.id, email).await?
        }
        (Principal::User { user_id, .. }, None) => user_id.clone(),
        _ => return Err(AppError::invalid("user", "tokens are created for yourself")),
    };
    // A token acts without a second factor, so a session that could make
    // one for an administrator must have proved a factor recently.
    if let Principal::User {
        session: Some(s),
        permissions,
        scoped,
        ..
    } = &caller.principal
        && s.admin_needs_mfa
        && s.recent_level < 2
        && (permissions.iter().any(muster_core::Permission::changes)
            || scoped
                .iter()
                .any(|g| g.permissions.iter().any(muster_core::Permission::changes)))
    {
        return Err(AppError::StepUpRequired(
            "creating an API token needs a second factor proved in the last minutes: step up first",
        ));
    }
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "name",
            "give a name of 1 to 128 characters",
        ));
    }
    let now = app.now_ms();
    let expires_at = match input.expires_in_days {
        None => None,
        Some(d) if (1..=3650).contains(&d) => Some(now + d * 86_400_000),
        Some(_) => {
            return Err(AppError::invalid(
                "expires_in_days",
                "must be between 1 and 3650",
            ));
        }
    };
    let user = muster_store::users::get(&app.db, &org.id, &user_id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    if !UserState::parse(&user.state).is_some_and(UserState::can_sign_in) {
        return Err(AppError::Refused(format!(
            "the user is {} and cannot hold a token",
            user.state
        )));
    }
    let id = ApiTokenId::new();
    let secret = secrets::random_secret();
    let row = ApiTokenRow {
        id: id.to_string(),
        org_id: org.id.clone(),
        user_id: user_id.clone(),
        name,
        secret_hash: secrets::hash_secret(&secret),
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    let mut tx = app.db.begin().await?;
    muster_store::tokens::insert(&mut tx, &row).await?;
    let ev = Event::new(&org.id, "api_token.created")
        .target("user", &user_id)
        .detail("token_id", &row.id)
        .detail("name", &row.name)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(CreatedToken {
        secret: tokens::format(tokens::API_TOKEN_PREFIX, id.0, &secret),
        token: row.into(),
    })
}

/// Own tokens; everyone's with `sessions.revoke`.
pub async fn list(app: &App, caller: &Caller, org_slug: &str) -> Result<Vec<TokenView>> {
    let org = org(app, caller, org_slug).await?;
    let only = match require(caller, &org.id, Permission::SessionsRevoke) {
        Ok(()) => None,
        Err(AppError::Forbidden(_)) => caller.user_id(),
        Err(e) => return Err(e),
    };
    Ok(muster_store::tokens::list(&app.db, &org.id, only)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

pub async fn revoke(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<()> {
    let org = org(app, caller, org_slug).await?;
    let mut tx = app.db.begin().await?;
    let row = muster_store::tokens::get_in(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("token"))?;
    if caller.user_id() != Some(row.user_id.as_str()) {
        // Someone else's token: needs the permission, and is invisible without it.
        match require(caller, &org.id, Permission::SessionsRevoke) {
            Ok(()) => {}
            Err(AppError::Forbidden(_)) => return Err(AppError::NotFound("token")),
            Err(e) => return Err(e),
        }
    }
    if muster_store::tokens::revoke(&mut tx, &org.id, id, app.now_ms()).await? {
        let ev = Event::new(&org.id, "api_token.revoked")
            .target("user", &row.user_id)
            .detail("token_id", id)
            .security();
        audit::record(app, &mut tx, caller, ev).await?;
        tx.commit().await?;
    }
    Ok(())
}
