//! Failed sign-in counters (migration 0006), shared by every instance.

use crate::devices::{Baseline, SeenDevice};
use crate::users::UserRow;
use crate::{Db, Result, Tx};
use sqlx::FromRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Failures {
    pub failures: i64,
    pub first_failure_at: i64,
    pub last_failure_at: i64,
}

pub async fn get(db: &Db, key: &str) -> Result<Option<Failures>> {
    Ok(on_db!(db, c => sqlx::query_as(
        "SELECT failures, first_failure_at, last_failure_at FROM auth_failures WHERE key = $1")
        .bind(key).fetch_optional(c).await)?)
}

/// The counters of up to two keys in one round trip (a sign-in checks its
/// account's and its IP's).
pub async fn get_pair(
    db: &Db,
    a: &str,
    b: Option<&str>,
) -> Result<(Option<Failures>, Option<Failures>)> {
    #[derive(sqlx::FromRow)]
    struct Keyed {
        key: String,
        #[sqlx(flatten)]
        f: Failures,
    }
    let rows: Vec<Keyed> = on_db!(db, c => sqlx::query_as(
        "SELECT key, failures, first_failure_at, last_failure_at FROM auth_failures WHERE key IN ($1, $2)")
        .bind(a).bind(b.unwrap_or(a)).fetch_all(c).await)?;
    let find = |k: &str| rows.iter().find(|r| r.key == k).map(|r| r.f);
    Ok((find(a), b.and_then(find)))
}

/// What a password sign-in reads before its hash, in one round trip: the
/// account's and the address's failure counters, the user with that email
/// key (when there is one), whether the user has a confirmed second factor
/// (when not, the sign-in need not read the factors), and what the risk
/// engine compares the sign-in with — the user's recent sign-ins and
/// whether the client's device is known. Those two used to be reads of
/// their own after the hash: here they save every sign-in a round trip (two
/// with a device cookie), which matters most with the database across a
/// network (BENCHMARKS.md, "The baseline in the first read"). The device's
/// row and the user's last sign-in time tell the write what it may leave
/// out (`openings`).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub user: Option<UserRow>,
    pub has_factors: bool,
    pub account: Option<Failures>,
    pub ip: Option<Failures>,
    /// The user's baseline (empty without a user).
    pub baseline: Baseline,
    /// The user's device with the given hash, when it has one.
    pub device: Option<SeenDevice>,
    /// When the user last signed in, as recorded (`None`: never).
    pub last_sign_in_at: Option<i64>,
}

/// What `attempt` looks up.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    pub org_id: &'a str,
    /// `EmailAddress::key()` (already lower case), `None` for input that is
    /// no address (no user then).
    pub email_key: Option<&'a str>,
    pub account_key: &'a str,
    /// `None` without a client address.
    pub ip_key: Option<&'a str>,
    /// The hash of the client's device cookie, when it sent one.
    pub device_hash: Option<&'a str>,
    /// How many of the user's last sign-ins the baseline covers.
    pub history: i64,
}

#[derive(sqlx::FromRow)]
struct AttemptCounters {
    present: Option<String>,
    has_factors: Option<i64>,
    d_id: Option<String>,
    d_seen: Option<i64>,
    d_ip: Option<String>,
    d_country: Option<String>,
    last_sign_in: Option<i64>,
    a_failures: Option<i64>,
    a_first: Option<i64>,
    a_last: Option<i64>,
    i_failures: Option<i64>,
    i_first: Option<i64>,
    i_last: Option<i64>,
}

fn counters(failures: Option<i64>, first: Option<i64>, last: Option<i64>) -> Option<Failures> {
    Some(Failures {
        failures: failures?,
        first_failure_at: first?,
        last_failure_at: last?,
    })
}

