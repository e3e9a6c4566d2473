//! An organization's OIDC connection, managed over the REST API with
//! `org.manage`. The client secret is sealed with the server key and never
//! shown again; a new connection is checked by reading the issuer's
//! discovery document before it is saved.

use crate::audit::{self, Event};
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;
use muster_store::federation::SsoRow;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub(super) fn seal_context(org_id: &str) -> String {
    format!("sso:{org_id}")
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoInput {
    /// The IdP's issuer, exactly as its discovery document gives it
    /// (Entra ID: `https://login.microsoftonline.com/<tenant>/v2.0`; Okta:
    /// `https://<org>.okta.com`).
    pub issuer: String,
    pub client_id: String,
    /// Required when the connection is new; absent keeps the current one.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub client_secret: Option<SecretString>,
    /// Create accounts just in time for people the IdP signs in who have
    /// none here. Off: only existing (for example SCIM-provisioned) users.
    #[serde(default)]
    pub jit: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SsoView {
    pub issuer: String,
    pub client_id: String,
    /// Register this redirect URI at the IdP.
    pub redirect_uri: String,
    /// Where the organization's people sign in.
    pub login_url: String,
    pub jit: bool,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

fn view(r: SsoRow, slug: &str, public_url: &str) -> SsoView {
    SsoView {
        redirect_uri: super::redirect_uri(public_url),
        login_url: format!("{}/o/{slug}/login", public_url.trim_end_matches('/')),
        issuer: r.issuer,
        client_id: r.client_id,
        jit: r.jit,
        updated_at: crate::paging::rfc3339(r.updated_at),
    }
}

pub async fn get_sso(app: &App, caller: &Caller, slug: &str, public_url: &str) -> Result<SsoView> {
    let org = crate::caller::org_with(app, caller, slug, Permission::OrgManage).await?;
    let row = muster_store::federation::sso(&app.db, &org.id)
        .await?
        .ok_or(AppError::NotFound("SSO connection"))?;
    Ok(view(row, &org.slug, public_url))
}

pub async fn put_sso(
    app: &App,
    caller: &Caller,
    slug: &str,
    input: SsoInput,
    public_url: &str,
) -> Result<SsoView> {
    let org = crate::caller::org_with(app, caller, slug, Permission::OrgManage).await?;
    let issuer = input.issuer.trim().to_owned();
    super::oidc::check_url(&issuer, "issuer").map_err(|r| AppError::invalid("issuer", r.0))?;
    if issuer.len() > 512 {
        return Err(AppError::invalid("issuer", "use at most 512 characters"));
    }
    let client_id = input.client_id.trim().to_owned();
    if client_id.is_empty()
        || client_id.len() > 512
        || !client_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(AppError::invalid(
            "client_id",
            "give 1 to 512 printable characters",
        ));
    }
    let current = muster_store::federation::sso(&app.db, &org.id).await?;
    let sealed = match (&input.client_secret, &current) {
        (Some(s), _) => {
            let s = s.expose_secret();
            if s.is_empty() || s.len() > 1024 {
                return Err(AppError::invalid(
                    "client_secret",
                    "give 1 to 1024 characters",
                ));
            }
            app.key.seal(&seal_context(&org.id), s)
        }
        (None, Some(c)) => c.client_secret.clone(),
        (None, None) => {
            return Err(AppError::invalid(
                "client_secret",
                "a new connection needs the client secret",
            ));
        }
    };
    // Discovery §4: the issuer must answer with its own metadata.
    app.oidc
        .metadata(&issuer)
        .await
        .map_err(|r| AppError::invalid("issuer", r.0))?;
    let now = app.now_ms();
    let row = SsoRow {
        org_id: org.id.clone(),
        issuer,
        client_id,
        client_secret: sealed,
        jit: input.jit,
        created_at: current.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
    };
    let mut tx = app.db.begin().await?;
    muster_store::federation::put_sso(&mut tx, &row).await?;
    let mut ev = Event::new(&org.id, "sso.configured")
        .target("organization", &org.id)
        .change(
            "issuer",
            current.as_ref().map(|c| c.issuer.clone()),
            &row.issuer,
        )
        .change(
            "client_id",
            current.as_ref().map(|c| c.client_id.clone()),
            &row.client_id,
        )
        .change("jit", current.as_ref().map(|c| c.jit), row.jit)
        .security();
    if input.client_secret.is_some() {
        ev = ev.detail("client_secret", "replaced");
    }
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    app.event_written();
    Ok(view(row, &org.slug, public_url))
}

pub async fn delete_sso(app: &App, caller: &Caller, slug: &str) -> Result<()> {
    let org = crate::caller::org_with(app, caller, slug, Permission::OrgManage).await?;
    let mut tx = app.db.begin().await?;
    if !muster_store::federation::delete_sso(&mut tx, &org.id).await? {
        return Err(AppError::NotFound("SSO connection"));
    }
    let ev = Event::new(&org.id, "sso.removed")
        .target("organization", &org.id)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    app.event_written();
    Ok(())
}
