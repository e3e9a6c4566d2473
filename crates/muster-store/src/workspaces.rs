//! Workspaces and who holds roles in them (migration 0016). Membership is
//! derived from role assignments scoped to a workspace, directly or through
//! groups at any depth; the default workspace holds everyone.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkspaceRow {
    pub id: String,
    pub org_id: String,
    pub code: String,
    pub name: String,
    pub is_default: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, org_id, code, name, is_default, created_at, updated_at";

pub async fn insert(tx: &mut Tx, w: &WorkspaceRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO workspaces (id, org_id, code, name, name_key, is_default, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&w.id).bind(&w.org_id).bind(&w.code).bind(&w.name).bind(w.name.to_lowercase())
        .bind(w.is_default).bind(w.created_at).bind(w.updated_at)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The default workspace of a new organization: it has the organization's id.
pub async fn insert_default(tx: &mut Tx, org_id: &str, now: i64) -> Result<()> {
    let w = WorkspaceRow {
        id: org_id.to_owned(),
        org_id: org_id.to_owned(),
        code: "default".into(),
        name: "Default".into(),
        is_default: true,
        created_at: now,
        updated_at: now,
    };
    insert(tx, &w).await
}

/// By id or by code.
pub async fn get(db: &Db, org_id: &str, id_or_code: &str) -> Result<Option<WorkspaceRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM workspaces WHERE org_id = $1 AND (id = $2 OR code = $2)"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(id_or_code).fetch_optional(c).await)?)
}

pub async fn get_in(tx: &mut Tx, org_id: &str, id_or_code: &str) -> Result<Option<WorkspaceRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM workspaces WHERE org_id = $1 AND (id = $2 OR code = $2)"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(id_or_code).fetch_optional(c).await)?)
}

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<WorkspaceRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM workspaces WHERE org_id = $1 ORDER BY is_default DESC, name_key"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).fetch_all(c).await)?)
}

pub async fn rename(tx: &mut Tx, org_id: &str, id: &str, name: &str, now: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE workspaces SET name = $3, name_key = $4, updated_at = $5 WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).bind(name).bind(name.to_lowercase()).bind(now)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes a workspace and every role held in it; returns how many roles.
pub async fn delete(tx: &mut Tx, org_id: &str, id: &str) -> Result<u64> {
    let n = on_tx!(tx, c => sqlx::query(
        "DELETE FROM role_assignments WHERE org_id = $1 AND scope_kind = 'workspace' AND scope_id = $2")
        .bind(org_id).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    on_tx!(tx, c => sqlx::query("DELETE FROM workspaces WHERE org_id = $1 AND id = $2 AND NOT is_default")
        .bind(org_id).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n)
}

/// One role a user holds in a workspace, and how.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Held {
    pub user_id: String,
    pub email: String,
    /// The user's creation source (`guest` for a guest).
    pub source: String,
    pub role_key: String,
    pub permissions: String,
    /// The group the role is assigned to (the user is in it, at any
    /// depth); `None` when assigned to the user.
    pub group_id: Option<String>,
    pub assignment_id: String,
}

/// Everyone holding a role in the workspace, through groups expanded to
/// their users at every depth.
pub async fn members(db: &Db, org_id: &str, ws_id: &str) -> Result<Vec<Held>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "WITH RECURSIVE sg(group_id, root) AS (
             SELECT a.group_id, a.group_id FROM role_assignments a
             WHERE a.org_id = $1 AND a.scope_kind = 'workspace' AND a.scope_id = $2 AND a.group_id IS NOT NULL
             UNION SELECT m.child_id, sg.root FROM group_group_members m JOIN sg ON m.group_id = sg.group_id
         )
         SELECT u.id AS user_id, u.email, u.source, r.role_key, r.permissions, NULL AS group_id, a.id AS assignment_id
         FROM role_assignments a JOIN roles r ON r.id = a.role_id JOIN users u ON u.id = a.user_id
         WHERE a.org_id = $1 AND a.scope_kind = 'workspace' AND a.scope_id = $2
         UNION
         SELECT u.id, u.email, u.source, r.role_key, r.permissions, sg.root, a.id
         FROM sg JOIN group_user_members gum ON gum.group_id = sg.group_id JOIN users u ON u.id = gum.user_id
              JOIN role_assignments a ON a.group_id = sg.root AND a.scope_kind = 'workspace' AND a.scope_id = $2
              JOIN roles r ON r.id = a.role_id
         ORDER BY 2, 4")
        .bind(org_id).bind(ws_id).fetch_all(c).await)?)
}

/// The groups linked to the workspace, each with a role its members get
/// there: (group id, group name, managed by, role key), by group name.
pub async fn linked_groups(
    db: &Db,
    org_id: &str,
    ws_id: &str,
) -> Result<Vec<(String, String, String, String)>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "SELECT g.id, g.name, g.managed_by, r.role_key
         FROM role_assignments a JOIN groups g ON g.id = a.group_id JOIN roles r ON r.id = a.role_id
         WHERE a.org_id = $1 AND a.scope_kind = 'workspace' AND a.scope_id = $2
         ORDER BY g.name, g.id, r.role_key")
        .bind(org_id).bind(ws_id).fetch_all(c).await)?)
}

/// The roles one user holds in one workspace (or in every workspace, with
/// `ws_id` `None`), directly or through groups: (workspace id, role key,
/// permissions, group id).
pub async fn held_by(
    db: &Db,
    org_id: &str,
    user_id: &str,
    ws_id: Option<&str>,
) -> Result<Vec<(String, String, String, Option<String>)>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "WITH RECURSIVE g(id) AS (
             SELECT group_id FROM group_user_members WHERE user_id = $2
             UNION SELECT m.group_id FROM group_group_members m JOIN g ON m.child_id = g.id
         )
         SELECT a.scope_id, r.role_key, r.permissions, a.group_id
         FROM role_assignments a JOIN roles r ON r.id = a.role_id
         WHERE a.org_id = $1 AND a.scope_kind = 'workspace' AND ($3 IS NULL OR a.scope_id = $3)
           AND (a.user_id = $2 OR a.group_id IN (SELECT id FROM g))
         ORDER BY a.scope_id, r.role_key")
        .bind(org_id).bind(user_id).bind(ws_id).fetch_all(c).await)?)
}

/// Takes a user's own roles in a workspace away (roles through groups stay:
/// the group is where those are changed). Returns how many.
pub async fn remove_member(tx: &mut Tx, org_id: &str, ws_id: &str, user_id: &str) -> Result<u64> {
    Ok(on_tx!(tx, c => sqlx::query(
        "DELETE FROM role_assignments WHERE org_id = $1 AND scope_kind = 'workspace' AND scope_id = $2 AND user_id = $3")
        .bind(org_id).bind(ws_id).bind(user_id).execute(c).await.map(|r| r.rows_affected()))?)
}

/// Unlinks a group: its roles in the workspace go. Returns how many.
pub async fn unlink_group(tx: &mut Tx, org_id: &str, ws_id: &str, group_id: &str) -> Result<u64> {
    Ok(on_tx!(tx, c => sqlx::query(
        "DELETE FROM role_assignments WHERE org_id = $1 AND scope_kind = 'workspace' AND scope_id = $2 AND group_id = $3")
        .bind(org_id).bind(ws_id).bind(group_id).execute(c).await.map(|r| r.rows_affected()))?)
}
