//! Groups and their members: users, and other groups (nesting without cycles).

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: Option<String>,
    pub external_id: Option<String>,
    pub managed_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
}

const COLS: &str =
    "id, org_id, name, description, external_id, managed_by, created_at, updated_at, version";

pub async fn insert(tx: &mut Tx, g: &GroupRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO groups (id, org_id, name, name_key, description, external_id, managed_by, created_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(&g.id).bind(&g.org_id).bind(&g.name).bind(g.name.to_lowercase()).bind(&g.description)
        .bind(&g.external_id).bind(&g.managed_by).bind(g.created_at).bind(g.updated_at).bind(g.version)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<GroupRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM groups WHERE org_id = $1 AND id = $2"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

pub async fn get_in(tx: &mut Tx, org_id: &str, id: &str) -> Result<Option<GroupRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM groups WHERE org_id = $1 AND id = $2"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

pub async fn list(db: &Db, org_id: &str, after: Option<&str>, limit: i64) -> Result<Vec<GroupRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM groups WHERE org_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT CAST($3 AS BIGINT)"
    ));
    Ok(
        on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(after).bind(limit).fetch_all(c).await)?,
    )
}

pub async fn update(tx: &mut Tx, g: &GroupRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE groups SET name = $3, name_key = $4, description = $5, updated_at = $6, version = version + 1
         WHERE org_id = $1 AND id = $2")
        .bind(&g.org_id).bind(&g.id).bind(&g.name).bind(g.name.to_lowercase()).bind(&g.description)
        .bind(g.updated_at).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete(tx: &mut Tx, org_id: &str, id: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM groups WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Adds a user; false when it was a member already.
pub async fn add_user(tx: &mut Tx, group_id: &str, user_id: &str) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "INSERT INTO group_user_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(group_id).bind(user_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn remove_user(tx: &mut Tx, group_id: &str, user_id: &str) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM group_user_members WHERE group_id = $1 AND user_id = $2")
        .bind(group_id).bind(user_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn add_child(tx: &mut Tx, group_id: &str, child_id: &str) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "INSERT INTO group_group_members (group_id, child_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(group_id).bind(child_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn remove_child(tx: &mut Tx, group_id: &str, child_id: &str) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM group_group_members WHERE group_id = $1 AND child_id = $2")
        .bind(group_id).bind(child_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Whether `candidate` is `group_id` itself or one of the groups nested in it,
/// at any depth: adding `group_id` into `candidate` would then close a cycle.
pub async fn contains_transitively(tx: &mut Tx, group_id: &str, candidate: &str) -> Result<bool> {
    let n: i64 = on_tx!(tx, c => sqlx::query_scalar(
        "WITH RECURSIVE d(id) AS (
             SELECT CAST($1 AS TEXT)
             UNION SELECT m.child_id FROM group_group_members m JOIN d ON m.group_id = d.id
         )
         SELECT COUNT(*) FROM d WHERE id = $2")
        .bind(group_id).bind(candidate).fetch_one(c).await)?;
    Ok(n > 0)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub kind: String,
    pub id: String,
    pub display: String,
}

pub async fn members(db: &Db, group_id: &str) -> Result<Vec<MemberRow>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "SELECT 'user' AS kind, u.id AS id, u.email AS display FROM group_user_members m
             JOIN users u ON u.id = m.user_id WHERE m.group_id = $1
         UNION ALL
         SELECT 'group' AS kind, g.id AS id, g.name AS display FROM group_group_members m
             JOIN groups g ON g.id = m.child_id WHERE m.group_id = $1
         ORDER BY kind, id")
        .bind(group_id).fetch_all(c).await)?)
}

/// A group by exact display name (case-insensitive) or external id.
pub async fn lookup(
    db: &Db,
    org_id: &str,
    name: Option<&str>,
    external_id: Option<&str>,
) -> Result<Vec<GroupRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM groups WHERE org_id = $1 AND ($2 IS NULL OR name_key = $2)
           AND ($3 IS NULL OR external_id = $3) ORDER BY id"
    ));
    Ok(
        on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(name.map(str::to_lowercase))
        .bind(external_id).fetch_all(c).await)?,
    )
}

pub async fn count(db: &Db, org_id: &str) -> Result<i64> {
    Ok(
        on_db!(db, c => sqlx::query_scalar("SELECT COUNT(*) FROM groups WHERE org_id = $1")
        .bind(org_id).fetch_one(c).await)?,
    )
}

/// Writes name, external id and manager of a group and bumps its version.
pub async fn update_scim(tx: &mut Tx, g: &GroupRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE groups SET name = $3, name_key = $4, external_id = $5, managed_by = $6, updated_at = $7,
             version = version + 1
         WHERE org_id = $1 AND id = $2")
        .bind(&g.org_id).bind(&g.id).bind(&g.name).bind(g.name.to_lowercase()).bind(&g.external_id)
        .bind(&g.managed_by).bind(g.updated_at).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Bumps a group's version (its membership changed).
pub async fn touch(tx: &mut Tx, org_id: &str, id: &str, now: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE groups SET updated_at = $3, version = version + 1 WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Groups that `user_id` belongs to directly.
pub async fn of_user(db: &Db, user_id: &str) -> Result<Vec<(String, String)>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "SELECT g.id, g.name FROM group_user_members m JOIN groups g ON g.id = m.group_id
         WHERE m.user_id = $1 ORDER BY g.id")
        .bind(user_id).fetch_all(c).await)?)
}

/// Direct members as `(is_group, id)`, inside a transaction.
pub async fn member_ids_in(tx: &mut Tx, group_id: &str) -> Result<Vec<(bool, String)>> {
    let rows: Vec<(i64, String)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT CAST(0 AS BIGINT), user_id FROM group_user_members WHERE group_id = $1
         UNION ALL SELECT CAST(1 AS BIGINT), child_id FROM group_group_members WHERE group_id = $1")
        .bind(group_id).fetch_all(c).await)?;
    Ok(rows.into_iter().map(|(k, id)| (k == 1, id)).collect())
}
