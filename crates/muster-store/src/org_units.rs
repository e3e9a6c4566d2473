//! Organizational units: the tree, its paths, and each unit's effective
//! settings (see migration 0015). Every change to the tree or to a policy
//! ends with `refresh`, in the same transaction, so that `effective` never
//! lags behind what it is derived from.

use crate::{Db, Result, Tx};
use serde_json::{Map, Value};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgUnitRow {
    pub id: String,
    pub org_id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub path: String,
    /// This unit's own overrides: a JSON object of settings keys.
    pub policies: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OrgUnitRow {
    /// Whether `other_path` is this unit or lies below it.
    pub fn contains(&self, other_path: &str) -> bool {
        other_path.starts_with(&self.path)
    }
}

const COLS: &str = "id, org_id, parent_id, name, path, policies, created_at, updated_at";

/// The root unit of a new organization: it has the organization's id.
pub async fn insert_root(tx: &mut Tx, org_id: &str, name: &str, now: i64) -> Result<()> {
    let row = OrgUnitRow {
        id: org_id.to_owned(),
        org_id: org_id.to_owned(),
        parent_id: None,
        name: name.to_owned(),
        path: format!("/{org_id}/"),
        policies: "{}".into(),
        created_at: now,
        updated_at: now,
    };
    insert(tx, &row).await
}

pub async fn insert(tx: &mut Tx, r: &OrgUnitRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO org_units (id, org_id, parent_id, name, name_key, path, policies, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(&r.id).bind(&r.org_id).bind(&r.parent_id).bind(&r.name).bind(r.name.to_lowercase())
        .bind(&r.path).bind(&r.policies).bind(r.created_at).bind(r.updated_at)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<OrgUnitRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM org_units WHERE org_id = $1 AND id = $2"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

pub async fn get_in(tx: &mut Tx, org_id: &str, id: &str) -> Result<Option<OrgUnitRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM org_units WHERE org_id = $1 AND id = $2"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

/// Every unit of the organization, parents before children.
pub async fn list(db: &Db, org_id: &str) -> Result<Vec<OrgUnitRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM org_units WHERE org_id = $1 ORDER BY length(path), name_key"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).fetch_all(c).await)?)
}

async fn list_in(tx: &mut Tx, org_id: &str) -> Result<Vec<OrgUnitRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM org_units WHERE org_id = $1 ORDER BY length(path), name_key"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).fetch_all(c).await)?)
}

/// The unit a user is in (the root when the user's `ou_id` is NULL).
pub async fn of_user(db: &Db, org_id: &str, user_id: &str) -> Result<Option<OrgUnitRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM users u JOIN org_units ou ON ou.id = COALESCE(u.ou_id, u.org_id)
         WHERE u.org_id = $1 AND u.id = $2",
        prefixed("ou")
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(user_id).fetch_optional(c).await)?)
}

/// The same, inside a transaction that is about to change the user.
pub async fn of_user_in(tx: &mut Tx, org_id: &str, user_id: &str) -> Result<Option<OrgUnitRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM users u JOIN org_units ou ON ou.id = COALESCE(u.ou_id, u.org_id)
         WHERE u.org_id = $1 AND u.id = $2",
        prefixed("ou")
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(user_id).fetch_optional(c).await)?)
}

/// A user's effective settings: its unit's, or `None` for a user in the
/// root or no such user (the organization's settings hold).
pub async fn effective_of_user(db: &Db, org_id: &str, user_id: &str) -> Result<Option<String>> {
    Ok(on_db!(db, c => sqlx::query_scalar(
        "SELECT ou.effective FROM users u JOIN org_units ou ON ou.id = u.ou_id WHERE u.org_id = $1 AND u.id = $2")
        .bind(org_id).bind(user_id).fetch_optional(c).await)?)
}

