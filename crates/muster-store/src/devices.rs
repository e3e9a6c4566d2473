//! Devices and sign-in history (migration 0009): what the risk engine
//! compares an attempt with, and what users see and forget.

use crate::{Db, Result, Tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub secret_hash: String,
    pub name: String,
    pub os: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub last_ip: Option<String>,
    pub last_country: Option<String>,
}

pub(crate) const COLS: &str =
    "id, org_id, user_id, secret_hash, name, os, created_at, last_seen_at, last_ip, last_country";

/// A known device as a sign-in found it: enough to tell whether recording
/// this use would change anything (`SeenDevice::unchanged_by`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenDevice {
    pub id: String,
    pub last_seen_at: i64,
    pub last_ip: Option<String>,
    pub last_country: Option<String>,
}

impl From<&DeviceRow> for SeenDevice {
    fn from(d: &DeviceRow) -> Self {
        Self {
            id: d.id.clone(),
            last_seen_at: d.last_seen_at,
            last_ip: d.last_ip.clone(),
            last_country: d.last_country.clone(),
        }
    }
}

impl SeenDevice {
    /// Whether a use at `now` from `ip` in `country` would leave the stored
    /// row as it is: a device's last use is recorded on the same grain as
    /// the user's last sign-in (`schedules::sign_in_due`), so a burst of
    /// sign-ins from one place does not rewrite its row (a new row version
    /// and its WAL) on every one.
    pub fn unchanged_by(&self, now: i64, ip: Option<&str>, country: Option<&str>) -> bool {
        !crate::schedules::sign_in_due(Some(self.last_seen_at), now)
            && self.last_ip.as_deref() == ip
            && self.last_country.as_deref() == country
    }
}

pub async fn find(db: &Db, user_id: &str, secret_hash: &str) -> Result<Option<DeviceRow>> {
    let sql = format!("SELECT {COLS} FROM devices WHERE user_id = $1 AND secret_hash = $2");
    Ok(on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user_id).bind(secret_hash).fetch_optional(c).await)?)
}

pub async fn list(db: &Db, user_id: &str) -> Result<Vec<DeviceRow>> {
    let sql = format!(
        "SELECT {COLS} FROM devices WHERE user_id = $1 ORDER BY last_seen_at DESC, id DESC"
    );
    Ok(on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(user_id).fetch_all(c).await)?)
}

pub async fn rename(tx: &mut Tx, user_id: &str, id: &str, name: &str) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query("UPDATE devices SET name = $3 WHERE user_id = $1 AND id = $2")
        .bind(user_id).bind(id).bind(name).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn forget(tx: &mut Tx, user_id: &str, id: &str) -> Result<bool> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM devices WHERE user_id = $1 AND id = $2")
        .bind(user_id).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Forgets every device of the user; returns how many there were.
pub async fn clear(tx: &mut Tx, user_id: &str) -> Result<u64> {
    Ok(
        on_tx!(tx, c => sqlx::query("DELETE FROM devices WHERE user_id = $1")
        .bind(user_id).execute(c).await.map(|r| r.rows_affected()))?,
    )
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SignInRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub at: i64,
    pub ip: Option<String>,
    pub country: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub device_id: Option<String>,
}

/// Sign-ins older than this are forgotten as the next one is recorded: the
/// risk engine's baseline is recent behaviour, and the table stays bounded.
pub const HISTORY_MS: i64 = 90 * 86_400_000;

/// What the risk engine compares a sign-in with, summarised from the user's
/// last `limit` sign-ins by the database: a sign-in used to fetch all of
/// them (fifty rows for a regular user) to read a handful of facts.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Baseline {
    /// How many of the last `limit` there are (at most `limit`).
    pub sign_ins: i64,
    /// When the oldest of them was.
    pub oldest_at: Option<i64>,
    /// The newest of them with a location: when, latitude, longitude.
    pub last_located: Option<(i64, f64, f64)>,
    /// The countries they came from, each once.
    pub countries: Vec<String>,
}

