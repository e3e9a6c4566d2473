//! `muster audit …`: verify the chains (and archives), export, archive and prune.

use crate::config::Settings;
use crate::{muster_store_org, open, operator, print};
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(crate) enum AuditCmd {
    /// Replays the hash chain from its newest signed checkpoint, and any
    /// archive files given; exits non-zero and names the events if broken
    Verify {
        #[arg(long)]
        org: Option<String>,
        /// An archive file written by `muster audit archive` (repeatable)
        #[arg(long)]
        archive: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Writes events as JSON Lines or CSV to standard output
    Export {
        #[arg(long)]
        org: String,
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Events at or after this RFC 3339 time
        #[arg(long)]
        since: Option<String>,
        /// Events before this RFC 3339 time
        #[arg(long)]
        until: Option<String>,
        /// Only events by this actor (a user or token id)
        #[arg(long)]
        actor: Option<String>,
        /// Only events about this target (a user, group, role… id)
        #[arg(long)]
        target: Option<String>,
        /// Only this action, or a prefix ending in '.' (e.g. `user.`)
        #[arg(long)]
        action: Option<String>,
    },
    /// Moves events older than each organization's retention to an archive
    /// file in DIR, signs a checkpoint, then prunes them (run it daily)
    Archive {
        /// Only this organization [default: every one with a retention policy]
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(s: &Settings, cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Verify { org, archive, json } => verify(s, org, archive, json).await,
        AuditCmd::Archive { org, dir, json } => {
            let app = open(s).await?;
            let orgs = match org {
                Some(slug) => vec![muster_store_org(&app, &slug).await?],
                None => muster_store::orgs::all_ids(&app.db).await?,
            };
            for (_, slug) in orgs {
                match muster_app::retention::archive(&app, &operator(), &slug, &dir).await? {
                    Some(a) => {
                        let human = format!(
                            "{slug}: archived links {}–{} ({} events) to {}, then pruned",
                            a.from_seq,
                            a.to_seq,
                            a.events,
                            a.file.display()
                        );
                        print(json, &a, human)?;
                    }
                    None if !json => println!("{slug}: nothing to archive"),
                    None => {}
                }
            }
            app.seal_all().await?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Export {
            org,
            format,
            since,
            until,
            actor,
            target,
            action,
        } => {
            let app = open(s).await?;
            // Exactly what the same filters show through the API.
            let q = muster_app::audit::AuditQuery {
                since,
                until,
                actor,
                target,
                action,
                ..Default::default()
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match format.as_str() {
                "jsonl" => {
                    muster_app::audit::export(&app, &operator(), &org, q, |e| {
                        serde_json::to_writer(&mut out, &e)?;
                        out.write_all(b"\n")
                    })
                    .await?;
                }
                "csv" => {
                    writeln!(out, "{}", muster_app::audit::CSV_HEADER)?;
                    muster_app::audit::export(&app, &operator(), &org, q, |e| {
                        writeln!(out, "{}", muster_app::audit::csv_line(&e))
                    })
                    .await?;
                }
                other => anyhow::bail!("unknown format '{other}': use jsonl or csv"),
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn verify(
    s: &Settings,
    org: Option<String>,
    archives: Vec<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let app = open(s).await?;
    let orgs = match org {
        Some(slug) => vec![muster_store_org(&app, &slug).await?],
        None => muster_store::orgs::all_ids(&app.db).await?,
    };
    let mut broken = false;
    for (id, slug) in &orgs {
        let v = muster_app::audit::verify(&app, id, slug).await?;
        broken |= !v.findings.is_empty();
        let human = if v.findings.is_empty() {
            format!("{slug}: {} events, chain intact", v.events_checked)
        } else {
            format!("{slug}: CHAIN BROKEN\n  {}", v.findings.join("\n  "))
        };
        print(json, &v, human)?;
    }
    if !archives.is_empty() {
        let checks = muster_app::retention::verify_archives(&app, &archives).await?;
        for c in checks {
            broken |= !c.findings.is_empty();
            let human = if c.findings.is_empty() {
                format!(
                    "{}: links {}–{} intact, checkpoint signed",
                    c.file, c.from_seq, c.to_seq
                )
            } else {
                format!("{}: ARCHIVE BROKEN\n  {}", c.file, c.findings.join("\n  "))
            };
            print(json, &c, human)?;
        }
    }
    Ok(if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
