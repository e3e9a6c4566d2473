//! Audit checkpoints and pruning (migration 0014): what is archived is
//! deleted only under a checkpoint, which the triggers check.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub org_id: String,
    /// The last link archived; the chain in the database continues after it.
    pub seq: i64,
    /// That link's hash: the remaining chain's starting point.
    pub hash: String,
    /// The first link in the archive, and the hash before it.
    pub from_seq: i64,
    pub prev_hash: String,
    pub events: i64,
    pub archive_name: String,
    pub archive_sha256: String,
    pub created_at: i64,
    /// Ed25519 over `signed_text`, hex.
    pub signature: String,
}

impl Checkpoint {
    /// What the signature covers: every field but itself, in a fixed order.
    pub fn signed_text(&self) -> String {
        serde_json::json!([
            "muster-audit-checkpoint-v1",
            self.org_id,
            self.from_seq,
            self.prev_hash,
            self.seq,
            self.hash,
            self.events,
            self.archive_name,
            self.archive_sha256,
            self.created_at,
        ])
        .to_string()
    }
}

const COLS: &str = "org_id, seq, hash, from_seq, prev_hash, events, archive_name, archive_sha256, created_at, signature";

/// The newest checkpoint of the organization: where its chain now starts.
pub async fn latest(db: &Db, org_id: &str) -> Result<Option<Checkpoint>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM audit_checkpoints WHERE org_id = $1 ORDER BY seq DESC LIMIT 1"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).fetch_optional(c).await)?)
}

pub async fn get(db: &Db, org_id: &str, seq: i64) -> Result<Option<Checkpoint>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM audit_checkpoints WHERE org_id = $1 AND seq = $2"
    ));
    Ok(on_db!(db, c => sqlx::query_as(sql).bind(org_id).bind(seq).fetch_optional(c).await)?)
}

/// Records the checkpoint, then deletes the events and links it covers.
pub async fn checkpoint_and_prune(tx: &mut Tx, k: &Checkpoint) -> Result<u64> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_checkpoints ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ));
    on_tx!(tx, c => sqlx::query(sql)
        .bind(&k.org_id).bind(k.seq).bind(&k.hash).bind(k.from_seq).bind(&k.prev_hash)
        .bind(k.events).bind(&k.archive_name).bind(&k.archive_sha256).bind(k.created_at)
        .bind(&k.signature)
        .execute(c).await.map(|r| r.rows_affected()))?;
    // Webhook messages still waiting for these events can no longer be
    // built: the delivery log says so rather than retrying for a day.
    on_tx!(tx, c => sqlx::query(
        "UPDATE webhook_deliveries SET status = 'failed',
             last_error = 'the event was archived before it could be delivered'
         WHERE status = 'pending' AND event_id IN
           (SELECT event_id FROM audit_chain WHERE org_id = $1 AND seq BETWEEN $2 AND $3)")
        .bind(&k.org_id).bind(k.from_seq).bind(k.seq)
        .execute(c).await.map(|r| r.rows_affected()))?;
    let events = on_tx!(tx, c => sqlx::query(
        "DELETE FROM audit_events WHERE id IN
           (SELECT event_id FROM audit_chain WHERE org_id = $1 AND seq BETWEEN $2 AND $3)")
        .bind(&k.org_id).bind(k.from_seq).bind(k.seq)
        .execute(c).await.map(|r| r.rows_affected()))?;
    on_tx!(tx, c => sqlx::query("DELETE FROM audit_chain WHERE org_id = $1 AND seq BETWEEN $2 AND $3")
        .bind(&k.org_id).bind(k.from_seq).bind(k.seq)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(events)
}
