//! Planner statistics (`statistics::analyze_stale`): on PostgreSQL the server
//! analyzes a table once enough of it changed, as autovacuum would (it is off
//! on this project's machines); one instance at a time; nothing on SQLite.

use crate::*;
use muster_testkit::muster_app::Db;
use muster_testkit::muster_app::statistics::{LOCK_KEY, analyze_stale};
use sqlx::Connection;

/// When `users` was last analyzed, and how many rows the planner thinks it has.
async fn users_stats(db: &Db) -> (Option<String>, f32) {
    let Db::Postgres(p, ..) = db else {
        panic!("PostgreSQL only")
    };
    sqlx::query_as(
        "SELECT CAST(s.last_analyze AS TEXT), c.reltuples FROM pg_stat_user_tables s \
         JOIN pg_class c ON c.oid = s.relid WHERE s.relname = 'users'",
    )
    .fetch_one(p)
    .await
    .unwrap()
}

async fn stale_tables_are_analyzed_once_by_one_instance(t: TestApp) {
    let owner = t.org_with_owner("acme").await;
    if let Db::Sqlite { .. } = t.app.db {
        assert_eq!(
            analyze_stale(&t.app.db).await.unwrap(),
            Vec::<String>::new()
        );
        return;
    }
    // A fresh database: nothing has changed enough to need statistics.
    let first = analyze_stale(&t.app.db).await.unwrap();
    assert!(!first.contains(&"users".to_owned()), "{first:?}");
    assert_eq!(users_stats(&t.app.db).await.0, None);

    for i in 0..60 {
        let (s, b) = t
            .call(
                "POST",
                "/api/v1/orgs/acme/users",
                Some(&owner),
                Some(json!({"email": format!("u{i}@acme.example")})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }

    // Another instance holds the lock: this one leaves the work to it.
    let mut other = sqlx::PgConnection::connect(&t.url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut other)
        .await
        .unwrap();
    // Backends report their counts within about a second of going idle.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        analyze_stale(&t.app.db).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(users_stats(&t.app.db).await.0, None);
    other.close().await.unwrap();

    // Sixty new users (and their role assignments and events) pass the
    // threshold of 50 changed rows: analyzed now, and the planner knows them.
    let mut analyzed = Vec::new();
    for _ in 0..100 {
        analyzed = analyze_stale(&t.app.db).await.unwrap();
        if analyzed.contains(&"users".to_owned()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(analyzed.contains(&"users".to_owned()), "{analyzed:?}");
    let (when, rows) = users_stats(&t.app.db).await;
    assert!(when.is_some());
    assert!(rows >= 61.0, "{rows}");
    // Until the table changes again, it is not analyzed again.
    let again = analyze_stale(&t.app.db).await.unwrap();
    assert!(!again.contains(&"users".to_owned()), "{again:?}");
}
both!(stale_tables_are_analyzed_once_by_one_instance);
