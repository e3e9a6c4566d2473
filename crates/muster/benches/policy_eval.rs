//! Security policy benchmark (issue 5, BENCHMARKS.md), in-process:
//!
//! - what an access policy of 1,000 CIDR rules and a country rule adds to
//!   an authenticated request: the policy cache's lookup (the settings text
//!   compared with the compiled copy's), the client address parsed, its
//!   country looked up in a MaxMind-format database of 20,000 networks
//!   (written by the test kit, read by the production reader), and the
//!   rules evaluated — per request, as p50 / p99 / p99.9 over many;
//! - one risk evaluation: the pure engine alone, and the whole evaluation a
//!   sign-in runs (its three reads from SQLite included).
//!
//!   cargo bench -p muster --bench policy_eval -- [--requests N] [--rounds R]

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use muster_testkit::muster_app::{guard, risk};
use muster_testkit::muster_core::audit::Context;
use muster_testkit::muster_core::risk::{Seen, Signals, assess};
use serde_json::json;
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic spread of numbers (no RNG needed for a fixed workload).
fn spread(i: u32) -> u32 {
    i.wrapping_mul(2_654_435_761).rotate_left(13) ^ 0x9e37_79b9
}

fn percentiles(mut ns: Vec<u64>) -> (f64, f64, f64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    (at(0.5), at(0.99), at(0.999))
}

fn main() {
    let requests = arg("--requests", 200_000);
    let rounds = arg("--rounds", 3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(requests, rounds));
}