/// The `WITH` items a baseline is read from: `h`, the last `limit` sign-ins
/// of the user `user` (both SQL expressions), and `l`, the newest of them
/// with a location. A password sign-in reads them in its first query
/// (`failures::attempt`); other sign-ins through `baseline`. `limit` is a
/// bound parameter, cast as the note in `db.rs` asks.
pub(crate) fn baseline_with(user: &str, limit: &str) -> String {
    format!(
        "h AS (SELECT id, at, country, latitude, longitude FROM sign_ins \
           WHERE user_id = {user} ORDER BY at DESC, id DESC LIMIT CAST({limit} AS BIGINT)), \
         l AS (SELECT at, latitude, longitude FROM h \
           WHERE latitude IS NOT NULL AND longitude IS NOT NULL ORDER BY at DESC, id DESC LIMIT 1)"
    )
}

/// The columns that summarise `baseline_with`'s items into one row, in SQL
/// both databases run (`string_agg` is SQLite's since 3.44; country codes
/// hold no comma).
pub(crate) const BASELINE_COLS: &str = "(SELECT COUNT(*) FROM h) AS h_count, \
     (SELECT MIN(at) FROM h) AS h_oldest, \
     (SELECT at FROM l) AS l_at, (SELECT latitude FROM l) AS l_lat, \
     (SELECT longitude FROM l) AS l_lon, \
     (SELECT string_agg(country, ',') FROM (SELECT DISTINCT country FROM h \
       WHERE country IS NOT NULL) c) AS h_countries";

/// `BASELINE_COLS` as read.
#[derive(sqlx::FromRow)]
pub(crate) struct BaselineCols {
    h_count: i64,
    h_oldest: Option<i64>,
    l_at: Option<i64>,
    l_lat: Option<f64>,
    l_lon: Option<f64>,
    h_countries: Option<String>,
}

impl From<BaselineCols> for Baseline {
    fn from(c: BaselineCols) -> Self {
        let mut countries: Vec<String> = c
            .h_countries
            .as_deref()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        countries.sort_unstable();
        Self {
            sign_ins: c.h_count,
            oldest_at: c.h_oldest,
            last_located: c
                .l_at
                .zip(c.l_lat)
                .zip(c.l_lon)
                .map(|((at, lat), lon)| (at, lat, lon)),
            countries,
        }
    }
}

/// The user's `Baseline` over their last `limit` sign-ins.
pub async fn baseline(db: &Db, user_id: &str, limit: i64) -> Result<Baseline> {
    let sql = format!("WITH {} SELECT {BASELINE_COLS}", baseline_with("$1", "$2"));
    let c: BaselineCols = on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(user_id).bind(limit).fetch_one(c).await)?;
    Ok(c.into())
}

/// Notes that a session is used from `ip`, another address than its last:
/// returns how many changes the current ten-minute window has seen.
pub async fn session_moved(db: &Db, session_id: &str, ip: &str, now: i64) -> Result<i64> {
    let mut tx = db.begin().await?;
    let n: Option<i64> = on_tx!(tx, c => sqlx::query_scalar(
        "UPDATE sessions SET \
           ip_changes = CASE WHEN $3 - ip_window_at < 600000 THEN ip_changes + 1 ELSE 1 END, \
           ip_window_at = CASE WHEN $3 - ip_window_at < 600000 THEN ip_window_at ELSE $3 END, \
           last_ip = $2 \
         WHERE id = $1 RETURNING ip_changes")
        .bind(session_id).bind(ip).bind(now).fetch_optional(c).await)?;
    tx.commit().await?;
    Ok(n.unwrap_or(0))
}

pub async fn sign_in(db: &Db, id: &str) -> Result<Option<SignInRow>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "SELECT id, org_id, user_id, at, ip, country, latitude, longitude, device_id FROM sign_ins WHERE id = $1")
        .bind(id).fetch_optional(c).await)?)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<DeviceRow>> {
    let sql = format!("SELECT {COLS} FROM devices WHERE id = $1");
    Ok(on_db!(db, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(c).await)?)
}
