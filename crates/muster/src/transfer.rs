//! `muster import` and `muster export` (DESIGN.md §2, issue 9).

use crate::progress::Reporter;
use muster_app::imports::export::{ExportFormat, export};
use muster_app::imports::{Format, ImportOptions, ImportReport, run};
use muster_app::mail::Mailer;
use muster_app::{App, Caller};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(clap::Args)]
pub struct ImportArgs {
    #[arg(long)]
    org: String,
    /// A CSV file with a header row, or JSON Lines (one SCIM user per line)
    file: std::path::PathBuf,
    /// Puts a column on an attribute: `--map "Cost Centre=costCenter"`,
    /// `--map "Shoe size=custom.shoe_size"`, `--map Notes=ignore` (repeatable)
    #[arg(long = "map", value_name = "COLUMN=ATTRIBUTE")]
    maps: Vec<String>,
    /// Check every line and say what would change; write nothing
    #[arg(long)]
    dry_run: bool,
    /// New users start `invited` and each gets an invitation email
    #[arg(long)]
    invite: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[arg(long)]
    org: String,
    #[arg(long, default_value = "csv", value_parser = ["csv", "jsonl"])]
    format: String,
    /// Write here instead of standard output
    #[arg(long)]
    output: Option<std::path::PathBuf>,
}

pub async fn import(
    app: &App,
    caller: &Caller,
    a: ImportArgs,
    mailer: &Mailer,
    public_url: &str,
) -> anyhow::Result<ExitCode> {
    let mut maps = Vec::new();
    for m in &a.maps {
        let Some((col, attr)) = m.split_once('=') else {
            anyhow::bail!("--map {m}: write it as COLUMN=ATTRIBUTE");
        };
        maps.push((col.to_owned(), attr.to_owned()));
    }
    let opts = ImportOptions {
        path: a.file.clone(),
        maps,
        dry_run: a.dry_run,
        invite: a.invite,
    };
    // Ctrl-C asks the import to stop after the batch it is writing; a second
    // Ctrl-C leaves at once (the batch in flight is one transaction).
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nstopping after the current batch (Ctrl-C again to quit now)");
                stop.store(true, Ordering::Relaxed);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        })
    };
    let mut reporter = Reporter::new(a.json);
    // Events are sealed into the audit chain while the import writes, as
    // the server does, rather than all at the end.
    let sealer = app.spawn_sealer();
    let result = run(app, caller, &a.org, &opts, &mut reporter, &stop).await;
    sealer.abort();
    watcher.abort();
    reporter.clear();
    let report = result?;
    app.seal_all().await?;
    // The invitations go out before the command ends (and, should some
    // fail, a running server retries them from the outbox).
    let mail = if a.invite && !a.dry_run {
        let d = muster_app::mail::drain(app, mailer, public_url).await?;
        app.seal_all().await?;
        let left = muster_store::outbox::unsent(&app.db).await?;
        Some((d, left))
    } else {
        None
    };
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        if let (Some((d, left)), Some(o)) = (&mail, v.as_object_mut()) {
            o.insert("invitations_sent".into(), d.sent.into());
            o.insert("emails_waiting".into(), (*left).into());
        }
        crate::print(true, &v, String::new())?;
    } else {
        println!("{}", summary(&report));
        if let Some((d, left)) = mail {
            println!(
                "{} invitation email(s) sent via {}",
                d.sent,
                mailer.describe()
            );
            if left > 0 {
                println!(
                    "{left} email(s) could not be sent yet; a running `muster serve` retries them"
                );
            }
        }
    }
    Ok(if report.stopped_after.is_some() {
        ExitCode::from(130)
    } else if report.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn summary(r: &ImportReport) -> String {
    let word = r.format.map_or("row", Format::word);
    let verb = if r.dry_run { "would be " } else { "" };
    let mut s = format!(
        "{}: {} {verb}created, {} {verb}updated, {} unchanged, {} failed",
        if r.dry_run {
            "dry run, nothing written"
        } else {
            "import"
        },
        r.created,
        r.updated,
        r.unchanged,
        r.failed
    );
    if let Some(l) = r.resumed_after {
        s.push_str(&format!(
            "\ncontinued an earlier run of this file after {word} {l}"
        ));
    }
    if r.created == 0 && r.updated == 0 && r.failed == 0 && r.stopped_after.is_none() {
        s.push_str("\nnothing to change: every user is already as the file says");
    }
    if r.failed > 0 {
        s.push_str(&format!(
            "\nthe {} {word}(s) listed above {}; fix them and run the same command again",
            r.failed,
            if r.dry_run {
                "would not be imported"
            } else {
                "were not imported"
            }
        ));
    }
    if let Some(l) = r.stopped_after {
        s.push_str(&format!(
            "\nstopped after {word} {l}; run the same command again to continue from there"
        ));
    }
    s
}

pub async fn export_users(app: &App, caller: &Caller, a: ExportArgs) -> anyhow::Result<ExitCode> {
    let format = ExportFormat::parse(&a.format)?;
    let n = match &a.output {
        Some(path) => {
            let f = std::fs::File::create(path)?;
            let mut w = std::io::BufWriter::new(f);
            export(app, caller, &a.org, format, &mut w).await?
        }
        None => {
            let mut w = std::io::BufWriter::new(std::io::stdout());
            export(app, caller, &a.org, format, &mut w).await?
        }
    };
    if let Some(p) = &a.output {
        eprintln!("exported {n} users to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
