//! Admin console benchmark (issue 8, BENCHMARKS.md): what the console's
//! heaviest reads cost over an organization with a long history —
//! a million audit events over 90 days, beside another organization's
//! quarter million:
//!
//! - the dashboard (users per state, and five 30-day charts counted from the
//!   audit log through the `(org_id, action, occurred_at)` index);
//! - the audit log's first page, newest first: unfiltered, by action, and by
//!   the kind of actor (people only), as the console asks for them.
//!
//! Each is called through its `muster_app` use case, as the page calls it,
//! `--rounds` times; medians and p99 are printed in milliseconds. Then the
//! `(org_id, action, occurred_at)` index (migration 0020) is dropped and
//! the same calls are timed again, for the ratio it buys in the same run.
//!
//!   cargo bench -p muster --bench console_load -- [sqlite] [postgres] [--events N] [--rounds R]
//!
//! PostgreSQL needs `MUSTER_TEST_PG_URL` (as the tests do).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Args, p50_p99};
use muster_testkit::TestApp;
use muster_testkit::muster_app::audit::AuditQuery;
use muster_testkit::muster_app::{Caller, audit, dashboard};
use muster_testkit::muster_core::Clock;
use std::time::Instant;

/// Twenty actions in the proportions of a busy organization's log: sign-ins
/// dominate; the charts' actions are a small part of it.
const ACTIONS: [&str; 20] = [
    "auth.login",
    "auth.login",
    "auth.login",
    "auth.login",
    "auth.login",
    "auth.login",
    "auth.login",
    "auth.login",
    "auth.logout",
    "auth.logout",
    "session.revoked",
    "auth.login_failed",
    "auth.login_failed",
    "user.created",
    "user.verify_email",
    "user.updated",
    "user.deactivate",
    "group.member_added",
    "auth.risk_denied",
    "policy.access_changed",
];

/// One statement that writes `n` events of `org` spread evenly over the 90
/// days before `now_ms`. Ids are time-ordered, as Muster's are, so the two
/// organizations' events interleave; `tag` keeps them apart. Written
/// directly: the chain is not what is measured.
fn fill_sql(postgres: bool, org: &str, tag: &str, n: u64, now_ms: i64) -> String {
    let span: i64 = 90 * 86_400_000;
    let step = (span / n as i64).max(1);
    let start = now_ms - span;
    let pick: String = ACTIONS
        .iter()
        .enumerate()
        .map(|(k, a)| format!("WHEN {k} THEN '{a}' "))
        .collect();
    let (series, id) = if postgres {
        (
            format!("generate_series(1::bigint, {n}) AS s(i)"),
            format!("lpad(({start} + i * {step})::text, 15, '0') || '{tag}' || i"),
        )
    } else {
        (
            format!(
                "(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) SELECT i FROM c) AS s"
            ),
            format!("printf('%015d', {start} + i * {step}) || '{tag}' || i"),
        )
    };
    format!(
        "INSERT INTO audit_events (id, org_id, occurred_at, actor_kind, actor_id, actor_label, action, \
         target_kind, target_id, severity, changes, context) \
         SELECT {id}, (SELECT id FROM orgs WHERE slug = '{org}'), {start} + i * {step}, \
         CASE WHEN i % 7 = 0 THEN 'scim_token' ELSE 'user' END, 'u' || (i % 5000), NULL, \
         CASE i % 20 {pick}END, 'user', 'u' || (i % 5000), 'info', '{{}}', '{{}}' FROM {series}",
    )
}

async fn run(t: TestApp, name: &str, events: u64, rounds: usize) {
    let postgres = name == "postgres";
    t.org_with_owner("acme").await;
    t.org_with_owner("other").await;
    let now = muster_testkit::muster_core::clock::to_millis(t.clock.now());
    let began = Instant::now();
    t.raw(&fill_sql(postgres, "acme", "a", events, now)).await;
    t.raw(&fill_sql(postgres, "other", "b", events / 4, now))
        .await;
    if postgres {
        t.raw("ANALYZE audit_events").await;
    } else {
        t.raw("ANALYZE").await;
    }
    println!(
        "{name}: {events} events of acme and {} of another organization written in {:.1} s",
        events / 4,
        began.elapsed().as_secs_f64()
    );
    for pass in ["with the action index", "without it"] {
        if pass == "without it" {
            t.raw("DROP INDEX audit_events_action").await;
            t.raw(if postgres {
                "ANALYZE audit_events"
            } else {
                "ANALYZE"
            })
            .await;
        }
        println!("  {pass}:");
        measure(&t, rounds).await;
    }
}

async fn measure(t: &TestApp, rounds: usize) {
    let op = Caller::operator("bench");
    let mut timed: Vec<(&str, Vec<f64>)> = Vec::new();
    let mut d = Vec::new();
    let mut total = 0;
    for _ in 0..rounds {
        let s = Instant::now();
        let got = dashboard::get(&t.app, &op, "acme").await.unwrap();
        d.push(s.elapsed().as_secs_f64() * 1000.0);
        total = got.charts.unwrap().iter().map(|c| c.total()).sum::<i64>();
    }
    println!("    the dashboard's charts count {total} events of the last 30 days");
    timed.push(("dashboard", d));
    let queries: [(&str, AuditQuery, Option<&str>); 3] = [
        ("audit page, newest", AuditQuery::default(), None),
        (
            "audit page, action user.deactivate",
            AuditQuery {
                action: Some("user.deactivate".into()),
                ..AuditQuery::default()
            },
            None,
        ),
        (
            "audit page, people only",
            AuditQuery::default(),
            Some("user"),
        ),
    ];
    for (label, q, kind) in queries {
        let mut v = Vec::new();
        for _ in 0..rounds {
            let s = Instant::now();
            let page = audit::newest(&t.app, &op, "acme", q.clone(), kind)
                .await
                .unwrap();
            v.push(s.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(page.items.len(), 50, "{label}: a full page");
        }
        timed.push((label, v));
    }
    for (label, v) in timed {
        let (p50, p99) = p50_p99(v);
        println!("    {label:<36} p50 {p50:>8.2} ms   p99 {p99:>8.2} ms");
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let events = args.flag("--events", 1_000_000.0) as u64;
    let rounds = args.flag("--rounds", 30.0) as usize;
    if args.wants("sqlite") {
        run(TestApp::sqlite().await, "sqlite", events, rounds).await;
    }
    if args.wants("postgres") {
        match TestApp::postgres("console_load").await {
            Some(t) => run(t, "postgres", events, rounds).await,
            None => println!("postgres: skipped (set MUSTER_TEST_PG_URL)"),
        }
    }
}