/// See `Attempt`.
pub async fn attempt(db: &Db, k: Lookup<'_>) -> Result<Attempt> {
    // One row whatever exists: the user and the counters are joined to it,
    // the baseline is scalar subqueries over the user's history `h`.
    let sql = sqlx::AssertSqlSafe(format!(
        "WITH u AS (SELECT {}, last_sign_in_at AS last_sign_in FROM users WHERE org_id = $1 AND email_key = $2), {} \
         SELECT u.*, u.id AS present, \
           CAST(CASE WHEN EXISTS (SELECT 1 FROM mfa_factors f \
             WHERE f.user_id = u.id AND f.confirmed_at IS NOT NULL) THEN 1 ELSE 0 END AS BIGINT) AS has_factors, \
           d.id AS d_id, d.last_seen_at AS d_seen, d.last_ip AS d_ip, d.last_country AS d_country, \
           a.failures AS a_failures, a.first_failure_at AS a_first, a.last_failure_at AS a_last, \
           i.failures AS i_failures, i.first_failure_at AS i_first, i.last_failure_at AS i_last, \
           {} \
         FROM (SELECT 1 AS one) one \
         LEFT JOIN u ON 1 = 1 \
         LEFT JOIN auth_failures a ON a.key = $3 \
         LEFT JOIN auth_failures i ON i.key = $4 \
         LEFT JOIN devices d ON d.user_id = u.id AND d.secret_hash = $5",
        crate::users::COLS,
        crate::devices::baseline_with("(SELECT id FROM u)", "$6"),
        crate::devices::BASELINE_COLS,
    ));
    // Decoded the same from either database's row.
    macro_rules! read {
        ($c:expr) => {{
            let row = sqlx::query(sql)
                .bind(k.org_id)
                .bind(k.email_key)
                .bind(k.account_key)
                .bind(k.ip_key)
                .bind(k.device_hash)
                .bind(k.history)
                .fetch_one($c)
                .await?;
            let n = AttemptCounters::from_row(&row)?;
            let user = match n.present {
                Some(_) => Some(UserRow::from_row(&row)?),
                None => None,
            };
            Ok(Attempt {
                user,
                has_factors: n.has_factors == Some(1),
                device: n.d_id.zip(n.d_seen).map(|(id, last_seen_at)| SeenDevice {
                    id,
                    last_seen_at,
                    last_ip: n.d_ip,
                    last_country: n.d_country,
                }),
                last_sign_in_at: n.last_sign_in,
                account: counters(n.a_failures, n.a_first, n.a_last),
                ip: counters(n.i_failures, n.i_first, n.i_last),
                baseline: crate::devices::BaselineCols::from_row(&row)?.into(),
            })
        }};
    }
    match db {
        Db::Sqlite { read, .. } => read!(read),
        // A lane: no ping after the statement (`lanes`).
        Db::Postgres(_, lanes) => {
            let mut lane = lanes.take().await?;
            let found: Result<Attempt> = read!(lane.conn());
            lane.done();
            found
        }
    }
}

/// Counts one failure. A count whose last failure is older than `window_ms`
/// starts again from one. Returns the count after this failure.
pub async fn record(db: &Db, key: &str, now: i64, window_ms: i64) -> Result<Failures> {
    let mut tx = db.begin().await?;
    let f = on_tx!(tx, c => sqlx::query_as(
        "INSERT INTO auth_failures (key, failures, first_failure_at, last_failure_at) VALUES ($1, 1, $2, $2)
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN auth_failures.last_failure_at < $3 THEN 1 ELSE auth_failures.failures + 1 END,
           first_failure_at = CASE WHEN auth_failures.last_failure_at < $3 THEN $2 ELSE auth_failures.first_failure_at END,
           last_failure_at = $2
         RETURNING failures, first_failure_at, last_failure_at")
        .bind(key).bind(now).bind(now - window_ms).fetch_one(c).await)?;
    tx.commit().await?;
    Ok(f)
}

pub async fn clear(tx: &mut Tx, key: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM auth_failures WHERE key = $1")
        .bind(key).execute(c).await.map(|r| r.rows_affected()))?;
    Ok(())
}
