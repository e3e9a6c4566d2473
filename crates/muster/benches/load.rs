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

mod common;

use common::{Args, Server, cli, median, percentile, rss_mb};
use futures::future::join_all;
use muster_testkit::muster_store::{Db, DbOptions};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 16;

async fn start(url: &str) -> (Server, String) {
    common::bench_org(url);
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
    (
        common::serve(url).await,
        tok["secret"].as_str().unwrap().to_owned(),
    )
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

async fn run(backend: &str, url: String, users: u64, seconds: f64) -> Value {
    let (server, token) = start(&url).await;
    // Side by side, alternating, three rounds: the raw limits, then the API.
    let (mut raw, mut auto, mut api) = (Vec::new(), Vec::new(), Vec::new());
    let mut created = 1;
    // The rounds measure a running server. A fresh one on an empty database
    // plans its statements with empty tables' statistics until its refresh
    // (every 5 s, `statistics::analyze_stale`) sees the new rows, which cut
    // the first round to a third or a half of the others' rate: so first an
    // untimed warm-up, reported apart, and a pause for that refresh.
    let (w, n) = api_creates(&server, &token, seconds, u64::MAX, "warm").await;
    created += n;
    println!(
        "{}",
        json!({"backend": backend, "phase": "warm-up (not counted)", "api_users_per_s": w.round(), "users": created})
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    for round in 0..3 {
        let r = common::raw_inserts(&url, CONCURRENCY, seconds, true).await;
        let ac = common::raw_inserts(&url, CONCURRENCY, seconds, false).await;
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
    let args = Args::parse();
    let users = args.flag("--users", 100_000.0) as u64;
    let seconds = args.flag("--seconds", 5.0);
    let mut results = Vec::new();
    if args.wants("sqlite") {
        let db = common::TempSqlite::new("bench");
        results.push(run("sqlite", db.url.clone(), users, seconds).await);
    }
    if args.wants("postgres") {
        match common::fresh_pg("muster_bench").await {
            Some(url) => results.push(run("postgres", url, users, seconds).await),
            None => eprintln!("postgres skipped: set MUSTER_TEST_PG_URL"),
        }
    }
    for r in &results {
        println!("{r}");
    }
}
