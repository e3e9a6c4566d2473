//! Second factors, recovery codes and sign-in challenges (migration 0008).

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FactorRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    /// `totp` or `email`.
    pub kind: String,
    pub name: String,
    /// The TOTP seed, sealed with the server key.
    pub secret_sealed: Option<String>,
    pub last_step: i64,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// A passkey's credential id (base64url).
    pub credential_id: Option<String>,
}

const FACTOR_COLS: &str = "id, org_id, user_id, kind, name, secret_sealed, last_step, created_at, confirmed_at, last_used_at, credential_id";

pub async fn insert_factor(tx: &mut Tx, f: &FactorRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO mfa_factors (id, org_id, user_id, kind, name, secret_sealed, last_step, created_at, confirmed_at, credential_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(&f.id).bind(&f.org_id).bind(&f.user_id).bind(&f.kind).bind(&f.name)
        .bind(&f.secret_sealed).bind(f.last_step).bind(f.created_at).bind(f.confirmed_at).bind(&f.credential_id)
        .execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Every factor of the user, confirmed or not, oldest first.
pub async fn factors(db: &Db, user_id: &str) -> Result<Vec<FactorRow>> {
    let sql =
        format!("SELECT {FACTOR_COLS} FROM mfa_factors WHERE user_id = $1 ORDER BY created_at, id");
    Ok(on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user_id).fetch_all(c).await)?)
}

/// Accepts TOTP time step `step` for the factor, once: `false` when that step
/// (or a later one) was already used — the replay RFC 6238 §5.2 forbids.
/// Confirms the factor if it was pending.
pub async fn use_step(tx: &mut Tx, id: &str, step: i64, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE mfa_factors SET last_step = $2, last_used_at = $3, confirmed_at = COALESCE(confirmed_at, $3) \
         WHERE id = $1 AND last_step < $2")
        .bind(id).bind(step).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Records the use of a factor (and confirms it if it was pending).
pub async fn used(tx: &mut Tx, id: &str, now: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE mfa_factors SET last_used_at = $2, confirmed_at = COALESCE(confirmed_at, $2) WHERE id = $1")
        .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Removes one of the user's factors; `false` when it is not theirs.
pub async fn delete_factor(tx: &mut Tx, user_id: &str, id: &str) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM mfa_factors WHERE user_id = $1 AND id = $2")
        .bind(user_id).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Drops the user's unconfirmed factors of `kind` (an abandoned enrolment).
pub async fn delete_pending(tx: &mut Tx, user_id: &str, kind: &str) -> Result<u64> {
    Ok(on_tx!(tx, c => sqlx::query(
        "DELETE FROM mfa_factors WHERE user_id = $1 AND kind = $2 AND confirmed_at IS NULL")
        .bind(user_id).bind(kind).execute(c).await.map(|r| r.rows_affected()))?)
}

/// Removes every factor and recovery code of the user (an admin's "reset
/// MFA"); returns how many factors there were.
pub async fn reset(tx: &mut Tx, user_id: &str) -> Result<u64> {
    on_tx!(tx, c => sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(
        on_tx!(tx, c => sqlx::query("DELETE FROM mfa_factors WHERE user_id = $1")
        .bind(user_id).execute(c).await.map(|r| r.rows_affected()))?,
    )
}

/// Replaces the user's recovery codes with new ones (hashes).
pub async fn replace_recovery(
    tx: &mut Tx,
    user_id: &str,
    hashes: &[(String, String)],
    now: i64,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id).execute(c).await.map(|r| r.rows_affected()))?;
    for (id, hash) in hashes {
        on_tx!(tx, c => sqlx::query(
            "INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id).bind(user_id).bind(hash).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// The user's unused recovery codes: (id, hash).
pub async fn recovery_left(db: &Db, user_id: &str) -> Result<Vec<(String, String)>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "SELECT id, code_hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY id")
        .bind(user_id).fetch_all(c).await)?)
}

/// Spends a recovery code; `false` when someone spent it first.
pub async fn spend_recovery(tx: &mut Tx, id: &str, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE recovery_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
        .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub secret_hash: String,
    pub first_method: String,
    pub enrol: i32,
    pub attempts: i32,
    pub created_at: i64,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
    /// The sign-in's risk evaluation (JSON), for the session's audit event.
    pub risk: Option<String>,
    /// The hash of the browser's device cookie, for the device record.
    pub device_hash: Option<String>,
}

const CHALLENGE_COLS: &str = "id, org_id, user_id, secret_hash, first_method, enrol, attempts, created_at, expires_at, spent_at, risk, device_hash";

pub async fn insert_challenge(tx: &mut Tx, c: &ChallengeRow) -> Result<()> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO mfa_challenges (id, org_id, user_id, secret_hash, first_method, enrol, attempts, created_at, expires_at, risk, device_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9, $10)")
        .bind(&c.id).bind(&c.org_id).bind(&c.user_id).bind(&c.secret_hash).bind(&c.first_method)
        .bind(c.enrol).bind(c.created_at).bind(c.expires_at).bind(&c.risk).bind(&c.device_hash)
        .execute(conn).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn challenge(db: &Db, id: &str) -> Result<Option<ChallengeRow>> {
    let sql = format!("SELECT {CHALLENGE_COLS} FROM mfa_challenges WHERE id = $1");
    Ok(on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(c).await)?)
}

