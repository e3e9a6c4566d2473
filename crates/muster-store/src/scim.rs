//! SCIM tokens, and what the IdP last wrote for each user it manages.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScimTokenRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub secret_hash: String,
    /// Space-separated CIDRs; empty allows every address.
    pub ip_allow: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub rotated_to: Option<String>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
}

const COLS: &str = "id, org_id, name, secret_hash, ip_allow, created_at, expires_at, revoked_at, \
    rotated_to, last_used_at, last_used_ip";

pub async fn insert(tx: &mut Tx, t: &ScimTokenRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO scim_tokens (id, org_id, name, secret_hash, ip_allow, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&t.id).bind(&t.org_id).bind(&t.name).bind(&t.secret_hash).bind(&t.ip_allow)
        .bind(t.created_at).bind(t.expires_at).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// A token with its organization's slug, for authentication.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScimAuthRow {
    #[sqlx(flatten)]
    pub token: ScimTokenRow,
    pub org_slug: String,
}

pub async fn for_auth(db: &Db, id: &str) -> Result<Option<ScimAuthRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {}, o.slug AS org_slug FROM scim_tokens t JOIN orgs o ON o.id = t.org_id WHERE t.id = $1",
        COLS.split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(id).fetch_optional(c).await)?)
}

pub async fn get_in(tx: &mut Tx, org_id: &str, id: &str) -> Result<Option<ScimTokenRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM scim_tokens WHERE org_id = $1 AND id = $2"
    ));
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(org_id).bind(id).fetch_optional(c).await)?)
}

pub async fn list(db: &Db, org_id: &str) -> Result<Vec<ScimTokenRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM scim_tokens WHERE org_id = $1 ORDER BY id"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).fetch_all(c).await)?)
}

