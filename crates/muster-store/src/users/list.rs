//! Listing and searching an organization's users: by text, state, OU
//! subtree, source, second factor and workspace, in id order for cursors.

use super::{COLS, SCIM_VISIBLE, UserRow, like_pattern};
use crate::{Db, Result};

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Case-insensitive substring of email, user name or a name part.
    pub search: Option<String>,
    pub state: Option<String>,
    /// Return users with an id greater than this (cursor pagination).
    pub after: Option<String>,
    pub limit: i64,
    /// Leave out users the IdP deleted (SCIM reads).
    pub scim_visible: bool,
    /// Only users in this OU's subtree (its path).
    pub subtree: Option<String>,
    /// Only users in one of these subtrees (paths): where the caller's
    /// OU-scoped roles reach. `None` is everywhere.
    pub within: Option<Vec<String>>,
    /// Only users created this way (`signup`, `scim`, `invitation`…).
    pub source: Option<String>,
    /// Only users with (`true`) or without (`false`) a confirmed second factor.
    pub mfa_enrolled: Option<bool>,
    /// Only users holding a role in this workspace, themselves or through a
    /// group (nested groups included).
    pub workspace: Option<String>,
}

pub async fn list(db: &Db, org_id: &str, q: &ListQuery) -> Result<Vec<UserRow>> {
    let pattern = q.search.as_deref().map(like_pattern);
    let visible = if q.scim_visible {
        SCIM_VISIBLE
    } else {
        "1 = 1"
    };
    // OU conditions: in the subtree asked for, and in one of the subtrees
    // the caller's roles reach (both path prefixes).
    let mut prefixes = Vec::new();
    let mut ou_cond = String::new();
    let in_unit = |first: usize, n: usize| -> String {
        let any: Vec<String> = (first..first + n)
            .map(|i| format!("substr(ou.path, 1, length(${i})) = ${i}"))
            .collect();
        format!(
            " AND EXISTS (SELECT 1 FROM org_units ou WHERE ou.id = COALESCE(users.ou_id, users.org_id) AND ({}))",
            any.join(" OR ")
        )
    };
    if let Some(p) = &q.subtree {
        ou_cond.push_str(&in_unit(6, 1));
        prefixes.push(p.clone());
    }
    if let Some(w) = &q.within {
        ou_cond.push_str(&in_unit(6 + prefixes.len(), w.len().max(1)));
        prefixes.extend(w.iter().cloned());
        if w.is_empty() {
            prefixes.push("//".into()); // no path starts so: reaches nothing
        }
    }
    // The other filters bind after the prefixes.
    let mut extra: Vec<&str> = Vec::new();
    let mut next = 6 + prefixes.len();
    if let Some(src) = &q.source {
        ou_cond.push_str(&format!(" AND users.source = ${next}"));
        extra.push(src);
        next += 1;
    }
    if let Some(ws) = &q.workspace {
        ou_cond.push_str(&format!(
            " AND EXISTS (WITH RECURSIVE g(id) AS (
                 SELECT group_id FROM group_user_members WHERE user_id = users.id
                 UNION SELECT m.group_id FROM group_group_members m JOIN g ON m.child_id = g.id)
               SELECT 1 FROM role_assignments a WHERE a.org_id = users.org_id
                 AND a.scope_kind = 'workspace' AND a.scope_id = ${next}
                 AND (a.user_id = users.id OR a.group_id IN (SELECT id FROM g)))"
        ));
        extra.push(ws);
    }
    if let Some(on) = q.mfa_enrolled {
        ou_cond.push_str(&format!(
            " AND {} EXISTS (SELECT 1 FROM mfa_factors f WHERE f.user_id = users.id AND f.confirmed_at IS NOT NULL)",
            if on { "" } else { "NOT" }
        ));
    }
    let sql = format!(
        "SELECT {COLS} FROM users
         WHERE org_id = $1 AND {visible}
           AND ($2 IS NULL OR state = $2)
           AND ($3 IS NULL OR id > $3)
           AND ($4 IS NULL OR email_key LIKE CAST($4 AS TEXT) ESCAPE '\\' OR user_name_key LIKE CAST($4 AS TEXT) ESCAPE '\\'
                OR lower(display_name) LIKE CAST($4 AS TEXT) ESCAPE '\\' OR lower(given_name) LIKE CAST($4 AS TEXT) ESCAPE '\\'
                OR lower(family_name) LIKE CAST($4 AS TEXT) ESCAPE '\\'){ou_cond}
         ORDER BY id LIMIT CAST($5 AS BIGINT)"
    );
    on_db!(db, c => {
        let mut qy = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(org_id).bind(&q.state).bind(&q.after).bind(&pattern).bind(q.limit);
        for p in &prefixes {
            qy = qy.bind(p);
        }
        for v in &extra {
            qy = qy.bind(*v);
        }
        Ok(qy.fetch_all(c).await?)
    })
}
