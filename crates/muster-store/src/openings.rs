//! What a successful sign-in writes: the device it came from, its line in
//! the sign-in history, the forgiven failures, the session, the user's last
//! sign-in time, the new-device email and the `auth.login` audit event —
//! atomically.
//!
//! On PostgreSQL that is one data-modifying `WITH` committed on its own: the
//! same writes as `BEGIN`, five statements and `COMMIT` took seven round
//! trips, and during a burst of sign-ins PostgreSQL's and the server's time
//! beside argon2id went mostly to round trips (BENCHMARKS.md, "A sign-in's
//! writes in one statement"). On SQLite, where a statement costs no round
//! trip, they are the same statements in one transaction.

use crate::devices::{DeviceRow, SignInRow};
use crate::outbox::OutboxRow;
use crate::sessions::SessionRow;
use crate::{Db, Result};
use muster_core::audit::StoredEvent;

/// The writes of one sign-in.
pub struct Opening<'a> {
    /// The device the sign-in came from (a new row, or its last use).
    pub device: Option<&'a DeviceRow>,
    /// The history row (its `device_id` is filled in here) and whether the
    /// user's history past the retention is forgotten first.
    pub sign_in: Option<(&'a SignInRow, bool)>,
    /// The account's failure counter to forget.
    pub clear_failures: Option<&'a str>,
    pub session: &'a SessionRow,
    /// The new-device email, queued with the sign-in.
    pub email: Option<&'a OutboxRow>,
    pub event: &'a StoredEvent,
}

/// Writes `o` atomically.
pub async fn open(db: &Db, o: &Opening<'_>) -> Result<()> {
    match db {
        Db::Postgres(_, lanes) => {
            // A lane: no ping after the statement (`lanes`).
            let mut lane = lanes.take().await?;
            let q = bind(sqlx::query(sqlx::AssertSqlSafe(statement(o))), o);
            q.execute(lane.conn()).await?;
            lane.done();
            // Outside `Tx`: counted as a commit for the session cache.
            crate::db::note_commit();
            Ok(())
        }
        Db::Sqlite { .. } => {
            let mut tx = db.begin().await?;
            let device_id = match o.device {
                Some(d) => Some(crate::devices::seen(&mut tx, d).await?),
                None => None,
            };
            if let Some((s, prune)) = o.sign_in {
                let s = SignInRow {
                    device_id,
                    ..s.clone()
                };
                crate::devices::insert_sign_in(&mut tx, &s, prune).await?;
            }
            if let Some(key) = o.clear_failures {
                crate::failures::clear(&mut tx, key).await?;
            }
            crate::sessions::insert(&mut tx, o.session).await?;
            crate::schedules::touch_sign_in(&mut tx, &o.session.user_id, o.session.created_at)
                .await?;
            if let Some(m) = o.email {
                crate::outbox::insert(&mut tx, m).await?;
            }
            crate::audit::insert(&mut tx, o.event).await?;
            tx.commit().await
        }
    }
}

/// The next `count` placeholders after `$n`.
fn params(n: &mut usize, count: usize) -> String {
    let list = crate::db::in_list(*n + 1, count);
    *n += count;
    list
}

/// The statement. Each part is a `WITH` item (PostgreSQL runs every
/// data-modifying one, referenced or not) on one snapshot, and the foreign
/// keys (the history row's device, the session's user) are checked at the
/// end. Parameters are numbered in the order `bind` binds them.
fn statement(o: &Opening<'_>) -> String {
    let mut n = 0;
    let mut parts: Vec<String> = Vec::new();
    if o.device.is_some() {
        parts.push(format!(
            "d AS (INSERT INTO devices ({}) VALUES ({}) \
             ON CONFLICT (user_id, secret_hash) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
             last_ip = excluded.last_ip, last_country = excluded.last_country RETURNING id)",
            crate::devices::COLS,
            params(&mut n, 10)
        ));
    }
    if let Some((_, prune)) = o.sign_in {
        if prune {
            let (user, before) = (params(&mut n, 1), params(&mut n, 1));
            parts.push(format!(
                "p AS (DELETE FROM sign_ins WHERE user_id = {user} AND at < {before})"
            ));
        }
        let device = if o.device.is_some() {
            "(SELECT id FROM d)"
        } else {
            "NULL"
        };
        parts.push(format!(
            "h AS (INSERT INTO sign_ins (id, org_id, user_id, at, ip, country, latitude, longitude, \
             device_id) VALUES ({}, {device}))",
            params(&mut n, 8)
        ));
    }
    if o.clear_failures.is_some() {
        parts.push(format!(
            "f AS (DELETE FROM auth_failures WHERE key = {})",
            params(&mut n, 1)
        ));
    }
    parts.push(format!(
        "s AS (INSERT INTO sessions (id, org_id, user_id, secret_hash, created_at, last_seen_at, \
         expires_at, ip, user_agent, mfa_level, level_at) VALUES ({}))",
        params(&mut n, 11)
    ));
    let (at, user, grain) = (params(&mut n, 1), params(&mut n, 1), params(&mut n, 1));
    parts.push(format!(
        "t AS ({})",
        crate::schedules::touch_sql(&user, &at, &grain)
    ));
    if o.email.is_some() {
        parts.push(format!(
            "m AS (INSERT INTO email_outbox ({}) VALUES ({}))",
            crate::outbox::COLS,
            params(&mut n, 11)
        ));
    }
    parts.push(format!(
        "e AS (INSERT INTO audit_events ({}) VALUES ({}) RETURNING id, org_id)",
        event_columns!(),
        params(&mut n, 12)
    ));
    format!(
        "WITH {} INSERT INTO audit_pending (event_id, org_id) SELECT id, org_id FROM e",
        parts.join(", ")
    )
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind<'q>(mut q: PgQuery<'q>, o: &'q Opening<'q>) -> PgQuery<'q> {
    if let Some(d) = o.device {
        q = q
            .bind(&d.id)
            .bind(&d.org_id)
            .bind(&d.user_id)
            .bind(&d.secret_hash)
            .bind(&d.name)
            .bind(&d.os)
            .bind(d.created_at)
            .bind(d.last_seen_at)
            .bind(&d.last_ip)
            .bind(&d.last_country);
    }
    if let Some((s, prune)) = o.sign_in {
        if prune {
            q = q.bind(&s.user_id).bind(s.at - crate::devices::HISTORY_MS);
        }
        q = q
            .bind(&s.id)
            .bind(&s.org_id)
            .bind(&s.user_id)
            .bind(s.at)
            .bind(&s.ip)
            .bind(&s.country)
            .bind(s.latitude)
            .bind(s.longitude);
    }
    if let Some(key) = o.clear_failures {
        q = q.bind(key);
    }
    let s = o.session;
    q = q
        .bind(&s.id)
        .bind(&s.org_id)
        .bind(&s.user_id)
        .bind(&s.secret_hash)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(s.mfa_level)
        .bind(s.level_at);
    q = q
        .bind(s.created_at)
        .bind(&s.user_id)
        .bind(crate::schedules::SIGN_IN_GRAIN_MS);
    if let Some(m) = o.email {
        q = q
            .bind(&m.id)
            .bind(&m.org_id)
            .bind(&m.user_id)
            .bind(&m.kind)
            .bind(&m.subject_id)
            .bind(&m.to_address)
            .bind(m.created_at)
            .bind(m.attempts)
            .bind(m.next_attempt_at)
            .bind(m.sent_at)
            .bind(&m.last_error);
    }
    bind_event!(q, o.event)
}
