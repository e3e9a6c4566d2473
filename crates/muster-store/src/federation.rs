//! Federated sign-in (migration 0007): users' external identities, the
//! organizations' OIDC connections, and sign-in flows in progress.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdentityRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    /// `google` or `sso`.
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
}

const IDENTITY_COLS: &str =
    "id, org_id, user_id, provider, issuer, subject, email, created_at, last_used_at";

pub async fn identity(
    db: &Db,
    org_id: &str,
    issuer: &str,
    subject: &str,
) -> Result<Option<IdentityRow>> {
    let sql = format!(
        "SELECT {IDENTITY_COLS} FROM identities WHERE org_id = $1 AND issuer = $2 AND subject = $3"
    );
    Ok(on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(org_id).bind(issuer).bind(subject).fetch_optional(c).await)?)
}

pub async fn identities_of(db: &Db, org_id: &str, user_id: &str) -> Result<Vec<IdentityRow>> {
    let sql = format!(
        "SELECT {IDENTITY_COLS} FROM identities WHERE org_id = $1 AND user_id = $2 ORDER BY created_at"
    );
    Ok(on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(org_id).bind(user_id).fetch_all(c).await)?)
}

/// Links an identity; a second link of the same subject is a `Conflict`.
pub async fn insert_identity(tx: &mut Tx, i: &IdentityRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO identities (id, org_id, user_id, provider, issuer, subject, email, created_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(&i.id).bind(&i.org_id).bind(&i.user_id).bind(&i.provider).bind(&i.issuer)
        .bind(&i.subject).bind(&i.email).bind(i.created_at).bind(i.last_used_at)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn identity_used(tx: &mut Tx, id: &str, email: Option<&str>, now: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE identities SET last_used_at = $2, email = COALESCE($3, email) WHERE id = $1")
        .bind(id).bind(now).bind(email).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SsoRow {
    pub org_id: String,
    pub issuer: String,
    pub client_id: String,
    /// Sealed with the server key.
    pub client_secret: String,
    pub jit: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn sso(db: &Db, org_id: &str) -> Result<Option<SsoRow>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "SELECT org_id, issuer, client_id, client_secret, jit, created_at, updated_at \
         FROM sso_connections WHERE org_id = $1")
        .bind(org_id).fetch_optional(c).await)?)
}

pub async fn put_sso(tx: &mut Tx, s: &SsoRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO sso_connections (org_id, issuer, client_id, client_secret, jit, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id) DO UPDATE SET issuer = $2, \
         client_id = $3, client_secret = $4, jit = $5, updated_at = $7")
        .bind(&s.org_id).bind(&s.issuer).bind(&s.client_id).bind(&s.client_secret).bind(s.jit)
        .bind(s.created_at).bind(s.updated_at).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete_sso(tx: &mut Tx, org_id: &str) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM sso_connections WHERE org_id = $1")
        .bind(org_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FlowRow {
    /// The hash of the flow's `state`.
    pub id: String,
    pub binding_hash: String,
    pub provider: String,
    pub org_id: String,
    pub nonce: String,
    /// The PKCE code verifier, sealed with the server key.
    pub verifier: String,
    pub return_to: Option<String>,
    pub invitation_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub link_hash: Option<String>,
    pub link_user_id: Option<String>,
    pub link_issuer: Option<String>,
    pub link_subject: Option<String>,
    pub link_email: Option<String>,
    pub linked_at: Option<i64>,
}

const FLOW_COLS: &str = "id, binding_hash, provider, org_id, nonce, verifier, return_to, invitation_id, \
     created_at, expires_at, used_at, link_hash, link_user_id, link_issuer, link_subject, link_email, linked_at";

/// Starts a flow; expired flows go at the same time, so that the table holds
/// no more than the last few minutes of sign-ins, however many are started.
pub async fn insert_flow(tx: &mut Tx, f: &FlowRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM oidc_flows WHERE expires_at < $1")
        .bind(f.created_at).execute(c).await.map(|r| r.rows_affected()))?;
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO oidc_flows (id, binding_hash, provider, org_id, nonce, verifier, return_to, \
         invitation_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(&f.id).bind(&f.binding_hash).bind(&f.provider).bind(&f.org_id).bind(&f.nonce)
        .bind(&f.verifier).bind(&f.return_to).bind(&f.invitation_id).bind(f.created_at)
        .bind(f.expires_at).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn flow(db: &Db, id: &str) -> Result<Option<FlowRow>> {
    let sql = format!("SELECT {FLOW_COLS} FROM oidc_flows WHERE id = $1");
    Ok(on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id).fetch_optional(c).await)?)
}

/// Spends a flow's state: true for the one caller that finds it unused and
/// unexpired. Its own transaction, so that a callback that then fails still
/// cannot be replayed.
pub async fn spend_flow(db: &Db, id: &str, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE oidc_flows SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2")
        .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(n == 1)
}

/// Records that the flow's identity must be linked to an existing account
/// once its password is given.
pub async fn set_link(
    db: &Db,
    id: &str,
    link_hash: &str,
    user_id: &str,
    (issuer, subject, email): (&str, &str, &str),
) -> Result<()> {
    let mut tx = db.begin().await?;
    on_tx!(tx, c => sqlx::query(
        "UPDATE oidc_flows SET link_hash = $2, link_user_id = $3, link_issuer = $4, link_subject = $5, \
         link_email = $6 WHERE id = $1")
        .bind(id).bind(link_hash).bind(user_id).bind(issuer).bind(subject).bind(email)
        .execute(c).await.map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(())
}

pub async fn by_link(db: &Db, link_hash: &str) -> Result<Option<FlowRow>> {
    let sql = format!("SELECT {FLOW_COLS} FROM oidc_flows WHERE link_hash = $1");
    Ok(on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(link_hash).fetch_optional(c).await)?)
}

/// Spends a link ticket, in the transaction that writes the identity.
pub async fn spend_link(tx: &mut Tx, id: &str, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE oidc_flows SET linked_at = $2 WHERE id = $1 AND linked_at IS NULL AND expires_at > $2")
        .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
