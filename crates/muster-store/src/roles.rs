//! Roles, role assignments, and the effective-permission query that every
//! authorised request runs afresh.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoleRow {
    pub id: String,
    pub org_id: String,
    pub role_key: String,
    pub name: String,
    pub description: Option<String>,
    pub permissions: String,
    pub builtin: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str =
    "id, org_id, role_key, name, description, permissions, builtin, created_at, updated_at";

pub async fn insert(tx: &mut Tx, r: &RoleRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO roles (id, org_id, role_key, name, description, permissions, builtin, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(&r.id).bind(&r.org_id).bind(&r.role_key).bind(&r.name).bind(&r.description)
        .bind(&r.permissions).bind(r.builtin).bind(r.created_at).bind(r.updated_at)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<RoleRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM roles WHERE org_id = $1 AND id = $2"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

/// By id or by key, outside a transaction.
pub async fn find(db: &Db, org_id: &str, id_or_key: &str) -> Result<Option<RoleRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM roles WHERE org_id = $1 AND (id = $2 OR role_key = $2)"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(id_or_key).fetch_optional(c).await)?)
}

/// By id or by key: the API accepts either.
pub async fn find_in(tx: &mut Tx, org_id: &str, id_or_key: &str) -> Result<Option<RoleRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM roles WHERE org_id = $1 AND (id = $2 OR role_key = $2)"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(id_or_key).fetch_optional(c).await)?)
}

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<RoleRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM roles WHERE org_id = $1 ORDER BY builtin DESC, role_key"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).fetch_all(c).await)?)
}

pub async fn update(tx: &mut Tx, r: &RoleRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE roles SET name = $3, description = $4, permissions = $5, updated_at = $6 WHERE org_id = $1 AND id = $2")
        .bind(&r.org_id).bind(&r.id).bind(&r.name).bind(&r.description).bind(&r.permissions).bind(r.updated_at)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete(tx: &mut Tx, org_id: &str, id: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM roles WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssignmentRow {
    pub id: String,
    pub org_id: String,
    pub role_id: String,
    pub role_key: String,
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub scope_kind: String,
    pub scope_id: Option<String>,
    pub created_at: i64,
}

/// The derived keys of the uniqueness index: (principal, scope_key).
pub(crate) fn assignment_keys(a: &AssignmentRow) -> (String, String) {
    let principal = match (&a.user_id, &a.group_id) {
        (Some(u), _) => format!("user:{u}"),
        (None, Some(g)) => format!("group:{g}"),
        (None, None) => String::new(),
    };
    let scope_key = match &a.scope_id {
        Some(id) => format!("{}:{id}", a.scope_kind),
        None => a.scope_kind.clone(),
    };
    (principal, scope_key)
}

pub async fn assign(tx: &mut Tx, a: &AssignmentRow) -> Result<()> {
    const SQL: &str = concat!(
        "INSERT INTO role_assignments (",
        assignment_columns!(),
        ") ",
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    on_tx!(tx, c => bind_assignment!(sqlx::query(SQL), a).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

const ASSIGNMENT_COLS: &str = "a.id, a.org_id, a.role_id, r.role_key, a.user_id, a.group_id, a.scope_kind, a.scope_id, a.created_at";

pub async fn assignment_in(tx: &mut Tx, org_id: &str, id: &str) -> Result<Option<AssignmentRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ASSIGNMENT_COLS} FROM role_assignments a JOIN roles r ON r.id = a.role_id WHERE a.org_id = $1 AND a.id = $2"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

pub async fn assignments(
    db: &Db,
    org_id: &str,
    user_id: Option<&str>,
    group_id: Option<&str>,
) -> Result<Vec<AssignmentRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {ASSIGNMENT_COLS} FROM role_assignments a JOIN roles r ON r.id = a.role_id
         WHERE a.org_id = $1 AND ($2 IS NULL OR a.user_id = $2) AND ($3 IS NULL OR a.group_id = $3)
         ORDER BY a.id"
    ));
    Ok(
        on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(user_id).bind(group_id).fetch_all(c).await)?,
    )
}

/// The roles each of these users holds directly in the organization scope:
/// (user id, role key), for an export.
pub async fn org_role_keys(
    db: &Db,
    org_id: &str,
    user_ids: &[&str],
) -> Result<Vec<(String, String)>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT a.user_id, r.role_key FROM role_assignments a JOIN roles r ON r.id = a.role_id
         WHERE a.org_id = $1 AND a.scope_kind = 'organization' AND a.user_id IN ({})
         ORDER BY a.user_id, r.role_key",
        crate::db::in_list(2, user_ids.len())
    );
    on_db!(db, c => {
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(org_id);
        for id in user_ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(c).await?)
    })
}

