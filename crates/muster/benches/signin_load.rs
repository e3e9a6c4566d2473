//! Sign-in benchmark (issue 4, BENCHMARKS.md): starts the real `muster serve`
//! binary on a fresh database and measures, side by side in one run:
//!
//! - the argon2id limit of this machine: password hashes per second with the
//!   server's own hasher and parameters, on as many threads as it uses;
//! - sign-ins per second through `POST /api/v1/auth/login`, each round next
//!   to a limit of its own (the figure is the median of the rounds' ratios);
//! - `GET /api/v1/me` with a session against `/healthz`, a trivial handler
//!   behind the same server stack; while it runs, one session is revoked and
//!   every later request with it must be refused.
//!
//!   cargo bench -p muster --bench signin_load -- [sqlite] [postgres] [--seconds S] [--rounds R]

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Args, RawClient, Server, median};
use futures::future::join_all;
use muster_testkit::muster_app::passwords::Hasher;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

const PW: &str = "Str0ng!pass";

/// The server's hasher on `threads` threads, each thread's memory sized by a
/// first hash of its own, so that no measured window pays for a thread's
/// start or its 19 MiB of first page faults (the server's threads are warm).
async fn warm_hasher(threads: usize) -> Hasher {
    let hasher = Hasher::new(threads);
    // As many hashes at once as threads: while one thread works on a hash
    // the next idle thread takes the next.
    join_all((0..threads).map(|_| hasher.hash(PW.into()))).await;
    hasher
}

