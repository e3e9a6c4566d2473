//! The settings every database connection runs with (`muster_store::db`):
//! SQLite's writer durable (WAL, `synchronous=FULL`, foreign keys), its
//! readers with a bounded page cache; PostgreSQL without JIT compilation.

use crate::*;
use muster_testkit::muster_app::Db;

/// Several connections held at once, so the pool cannot hand the same one
/// back each time.
const HELD: usize = 4;

async fn connections_run_with_musters_settings(t: TestApp) {
    match &t.app.db {
        Db::Sqlite { read, write } => {
            let mut w = write.acquire().await.unwrap();
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut *w)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
            // 2 = FULL: a commit survives a power loss.
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *w)
                .await
                .unwrap();
            assert_eq!(sync, 2);
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(&mut *w)
                .await
                .unwrap();
            assert_eq!(fk, 1);
            let mut held = Vec::new();
            for _ in 0..HELD {
                held.push(read.acquire().await.unwrap());
            }
            for c in &mut held {
                let pages: i64 = sqlx::query_scalar("PRAGMA cache_size")
                    .fetch_one(&mut **c)
                    .await
                    .unwrap();
                assert_eq!(pages, -512, "a reader's page cache is 512 KiB");
                let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                    .fetch_one(&mut **c)
                    .await
                    .unwrap();
                assert_eq!(fk, 1);
            }
        }
        Db::Postgres(p, ..) => {
            let mut held = Vec::new();
            for _ in 0..HELD {
                held.push(p.acquire().await.unwrap());
            }
            for c in &mut held {
                let jit: String = sqlx::query_scalar("SHOW jit")
                    .fetch_one(&mut **c)
                    .await
                    .unwrap();
                assert_eq!(jit, "off");
            }
        }
    }
}
both!(connections_run_with_musters_settings);