/// One role a user holds, in any scope: its own or through a group.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldRow {
    pub assignment_id: String,
    pub role_key: String,
    pub scope_kind: String,
    pub scope_id: Option<String>,
    /// The group it comes through (the user is in it at any depth).
    pub group_id: Option<String>,
    pub group_name: Option<String>,
}

/// Every role the user holds: assigned to it, or to a group it is in at
/// any depth.
pub async fn held_by_user(db: &Db, org_id: &str, user_id: &str) -> Result<Vec<HeldRow>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "WITH RECURSIVE g(id) AS (
             SELECT group_id FROM group_user_members WHERE user_id = $2
             UNION SELECT m.group_id FROM group_group_members m JOIN g ON m.child_id = g.id
         )
         SELECT a.id AS assignment_id, r.role_key, a.scope_kind, a.scope_id,
                CAST(NULL AS TEXT) AS group_id, CAST(NULL AS TEXT) AS group_name
         FROM role_assignments a JOIN roles r ON r.id = a.role_id
         WHERE a.org_id = $1 AND a.user_id = $2
         UNION ALL
         SELECT a.id, r.role_key, a.scope_kind, a.scope_id, gr.id, gr.name
         FROM g JOIN groups gr ON gr.id = g.id JOIN role_assignments a ON a.group_id = gr.id
              JOIN roles r ON r.id = a.role_id
         WHERE gr.org_id = $1
         ORDER BY 2, 1")
        .bind(org_id).bind(user_id).fetch_all(c).await)?)
}

pub async fn unassign(tx: &mut Tx, org_id: &str, id: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM role_assignments WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn count_holders(tx: &mut Tx, role_id: &str) -> Result<i64> {
    Ok(
        on_tx!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM role_assignments WHERE role_id = $1")
        .bind(role_id).fetch_one(c).await)?,
    )
}

/// The common table expressions `g` (the user's groups, transitively) and
/// `perms` (one permission string per role held), for a user and organization
/// given as SQL expressions. Two index lookups joined by UNION ALL: an `OR`
/// across user and group, or naming the organization on the assignment in the
/// group half, lets the planners walk every assignment of the organization.
/// The CROSS JOIN keeps SQLite starting from the user's groups (PostgreSQL
/// plans by statistics and ignores the hint).
/// Used by session authentication, which reads a session and its user's
/// permissions in one query, and by MFA's checks; API tokens, read many at a
/// time, use `effective_ctes_keyed`, the same lookups per key.
pub(crate) fn effective_ctes(user: &str, org: &str) -> String {
    format!(
        "g(id) AS (
            SELECT group_id FROM group_user_members WHERE user_id = {user}
            UNION SELECT m.group_id FROM group_group_members m JOIN g ON m.child_id = g.id
        ),
        perms(p) AS (
            SELECT r.permissions FROM role_assignments a JOIN roles r ON r.id = a.role_id
            WHERE a.user_id = {user} AND a.org_id = {org} AND a.scope_kind = 'organization'
            UNION ALL
            SELECT r.permissions FROM g CROSS JOIN groups gr
                JOIN role_assignments a ON a.group_id = gr.id JOIN roles r ON r.id = a.role_id
            WHERE gr.id = g.id AND gr.org_id = {org} AND a.scope_kind = 'organization'
        ),
        sperms(p) AS (
            SELECT COALESCE(ou.path, 'ws:' || a.scope_id) || ' ' || r.permissions
            FROM role_assignments a JOIN roles r ON r.id = a.role_id
                LEFT JOIN org_units ou ON ou.id = a.scope_id AND a.scope_kind = 'org_unit'
            WHERE a.user_id = {user} AND a.org_id = {org} AND a.scope_kind <> 'organization'
            UNION ALL
            SELECT COALESCE(ou.path, 'ws:' || a.scope_id) || ' ' || r.permissions FROM g CROSS JOIN groups gr
                JOIN role_assignments a ON a.group_id = gr.id JOIN roles r ON r.id = a.role_id
                LEFT JOIN org_units ou ON ou.id = a.scope_id AND a.scope_kind = 'org_unit'
            WHERE gr.id = g.id AND gr.org_id = {org} AND a.scope_kind <> 'organization'
        )"
    )
}

