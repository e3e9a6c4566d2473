//! Import benchmark (issue 9, BENCHMARKS.md): runs the real `muster import`
//! binary on a generated CSV of N users against a fresh database, and reports
//! users per second and the process's peak memory (GNU time's maximum RSS),
//! for a first run (every user new), a second run of the same file (nothing
//! to change) and a dry run.
//!
//!   cargo bench -p muster --bench import_load -- [sqlite] [postgres] [--rows N]
//!
//! PostgreSQL is used when `MUSTER_TEST_PG_URL` (an admin URL) is set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{Args, TempSqlite, bin};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// A CSV like an HR export: names, title, department, employee number,
/// externalId, a phone, and a manager (ten reports each, named by email,
/// always an earlier row).
fn write_csv(path: &Path, rows: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(
        f,
        "email,First Name,Last Name,Job Title,Department,Employee Number,externalId,Manager,Phone"
    )
    .unwrap();
    let titles = ["Engineer", "Sales", "Operations"];
    let depts = ["R&D", "GTM", "Ops"];
    for i in 0..rows {
        let mgr = if i < 10 {
            String::new()
        } else {
            format!("user{}@bench.example", i / 10)
        };
        writeln!(
            f,
            "user{i}@bench.example,Given{i},Family{i},{},{},{},X{i},{mgr},+1 555 {i:07}",
            titles[i % 3],
            depts[(i / 3) % 3],
            10_000 + i
        )
        .unwrap();
    }
    f.flush().unwrap();
}

/// One `muster import` run: (seconds, peak RSS in MB, its JSON report).
fn import(url: &str, file: &Path, extra: &[&str]) -> (f64, f64, Value) {
    let rss = std::env::temp_dir().join(format!("muster-import-rss-{}", std::process::id()));
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss)
        .arg(bin())
        .args(["import", "--org", "bench", "--json"])
        .arg(file)
        .args(extra)
        .env("MUSTER_DATABASE_URL", url)
        .output()
        .expect("GNU time (Debian package `time`) and the muster binary");
    let secs = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kb: f64 = std::fs::read_to_string(&rss)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    (secs, kb / 1024.0, report)
}

fn measure(backend: &str, url: &str, file: &Path, rows: usize) -> Value {
    common::bench_org(url);
    let (s1, m1, r1) = import(url, file, &[]);
    assert_eq!(r1["created"], rows, "{r1}");
    assert_eq!(r1["failed"], 0, "{r1}");
    let (s2, m2, r2) = import(url, file, &[]);
    assert_eq!(r2["unchanged"], rows, "{r2}");
    let (s3, m3, r3) = import(url, file, &["--dry-run"]);
    assert_eq!(r3["unchanged"], rows, "{r3}");
    let rate = |s: f64| (rows as f64 / s).round();
    let v = json!({
        "backend": backend, "rows": rows,
        "first_run_s": (s1 * 10.0).round() / 10.0, "first_run_users_per_s": rate(s1), "first_run_peak_mb": m1.round(),
        "second_run_s": (s2 * 10.0).round() / 10.0, "second_run_peak_mb": m2.round(),
        "dry_run_s": (s3 * 10.0).round() / 10.0, "dry_run_peak_mb": m3.round(),
    });
    println!("{v}");
    v
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let rows = args.flag("--rows", 100_000.0) as usize;
    let tmp = TempSqlite::new("import-bench");
    let csv = tmp.dir.join("users.csv");
    write_csv(&csv, rows);
    let size = std::fs::metadata(&csv).unwrap().len() as f64 / 1e6;
    eprintln!("{rows} rows, {size:.1} MB of CSV");
    let mut results = Vec::new();
    if args.wants("sqlite") {
        results.push(measure("sqlite", &tmp.url, &csv, rows));
    }
    if args.wants("postgres") {
        match common::fresh_pg("muster_import_bench").await {
            Some(url) => results.push(measure("postgres", &url, &csv, rows)),
            None => eprintln!("postgres: skipped (set MUSTER_TEST_PG_URL)"),
        }
    }
    println!("\nbackend   | first run: s, users/s, peak MB | same file again: s | dry run: s");
    for r in results {
        println!(
            "{:<9} | {:>6} s {:>7}/s {:>4} MB     | {:>6} s           | {:>6} s",
            r["backend"].as_str().unwrap(),
            r["first_run_s"],
            r["first_run_users_per_s"],
            r["first_run_peak_mb"],
            r["second_run_s"],
            r["dry_run_s"]
        );
    }
}
