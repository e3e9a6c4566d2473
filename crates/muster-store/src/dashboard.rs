//! The admin console's dashboard figures: how many users are in each
//! lifecycle state, and how often some actions happened day by day.

use crate::{Db, Result};

/// Users of the organization per lifecycle state (states with none are left
/// out).
pub async fn state_counts(db: &Db, org_id: &str) -> Result<Vec<(String, i64)>> {
    let sql = "SELECT state, COUNT(*) FROM users WHERE org_id = $1 GROUP BY state ORDER BY state";
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).fetch_all(c).await)?)
}

/// Audit events of `actions` since `since_ms`, counted per action and UTC day
/// (days since 1970-01-01). Read from the `(org_id, action, occurred_at)`
/// index: each action is one range of it, so a busy day of other events
/// costs nothing here.
pub async fn daily_actions(
    db: &Db,
    org_id: &str,
    actions: &[&str],
    since_ms: i64,
) -> Result<Vec<(String, i64, i64)>> {
    let mut out = Vec::new();
    // One query per action keeps the statement's text fixed (no IN list of
    // varying length), and each is a single index range.
    let sql = "SELECT occurred_at / 86400000, COUNT(*) FROM audit_events \
               WHERE org_id = $1 AND action = $2 AND occurred_at >= $3 \
               GROUP BY occurred_at / 86400000";
    for action in actions {
        let rows: Vec<(i64, i64)> = on_db!(db, c => sqlx::query_as(sql)
            .bind(org_id).bind(*action).bind(since_ms)
            .fetch_all(c).await)?;
        out.extend(rows.into_iter().map(|(d, n)| ((*action).to_owned(), d, n)));
    }
    Ok(out)
}
