//! What a successful sign-in writes: the device it came from, its line in
//! the sign-in history, the forgiven failures, the session, the user's last
//! sign-in time, the new-device email and the `auth.login` audit event —
//! atomically. The device and the sign-in time are left out when they would
//! not change (`Opening::device`, `Opening::touch`): on PostgreSQL a
//! statement that names `users` opens and locks its eight indexes even when
//! it updates no row.
//!
//! On PostgreSQL that is one data-modifying `WITH` committed on its own: the
//! same writes as `BEGIN`, five statements and `COMMIT` took seven round
//! trips, and during a burst of sign-ins PostgreSQL's and the server's time
//! beside argon2id went mostly to round trips (BENCHMARKS.md, "A sign-in's
//! writes in one statement"). On SQLite, which has no data-modifying `WITH`,
//! they are the same writes as one script of statements in a transaction:
//! sqlx runs every statement of a query text in one call to the
//! connection's thread, with `$n` numbering the bound values across them,
//! where one call per statement woke that thread and the runtime twice
//! each (BENCHMARKS.md, "One call to SQLite's thread per sign-in write").

use crate::devices::{DeviceRow, SignInRow};
use crate::outbox::OutboxRow;
use crate::sessions::SessionRow;
use crate::{Backend, Db, Result};
use muster_core::audit::StoredEvent;

/// The writes of one sign-in.
pub struct Opening<'a> {
    /// The device the sign-in came from (a new row, or its last use);
    /// `None` when there is none or its row would not change.
    pub device: Option<&'a DeviceRow>,
    /// The history row and whether the user's history past the retention is
    /// forgotten first. With `device`, its `device_id` is that row's (new or
    /// existing); without, its own.
    pub sign_in: Option<(&'a SignInRow, bool)>,
    /// The account's failure counter to forget.
    pub clear_failures: Option<&'a str>,
    pub session: &'a SessionRow,
    /// Whether to record the sign-in as the user's last (at most once a
    /// `SIGN_IN_GRAIN_MS`, which the statement checks again): `false` when
    /// the first read found one within the grain.
    pub touch: bool,
    /// The new-device email, queued with the sign-in.
    pub email: Option<&'a OutboxRow>,
    pub event: &'a StoredEvent,
}

/// Binds `o`'s values to a query of `statement(o, _)`, in its order; a
/// macro so that the same list serves both databases' query types.
macro_rules! bind {
    ($q:expr, $o:expr) => {{
        let (mut q, o) = ($q, $o);
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
            if o.device.is_none() {
                q = q.bind(&s.device_id);
            }
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
        if o.touch {
            q = q
                .bind(s.created_at)
                .bind(&s.user_id)
                .bind(crate::schedules::SIGN_IN_GRAIN_MS);
        }
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
    }};
}

/// Writes `o` atomically.
pub async fn open(db: &Db, o: &Opening<'_>) -> Result<()> {
    match db {
        Db::Postgres(_, lanes) => {
            // A lane: no ping after the statement (`lanes`).
            let mut lane = lanes.take().await?;
            let q = sqlx::query(sqlx::AssertSqlSafe(statement(o, Backend::Postgres)));
            bind!(q, o).execute(lane.conn()).await?;
            lane.done();
            // Outside `Tx`: counted as a commit for the session cache.
            crate::db::note_commit();
            Ok(())
        }
        Db::Sqlite { .. } => {
            let mut tx = db.begin().await?;
            let sql = statement(o, Backend::Sqlite);
            on_tx!(tx, c => bind!(sqlx::query(sqlx::AssertSqlSafe(sql)), o).execute(c).await.map(|r| r.rows_affected()))?;
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

/// The statement text. On PostgreSQL each part is a `WITH` item (it runs
/// every data-modifying one, referenced or not) on one snapshot, and the
/// foreign keys (the rows' organization and user) are checked at the end
/// (the history row's `device_id` has none: a forgotten device's rows keep
/// its id); on SQLite each part is a statement of its own, in this
/// order. Parameters are numbered in the order `bind!` binds them.
fn statement(o: &Opening<'_>, backend: Backend) -> String {
    let pg = backend == Backend::Postgres;
    let item = |name: &str, sql: String| {
        if pg {
            format!("{name} AS ({sql})")
        } else {
            sql
        }
    };
    let mut n = 0;
    let mut parts: Vec<String> = Vec::new();
    // The device's row, for the history row: `d` on PostgreSQL; on SQLite
    // looked up again by its user and secret (its 3rd and 4th parameters).
    let mut device: Option<String> = None;
    if o.device.is_some() {
        let returning = if pg { " RETURNING id" } else { "" };
        let (user, secret) = (n + 3, n + 4);
        parts.push(item(
            "d",
            format!(
                "INSERT INTO devices ({}) VALUES ({}) \
                 ON CONFLICT (user_id, secret_hash) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
                 last_ip = excluded.last_ip, last_country = excluded.last_country{returning}",
                crate::devices::COLS,
                params(&mut n, 10)
            ),
        ));
        device = Some(if pg {
            "(SELECT id FROM d)".to_owned()
        } else {
            format!("(SELECT id FROM devices WHERE user_id = ${user} AND secret_hash = ${secret})")
        });
    }
    if let Some((_, prune)) = o.sign_in {
        if prune {
            let (user, before) = (params(&mut n, 1), params(&mut n, 1));
            parts.push(item(
                "p",
                format!("DELETE FROM sign_ins WHERE user_id = {user} AND at < {before}"),
            ));
        }
        let values = params(&mut n, 8);
        // Without a device row to write, the history row's own `device_id`.
        let device = device.unwrap_or_else(|| params(&mut n, 1));
        parts.push(item(
            "h",
            format!(
                "INSERT INTO sign_ins (id, org_id, user_id, at, ip, country, latitude, longitude, \
                 device_id) VALUES ({values}, {device})"
            ),
        ));
    }
    if o.clear_failures.is_some() {
        let key = params(&mut n, 1);
        parts.push(item(
            "f",
            format!("DELETE FROM auth_failures WHERE key = {key}"),
        ));
    }
    parts.push(item(
        "s",
        format!(
            "INSERT INTO sessions (id, org_id, user_id, secret_hash, created_at, last_seen_at, \
             expires_at, ip, user_agent, mfa_level, level_at) VALUES ({})",
            params(&mut n, 11)
        ),
    ));
    if o.touch {
        let (at, user, grain) = (params(&mut n, 1), params(&mut n, 1), params(&mut n, 1));
        parts.push(item("t", crate::schedules::touch_sql(&user, &at, &grain)));
    }
    if o.email.is_some() {
        parts.push(item(
            "m",
            format!(
                "INSERT INTO email_outbox ({}) VALUES ({})",
                crate::outbox::COLS,
                params(&mut n, 11)
            ),
        ));
    }
    // The event's id and organization are its first two parameters.
    let first = n + 1;
    let values = params(&mut n, 12);
    let event = format!(
        "INSERT INTO audit_events ({}) VALUES ({values})",
        event_columns!()
    );
    if pg {
        parts.push(format!("e AS ({event} RETURNING id, org_id)"));
        format!(
            "WITH {} INSERT INTO audit_pending (event_id, org_id) SELECT id, org_id FROM e",
            parts.join(", ")
        )
    } else {
        parts.push(event);
        parts.push(format!(
            "INSERT INTO audit_pending (event_id, org_id) VALUES (${first}, ${})",
            first + 1
        ));
        parts.join(";\n")
    }
}