/// A unit's effective settings.
pub async fn effective(db: &Db, org_id: &str, id: &str) -> Result<Option<String>> {
    Ok(on_db!(db, c => sqlx::query_scalar(
        "SELECT effective FROM org_units WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).fetch_optional(c).await)?)
}

fn prefixed(alias: &str) -> String {
    COLS.split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn rename(tx: &mut Tx, org_id: &str, id: &str, name: &str, now: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE org_units SET name = $3, name_key = $4, updated_at = $5 WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).bind(name).bind(name.to_lowercase()).bind(now)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves `unit` under `parent`: its parent changes and every path of its
/// subtree is rewritten from the old prefix to the new one. The caller has
/// ruled out cycles.
pub async fn move_under(
    tx: &mut Tx,
    unit: &OrgUnitRow,
    parent: &OrgUnitRow,
    now: i64,
) -> Result<String> {
    let new_path = format!("{}{}/", parent.path, unit.id);
    on_tx!(tx, c => sqlx::query(
        "UPDATE org_units SET path = $3 || substr(path, length($2) + 1), updated_at = $4
         WHERE org_id = $1 AND substr(path, 1, length($2)) = $2")
        .bind(&unit.org_id).bind(&unit.path).bind(&new_path).bind(now)
        .execute(c).await.map(|r| r.rows_affected()))?;
    on_tx!(tx, c => sqlx::query("UPDATE org_units SET parent_id = $3 WHERE org_id = $1 AND id = $2")
        .bind(&unit.org_id).bind(&unit.id).bind(&parent.id)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(new_path)
}

pub async fn set_policies(
    tx: &mut Tx,
    org_id: &str,
    id: &str,
    policies: &str,
    now: i64,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE org_units SET policies = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(id).bind(policies).bind(now)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// What keeps a unit from being deleted: (child units, users, role
/// assignments scoped to it).
pub async fn contents(tx: &mut Tx, org_id: &str, id: &str) -> Result<(i64, i64, i64)> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM org_units WHERE org_id = $1 AND parent_id = $2),
                (SELECT COUNT(*) FROM users WHERE org_id = $1 AND ou_id = $2),
                (SELECT COUNT(*) FROM role_assignments WHERE org_id = $1 AND scope_kind = 'org_unit' AND scope_id = $2)")
        .bind(org_id).bind(id).fetch_one(c).await)?)
}

pub async fn delete(tx: &mut Tx, org_id: &str, id: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM org_units WHERE org_id = $1 AND id = $2 AND parent_id IS NOT NULL")
        .bind(org_id).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Puts a user into a unit; the root is stored as NULL.
pub async fn place_user(tx: &mut Tx, org_id: &str, user_id: &str, unit: &OrgUnitRow) -> Result<()> {
    let ou = unit.parent_id.as_ref().map(|_| unit.id.as_str());
    on_tx!(tx, c => sqlx::query("UPDATE users SET ou_id = $3 WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(user_id).bind(ou)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Recomputes `effective` for every unit of the organization from its
/// settings and the units' overrides, writing only the rows that changed.
/// Runs under the organization's lock, in the transaction of the change.
pub async fn refresh(tx: &mut Tx, org_id: &str, org_settings: &str) -> Result<()> {
    let units = list_in(tx, org_id).await?;
    let current: Vec<(String, String)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT id, effective FROM org_units WHERE org_id = $1")
        .bind(org_id).fetch_all(c).await)?;
    let current: std::collections::HashMap<String, String> = current.into_iter().collect();
    for (id, text) in effective_all(org_settings, &units) {
        if current.get(&id) != Some(&text) {
            on_tx!(tx, c => sqlx::query("UPDATE org_units SET effective = $2 WHERE id = $1")
                .bind(&id).bind(&text).execute(c).await.map(|r| r.rows_affected()))?;
        }
    }
    Ok(())
}

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Each unit's effective settings: the organization's, with the overrides
/// of every unit from the root down replacing whole keys. `units` come
/// parents first (ordered by path length).
pub fn effective_all(org_settings: &str, units: &[OrgUnitRow]) -> Vec<(String, String)> {
    let base = object(org_settings);
    let mut done: std::collections::HashMap<&str, Map<String, Value>> = Default::default();
    let mut out = Vec::with_capacity(units.len());
    for u in units {
        let mut eff = match u.parent_id.as_deref().and_then(|p| done.get(p)) {
            Some(parent) => parent.clone(),
            None => base.clone(),
        };
        for (k, v) in object(&u.policies) {
            eff.insert(k, v);
        }
        // The root's text is the organization's own, byte for byte, so a
        // user in the root and one read from `orgs` share a cache entry.
        let text = if u.parent_id.is_none() && object(&u.policies).is_empty() {
            org_settings.to_owned()
        } else {
            Value::Object(eff.clone()).to_string()
        };
        out.push((u.id.clone(), text));
        done.insert(&u.id, eff);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, parent: Option<&str>, path: &str, policies: &str) -> OrgUnitRow {
        OrgUnitRow {
            id: id.into(),
            org_id: "o".into(),
            parent_id: parent.map(Into::into),
            name: id.into(),
            path: path.into(),
            policies: policies.into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn overrides_replace_whole_keys_down_the_tree() {
        let units = [
            unit("o", None, "/o/", "{}"),
            unit("a", Some("o"), "/o/a/", r#"{"session":{"idle_minutes":5}}"#),
            unit("b", Some("a"), "/o/a/b/", r#"{"mfa":{"mode":"required"}}"#),
            unit("c", Some("o"), "/o/c/", "{}"),
        ];
        let org = r#"{"session":{"idle_minutes":60,"absolute_hours":12},"signup":{"open":true}}"#;
        let eff: std::collections::HashMap<_, _> = effective_all(org, &units).into_iter().collect();
        assert_eq!(eff["o"], org);
        let b: Value = serde_json::from_str(&eff["b"]).unwrap();
        assert_eq!(b["session"], serde_json::json!({"idle_minutes": 5}));
        assert_eq!(b["mfa"]["mode"], "required");
        assert_eq!(b["signup"]["open"], true);
        let c: Value = serde_json::from_str(&eff["c"]).unwrap();
        assert_eq!(c["session"]["idle_minutes"], 60);
        assert!(units[1].contains("/o/a/b/") && !units[1].contains("/o/c/"));
    }
}
