//! New users on PostgreSQL in one statement per chunk, whatever their number:
//! a data-modifying `WITH` that inserts the users, their role assignments,
//! their audit events and the sealer's queue entries. A batch of 500 users as
//! one statement per row cost 1,500 round trips inside the transaction, which
//! bounded imports and SCIM Bulk at about 700 users a second (BENCHMARKS.md);
//! a single creation sent as its own transaction cost five round trips
//! (`BEGIN`, three inserts, `COMMIT`) where one statement, committed on its
//! own, needs one. The foreign keys between the parts hold: PostgreSQL checks
//! them at the end of the statement, when every part is written.

use crate::tokens::Authority;
use crate::users::NewUser;
use crate::{Db, Result, StoreError, Tx};

/// PostgreSQL takes at most 65,535 parameters in one statement.
const MAX_PARAMS: usize = 65_000;
const USER_PARAMS: usize = 22;
const ASSIGNMENT_PARAMS: usize = 10;
const EVENT_PARAMS: usize = 12;

fn values(from: &mut usize, rows: usize, cols: usize) -> String {
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        out.push(format!("({})", crate::db::in_list(*from + 1, cols)));
        *from += cols;
    }
    out.join(", ")
}

fn params_of(u: &NewUser<'_>) -> usize {
    USER_PARAMS + EVENT_PARAMS + ASSIGNMENT_PARAMS * u.assignments.len()
}

/// Consecutive runs of `users` that each fit in one statement.
fn chunks<'a, 'b>(users: &'a [NewUser<'b>]) -> Vec<&'a [NewUser<'b>]> {
    split(users, params_of, MAX_PARAMS)
}

/// Consecutive runs of `items` whose costs add up to at most `max` each (an
/// item costing more than `max` goes alone).
fn split<T>(items: &[T], cost: impl Fn(&T) -> usize, max: usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut sum) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        if sum + cost(item) > max && i > start {
            out.extend(items.get(start..i));
            (start, sum) = (i, 0);
        }
        sum += cost(item);
    }
    out.extend(items.get(start..).filter(|c| !c.is_empty()));
    out
}

/// The one statement that writes `chunk`, with its parameters bound. With
/// `checks`, it writes only if every token still reads as it did when its
/// request was authorized — the check and the write are one statement, one
/// snapshot — and otherwise writes nothing (0 rows affected).
fn statement<'q>(
    chunk: &'q [NewUser<'q>],
    checks: &'q [Authority],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let assignments: Vec<_> = chunk.iter().flat_map(|u| u.assignments.iter()).collect();
    let checked = !checks.is_empty();
    // Unchecked, each part inserts its `VALUES`; checked, it selects them
    // only if `ok`.
    let source = |list: String| match checked {
        false => format!("VALUES {list}"),
        true => format!("SELECT * FROM (VALUES {list}) v WHERE (SELECT ok FROM ok)"),
    };
    let mut n = 0;
    let mut sql = format!(
        "u AS (INSERT INTO users ({}, scim_values, audit_key) {}), ",
        user_columns!(),
        source(values(&mut n, chunk.len(), USER_PARAMS))
    );
    if !assignments.is_empty() {
        sql.push_str(&format!(
            "r AS (INSERT INTO role_assignments ({}) {}), ",
            assignment_columns!(),
            source(values(&mut n, assignments.len(), ASSIGNMENT_PARAMS))
        ));
    }
    sql.push_str(&format!(
        "e AS (INSERT INTO audit_events ({}) {} RETURNING id, org_id) \
         INSERT INTO audit_pending (event_id, org_id) SELECT id, org_id FROM e",
        event_columns!(),
        source(values(&mut n, chunk.len(), EVENT_PARAMS))
    ));
    let sql = if checked {
        // `ok`: every (token, fingerprint) pair asked for matches a token as
        // it reads now; the padding pairs ("", "") match no token.
        let (ids, fps, count) = (n + 1, n + 2, n + 3);
        let auth = crate::tokens::auth_ctes(crate::Backend::Postgres, &format!("${ids}"));
        format!(
            "WITH RECURSIVE {auth}, ok AS (SELECT count(*) = ${count} AS ok FROM auth \
             JOIN unnest(${ids}::text[], ${fps}::text[]) AS x(id, fp) \
             ON x.id = auth.id AND x.fp = auth.fingerprint), {sql}"
        )
    } else {
        format!("WITH {sql}")
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for u in chunk {
        q = bind_user!(q, u.row).bind(u.idp_values).bind(u.audit_key);
    }
    for a in assignments {
        q = bind_assignment!(q, a);
    }
    for u in chunk {
        q = bind_event!(q, u.event);
    }
    if checked {
        // Padded like every token read (`tokens::padded`), for the same plan.
        let len = checks.len().max(crate::tokens::PADDED);
        let mut ids: Vec<&str> = checks.iter().map(|c| c.token_id.as_str()).collect();
        let mut fps: Vec<&str> = checks.iter().map(|c| c.fingerprint.as_str()).collect();
        ids.resize(len, "");
        fps.resize(len, "");
        let count = i64::try_from(checks.len()).unwrap_or(i64::MAX);
        q = q.bind(ids).bind(fps).bind(count);
    }
    q
}

