//! `muster import`: users from a CSV or JSON Lines file (issue 9).
//!
//! Two passes over the file, each streamed. The first checks every line —
//! its values, a duplicate address, externalId or userName earlier in the
//! file, its roles, and (once the whole file is seen) its manager — and
//! remembers the lines that failed in a scratch set on disk. The second
//! matches the rest against the organization batch by batch and writes them
//! (or, for `--dry-run`, only counts what it would write). Each written batch
//! is recorded in `import_runs`, so a run stopped by Ctrl-C continues there.

pub mod columns;
pub mod export;
mod line;
mod read;
mod write;

pub use line::{Candidate, MUSTER, RowError};
pub use read::Format;

use crate::caller::org_with;
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;
use muster_store::scratch::Scratch;
use read::Source;
use serde::Serialize;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// Lines per batch: one transaction of new users, one match query.
const BATCH: usize = 500;
/// Row errors kept for the report; the rest are only counted (and shown as
/// they happen through `Progress::refused`).
const KEEP_ERRORS: usize = 1000;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub path: PathBuf,
    /// `--map column=attribute`.
    pub maps: Vec<(String, String)>,
    pub dry_run: bool,
    /// New users start `invited`, and an invitation email goes to each.
    pub invite: bool,
}

/// How long an invitation from an import stays valid: a week, as activation
/// emails commonly are.
pub const INVITATION_VALID_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub format: Option<Format>,
    pub dry_run: bool,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub failed: u64,
    /// An earlier run of this file stopped after this line; this one went on from there.
    pub resumed_after: Option<i64>,
    /// Ctrl-C: every line up to this one is written; running again continues.
    pub stopped_after: Option<i64>,
    pub errors: Vec<RowError>,
    pub errors_not_listed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Checking,
    Writing,
}

/// How a run reports as it goes (the CLI draws a bar or prints lines).
pub trait Progress: Send {
    /// The file's format, once it is known.
    fn begin(&mut self, _format: Format) {}
    fn step(&mut self, phase: Phase, lines: u64, bytes: u64, total: u64);
    fn refused(&mut self, e: &RowError);
}

pub async fn run(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    opts: &ImportOptions,
    progress: &mut dyn Progress,
    stop: &AtomicBool,
) -> Result<ImportReport> {
    let org = org_with(app, caller, org_slug, Permission::UsersWrite).await?;
    let scratch = Scratch::create().await?;
    let r = run_with(app, caller, &org, opts, progress, stop, &scratch).await;
    scratch.close().await;
    r
}

