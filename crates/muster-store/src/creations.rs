//! Many new users on PostgreSQL in four statements, whatever their number:
//! one multi-row `INSERT` per table. A batch of 500 users as one statement
//! per row costs 1,500 round trips inside the transaction, which bounded
//! imports and SCIM Bulk at about 700 users a second (BENCHMARKS.md).

use crate::users::NewUser;
use crate::{Result, Tx};

/// Rows per statement: PostgreSQL takes at most 65,535 parameters.
const CHUNK: usize = 1000;

fn values(from: &mut usize, rows: usize, cols: usize) -> String {
    let mut out = Vec::with_capacity(rows);
    for _ in 0..rows {
        let p: Vec<String> = (*from + 1..=*from + cols)
            .map(|i| format!("${i}"))
            .collect();
        *from += cols;
        out.push(format!("({})", p.join(", ")));
    }
    out.join(", ")
}

/// Writes `users` (none with an invitation) with their role assignments and
/// audit events in `tx`.
pub(crate) async fn insert_pg(tx: &mut Tx, users: &[NewUser<'_>]) -> Result<()> {
    let crate::db::TxInner::Postgres(t) = &mut tx.inner else {
        return Err(crate::StoreError::Config(
            "a PostgreSQL-only write on SQLite".into(),
        ));
    };
    let c = &mut **t;
    for chunk in users.chunks(CHUNK) {
        let mut n = 0;
        let sql = format!(
            "INSERT INTO users ({}, scim_values, audit_key) VALUES {}",
            user_columns!(),
            values(&mut n, chunk.len(), 22)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for u in chunk {
            q = bind_user!(q, u.row).bind(u.idp_values).bind(u.audit_key);
        }
        q.execute(&mut *c).await?;

        let assignments: Vec<_> = chunk.iter().flat_map(|u| u.assignments.iter()).collect();
        for part in assignments.chunks(CHUNK) {
            let mut n = 0;
            let sql = format!(
                "INSERT INTO role_assignments ({}) VALUES {}",
                assignment_columns!(),
                values(&mut n, part.len(), 10)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for a in part {
                q = bind_assignment!(q, *a);
            }
            q.execute(&mut *c).await?;
        }

        let mut n = 0;
        let sql = format!(
            "WITH e AS (INSERT INTO audit_events ({}) VALUES {} RETURNING id, org_id) \
             INSERT INTO audit_pending (event_id, org_id) SELECT id, org_id FROM e",
            event_columns!(),
            values(&mut n, chunk.len(), 12)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for u in chunk {
            q = bind_event!(q, u.event);
        }
        q.execute(&mut *c).await?;
    }
    Ok(())
}