/// Writes `users` (none with an invitation) with their role assignments and
/// audit events in `tx`.
pub(crate) async fn insert_pg(tx: &mut Tx, users: &[NewUser<'_>]) -> Result<()> {
    let crate::db::TxInner::Postgres(t) = &mut tx.inner else {
        return Err(crate::StoreError::Config(
            "a PostgreSQL-only write on SQLite".into(),
        ));
    };
    for chunk in chunks(users) {
        statement(chunk, &[]).execute(&mut **t).await?;
    }
    Ok(())
}

/// Writes `users` (none with an invitation) as one statement committed on
/// its own, when they fit in one; `false` (nothing written) when they do not.
pub(crate) async fn insert_pg_alone(db: &Db, users: &[NewUser<'_>]) -> Result<bool> {
    let Db::Postgres(pool, ..) = db else {
        return Ok(false);
    };
    let [chunk] = chunks(users)[..] else {
        return Ok(false);
    };
    statement(chunk, &[]).execute(pool).await?;
    Ok(true)
}

/// The connection one writer keeps for its checked creations. Their
/// statement embeds the token reads' permission lookups and costs about
/// 3 ms to plan; PostgreSQL plans a statement afresh on each connection for
/// its first five executions, so through the whole pool that was sixteen
/// times as many plans, all on the writer's path (measured).
#[derive(Default)]
pub struct Connection(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);

impl Connection {
    /// Whether a pool connection is held (to be let go when idle: closing
    /// the pool waits for every connection taken from it).
    pub fn held(&self) -> bool {
        self.0.is_some()
    }
}

/// Writes `users` (none with an invitation) as one statement that first
/// checks `checks`: what each unconfirmed caller among them was authorized
/// with still holds. Writes nothing and answers `AuthorityChanged` when one
/// does not — or when the check cannot be made in the same statement (on
/// SQLite, or users that do not fit one statement): their requests are then
/// authorized afresh.
pub async fn insert_checked(
    db: &Db,
    conn: &mut Connection,
    users: &[NewUser<'_>],
    checks: &[Authority],
) -> Result<()> {
    let (Db::Postgres(pool, ..), [chunk]) = (db, &chunks(users)[..]) else {
        return Err(StoreError::AuthorityChanged);
    };
    if users.iter().any(|u| u.invitation.is_some()) {
        return Err(StoreError::AuthorityChanged);
    }
    let c = match &mut conn.0 {
        Some(c) => c,
        None => conn.0.insert(pool.acquire().await?),
    };
    let written = match statement(chunk, checks).execute(&mut **c).await {
        Ok(r) => r.rows_affected(),
        Err(e) => {
            // Not kept: the connection may be what failed.
            conn.0 = None;
            return Err(e.into());
        }
    };
    match written {
        0 if !chunk.is_empty() => Err(StoreError::AuthorityChanged),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn runs_stay_within_the_parameter_limit_and_keep_every_item_in_order() {
        let id = |x: &usize| *x;
        assert!(split(&[] as &[usize], id, 10).is_empty());
        assert_eq!(split(&[3, 3, 3], id, 10), vec![&[3, 3, 3][..]]);
        assert_eq!(split(&[4, 4, 4], id, 10), vec![&[4, 4][..], &[4][..]]);
        // Exactly full, then a fresh run.
        assert_eq!(split(&[5, 5, 1], id, 10), vec![&[5, 5][..], &[1][..]]);
        // Too big for any run: alone, never dropped.
        assert_eq!(
            split(&[2, 11, 2], id, 10),
            vec![&[2][..], &[11][..], &[2][..]]
        );
        // 1,000 users with one role each fit one statement; 2,000 do not.
        let user = super::USER_PARAMS + super::EVENT_PARAMS + super::ASSIGNMENT_PARAMS;
        let (thousand, two_thousand) = (vec![user; 1000], vec![user; 2000]);
        assert_eq!(split(&thousand, id, super::MAX_PARAMS).len(), 1);
        let runs = split(&two_thousand, id, super::MAX_PARAMS);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), 2000);
    }
}
