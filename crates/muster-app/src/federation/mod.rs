//! Federated sign-in (issue 4 §5, §6): Google for everyone, and each
//! organization's own OpenID Connect IdP at `/o/{slug}/login`.
//!
//! A flow has two legs. `begin` stores what the callback must check — the
//! hash of `state`, the `nonce`, the PKCE verifier (sealed) and a binding to
//! the browser that started it — and sends the browser to the provider.
//! `finish` spends the state (a replay finds nothing), redeems the code,
//! validates the ID token and then finds or creates the account: by the
//! provider's issuer and subject, never by email alone.

mod accounts;
pub mod oidc;
mod sso;

pub use accounts::{LinkInput, link};
pub use oidc::{ClientConfig, Oidc};
pub use sso::{SsoInput, SsoView, delete_sso, get_sso, put_sso};

use crate::signin::{Entry, public_org};
use crate::{App, AppError, Result, secrets};
use muster_core::audit::Context;
use muster_store::federation::FlowRow;
use muster_store::orgs::OrgRow;

/// Where every provider sends the browser back (register this URL at the provider).
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";
/// A flow must come back within this long.
const FLOW_VALID_MS: i64 = 10 * 60_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Google,
    /// The organization's own IdP.
    Sso,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Sso => "sso",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "google" => Some(Self::Google),
            "sso" => Some(Self::Sso),
            _ => None,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Self::Google => "Google",
            Self::Sso => "your organization's sign-in",
        }
    }
}

pub fn redirect_uri(public_url: &str) -> String {
    format!("{}{CALLBACK_PATH}", public_url.trim_end_matches('/'))
}

/// Whether Google sign-in is configured on this server.
pub fn google_enabled(app: &App) -> bool {
    app.google.is_some()
}

/// Whether the organization (by slug) has an SSO connection.
pub async fn sso_enabled(app: &App, slug: &str) -> Result<bool> {
    let Some(org) = muster_store::orgs::by_slug(&app.db, slug).await? else {
        return Ok(false);
    };
    Ok(muster_store::federation::sso(&app.db, &org.id)
        .await?
        .is_some())
}

pub struct Start {
    pub provider: Provider,
    /// The organization to sign in to (slug); default the personal directory.
    pub org: Option<String>,
    /// Where to go once signed in: a path on this server.
    pub next: Option<String>,
    /// An invitation link's token, accepted by this sign-in.
    pub invitation: Option<String>,
}

/// Where to send the browser, and the value of the cookie that binds the
/// flow to it.
#[derive(Debug)]
pub struct Begun {
    pub url: String,
    pub binding: String,
}

pub async fn begin(app: &App, start: Start, public_url: &str) -> Result<Begun> {
    let (org, invitation_id) = match &start.invitation {
        Some(token) => {
            let inv = crate::invitations::pending(app, token).await?;
            let org = muster_store::orgs::by_id(&app.db, &inv.org_id)
                .await?
                .ok_or(AppError::NotFound("organization"))?;
            (org, Some(inv.id))
        }
        None => (public_org(app, start.org.as_deref()).await?, None),
    };
    let client = client_for(app, start.provider, &org).await?;
    let (state, nonce, verifier, binding) = (
        secrets::random_secret(),
        secrets::random_secret(),
        secrets::random_secret(),
        secrets::random_secret(),
    );
    let url = app
        .oidc
        .authorization_url(
            &client,
            &redirect_uri(public_url),
            &state,
            &nonce,
            &verifier,
        )
        .await
        .map_err(|r| denied(start.provider, &r))?;
    let id = secrets::hash_secret(&state);
    let now = app.now_ms();
    let row = FlowRow {
        verifier: app.key.seal(&format!("flow:{id}"), &verifier),
        id,
        binding_hash: secrets::hash_secret(&binding),
        provider: start.provider.as_str().into(),
        org_id: org.id,
        nonce,
        return_to: start.next.filter(|n| local_path(n)),
        invitation_id,
        created_at: now,
        expires_at: now + FLOW_VALID_MS,
        used_at: None,
        link_hash: None,
        link_user_id: None,
        link_issuer: None,
        link_subject: None,
        link_email: None,
        linked_at: None,
    };
    let mut tx = app.db.begin().await?;
    muster_store::federation::insert_flow(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(Begun { url, binding })
}

/// A path on this server: no scheme, no host, no `//` and no backslash
/// (`/\` is read by browsers as another host), printable ASCII, bounded.
/// The one check of every return path, on pages and in sign-in flows.
pub fn local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && p.len() <= 512
        && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
}