pub async fn revoke(tx: &mut Tx, org_id: &str, id: &str, now: i64) -> Result<bool> {
    tx.wrote_token = true;
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE scim_tokens SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL")
        .bind(org_id).bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Marks `id` as replaced by `new_id`, ending it at `expires_at` at the latest.
pub async fn rotate(
    tx: &mut Tx,
    org_id: &str,
    id: &str,
    new_id: &str,
    expires_at: i64,
) -> Result<bool> {
    tx.wrote_token = true;
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE scim_tokens SET rotated_to = $3,
             expires_at = CASE WHEN expires_at IS NULL OR expires_at > $4 THEN $4 ELSE expires_at END
         WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL AND rotated_to IS NULL")
        .bind(org_id).bind(id).bind(new_id).bind(expires_at).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Records use (time and address); called at most once a minute per token.
/// Counted as a token's write, so that a kept copy of the token (the session
/// cache) is read again and the next request does not record it again.
pub async fn touch(db: &Db, id: &str, now: i64, ip: Option<&str>) -> Result<()> {
    const SQL: &str = "UPDATE scim_tokens SET last_used_at = $2, last_used_ip = $3 WHERE id = $1";
    let r = match db {
        Db::Sqlite { write, .. } => {
            let q = sqlx::query(SQL).bind(id).bind(now).bind(ip);
            q.execute(write).await.map(|_| ())
        }
        Db::Postgres(p, ..) => {
            let q = sqlx::query(SQL).bind(id).bind(now).bind(ip);
            q.execute(p).await.map(|_| ())
        }
    };
    // Counted whatever the outcome, like `Tx::commit`.
    crate::db::note_token_write();
    r?;
    Ok(())
}

/// What the IdP last wrote for the user (`users.scim_values`), if anything.
pub async fn idp_values(tx: &mut Tx, user_id: &str) -> Result<Option<String>> {
    let v: Option<Option<String>> = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT scim_values FROM users WHERE id = $1")
        .bind(user_id).fetch_optional(c).await)?;
    Ok(v.flatten())
}

pub async fn idp_values_of(db: &Db, org_id: &str, user_id: &str) -> Result<Option<String>> {
    let v: Option<Option<String>> = on_db!(db, c => sqlx::query_scalar(
        "SELECT scim_values FROM users WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(user_id).fetch_optional(c).await)?;
    Ok(v.flatten())
}

pub async fn set_idp_values(tx: &mut Tx, org_id: &str, user_id: &str, values: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE users SET scim_values = $3 WHERE org_id = $1 AND id = $2")
        .bind(org_id).bind(user_id).bind(values).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Shows or hides the user from SCIM: hidden once the IdP deleted it and the
/// policy kept the account (deactivated); shown again when the IdP brings it
/// back by its externalId. The count behind `totalResults` follows by trigger.
pub async fn set_hidden(tx: &mut Tx, org_id: &str, user_id: &str, hidden: bool) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE users SET scim_hidden = $3 WHERE org_id = $1 AND id = $2 AND scim_hidden <> $3")
        .bind(org_id).bind(user_id).bind(hidden).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Folds the changes appended to PostgreSQL's SCIM user counts into each
/// organization's count (migration 0021); returns how many organizations
/// changed. One statement: a reader sees the deltas either before or after
/// it, never both and never neither. Two instances folding at once cannot
/// count a delta twice: the second `DELETE` waits for the first and then
/// finds the row gone. A no-op on SQLite, whose triggers keep the count.
pub async fn fold_counts(db: &Db) -> Result<u64> {
    let Db::Postgres(pool, ..) = db else {
        return Ok(0);
    };
    let folded = sqlx::query(
        "WITH moved AS (DELETE FROM scim_user_count_deltas RETURNING org_id, delta) \
         INSERT INTO scim_user_counts (org_id, n) \
         SELECT m.org_id, CAST(SUM(m.delta) AS BIGINT) FROM moved m \
         JOIN orgs o ON o.id = m.org_id GROUP BY m.org_id \
         ON CONFLICT (org_id) DO UPDATE SET n = scim_user_counts.n + EXCLUDED.n",
    )
    .execute(pool)
    .await?
    .rows_affected();
    if folded > 0 {
        // The deleted deltas are dead rows every read of the count would
        // step over until vacuumed; autovacuum may be off (`statistics`).
        // Another instance vacuuming it already is as good: skip, not queue.
        sqlx::raw_sql("VACUUM (SKIP_LOCKED) scim_user_count_deltas")
            .execute(pool)
            .await?;
    }
    Ok(folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DbOptions;

    fn token(id: &str) -> ScimTokenRow {
        ScimTokenRow {
            id: id.into(),
            org_id: "o1".into(),
            name: "IdP".into(),
            secret_hash: "h".into(),
            ip_allow: String::new(),
            created_at: 0,
            expires_at: None,
            revoked_at: None,
            rotated_to: None,
            last_used_at: None,
            last_used_ip: None,
        }
    }

    /// Kept copies of a SCIM token are trusted until a token's write is
    /// counted (`TOKEN_COMMITS`): revocation, rotation and last use must
    /// each count. No other test of this crate writes a token, so the count
    /// moves only for what this test does.
    #[tokio::test]
    async fn every_write_to_a_token_is_counted() {
        let path =
            std::env::temp_dir().join(format!("muster-store-scim-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let db = Db::connect(
            &format!("sqlite://{}", path.display()),
            &DbOptions::default(),
        )
        .await
        .unwrap();
        db.migrate().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        on_tx!(tx, c => sqlx::query(
            "INSERT INTO orgs (id, slug, name, kind, settings, created_at, updated_at) \
             VALUES ('o1', 'acme', 'Acme', 'business', '{}', 0, 0)")
            .execute(c).await.map(|r| r.rows_affected()))
        .unwrap();
        insert(&mut tx, &token("t1")).await.unwrap();
        insert(&mut tx, &token("t2")).await.unwrap();
        tx.commit().await.unwrap();

        let before = crate::token_commits();
        let mut tx = db.begin().await.unwrap();
        assert!(revoke(&mut tx, "o1", "t1", 1).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(crate::token_commits(), before + 1, "a revocation");
        let mut tx = db.begin().await.unwrap();
        assert!(rotate(&mut tx, "o1", "t2", "t3", 1).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(crate::token_commits(), before + 2, "a rotation");
        touch(&db, "t2", 2, Some("192.0.2.1")).await.unwrap();
        assert_eq!(crate::token_commits(), before + 3, "a last use");
        db.close().await;
        let _ = std::fs::remove_file(&path);
    }
}