async fn run_with(
    app: &App,
    caller: &Caller,
    org: &crate::caller::OrgRef,
    opts: &ImportOptions,
    progress: &mut dyn Progress,
    stop: &AtomicBool,
    scratch: &Scratch,
) -> Result<ImportReport> {
    let mut report = ImportReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let fingerprint = fingerprint(&opts.path).map_err(file_error)?;
    let file_name = opts
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Pass 1: check every line.
    let (format, mut rx) = spawn_reader(opts)?;
    report.format = Some(format);
    progress.begin(format);
    let mut lines = 0u64;
    // Each role key's verdict, checked once: `Some(reason)` when refused.
    let mut roles_seen: std::collections::HashMap<String, Option<String>> = Default::default();
    while let Some(msg) = rx.recv().await {
        let (batch, bytes, total) = msg.map_err(file_error)?;
        lines += batch.len() as u64;
        let mut failed = Vec::new();
        let mut good = Vec::new();
        for r in batch {
            match r {
                Ok(c) => good.push(c),
                Err(e) => failed.push(e),
            }
        }
        failed.extend(check_keys(scratch, &good, format.word()).await?);
        for c in &good {
            for k in c.roles.iter().flatten() {
                if !roles_seen.contains_key(k) {
                    let verdict = check_role(app, caller, &org.id, k).await.err();
                    roles_seen.insert(k.clone(), verdict.map(|e| e.to_string()));
                }
                if let Some(Some(why)) = roles_seen.get(k) {
                    failed.push(RowError::new(c.line, "roles", why.clone()));
                    break;
                }
            }
        }
        let refs: Vec<(i64, String, String, String)> = good
            .iter()
            .filter_map(|c| {
                let m = c.manager.clone()?;
                Some((
                    c.line,
                    m.clone(),
                    format!("e:{}", m.to_lowercase()),
                    format!("x:{m}"),
                ))
            })
            .collect();
        scratch.add_refs(&refs).await?;
        record_failures(scratch, &mut report, progress, failed).await?;
        progress.step(Phase::Checking, lines, bytes, total);
    }
    check_managers(app, org, scratch, &mut report, progress).await?;
    // Pass 2: match and write (or count, in a dry run).
    // A run of this file that stopped is continued; otherwise a new one.
    let mut from = 0i64;
    let mut run_id = uuid::Uuid::now_v7().to_string();
    if !opts.dry_run {
        match muster_store::imports::unfinished(&app.db, &org.id, &fingerprint).await? {
            Some(r) => {
                from = r.lines_done;
                report.resumed_after = Some(from);
                run_id = r.id;
            }
            None => {
                let now = app.now_ms();
                muster_store::imports::start(
                    &app.db,
                    &muster_store::imports::ImportRun {
                        id: run_id.clone(),
                        org_id: org.id.clone(),
                        fingerprint: fingerprint.clone(),
                        file_name: file_name.clone(),
                        operator: caller.actor().label.unwrap_or_default(),
                        lines_done: 0,
                        started_at: now,
                        updated_at: now,
                        finished_at: None,
                    },
                )
                .await?;
            }
        }
    }
    let ctx = write::Ctx {
        app,
        caller,
        org,
        run: serde_json::json!({ "id": run_id, "file": file_name }),
        dry_run: opts.dry_run,
        invite_for: opts.invite.then_some(INVITATION_VALID_MS),
        managers: Default::default(),
    };
    let (_, mut rx) = spawn_reader(opts)?;
    let mut lines = 0u64;
    while let Some(msg) = rx.recv().await {
        let (batch, bytes, total) = msg.map_err(file_error)?;
        lines += batch.len() as u64;
        let (Some(first), Some(last)) = (line_of(batch.first()), line_of(batch.last())) else {
            continue;
        };
        let failed = scratch.failed_among(first, last).await?;
        let todo: Vec<Candidate> = batch
            .into_iter()
            .filter_map(std::result::Result::ok)
            .filter(|c| c.line > from && failed.binary_search(&c.line).is_err())
            .collect();
        let out = write::batch(&ctx, todo).await?;
        report.created += out.created;
        report.updated += out.updated;
        report.unchanged += out.unchanged;
        scratch.add_pending(&out.pending).await?;
        record_failures(scratch, &mut report, progress, out.errors).await?;
        progress.step(Phase::Writing, lines, bytes, total);
        if !opts.dry_run && last > from {
            muster_store::imports::advance(&app.db, &run_id, last, app.now_ms(), false).await?;
        }
        if stop.load(Ordering::Relaxed) {
            report.stopped_after = Some(last);
            return Ok(report);
        }
    }
    if !opts.dry_run {
        set_pending_managers(&ctx, scratch, &mut report, progress).await?;
        muster_store::imports::advance(&app.db, &run_id, i64::MAX, app.now_ms(), true).await?;
    }
    Ok(report)
}

fn line_of(r: Option<&std::result::Result<Candidate, RowError>>) -> Option<i64> {
    r.map(|r| match r {
        Ok(c) => c.line,
        Err(e) => e.line,
    })
}

fn file_error(message: String) -> AppError {
    AppError::invalid("file", message)
}

type Batch = Vec<std::result::Result<Candidate, RowError>>;
type Msg = std::result::Result<(Batch, u64, u64), String>;

