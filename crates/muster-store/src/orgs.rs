//! Organizations.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub kind: String,
    pub settings: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, slug, name, kind, settings, created_at, updated_at";

pub async fn insert(tx: &mut Tx, o: &OrgRow) -> Result<()> {
    tx.wrote_org = true;
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO orgs (id, slug, name, kind, settings, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&o.id).bind(&o.slug).bind(&o.name).bind(&o.kind).bind(&o.settings)
        .bind(o.created_at).bind(o.updated_at)
        .execute(c).await.map(|r| r.rows_affected()))?;
    crate::org_units::insert_root(tx, &o.id, &o.name, o.created_at).await?;
    crate::workspaces::insert_default(tx, &o.id, o.created_at).await?;
    crate::org_units::refresh(tx, &o.id, &o.settings).await
}

pub async fn by_slug(db: &Db, slug: &str) -> Result<Option<OrgRow>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM orgs WHERE slug = $1"));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(slug).fetch_optional(c).await)?)
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<OrgRow>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM orgs WHERE id = $1"));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(id).fetch_optional(c).await)?)
}

pub async fn update_name(tx: &mut Tx, id: &str, name: &str, now: i64) -> Result<bool> {
    tx.wrote_org = true;
    let r = on_tx!(tx, c => sqlx::query("UPDATE orgs SET name = $2, updated_at = $3 WHERE id = $1")
        .bind(id).bind(name).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(r == 1)
}

pub async fn all_ids(db: &Db) -> Result<Vec<(String, String)>> {
    Ok(
        on_db!(db, c => sqlx::query_as("SELECT id, slug FROM orgs ORDER BY slug").fetch_all(c).await)?,
    )
}

/// The organization, locked for the rest of the transaction: its callers
/// read the settings to write them back, and two such writers must not
/// lose each other's keys.
pub async fn get_in(tx: &mut Tx, id: &str) -> Result<Option<OrgRow>> {
    tx.lock_org(id).await?;
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLS} FROM orgs WHERE id = $1"));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(id).fetch_optional(c).await)?)
}

/// Stores the organization's settings and, in the same transaction, the
/// effective settings of every OU derived from them (the one path by which
/// settings change, so the two never disagree).
pub async fn update_settings(tx: &mut Tx, id: &str, settings: &str, now: i64) -> Result<bool> {
    tx.wrote_org = true;
    tx.lock_org(id).await?;
    let r = on_tx!(tx, c => sqlx::query("UPDATE orgs SET settings = $2, updated_at = $3 WHERE id = $1")
        .bind(id).bind(settings).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    crate::org_units::refresh(tx, id, settings).await?;
    Ok(r == 1)
}
