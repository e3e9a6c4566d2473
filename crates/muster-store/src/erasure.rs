//! Per-person audit keys and legal holds (DESIGN.md §5). A user's audit key
//! is a column of its own row, so deleting the row destroys the key.

use crate::{Db, Result, Tx};

/// The sealed audit key of `user_id`: `None` when no such user exists (it
/// was deleted), `Some(None)` when it has none yet.
pub async fn key(tx: &mut Tx, user_id: &str) -> Result<Option<Option<String>>> {
    Ok(
        on_tx!(tx, c => sqlx::query_scalar("SELECT audit_key FROM users WHERE id = $1")
        .bind(user_id).fetch_optional(c).await)?,
    )
}

/// Gives the user `sealed` unless it already has a key (another request may
/// have got there first); returns the key it now has, or `None` when the
/// user does not exist.
pub async fn set_key_if_missing(
    tx: &mut Tx,
    user_id: &str,
    sealed: &str,
) -> Result<Option<String>> {
    Ok(on_tx!(tx, c => sqlx::query_scalar(
        "UPDATE users SET audit_key = COALESCE(audit_key, $2) WHERE id = $1 RETURNING audit_key")
        .bind(user_id).bind(sealed).fetch_optional(c).await)?
    .flatten())
}

/// Of those of `ids` that still exist: the sealed audit key, if any, and
/// the profile (for the person's time zone).
pub async fn people(db: &Db, ids: &[String]) -> Result<Vec<(String, Option<String>, String)>> {
    let mut out = Vec::new();
    // Bounded lists keep every statement well under both dialects' limits.
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, audit_key, profile FROM users WHERE id IN ({})",
            marks.join(", ")
        );
        let rows: Vec<(String, Option<String>, String)> = on_db!(db, c => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for id in chunk {
                q = q.bind(id);
            }
            q.fetch_all(c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// A legal hold: since when, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub since: i64,
    pub reason: String,
}

const HOLD: &str =
    "SELECT legal_hold_at, legal_hold_reason FROM users WHERE org_id = $1 AND id = $2";

fn hold_of(row: Option<(Option<i64>, Option<String>)>) -> Option<Hold> {
    match row {
        Some((Some(since), reason)) => Some(Hold {
            since,
            reason: reason.unwrap_or_default(),
        }),
        _ => None,
    }
}

/// The hold on a user, read in the transaction that is about to act on it.
pub async fn legal_hold(tx: &mut Tx, org_id: &str, user_id: &str) -> Result<Option<Hold>> {
    let row =
        on_tx!(tx, c => sqlx::query_as(HOLD).bind(org_id).bind(user_id).fetch_optional(c).await)?;
    Ok(hold_of(row))
}

/// The hold on a user, for reading: `None` also when there is no such user.
pub async fn read_legal_hold(db: &Db, org_id: &str, user_id: &str) -> Result<Option<Hold>> {
    let row =
        on_db!(db, c => sqlx::query_as(HOLD).bind(org_id).bind(user_id).fetch_optional(c).await)?;
    Ok(hold_of(row))
}

/// Places (`Some`) or lifts (`None`) a legal hold.
pub async fn set_legal_hold(
    tx: &mut Tx,
    org_id: &str,
    user_id: &str,
    hold: Option<&Hold>,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE users SET legal_hold_at = $3, legal_hold_reason = $4 WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(user_id).bind(hold.map(|h| h.since)).bind(hold.map(|h| h.reason.as_str()))
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}