/// `effective_ctes` for several users at once, as authenticating a batch of
/// API tokens needs: `who` names a CTE of rows `(k, user_id, org_id)`, and
/// `g`, `perms` and `sperms` carry each row's key `k` beside their values.
/// The same lookups as `effective_ctes`, one set per key.
pub(crate) fn effective_ctes_keyed(who: &str) -> String {
    format!(
        "g(k, id) AS (
            SELECT w.k, m.group_id FROM {who} w JOIN group_user_members m ON m.user_id = w.user_id
            UNION SELECT g.k, m.group_id FROM group_group_members m JOIN g ON m.child_id = g.id
        ),
        perms(k, p) AS (
            SELECT w.k, r.permissions FROM {who} w
                JOIN role_assignments a ON a.user_id = w.user_id AND a.org_id = w.org_id
                JOIN roles r ON r.id = a.role_id
            WHERE a.scope_kind = 'organization'
            UNION ALL
            SELECT g.k, r.permissions FROM g JOIN {who} w ON w.k = g.k CROSS JOIN groups gr
                JOIN role_assignments a ON a.group_id = gr.id JOIN roles r ON r.id = a.role_id
            WHERE gr.id = g.id AND gr.org_id = w.org_id AND a.scope_kind = 'organization'
        ),
        sperms(k, p) AS (
            SELECT w.k, COALESCE(ou.path, 'ws:' || a.scope_id) || ' ' || r.permissions FROM {who} w
                JOIN role_assignments a ON a.user_id = w.user_id AND a.org_id = w.org_id
                JOIN roles r ON r.id = a.role_id
                LEFT JOIN org_units ou ON ou.id = a.scope_id AND a.scope_kind = 'org_unit'
            WHERE a.scope_kind <> 'organization'
            UNION ALL
            SELECT g.k, COALESCE(ou.path, 'ws:' || a.scope_id) || ' ' || r.permissions
            FROM g JOIN {who} w ON w.k = g.k CROSS JOIN groups gr
                JOIN role_assignments a ON a.group_id = gr.id JOIN roles r ON r.id = a.role_id
                LEFT JOIN org_units ou ON ou.id = a.scope_id AND a.scope_kind = 'org_unit'
            WHERE gr.id = g.id AND gr.org_id = w.org_id AND a.scope_kind <> 'organization'
        )"
    )
}

/// A user's organization-wide permissions now (space-separated).
pub async fn org_permissions(db: &Db, org_id: &str, user_id: &str) -> Result<String> {
    let agg = match db.backend() {
        crate::Backend::Sqlite => "group_concat(p, ' ')",
        crate::Backend::Postgres => "string_agg(p, ' ')",
    };
    let ctes = effective_ctes("$1", "$2");
    let sql = format!("WITH RECURSIVE {ctes} SELECT COALESCE((SELECT {agg} FROM perms), '')");
    Ok(on_db!(db, c => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(user_id).bind(org_id).fetch_one(c).await)?)
}

/// The two aggregates over `effective_ctes`: `permissions` (space-separated
/// strings of the organization-wide roles) and `scoped` (one `key perms…`
/// entry per scoped role, separated by `;`: the key is the OU's path for an
/// OU scope, `ws:<id>` for a workspace).
pub(crate) fn effective_columns(backend: crate::Backend) -> &'static str {
    match backend {
        crate::Backend::Sqlite => {
            "(SELECT group_concat(p, ' ') FROM perms) AS permissions, (SELECT group_concat(p, ';') FROM sperms) AS scoped"
        }
        crate::Backend::Postgres => {
            "(SELECT string_agg(p, ' ') FROM perms) AS permissions, (SELECT string_agg(p, ';') FROM sperms) AS scoped"
        }
    }
}

/// `effective_columns` over `effective_ctes_keyed`, for the row whose key
/// is the SQL expression `key`.
pub(crate) fn effective_columns_keyed(backend: crate::Backend, key: &str) -> String {
    // Ordered on PostgreSQL, where the text is part of a token's fingerprint
    // (`tokens::auth_ctes`): two plans must not list the same roles apart.
    let (agg, order) = match backend {
        crate::Backend::Sqlite => ("group_concat", ""),
        crate::Backend::Postgres => ("string_agg", " ORDER BY p"),
    };
    format!(
        "(SELECT {agg}(p, ' '{order}) FROM perms WHERE perms.k = {key}) AS permissions, \
         (SELECT {agg}(p, ';'{order}) FROM sperms WHERE sperms.k = {key}) AS scoped"
    )
}