/// Counts a wrong code; at `max` attempts the challenge is spent. Returns
/// whether it is still usable.
pub async fn challenge_failed(db: &Db, id: &str, max: i32, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let attempts: Option<i32> = on_tx!(tx, c => sqlx::query_scalar(
        "UPDATE mfa_challenges SET attempts = attempts + 1, \
         spent_at = CASE WHEN attempts + 1 >= $2 THEN $3 ELSE spent_at END \
         WHERE id = $1 RETURNING attempts")
        .bind(id).bind(max).bind(now).fetch_optional(c).await)?;
    tx.commit().await?;
    Ok(attempts.is_some_and(|a| a < max))
}

/// Spends a challenge in the caller's transaction; `false` when it was
/// spent or expired first (two concurrent completions: exactly one wins).
pub async fn spend_challenge(tx: &mut Tx, id: &str, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE mfa_challenges SET spent_at = $2 WHERE id = $1 AND spent_at IS NULL AND expires_at > $2")
        .bind(id).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Raises a session's assurance level, proved now (a step-up).
pub async fn raise_session(tx: &mut Tx, session_id: &str, level: i32, now: i64) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE sessions SET mfa_level = CASE WHEN mfa_level > $2 THEN mfa_level ELSE $2 END, level_at = $3 \
         WHERE id = $1 AND revoked_at IS NULL")
        .bind(session_id).bind(level).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// What MFA policy needs to know of a user: the permissions they hold now
/// (space-separated; OU-scoped roles count, their paths being words that
/// parse as no permission) and every group they are in, directly or through
/// nested groups (space-separated ids).
pub async fn standing(db: &Db, org_id: &str, user_id: &str) -> Result<(String, String)> {
    let agg = |col: &str| match db.backend() {
        crate::Backend::Sqlite => format!("group_concat({col}, ' ')"),
        crate::Backend::Postgres => format!("string_agg({col}, ' ')"),
    };
    let ctes = crate::roles::effective_ctes("$1", "$2");
    let sql = format!(
        "WITH RECURSIVE {ctes} SELECT COALESCE((SELECT {} FROM perms), '') || ' ' || COALESCE((SELECT {} FROM sperms), ''),
             COALESCE((SELECT {} FROM g), '')",
        agg("p"),
        agg("p"),
        agg("id")
    );
    Ok(on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user_id).bind(org_id).fetch_one(c).await)?)
}

/// Stores a passkey's updated state (its signature counter) after a use.
pub async fn passkey_used(tx: &mut Tx, id: &str, sealed: &str, now: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE mfa_factors SET secret_sealed = $2, last_used_at = $3 WHERE id = $1")
        .bind(id).bind(sealed).bind(now).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Whether any account holds this credential id already.
pub async fn credential_taken(db: &Db, credential_id: &str) -> Result<bool> {
    let n: i64 = on_db!(db, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM mfa_factors WHERE credential_id = $1")
        .bind(credential_id).fetch_one(c).await)?;
    Ok(n > 0)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CeremonyRow {
    pub id: String,
    pub org_id: String,
    pub user_id: Option<String>,
    /// `register`, `mfa`, `step_up` or `discover`.
    pub kind: String,
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
}

pub async fn insert_ceremony(tx: &mut Tx, r: &CeremonyRow) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO webauthn_states (id, org_id, user_id, kind, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&r.id).bind(&r.org_id).bind(&r.user_id).bind(&r.kind).bind(&r.state)
        .bind(r.created_at).bind(r.expires_at).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Takes a ceremony's state, once: `None` when unknown, of another kind,
/// spent or expired. (Spent at once, so an answer is never checked twice.)
pub async fn take_ceremony(db: &Db, id: &str, kind: &str, now: i64) -> Result<Option<CeremonyRow>> {
    let mut tx = db.begin().await?;
    let row = take_ceremony_in(&mut tx, id, kind, now).await?;
    tx.commit().await?;
    Ok(row)
}

/// `take_ceremony` in the caller's transaction.
pub async fn take_ceremony_in(
    tx: &mut Tx,
    id: &str,
    kind: &str,
    now: i64,
) -> Result<Option<CeremonyRow>> {
    let row: Option<CeremonyRow> = on_tx!(tx, c => sqlx::query_as(
        "UPDATE webauthn_states SET spent_at = $3 WHERE id = $1 AND kind = $2 AND spent_at IS NULL AND expires_at > $3 \
         RETURNING id, org_id, user_id, kind, state, created_at, expires_at, spent_at")
        .bind(id).bind(kind).bind(now).fetch_optional(c).await)?;
    Ok(row)
}