/// The provider's answer, as the browser brings it back.
#[derive(Debug, Default)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    /// The provider's `error` (RFC 6749 §4.1.2.1), e.g. `access_denied`.
    pub error: Option<String>,
    /// The flow cookie's value.
    pub binding: Option<String>,
}

#[derive(Debug)]
pub enum Finished {
    /// The provider proved who this is: a session, or a second factor to ask for.
    SignedIn {
        entry: Entry,
        next: Option<String>,
        /// A Google account without a password yet: ask for one now.
        create_password: bool,
    },
    /// The provider's verified email already has an account here: its
    /// password must be given once to attach the provider to it.
    LinkRequired { ticket: String, email: String },
}

pub async fn finish(app: &App, cb: Callback, public_url: &str, ctx: Context) -> Result<Finished> {
    let flow = match spend(app, &cb).await? {
        Ok(f) => f,
        Err((why, org_id)) => {
            let org_id = match org_id {
                Some(o) => o,
                None => public_org(app, None).await?.id,
            };
            crate::signin::signup::refused(app, &org_id, "federated sign-in", &why, &ctx).await?;
            return Err(AppError::SignInDenied(why));
        }
    };
    let provider = Provider::parse(&flow.provider).ok_or(AppError::NotFound("provider"))?;
    let org = muster_store::orgs::by_id(&app.db, &flow.org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let refused = async |why: String| -> Result<Finished> {
        let what = format!("{} sign-in: {why}", provider.as_str());
        crate::signin::signup::refused(app, &org.id, provider.as_str(), &what, &ctx).await?;
        Err(denied(provider, &oidc::Refusal(why)))
    };
    if let Some(e) = &cb.error {
        let e: String = e
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        return refused(format!("the provider did not sign you in ({e})")).await;
    }
    let Some(code) = cb
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
    else {
        return refused("the provider sent no authorization code".into()).await;
    };
    let client = client_for(app, provider, &org).await?;
    let verifier = app.key.open(&format!("flow:{}", flow.id), &flow.verifier)?;
    let now_s = app.now_ms() / 1000;
    let claims = match app
        .oidc
        .redeem(
            &client,
            code,
            &redirect_uri(public_url),
            &verifier,
            &flow.nonce,
            now_s,
        )
        .await
    {
        Ok(c) => c,
        Err(r) => return refused(r.0).await,
    };
    accounts::resolve(app, &org, &flow, provider, claims, ctx).await
}

/// Finds the flow of a callback and spends its state. A refusal says why,
/// with the flow's organization when one was found (for the audit record);
/// a database failure is an error of its own, not a refusal.
async fn spend(app: &App, cb: &Callback) -> Result<std::result::Result<FlowRow, Refused>> {
    let gone = "this sign-in has expired or was already used; start again";
    let Some(state) = cb.state.as_deref().filter(|s| s.len() == 43) else {
        return Ok(Err((gone.to_owned(), None)));
    };
    let flow = match muster_store::federation::flow(&app.db, &secrets::hash_secret(state)).await {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(Err((gone.to_owned(), None))),
        Err(e) => return Err(e.into()),
    };
    let same_browser = cb
        .binding
        .as_deref()
        .is_some_and(|b| secrets::secret_matches(b, &flow.binding_hash));
    if !same_browser {
        // Not spent: the browser that started it may still finish it.
        return Ok(Err((
            "this sign-in was started in another browser or its cookie is gone; start again".into(),
            Some(flow.org_id),
        )));
    }
    if muster_store::federation::spend_flow(&app.db, &flow.id, app.now_ms()).await? {
        Ok(Ok(flow))
    } else {
        Ok(Err((gone.to_owned(), Some(flow.org_id))))
    }
}

/// Why a callback was refused, and the organization of its flow if known.
type Refused = (String, Option<String>);

async fn client_for(app: &App, provider: Provider, org: &OrgRow) -> Result<ClientConfig> {
    match provider {
        Provider::Google => app.google.as_deref().cloned().ok_or_else(|| {
            AppError::SignInDenied("Google sign-in is not set up on this server".into())
        }),
        Provider::Sso => {
            let row = muster_store::federation::sso(&app.db, &org.id)
                .await?
                .ok_or_else(|| {
                    AppError::SignInDenied("this organization has not set up single sign-on".into())
                })?;
            let secret = app
                .key
                .open(&sso::seal_context(&org.id), &row.client_secret)?;
            Ok(ClientConfig {
                issuer: row.issuer,
                client_id: row.client_id,
                client_secret: secret.into(),
            })
        }
    }
}

fn denied(provider: Provider, r: &oidc::Refusal) -> AppError {
    AppError::SignInDenied(format!("sign-in with {} failed: {}", provider.label(), r.0))
}
