//! Webhooks benchmark (issue 6 §6, BENCHMARKS.md), in process, on each
//! backend:
//!
//! - what the outbox trigger adds to an audited change: suspending and
//!   unsuspending users through the REST API in an organization with no
//!   endpoint and in one with three endpoints subscribed to `*`, the two
//!   interleaved in blocks, median per change of each;
//! - the dispatcher: messages per second delivered, signed and in order, to
//!   a receiver on loopback.
//!
//!   cargo bench -p muster --bench webhooks -- [--ops N] [--rounds R]

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Args, median};
use muster_testkit::TestApp;
use muster_testkit::muster_app::webhooks::delivery::deliver_due;
use muster_testkit::webhooks::Receiver;
use serde_json::json;
use std::time::Instant;

async fn users(t: &TestApp, org: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (id, _) = t
            .user_with_token(org, &format!("u{i}@{org}.example"), &["member"])
            .await;
        ids.push(id);
    }
    ids
}

/// `ops` changes (suspend, then unsuspend, round the users): µs each.
async fn changes(t: &TestApp, admin: &str, org: &str, ids: &[String], ops: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(ops);
    for i in 0..ops {
        let id = &ids[(i / 2) % ids.len()];
        let action = if i % 2 == 0 { "suspend" } else { "unsuspend" };
        let path = format!("/api/v1/orgs/{org}/users/{id}/{action}");
        let started = Instant::now();
        let (s, v) = t.call("POST", &path, Some(admin), None).await;
        out.push(started.elapsed().as_secs_f64() * 1e6);
        assert_eq!(s, 200, "{v}");
    }
    out
}

async fn bench(label: &str, t: TestApp, ops: usize, rounds: usize) {
    let quiet = t.org_with_owner("quiet").await;
    let hooked = t.org_with_owner("hooked").await;
    let rx = Receiver::start().await;
    for _ in 0..3 {
        let (s, v) = t
            .call(
                "POST",
                "/api/v1/orgs/hooked/webhooks",
                Some(&hooked),
                Some(json!({"url": rx.url(), "event_types": ["*"]})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (qi, hi) = (users(&t, "quiet", 50).await, users(&t, "hooked", 50).await);
    let (mut q, mut h) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        // Alternate which goes first, so warm-up favours neither.
        if r % 2 == 0 {
            q.extend(changes(&t, &quiet, "quiet", &qi, ops).await);
            h.extend(changes(&t, &hooked, "hooked", &hi, ops).await);
        } else {
            h.extend(changes(&t, &hooked, "hooked", &hi, ops).await);
            q.extend(changes(&t, &quiet, "quiet", &qi, ops).await);
        }
    }
    let (mq, mh) = (median(q), median(h));
    let pending = t
        .scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")
        .await;
    let started = Instant::now();
    let mut sent = 0;
    while sent < usize::try_from(pending).unwrap() {
        let r = deliver_due(&t.app).await.unwrap().unwrap();
        assert_eq!(r.failed_attempts, 0);
        sent += r.delivered;
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(rx.messages().len(), sent);
    println!(
        "{label:<9} | change, no endpoint: {mq:>7.0} µs | with 3 endpoints: {mh:>7.0} µs ({:+.1}%) | dispatcher: {sent} messages in {secs:.2} s = {:.0}/s",
        (mh / mq - 1.0) * 100.0,
        sent as f64 / secs
    );
}

fn main() {
    let args = Args::parse();
    let ops = args.flag("--ops", 400.0) as usize;
    let rounds = args.flag("--rounds", 5.0) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if args.wants("sqlite") {
            bench("sqlite", TestApp::sqlite().await, ops, rounds).await;
        }
        if args.wants("postgres") {
            match TestApp::postgres("webhook_bench").await {
                Some(t) => bench("postgres", t, ops, rounds).await,
                None => eprintln!("postgres: skipped (set MUSTER_TEST_PG_URL)"),
            }
        }
    });
}
