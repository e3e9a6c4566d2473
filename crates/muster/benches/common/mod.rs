//! What the load tools share: starting the real `muster serve` binary on a
//! fresh database, the CLI, the database's raw insert rate, and statistics.
//! Each bench uses a different part of it.
#![allow(dead_code)]

use muster_testkit::muster_store::{Db, DbOptions};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub base: String,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `muster` binary the tools run: this build's, or `MUSTER_BENCH_BIN`
/// (another commit's build, to compare two commits side by side in one run).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("MUSTER_BENCH_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_muster").to_owned())
    })
}

/// Runs `muster <args>` on the database and returns its `--json` output.
pub fn cli(url: &str, args: &[&str], stdin: Option<&str>) -> Value {
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

/// Creates the organization `bench` with its owner `owner@bench.example`.
pub fn bench_org(url: &str) {
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
}

/// Starts `muster serve` on the database and waits until it is ready.
pub async fn serve(url: &str) -> Server {
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
    wait_ready(&format!("{base}/readyz")).await;
    Server {
        child,
        base,
        url: url.to_owned(),
    }
}

/// Polls `url` until it answers with a success, for up to 30 seconds.
pub async fn wait_ready(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success() || r.status() == 401)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

/// Durable single-row insert transactions per second with `concurrency`
/// tasks, through the same pool settings the server uses (SQLite: WAL,
/// synchronous=FULL, one writer; PostgreSQL: default fsync and
/// synchronous_commit). `explicit`: BEGIN, INSERT, COMMIT as the server's use
/// cases do; otherwise one autocommitted INSERT (the absolute ceiling).
pub async fn raw_inserts(url: &str, concurrency: usize, seconds: f64, explicit: bool) -> f64 {
    let db = Db::connect(
        url,
        &DbOptions {
            max_connections: concurrency as u32,
        },
    )
    .await
    .unwrap();
    let create = "CREATE TABLE IF NOT EXISTS bench_raw (id TEXT PRIMARY KEY, v TEXT NOT NULL)";
    match &db {
        Db::Sqlite { write, .. } => {
            sqlx::query(create).execute(write).await.unwrap();
        }
        Db::Postgres(p, ..) => {
            sqlx::query(create).execute(p).await.unwrap();
        }
    }
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks = (0..concurrency).map(|_| {
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
                    (Db::Postgres(p, ..), true) => {
                        let mut tx = p.begin().await.unwrap();
                        sqlx::query(sql).bind(id).execute(&mut *tx).await.unwrap();
                        tx.commit().await.unwrap();
                    }
                    (Db::Postgres(p, ..), false) => {
                        sqlx::query(sql).bind(id).execute(p).await.unwrap();
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    futures::future::join_all(tasks).await;
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    db.close().await;
    rate
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// The middle value; for an even count the mean of the two middle ones
/// (`percentile(0.5)` would take the upper one).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match (v.get(n.saturating_sub(1) / 2), v.get(n / 2)) {
        (Some(lo), Some(hi)) => (lo + hi) / 2.0,
        _ => f64::NAN,
    }
}

/// `(p50, p99)` of millisecond samples, rounded to 0.01 ms.
pub fn p50_p99(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let r = |x: f64| (x * 100.0).round() / 100.0;
    (r(percentile(&ms, 0.5)), r(percentile(&ms, 0.99)))
}

pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        / 1024.0
}

/// The command line: backends named (all when none is), and `--flag value`s.
pub struct Args(Vec<String>);

impl Args {
    pub fn parse() -> Self {
        Self(
            std::env::args()
                .skip(1)
                .filter(|a| a != "--bench")
                .collect(),
        )
    }

    pub fn flag(&self, name: &str, default: f64) -> f64 {
        self.value(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    /// Whether to run on backend `b`: named on the command line, or no backend named.
    pub fn wants(&self, b: &str) -> bool {
        let named = ["sqlite", "postgres"];
        !self.0.iter().any(|a| named.contains(&a.as_str())) || self.has(b)
    }
}

/// A fresh SQLite database file in a temporary directory (removed on drop).
pub struct TempSqlite {
    pub dir: std::path::PathBuf,
    pub url: String,
}

impl TempSqlite {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("muster-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("bench.db").display());
        Self { dir, url }
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Recreates PostgreSQL database `name` from `MUSTER_TEST_PG_URL` (an admin
/// URL) and returns its URL; `None` when the variable is not set.
pub async fn fresh_pg(name: &str) -> Option<String> {
    use sqlx::Connection;
    let admin = std::env::var("MUSTER_TEST_PG_URL").ok()?;
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap();
    Some(format!(
        "{}/{name}",
        admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b)
    ))
}

/// A minimal HTTP/1.1 keep-alive client for load loops whose requests are
/// all the same: the request is built once and each answer is read by its
/// `Content-Length`. On two shared cores the load client's CPU is taken
/// from the server it measures; reqwest spent about 0.14 ms of CPU a
/// sign-in (BENCHMARKS.md, "A leaner load client"), this one a fraction.
pub struct RawClient {
    stream: tokio::io::BufStream<tokio::net::TcpStream>,
    request: Vec<u8>,
    head: Vec<u8>,
}

impl RawClient {
    /// Connects to `base` (`http://host:port`) to send `POST path` with a
    /// JSON `body`, again and again.
    pub async fn post_json(base: &str, path: &str, body: &Value) -> Self {
        let host = base.trim_start_matches("http://");
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        let stream = tokio::net::TcpStream::connect(host).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream: tokio::io::BufStream::new(stream),
            request,
            head: Vec::with_capacity(512),
        }
    }

    /// Sends the request once; returns the status and the body.
    pub async fn send(&mut self) -> (u16, Vec<u8>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(&self.request).await.unwrap();
        self.stream.flush().await.unwrap();
        // The head ends with an empty line (RFC 9112 §2.1).
        self.head.clear();
        while !self.head.ends_with(b"\r\n\r\n") {
            let n = self.stream.read_until(b'\n', &mut self.head).await.unwrap();
            assert!(n > 0, "the server closed the connection");
        }
        let head = std::str::from_utf8(&self.head).unwrap();
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .expect("a response with Content-Length");
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.unwrap();
        (status, body)
    }
}