/// Reads the file on a blocking thread, a batch at a time, while the caller
/// checks or writes the previous batch. At most two batches wait in between.
fn spawn_reader(opts: &ImportOptions) -> Result<(Format, mpsc::Receiver<Msg>)> {
    let mut src = Source::open(&opts.path, &opts.maps).map_err(file_error)?;
    let format = src.format();
    let (tx, rx) = mpsc::channel::<Msg>(2);
    tokio::task::spawn_blocking(move || {
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            let mut end = false;
            while batch.len() < BATCH {
                match src.next_line() {
                    Ok(Some(r)) => batch.push(r),
                    Ok(None) => {
                        end = true;
                        break;
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
            let (bytes, total) = src.progress();
            if !batch.is_empty() && tx.blocking_send(Ok((batch, bytes, total))).is_err() {
                return;
            }
            if end {
                return;
            }
        }
    });
    Ok((format, rx))
}

/// Duplicates inside the file: a later line with an address, externalId or
/// userName an earlier line already has is refused, naming the earlier line.
async fn check_keys(scratch: &Scratch, good: &[Candidate], word: &str) -> Result<Vec<RowError>> {
    let mut keys = Vec::with_capacity(good.len() * 3);
    let mut owners = Vec::with_capacity(good.len() * 3);
    for c in good {
        keys.push((format!("e:{}", c.email.key()), c.line));
        owners.push((c.line, "email", "address"));
        if let Some(x) = &c.profile.external_id {
            keys.push((format!("x:{x}"), c.line));
            owners.push((c.line, "externalId", "externalId"));
        }
        if let Some(u) = &c.user_name {
            keys.push((format!("u:{}", u.to_lowercase()), c.line));
            owners.push((c.line, "userName", "userName"));
        }
    }
    let earlier = scratch.claim(&keys).await?;
    let mut out: Vec<RowError> = Vec::new();
    for ((line, field, what), first) in owners.into_iter().zip(earlier) {
        if let Some(first) = first
            && !out.iter().any(|e| e.line == line)
        {
            out.push(RowError::new(
                line,
                field,
                format!("the same {what} as {word} {first} of this file"),
            ));
        }
    }
    Ok(out)
}

async fn check_role(app: &App, caller: &Caller, org_id: &str, key: &str) -> Result<()> {
    let role = crate::roles::resolve(app, org_id, key)
        .await?
        .ok_or_else(|| {
            AppError::invalid("roles", format!("no role '{key}' in this organization"))
        })?;
    crate::roles::check_can_grant(caller, org_id, &role)
}

/// Each manager a line names must be a user of the organization or a line
/// of the file that did not fail.
async fn check_managers(
    app: &App,
    org: &crate::caller::OrgRef,
    scratch: &Scratch,
    report: &mut ImportReport,
    progress: &mut dyn Progress,
) -> Result<()> {
    let mut after = 0;
    loop {
        let refs = scratch.refs_after(after, 1000).await?;
        let Some(last) = refs.last() else {
            return Ok(());
        };
        after = last.0;
        let mut failed = Vec::new();
        for (line, r, in_file) in refs {
            let known = in_file.is_some() || write::find_manager(app, &org.id, &r).await?.is_some();
            if in_file == Some(line) {
                failed.push(RowError::new(
                    line,
                    "manager",
                    "a user cannot be their own manager",
                ));
            } else if !known {
                failed.push(RowError::new(
                    line,
                    "manager",
                    format!(
                        "no user '{r}' (by id, externalId or email) in the organization or the file"
                    ),
                ));
            }
        }
        record_failures(scratch, report, progress, failed).await?;
    }
}

async fn set_pending_managers(
    ctx: &write::Ctx<'_>,
    scratch: &Scratch,
    report: &mut ImportReport,
    progress: &mut dyn Progress,
) -> Result<()> {
    let mut after = 0;
    loop {
        let items = scratch.pending_after(after, 1000).await?;
        let Some(last) = items.last() else {
            return Ok(());
        };
        after = last.0;
        let mut failed = Vec::new();
        for (line, user, r) in items {
            if let Err(e) = write::set_pending_manager(ctx, line, &user, &r).await {
                failed.push(write::row_error(line, e));
            }
        }
        record_failures(scratch, report, progress, failed).await?;
    }
}

async fn record_failures(
    scratch: &Scratch,
    report: &mut ImportReport,
    progress: &mut dyn Progress,
    mut failed: Vec<RowError>,
) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    // One reason per line is enough: the first found.
    failed.sort_by_key(|e| e.line);
    failed.dedup_by_key(|e| e.line);
    let lines: Vec<i64> = failed.iter().map(|e| e.line).collect();
    scratch.mark_failed(&lines).await?;
    for e in failed {
        progress.refused(&e);
        report.failed += 1;
        if report.errors.len() < KEEP_ERRORS {
            report.errors.push(e);
        } else {
            report.errors_not_listed += 1;
        }
    }
    Ok(())
}

/// Names a file by its size and its first and last 64 KiB: cheap for a file
/// of gigabytes, and it changes when the file is edited.
fn fingerprint(path: &Path) -> std::result::Result<String, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut h = sha2::Sha256::new();
    h.update(len.to_le_bytes());
    let mut buf = vec![0u8; 64 * 1024];
    let n = f.read(&mut buf).map_err(|e| e.to_string())?;
    h.update(buf.get(..n).unwrap_or_default());
    if len > buf.len() as u64 {
        f.seek(SeekFrom::End(-(buf.len() as i64)))
            .map_err(|e| e.to_string())?;
        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