async fn run(requests: usize, rounds: usize) {
    // 1,000 CIDR rules (v4 and v6) and a country allow list.
    let allow: Vec<String> = (0..1000u32)
        .map(|i| {
            if i % 4 == 0 {
                format!("2001:db8:{:x}::/48", spread(i) & 0xffff)
            } else {
                let a = spread(i + 7);
                format!("{}.{}.0.0/{}", a >> 24, (a >> 16) & 255, 16 + i % 8)
            }
        })
        .collect();
    // 20,000 networks of the GeoIP file, spread over the v4 space, plus the
    // first /24 of every allowed v4 range (so allowed clients have a country).
    let nets: Vec<String> = (0..20_000u32)
        .map(|i| {
            let a = spread(i) & 0xffff_ff00;
            format!("{}.{}.{}.0/24", a >> 24, (a >> 16) & 255, (a >> 8) & 255)
        })
        .collect();
    let countries = ["DE", "FR", "US", "GB", "JP", "BR", "IN", "NL"];
    let inside: Vec<String> = allow
        .iter()
        .filter(|a| !a.contains(':'))
        .map(|a| a.split('/').next().unwrap().to_owned())
        .collect();
    let firsts: Vec<String> = inside.iter().map(|a| format!("{a}/24")).collect();
    let mut entries: Vec<muster_testkit::geoip::Entry<'_>> = nets
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.as_str(),
                countries[i % countries.len()],
                Some((50.0, 8.0)),
            )
        })
        .collect();
    // Later inserts win where they overlap: allowed ranges are German or French.
    for (i, f) in firsts.iter().enumerate() {
        entries.push((
            f.as_str(),
            if i % 3 == 0 { "US" } else { "DE" },
            Some((52.5, 13.4)),
        ));
    }
    let mut t = muster_testkit::TestApp::sqlite().await;
    t.with_geoip(muster_testkit::geoip::build(&entries));
    let app = t.app.clone();

    let policy = json!({"networks": {"allow": allow}, "countries": {"allow": ["DE", "FR", "NL"]}});
    let settings =
        json!({"access": policy, "session": {"idle_minutes": 120, "absolute_hours": 24}})
            .to_string();
    let org = "bench-org";
    let _ = app.policies.get(org, &settings); // compile once, as the first request would

    // Client addresses: half inside an allowed range (then the country is
    // looked up; a third of those are in a refused country), some IPv6, the
    // rest anywhere.
    let ctxs: Vec<Context> = (0..4096u32)
        .map(|i| {
            let a = spread(i * 3 + 1);
            let base = &inside[i as usize % inside.len()];
            Context {
                ip: Some(if i % 2 == 0 {
                    format!(
                        "{}.0.{}",
                        base.rsplit_once('.').unwrap().0.rsplit_once('.').unwrap().0,
                        1 + i % 200
                    )
                } else if i % 8 == 1 {
                    format!("2001:db8:{:x}::1", spread(i) & 0xffff)
                } else {
                    format!(
                        "{}.{}.{}.{}",
                        a >> 24,
                        (a >> 16) & 255,
                        (a >> 8) & 255,
                        a & 255
                    )
                }),
                user_agent: Some(
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15".into(),
                ),
                ..Context::default()
            }
        })
        .collect();

    println!(
        "access policy: 1,000 CIDR rules + a country rule; GeoIP file of {} networks; settings text {} bytes",
        nets.len(),
        settings.len()
    );
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    for round in 1..=rounds {
        let mut ns = Vec::with_capacity(requests);
        let mut refused = [0usize; 3];
        for i in 0..requests {
            let ctx = &ctxs[i % ctxs.len()];
            let start = Instant::now();
            let p = app.policies.get(org, &settings);
            let r = guard::refusal(&app, &p.access, ctx);
            ns.push(start.elapsed().as_nanos() as u64);
            match r {
                None => refused[0] += 1,
                Some(muster_testkit::muster_core::access_policy::Refusal::Network) => {
                    refused[1] += 1
                }
                Some(_) => refused[2] += 1,
            }
        }
        let (p50, p99, p999) = percentiles(ns);
        let pct = |n: usize| n as f64 * 100.0 / requests as f64;
        println!(
            "  round {round}: p50 {p50:.2} µs, p99 {p99:.2} µs, p99.9 {p999:.2} µs per request ({:.0} % allowed, {:.0} % refused by network, {:.0} % by country)",
            pct(refused[0]),
            pct(refused[1]),
            pct(refused[2])
        );
        p50s.push(p50);
        p99s.push(p99);
    }
    p50s.sort_by(f64::total_cmp);
    p99s.sort_by(f64::total_cmp);
    println!(
        "  median of rounds: p50 {:.2} µs, p99 {:.2} µs (target: p99 under 50 µs)",
        p50s[p50s.len() / 2],
        p99s[p99s.len() / 2]
    );

    // Side by side: the same check without the cache — the settings parsed
    // and the policy compiled on every request.
    let mut ns = Vec::with_capacity(2000);
    for i in 0..2000 {
        let ctx = &ctxs[i % ctxs.len()];
        let start = Instant::now();
        let fresh = guard::PolicyCache::default();
        let p = fresh.get(org, &settings);
        std::hint::black_box(guard::refusal(&app, &p.access, ctx));
        ns.push(start.elapsed().as_nanos() as u64);
    }
    let (u50, u99, _) = percentiles(ns);
    println!("  without the cache (parse + compile per request): p50 {u50:.1} µs, p99 {u99:.1} µs");

    // The pure engine: every signal present.
    let signals = Signals {
        known_device: false,
        has_history: true,
        country: Some("FR".into()),
        known_countries: vec!["DE".into(), "NL".into(), "DE".into()],
        last_seen: Some(Seen {
            at_ms: 0,
            coords: (52.52, 13.40),
        }),
        here: Some(Seen {
            at_ms: 3_600_000,
            coords: (37.77, -122.42),
        }),
        user_failures: 4,
        ip_failures: 12,
        denylisted_ip: true,
        session_ip_changes: 0,
    };
    let n = 1_000_000;
    let mut medians = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        let mut score = 0u64;
        for _ in 0..n {
            score += u64::from(std::hint::black_box(assess(std::hint::black_box(&signals))).score);
        }
        medians.push(start.elapsed().as_nanos() as f64 / n as f64 / 1000.0);
        assert!(score > 0);
    }
    medians.sort_by(f64::total_cmp);
    println!(
        "risk engine (pure, 7 signals): {:.2} µs per evaluation (median of {rounds} rounds of {n})",
        medians[medians.len() / 2]
    );

    // The whole evaluation of a sign-in, on SQLite: device, history, failures.
    let owner = t.org_with_owner("bench").await;
    let _ = owner;
    let (uid, _) = t
        .user_with_token("bench", "ann@bench.example", &["member"])
        .await;
    let org_row = muster_testkit::muster_store::orgs::by_slug(&app.db, "bench")
        .await
        .unwrap()
        .unwrap();
    let user = muster_testkit::muster_store::users::get(&app.db, &org_row.id, &uid)
        .await
        .unwrap()
        .unwrap();
    let ctx = Context {
        ip: Some("81.1.2.3".into()),
        user_agent: Some("Mozilla/5.0 (Macintosh)".into()),
        device: Some(
            "msd_0192d5e8b6a47c3c8f1e2d3c4b5a6978_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
                .into(),
        ),
        ..Context::default()
    };
    let mut per = Vec::new();
    for _ in 0..rounds {
        let k = 2000;
        let mut ns = Vec::with_capacity(k);
        for _ in 0..k {
            let start = Instant::now();
            let a = risk::evaluate(&app, &org_row, &user, &ctx).await.unwrap();
            ns.push(start.elapsed().as_nanos() as u64);
            std::hint::black_box(a);
        }
        per.push(percentiles(ns));
    }
    per.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (p50, p99, _) = per[per.len() / 2];
    println!(
        "risk evaluation of a sign-in (signals read from SQLite): p50 {p50:.1} µs, p99 {p99:.1} µs"
    );
}
