//! Load benchmark for the foundation (BENCHMARKS.md): starts the real
//! `muster serve` binary on a fresh database, drives `/api/v1` over HTTP, and
//! measures the database's raw durable insert rate in the same run.
//!
//!   cargo bench -p muster --bench load -- [sqlite] [postgres] [--users N] [--seconds S]
//!
//! PostgreSQL is used when `MUSTER_TEST_PG_URL` (an admin URL) is set.
//! Prints one JSON object per measurement, then a summary.

// A benchmark aborts on any failure: unwrap is the right tool here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use futures::future::join_all;
use muster_testkit::muster_store::{Db, DbOptions};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 16;

struct Server {
    child: Child,
    base: String,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_muster")
}

fn cli(url: &str, args: &[&str], stdin: Option<&str>) -> Value {
    use std::io::Write;
    let mut c = Command::new(bin())
        .args(args)
        .env("MUSTER_DATABASE_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("muster");
    if let Some(s) = stdin {
        c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(c.stdin.take());
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "muster {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(url: &str) -> (Server, String) {
    cli(
        url,
        &[
            "org", "create", "--slug", "bench", "--name", "Bench", "--json",
        ],
        None,
    );
    cli(
        url,
        &[
            "user",
            "create",
            "--org",
            "bench",
            "--email",
            "owner@bench.example",
            "--role",
            "owner",
            "--password-stdin",
            "--json",
        ],
        Some("Str0ng!pass"),
    );
    let tok = cli(
        url,
        &[
            "api-token",
            "create",
            "--org",
            "bench",
            "--email",
            "owner@bench.example",
            "--name",
            "bench",
            "--json",
        ],
        None,
    );
    let port = free_port();
    let child = Command::new(bin())
        .arg("serve")
        .env("MUSTER_DATABASE_URL", url)
        .env("MUSTER_LISTEN", format!("127.0.0.1:{port}"))
        .env("MUSTER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("serve");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (
        Server {
            child,
            base,
            url: url.to_owned(),
        },
        tok["secret"].as_str().unwrap().to_owned(),
    )
}

/// Durable single-row insert transactions per second at CONCURRENCY, through
/// the same pool settings the server uses (SQLite: WAL, synchronous=FULL, one
/// writer; PostgreSQL: default fsync and synchronous_commit). `explicit`:
/// BEGIN, INSERT, COMMIT as the server's use cases do; otherwise one
/// autocommitted INSERT (the absolute ceiling).
async fn raw_inserts(url: &str, seconds: f64, explicit: bool) -> f64 {
    let db = Db::connect(
        url,
        &DbOptions {
            max_connections: CONCURRENCY as u32,
        },
    )
    .await
    .unwrap();
    let create = "CREATE TABLE IF NOT EXISTS bench_raw (id TEXT PRIMARY KEY, v TEXT NOT NULL)";
    match &db {
        Db::Sqlite { write, .. } => {
            sqlx::query(create).execute(write).await.unwrap();
        }
        Db::Postgres(p) => {
            sqlx::query(create).execute(p).await.unwrap();
        }
    }
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks = (0..CONCURRENCY).map(|_| {
        let (db, done) = (db.clone(), done.clone());
        tokio::spawn(async move {
            while start.elapsed().as_secs_f64() < seconds {
                let id = uuid::Uuid::now_v7().to_string();
                let sql = "INSERT INTO bench_raw (id, v) VALUES ($1, 'x')";
                match (&db, explicit) {
                    (Db::Sqlite { write, .. }, true) => {
                        let mut tx = write.begin_with("BEGIN IMMEDIATE").await.unwrap();
                        sqlx::query(sql).bind(id).execute(&mut *tx).await.unwrap();
                        tx.commit().await.unwrap();
                    }
                    (Db::Sqlite { write, .. }, false) => {
                        sqlx::query(sql).bind(id).execute(write).await.unwrap();
                    }
                    (Db::Postgres(p), true) => {
                        let mut tx = p.begin().await.unwrap();
                        sqlx::query(sql).bind(id).execute(&mut *tx).await.unwrap();
                        tx.commit().await.unwrap();
                    }
                    (Db::Postgres(p), false) => {
                        sqlx::query(sql).bind(id).execute(p).await.unwrap();
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    join_all(tasks).await;
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    db.close().await;
    rate
}

/// Users created per second through `POST /users` at CONCURRENCY.
async fn api_creates(s: &Server, token: &str, seconds: f64, max: u64, tag: &str) -> (f64, u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks = (0..CONCURRENCY).map(|w| {
        let (client, done, url, token, tag) = (client.clone(), done.clone(), format!("{}/api/v1/orgs/bench/users", s.base), token.to_owned(), tag.to_owned());
        tokio::spawn(async move {
            let mut i = 0u64;
            while start.elapsed().as_secs_f64() < seconds && done.load(Ordering::Relaxed) < max {
                let body = json!({"email": format!("u{tag}-{w}-{i}@bench.example"), "profile": {"given_name": "Bench", "family_name": format!("User {i}"), "title": "Engineer"}});
                let r = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        })
    });
    join_all(tasks).await;
    let n = done.load(Ordering::Relaxed);
    (n as f64 / start.elapsed().as_secs_f64(), n)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// Latency of `POST /users/{id}/deactivate`, one at a time, for users that
/// each hold a session and an invitation (so revocation has work to do).
async fn deactivate_latency(s: &Server, token: &str, n: usize) -> (f64, f64) {
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let r: Value = client
            .post(format!("{}/api/v1/orgs/bench/users", s.base))
            .bearer_auth(token)
            .json(&json!({"email": format!("d{i}@bench.example"), "password": "Str0ng!pass"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(r["id"].as_str().unwrap().to_owned());
    }
    let db = Db::connect(&s.url, &DbOptions { max_connections: 2 })
        .await
        .unwrap();
    let org = muster_testkit::muster_store::orgs::by_slug(&db, "bench")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut tx = db.begin().await.unwrap();
    for id in &ids {
        use muster_testkit::muster_store::access::{GrantKind, insert_grant};
        insert_grant(&mut tx, GrantKind::Session, &format!("s-{id}"), &org, id, 0)
            .await
            .unwrap();
        insert_grant(
            &mut tx,
            GrantKind::Invitation,
            &format!("i-{id}"),
            &org,
            id,
            0,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    db.close().await;
    let mut ms = Vec::new();
    for id in &ids {
        let t = Instant::now();
        let r = client
            .post(format!(
                "{}/api/v1/orgs/bench/users/{id}/deactivate",
                s.base
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        / 1024.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

async fn run(backend: &str, url: String, users: u64, seconds: f64) -> Value {
    let (server, token) = start(&url).await;
    // Side by side, alternating, three rounds: the raw limits, then the API.
    let (mut raw, mut auto, mut api) = (Vec::new(), Vec::new(), Vec::new());
    let mut created = 1;
    for round in 0..3 {
        let r = raw_inserts(&url, seconds, true).await;
        let ac = raw_inserts(&url, seconds, false).await;
        let (a, n) = api_creates(&server, &token, seconds, u64::MAX, &format!("r{round}")).await;
        created += n;
        println!(
            "{}",
            json!({"backend": backend, "round": round, "raw_tx_per_s": r.round(), "raw_autocommit_per_s": ac.round(), "api_users_per_s": a.round(), "users": created, "server_rss_mb": rss_mb(server.child.id()).round()})
        );
        raw.push(r);
        auto.push(ac);
        api.push(a);
    }
    let (p50, p99) = deactivate_latency(&server, &token, 1000).await;
    created += 1000;
    println!(
        "{}",
        json!({"backend": backend, "phase": "deactivate", "users": created, "server_rss_mb": rss_mb(server.child.id()).round()})
    );
    if created < users {
        api_creates(&server, &token, f64::MAX, users - created, "fill").await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_mb(server.child.id());
    let (raw_m, auto_m, api_m) = (median(raw), median(auto), median(api));
    json!({
        "backend": backend,
        "concurrency": CONCURRENCY,
        "raw_tx_per_s_median": raw_m.round(),
        "raw_autocommit_per_s_median": auto_m.round(),
        "api_users_per_s_median": api_m.round(),
        "api_vs_raw_tx": format!("{:.0}%", 100.0 * api_m / raw_m),
        "api_vs_raw_autocommit": format!("{:.0}%", 100.0 * api_m / auto_m),
        "deactivate_p50_ms": (p50 * 100.0).round() / 100.0,
        "deactivate_p99_ms": (p99 * 100.0).round() / 100.0,
        "users": users.max(created),
        "server_rss_mb": rss.round(),
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let flag = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let users = flag("--users", 100_000.0) as u64;
    let seconds = flag("--seconds", 5.0);
    let want = |b: &str| {
        args.iter()
            .all(|a| a.starts_with("--") || a.parse::<f64>().is_ok())
            || args.iter().any(|a| a == b)
    };
    let mut results = Vec::new();
    if want("sqlite") {
        let dir = std::env::temp_dir().join(format!("muster-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        results.push(
            run(
                "sqlite",
                format!("sqlite://{}", dir.join("bench.db").display()),
                users,
                seconds,
            )
            .await,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    if want("postgres") {
        if let Ok(admin) = std::env::var("MUSTER_TEST_PG_URL") {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql("DROP DATABASE IF EXISTS muster_bench WITH (FORCE)")
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::raw_sql("CREATE DATABASE muster_bench")
                .execute(&mut c)
                .await
                .unwrap();
            let url = format!(
                "{}/muster_bench",
                admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b)
            );
            results.push(run("postgres", url, users, seconds).await);
        } else {
            eprintln!("postgres skipped: set MUSTER_TEST_PG_URL");
        }
    }
    for r in &results {
        println!("{r}");
    }
}
