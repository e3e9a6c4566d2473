//! Load benchmark for the SCIM service provider (BENCHMARKS.md): starts the
//! real `muster serve` binary on a fresh database, drives `/scim/v2` over
//! HTTP at concurrency 10, and measures the database's raw durable insert rate
//! in the same run.
//!
//!   cargo bench -p muster --bench scim_load -- [sqlite] [postgres] [--seconds S] [--bulk N] [--million]
//!   cargo bench -p muster --bench scim_load -- --external NAME --url BASE_URL [--token T] [--users N]
//!
//! `--external` measures another SCIM server the same way (creations per
//! second, then filter latency once it holds N users), for side-by-side
//! comparisons. PostgreSQL is used when `MUSTER_TEST_PG_URL` (an admin URL) is
//! set. Prints one JSON object per measurement.

// A benchmark aborts on any failure: unwrap is the right tool here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Args, Server, cli, median, p50_p99, rss_mb};
use futures::future::join_all;
use muster_testkit::muster_store::{Db, DbOptions};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONCURRENCY: usize = 10;
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// A SCIM endpoint and its bearer token (none for servers without auth).
#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Target {
    fn new(base: &str, token: Option<String>) -> Self {
        Self {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(CONCURRENCY * 2)
                .timeout(Duration::from_secs(600))
                .build()
                .unwrap(),
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/scim+json");
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.body(b.to_string());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// The same user document for every server measured: what all of them accept
/// (canaille wants `name.formatted` and refuses `type` and `primary` on emails).
fn user_doc(name: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": name,
        "externalId": format!("x-{name}"),
        "name": {"formatted": format!("Bench {name}"), "givenName": "Bench", "familyName": name},
        "emails": [{"value": format!("{name}@bench.example")}],
        "title": "Engineer",
        "active": true,
    })
}

/// A small deterministic generator, so that runs pick the same users.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// `POST /Users` at CONCURRENCY for `seconds`: (users/s, the (id, userName)s
/// created, the requests refused). Only 201s count; a server that refuses
/// some (canaille answered 500s while its database still held an earlier
/// run's users) is reported with its failures rather than stopping the run.
async fn creates(t: &Target, seconds: f64, tag: &str) -> (f64, Vec<(String, String)>, u64) {
    let ids = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks = (0..CONCURRENCY).map(|w| {
        let (t, ids, tag, failed) = (t.clone(), ids.clone(), tag.to_owned(), failed.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while start.elapsed().as_secs_f64() < seconds {
                let name = format!("{tag}-{w}-{i}");
                i += 1;
                let (s, v) = t
                    .send(reqwest::Method::POST, "/Users", Some(&user_doc(&name)))
                    .await;
                if s != 201 {
                    failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                ids.lock().unwrap().push((id, name));
            }
        })
    });
    join_all(tasks).await;
    let elapsed = start.elapsed().as_secs_f64();
    let ids = std::mem::take(&mut *ids.lock().unwrap());
    (
        ids.len() as f64 / elapsed,
        ids,
        failed.load(Ordering::Relaxed),
    )
}

/// Runs `f(i)` for i in 0..n at CONCURRENCY; returns (per second, latencies in ms).
async fn timed<F, Fut>(n: usize, concurrency: usize, f: F) -> (f64, Vec<f64>)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let ms = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let start = Instant::now();
    let tasks = (0..concurrency).map(|_| {
        let (f, next, ms) = (f.clone(), next.clone(), ms.clone());
        tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    break;
                }
                let t = Instant::now();
                f(i).await;
                ms.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
            }
        })
    });
    join_all(tasks).await;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let ms = std::mem::take(&mut *ms.lock().unwrap());
    (rate, ms)
}