/// Hashes per second with `hasher`: as many jobs in flight as twice its
/// threads, so that its queue never runs dry.
async fn argon2_limit(hasher: &Hasher, threads: usize, seconds: f64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks = (0..threads * 2).map(|_| {
        let (hasher, done) = (hasher.clone(), done.clone());
        tokio::spawn(async move {
            while start.elapsed().as_secs_f64() < seconds {
                hasher.hash(PW.into()).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    join_all(tasks).await;
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Successful sign-ins per second at `concurrency`.
async fn signins(s: &Server, concurrency: usize, seconds: f64) -> f64 {
    let body = json!({"email": "owner@bench.example", "password": PW, "org": "bench"});
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        clients.push(RawClient::post_json(&s.base, "/api/v1/auth/login", &body).await);
    }
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks = clients.into_iter().map(|mut client| {
        let done = done.clone();
        tokio::spawn(async move {
            while start.elapsed().as_secs_f64() < seconds {
                let (status, body) = client.send().await;
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                let key = b"\"session_token\"";
                let session = body.windows(key.len()).any(|w| w == key);
                assert!(session, "no session: {}", String::from_utf8_lossy(&body));
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    join_all(tasks).await;
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn login(s: &Server) -> (String, String) {
    let r: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&json!({"email": "owner@bench.example", "password": PW, "org": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        r["session_token"].as_str().unwrap().to_owned(),
        r["session"]["id"].as_str().unwrap().to_owned(),
    )
}

/// Requests per second on `path` at `concurrency`, with `token` when given.
/// With `victim`, one worker's session is revoked halfway: returns how many
/// requests it got through after the revocation was acknowledged (must be 0).
async fn throughput(
    s: &Server,
    path: &str,
    token: Option<&str>,
    victim: Option<(&str, &str)>,
    concurrency: usize,
    seconds: f64,
) -> (f64, u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency + 1)
        .build()
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let revoked = Arc::new(AtomicBool::new(false));
    let accepted_after = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let url = format!("{}{path}", s.base);
    let mut tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, done, url) = (client.clone(), done.clone(), url.clone());
            let token = token.map(str::to_owned);
            tokio::spawn(async move {
                while start.elapsed().as_secs_f64() < seconds {
                    let mut req = client.get(&url);
                    if let Some(t) = &token {
                        req = req.bearer_auth(t);
                    }
                    let r = req.send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    let _ = r.bytes().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    if let Some((vt, vid)) = victim {
        let (client, url, base) = (client.clone(), url.clone(), s.base.clone());
        let (vt, vid, revoked, after) = (
            vt.to_owned(),
            vid.to_owned(),
            revoked.clone(),
            accepted_after.clone(),
        );
        let killer = token.map(str::to_owned).unwrap();
        tasks.push(tokio::spawn(async move {
            while start.elapsed().as_secs_f64() < seconds {
                let half = start.elapsed().as_secs_f64() > seconds / 2.0;
                if half && !revoked.load(Ordering::Relaxed) {
                    let r = client
                        .delete(format!("{base}/api/v1/me/sessions/{vid}"))
                        .bearer_auth(&killer)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 204);
                    revoked.store(true, Ordering::Relaxed);
                }
                let r = client.get(&url).bearer_auth(&vt).send().await.unwrap();
                if revoked.load(Ordering::Relaxed) && r.status() == 200 {
                    after.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    join_all(tasks).await;
    (
        done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
        accepted_after.load(Ordering::Relaxed),
    )
}

async fn run(backend: &str, url: String, seconds: f64, rounds: usize, clients: usize) -> Value {
    common::bench_org(&url);
    let server = common::serve(&url).await;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let hasher = warm_hasher(threads).await;
    // This machine's speed drifts by a tenth within a minute (other tenants):
    // each round pairs a limit with the sign-ins measured next to it, in
    // alternating order so that a steady drift favours neither, and the
    // figure is the median of the rounds' ratios.
    let (mut limit, mut rate, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (l, r) = if round % 2 == 0 {
            let l = argon2_limit(&hasher, threads, seconds).await;
            (l, signins(&server, clients, seconds).await)
        } else {
            let r = signins(&server, clients, seconds).await;
            (argon2_limit(&hasher, threads, seconds).await, r)
        };
        ratios.push((r / l * 1000.0).round() / 1000.0);
        limit.push(l);
        rate.push(r);
    }
    let rounds_ratios = ratios.clone();
    let by_round =
        |v: &[f64]| -> Vec<f64> { v.iter().map(|x| (x * 10.0).round() / 10.0).collect() };
    let (limits_by_round, rates_by_round) = (by_round(&limit), by_round(&rate));
    drop(hasher); // its threads end with it, before `/me` is measured
    let (limit, rate, ratio) = (median(limit), median(rate), median(ratios));
    let (token, _) = login(&server).await;
    let (mut me, mut trivial, mut leaked) = (Vec::new(), Vec::new(), 0);
    for _ in 0..rounds {
        let (victim, vid) = login(&server).await;
        trivial.push(
            throughput(&server, "/healthz", None, None, 16, seconds)
                .await
                .0,
        );
        let (r, l) = throughput(
            &server,
            "/api/v1/me",
            Some(&token),
            Some((&victim, &vid)),
            16,
            seconds,
        )
        .await;
        me.push(r);
        leaked += l;
    }
    let (me, trivial) = (median(me), median(trivial));
    let out = json!({
        "backend": backend,
        "argon2id_hashes_per_s": (limit * 10.0).round() / 10.0,
        "signins_per_s": (rate * 10.0).round() / 10.0,
        "signins_vs_argon2_limit": ratio,
        "signins_vs_argon2_limit_by_round": rounds_ratios,
        "argon2id_hashes_per_s_by_round": limits_by_round,
        "signins_per_s_by_round": rates_by_round,
        "me_per_s": me.round(),
        "trivial_per_s": trivial.round(),
        "me_vs_trivial": (me / trivial * 1000.0).round() / 1000.0,
        "revoked_session_accepted": leaked,
    });
    println!("{out}");
    out
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let seconds = args.flag("--seconds", 5.0);
    let rounds = args.flag("--rounds", 3.0) as usize;
    let clients = args.flag("--clients", 8.0) as usize;
    let mut results = Vec::new();
    if args.wants("sqlite") {
        let db = common::TempSqlite::new("signin");
        results.push(run("sqlite", db.url.clone(), seconds, rounds, clients).await);
    }
    if args.wants("postgres") {
        match common::fresh_pg("muster_bench_signin").await {
            Some(url) => results.push(run("postgres", url, seconds, rounds, clients).await),
            None => eprintln!("postgres skipped: set MUSTER_TEST_PG_URL"),
        }
    }
    println!("summary:");
    for r in &results {
        println!("{r}");
    }
}