/// `GET /Users?filter=userName eq "…"` for random existing users: latency one
/// request at a time, and rate and latency at CONCURRENCY. `wrong_answers`
/// counts responses that were not exactly the one user asked for.
async fn filter_latency(t: &Target, names: Arc<Vec<String>>, n: usize) -> Value {
    let wrong = Arc::new(AtomicU64::new(0));
    let run = |conc: usize| {
        let (t, names, wrong) = (t.clone(), names.clone(), wrong.clone());
        timed(n, conc, move |i| {
            let (t, names, wrong) = (t.clone(), names.clone(), wrong.clone());
            async move {
                let name = &names[Rng(i as u64 * 7919 + 17).below(names.len() as u64) as usize];
                if !find_user(&t, name).await.0 {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let (_, one) = run(1).await;
    let (rate, many) = run(CONCURRENCY).await;
    let (p50, p99) = p50_p99(one);
    let (c50, c99) = p50_p99(many);
    json!({"p50_ms": p50, "p99_ms": p99, "per_s_at_10": rate.round(), "p50_ms_at_10": c50,
        "p99_ms_at_10": c99, "wrong_answers": wrong.load(Ordering::Relaxed)})
}

/// One filter request before the timed ones: a server that ignores the filter
/// answers with every user, and timing 400 such answers would measure its list
/// endpoint for many minutes. Such a server is reported once, with what it
/// returned and how long that took, instead of a latency it does not have.
async fn filter_probe(t: &Target, name: &str) -> Option<Value> {
    let started = Instant::now();
    let (right, s, v) = find_user(t, name).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    (!right).then(|| {
        json!({"filter_ignored": true, "status": s, "total_results": v["totalResults"],
            "ms": ms.round()})
    })
}

/// `GET /Users?filter=userName eq "name"`: whether the answer was exactly that
/// one user, with the status and body.
async fn find_user(t: &Target, name: &str) -> (bool, u16, Value) {
    let f = format!("userName eq \"{name}\"");
    let path = format!("/Users?filter={}", urlencode(&f));
    let (s, v) = t.send(reqwest::Method::GET, &path, None).await;
    let right = s == 200 && v["totalResults"] == 1 && v["Resources"][0]["userName"] == name;
    (right, s, v)
}

/// Muster's own answers must all be right.
fn checked(filter: Value) -> Value {
    assert_eq!(filter["wrong_answers"], 0, "{filter}");
    filter
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Pages of 50, one request at a time: by `startIndex` at a few depths, and
/// by cursor at the same depths (the cursors come from walking the whole
/// organization a thousand at a time, which is timed too).
async fn paging(t: &Target, n: usize) -> Value {
    let (_, v) = t.send(reqwest::Method::GET, "/Users?count=0", None).await;
    let total = v["totalResults"].as_u64().unwrap() as usize;
    let mut out = serde_json::Map::new();
    out.insert("users".into(), json!(total));
    for (label, pos) in [("start", 1), ("middle", total / 2), ("end", total - 60)] {
        let t2 = t.clone();
        let (_, ms) = timed(n, 1, move |_| {
            let t = t2.clone();
            async move {
                let (s, v) = t
                    .send(
                        reqwest::Method::GET,
                        &format!("/Users?startIndex={pos}&count=50"),
                        None,
                    )
                    .await;
                assert_eq!(s, 200, "{v}");
                assert_eq!(v["itemsPerPage"], 50);
            }
        })
        .await;
        let (p50, p99) = p50_p99(ms);
        out.insert(
            format!("start_index_{label}"),
            json!({"p50_ms": p50, "p99_ms": p99}),
        );
    }
    // Walk everything by cursor, keeping the cursor at each thousand.
    let walk = Instant::now();
    let mut cursors = vec![String::new()];
    let mut seen = 0usize;
    loop {
        let c = cursors.last().unwrap().clone();
        let (s, v) = t
            .send(
                reqwest::Method::GET,
                &format!("/Users?count=1000&cursor={c}&attributes=id"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        seen += v["Resources"].as_array().unwrap().len();
        match v["nextCursor"].as_str() {
            Some(n) => cursors.push(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, total, "a cursor walk sees every user once");
    out.insert(
        "cursor_walk_s".into(),
        json!((walk.elapsed().as_secs_f64() * 10.0).round() / 10.0),
    );
    let k = cursors.len();
    for (label, c) in [
        ("start", &cursors[0]),
        ("middle", &cursors[k / 2]),
        ("end", &cursors[k - 1]),
    ] {
        let (t2, c) = (t.clone(), c.clone());
        let (_, ms) = timed(n, 1, move |_| {
            let (t, c) = (t2.clone(), c.clone());
            async move {
                let (s, v) = t
                    .send(
                        reqwest::Method::GET,
                        &format!("/Users?count=50&cursor={c}"),
                        None,
                    )
                    .await;
                assert_eq!(s, 200, "{v}");
            }
        })
        .await;
        let (p50, p99) = p50_p99(ms);
        out.insert(
            format!("cursor_{label}"),
            json!({"p50_ms": p50, "p99_ms": p99}),
        );
    }
    Value::Object(out)
}

/// `PATCH active:false` (Okta's form) at CONCURRENCY on users that each hold a
/// session, which the deactivation must end before it answers.
async fn deactivations(s: &Server, t: &Target, ids: &[String]) -> Value {
    let db = Db::connect(&s.url, &DbOptions { max_connections: 2 })
        .await
        .unwrap();
    let org = muster_testkit::muster_store::orgs::by_slug(&db, "bench")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut tx = db.begin().await.unwrap();
    for id in ids {
        use muster_testkit::muster_store::access::{GrantKind, insert_grant};
        insert_grant(&mut tx, GrantKind::Session, &format!("s-{id}"), &org, id, 0)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let ids = Arc::new(ids.to_vec());
    let t2 = t.clone();
    let ids2 = ids.clone();
    let (rate, ms) = timed(ids.len(), CONCURRENCY, move |i| {
        let (t, ids) = (t2.clone(), ids2.clone());
        async move {
            let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": false}}]});
            let (s, v) = t
                .send(reqwest::Method::PATCH, &format!("/Users/{}", ids[i]), Some(&body))
                .await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["active"], false);
        }
    })
    .await;
    let mut tx = db.begin().await.unwrap();
    for id in ids.iter() {
        let live = muster_testkit::muster_store::access::live_grants(&mut tx, id)
            .await
            .unwrap();
        assert_eq!(live, 0, "every session ended");
    }
    drop(tx);
    db.close().await;
    let (p50, p99) = p50_p99(ms);
    json!({"per_s": rate.round(), "p50_ms": p50, "p99_ms": p99, "users": ids.len()})
}

/// Provisions `n` users through `/Bulk`, 1,000 operations per request, one
/// request at a time as an IdP would send them. Returns the names.
async fn bulk_provision(t: &Target, n: usize, tag: &str) -> (f64, Vec<String>) {
    let names: Vec<String> = (0..n).map(|i| format!("{tag}{i}")).collect();
    let start = Instant::now();
    for chunk in names.chunks(1000) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|u| json!({"method": "POST", "path": "/Users", "bulkId": u, "data": user_doc(u)}))
            .collect();
        let body = json!({"schemas": [BULK], "Operations": ops});
        let (s, v) = t.send(reqwest::Method::POST, "/Bulk", Some(&body)).await;
        assert_eq!(s, 200, "{v}");
        let results = v["Operations"].as_array().unwrap();
        assert_eq!(results.len(), chunk.len());
        assert!(
            results.iter().all(|r| r["status"] == "201"),
            "{}",
            results[0]
        );
    }
    (start.elapsed().as_secs_f64(), names)
}

/// Tops the organization up to `total` users with plain SQL, for the million-
/// user reads only (a fixture, not a measurement): SCIM-provisioned rows as
/// the server writes them, without their audit events.
async fn seed(url: &str, total: u64) -> Vec<String> {
    let db = Db::connect(url, &DbOptions { max_connections: 2 })
        .await
        .unwrap();
    let org = muster_testkit::muster_store::orgs::by_slug(&db, "bench")
        .await
        .unwrap()
        .unwrap()
        .id;
    let have = muster_testkit::muster_store::users::count_scim(&db, &org)
        .await
        .unwrap() as u64;
    let n = total.saturating_sub(have);
    let now = 1_790_000_000_000i64;
    let cols = "id, org_id, user_name, user_name_key, email, email_key, email_verified, display_name, \
                given_name, family_name, external_id, state, source, managed_by, profile, created_at, updated_at, version";
    let vals = |i: &str, pad: &str| {
        format!(
            "'00000000-0000-7000-8000-' || {pad}, $1, 'seed' || {i}, 'seed' || {i}, 'seed' || {i} || '@bench.example', \
             'seed' || {i} || '@bench.example', FALSE, 'Seed ' || {i}, 'Seed', {i}, 'x-seed' || {i}, 'provisioned', 'scim', 'scim', \
             '{{}}', {now}, {now}, 1"
        )
    };
    match &db {
        Db::Sqlite { write, .. } => {
            let sql = format!(
                "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $2) \
                 INSERT INTO users ({cols}) SELECT {} FROM seq",
                vals("CAST(i AS TEXT)", "printf('%012d', i)")
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&org)
                .bind(n as i64)
                .execute(write)
                .await
                .unwrap();
        }
        Db::Postgres(p, ..) => {
            let sql = format!(
                "INSERT INTO users ({cols}) SELECT {} FROM generate_series(1, $2) AS i",
                vals("i::text", "lpad(i::text, 12, '0')")
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&org)
                .bind(n as i64)
                .execute(p)
                .await
                .unwrap();
            // Autovacuum is off on the bench machine; production has it on.
            sqlx::query("VACUUM ANALYZE users")
                .execute(p)
                .await
                .unwrap();
        }
    }
    db.close().await;
    (1..=n).map(|i| format!("seed{i}")).collect()
}

async fn setup(url: &str) -> (Server, String) {
    common::bench_org(url);
    let tok = cli(
        url,
        &[
            "scim-token",
            "create",
            "--org",
            "bench",
            "--name",
            "bench",
            "--json",
        ],
        None,
    );
    let server = common::serve(url).await;
    (server, tok["secret"].as_str().unwrap().to_owned())
}

fn emit(v: Value) -> Value {
    println!("{v}");
    v
}

async fn run(backend: &str, url: String, seconds: f64, million: bool, bulk_n: usize) -> Value {
    let (server, token) = setup(&url).await;
    let t = Target::new(&format!("{}/scim/v2", server.base), Some(token));
    // Side by side, alternating, three rounds: the raw limit, then SCIM.
    let (mut raw, mut api, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let r = common::raw_inserts(&url, CONCURRENCY, seconds, true).await;
        let (a, made, failed) = creates(&t, seconds, &format!("r{round}")).await;
        assert_eq!(failed, 0, "Muster refused a creation under load");
        emit(
            json!({"backend": backend, "round": round, "raw_tx_per_s": r.round(), "scim_creates_per_s": a.round()}),
        );
        raw.push(r);
        api.push(a);
        ids.extend(made.into_iter().map(|(id, _)| id));
    }
    let (raw_m, api_m) = (median(raw), median(api));
    let create = emit(
        json!({"backend": backend, "phase": "create", "raw_tx_per_s_median": raw_m.round(),
        "scim_creates_per_s_median": api_m.round(), "scim_vs_raw": format!("{:.0}%", 100.0 * api_m / raw_m)}),
    );
    ids.truncate(3000);
    let deactivate = emit(
        json!({"backend": backend, "phase": "patch_active_false", "result": deactivations(&server, &t, &ids).await}),
    );
    let (bulk_s, names) = bulk_provision(&t, bulk_n, "bulk").await;
    let bulk = emit(
        json!({"backend": backend, "phase": "bulk", "users": bulk_n, "seconds": (bulk_s * 10.0).round() / 10.0,
        "per_s": (bulk_n as f64 / bulk_s).round()}),
    );
    let names = Arc::new(names);
    let f100k = emit(
        json!({"backend": backend, "phase": "filter", "result": checked(filter_latency(&t, names.clone(), 2000).await)}),
    );
    let p100k =
        emit(json!({"backend": backend, "phase": "paging", "result": paging(&t, 200).await}));
    let mut summary = json!({"backend": backend, "concurrency": CONCURRENCY, "create": create, "patch_active_false": deactivate,
        "bulk_100k": bulk, "filter_100k": f100k, "paging_100k": p100k});
    if million {
        let started = Instant::now();
        let seeded = seed(&url, 1_000_000).await;
        emit(
            json!({"backend": backend, "phase": "seed", "users": 1_000_000, "seconds": started.elapsed().as_secs()}),
        );
        let mut all: Vec<String> = names.iter().cloned().collect();
        all.extend(seeded);
        let all = Arc::new(all);
        summary["filter_1m"] = emit(
            json!({"backend": backend, "phase": "filter", "result": checked(filter_latency(&t, all, 2000).await)}),
        );
        summary["paging_1m"] =
            emit(json!({"backend": backend, "phase": "paging", "result": paging(&t, 200).await}));
    }
    summary["server_rss_mb"] = json!(rss_mb(server.child.id()).round());
    summary
}

/// Another SCIM server, measured the same way: creations per second at
/// CONCURRENCY (three rounds), then filter latency once it holds `users`.
async fn external(
    name: &str,
    base: &str,
    token: Option<String>,
    seconds: f64,
    users: usize,
) -> Value {
    common::wait_ready(&format!(
        "{}/ServiceProviderConfig",
        base.trim_end_matches('/')
    ))
    .await;
    let t = Target::new(base, token);
    let mut rates = Vec::new();
    let mut names = Vec::new();
    for round in 0..3 {
        let (r, made, failed) = creates(&t, seconds, &format!("r{round}")).await;
        emit(
            json!({"server": name, "round": round, "scim_creates_per_s": r.round(), "failed": failed}),
        );
        rates.push(r);
        names.extend(made.into_iter().map(|(_, n)| n));
    }
    let have = names.len();
    if have < users {
        let fill = users - have;
        let t2 = t.clone();
        timed(fill, CONCURRENCY, move |i| {
            let t = t2.clone();
            async move {
                // Filling is not measured: a busy server's refusal is retried
                // (409: an earlier try was written after all).
                for _ in 0..20 {
                    let doc = user_doc(&format!("fill{i}"));
                    let (s, _) = t.send(reqwest::Method::POST, "/Users", Some(&doc)).await;
                    if s == 201 || s == 409 {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("fill{i} was refused 20 times");
            }
        })
        .await;
        names.extend((0..fill).map(|i| format!("fill{i}")));
    }
    let filter = match filter_probe(&t, &names[names.len() / 2]).await {
        Some(wrong) => wrong,
        None => filter_latency(&t, Arc::new(names), 200).await,
    };
    emit(
        json!({"server": name, "creates_per_s_median": median(rates).round(), "users": users.max(have), "filter": filter}),
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let seconds = args.flag("--seconds", 5.0);
    if let Some(name) = args.value("--external") {
        let base = args.value("--url").expect("--external NAME --url BASE_URL");
        let users = args.flag("--users", 10_000.0) as usize;
        external(
            name,
            base,
            args.value("--token").map(str::to_owned),
            seconds,
            users,
        )
        .await;
        return;
    }
    let million = args.has("--million");
    let bulk_n = args.flag("--bulk", 100_000.0) as usize;
    let mut results = Vec::new();
    if args.wants("sqlite") {
        let db = common::TempSqlite::new("scim-bench");
        results.push(run("sqlite", db.url.clone(), seconds, million, bulk_n).await);
    }
    if args.wants("postgres") {
        match common::fresh_pg("muster_scim_bench").await {
            Some(url) => results.push(run("postgres", url, seconds, million, bulk_n).await),
            None => eprintln!("postgres skipped: set MUSTER_TEST_PG_URL"),
        }
    }
    for r in &results {
        println!("{r}");
    }
}
