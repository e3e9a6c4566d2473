//! Audit retention (issue 6 §5): events older than the organization's
//! retention move to an archive file; a checkpoint signed with the server's
//! Ed25519 key records where the archive ends, and only then are the
//! archived rows deleted (the triggers of migration 0014 refuse anything
//! else). The remaining chain verifies from the checkpoint; the archive
//! verifies by itself (`verify_archive`), and archives chain into each other.
//!
//! An archive is JSON Lines: a header, one line per link with its event as
//! stored (personal data stays sealed, so erasure reaches archives too), and
//! the signed checkpoint last.

use crate::{App, AppError, Caller, Result};
use aws_lc_rs::signature::KeyPair;
use muster_core::audit::{self, GENESIS, Link, StoredEvent};
use muster_store::retention::Checkpoint;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The organization's retention (`PUT /orgs/{org}/audit-retention`); off by
/// default: events are kept in the database for ever.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionPolicy {
    /// Keep this many days of events in the database (30 to 36500); older
    /// ones are archived and pruned by `muster audit archive`. Unset: keep all.
    pub keep_days: Option<u32>,
}

impl RetentionPolicy {
    pub fn check(&self) -> Result<()> {
        if self.keep_days.is_some_and(|d| !(30..=36_500).contains(&d)) {
            return Err(AppError::invalid(
                "keep_days",
                "give 30 to 36500 days, or leave it out",
            ));
        }
        Ok(())
    }
}

/// At most this many events go into one archive file.
const PER_ARCHIVE: usize = 100_000;

#[derive(Debug, Clone, Serialize)]
pub struct Archived {
    pub org: String,
    pub events: i64,
    pub from_seq: i64,
    pub to_seq: i64,
    pub file: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Header {
    muster_audit_archive: u32,
    org_id: String,
    org_slug: String,
    from_seq: i64,
    prev_hash: String,
}

#[derive(Serialize, Deserialize)]
struct Line {
    seq: i64,
    hash: String,
    event: StoredEvent,
}

#[derive(Serialize, Deserialize)]
struct Footer {
    checkpoint: Checkpoint,
    /// The signer's public key, hex: to check archives without Muster.
    public_key: String,
}

/// Archives and prunes what the organization's retention no longer keeps,
/// into a new file in `dir`. `None` when there is nothing to archive. A
/// chain that does not verify is never archived.
pub async fn archive(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    dir: &Path,
) -> Result<Option<Archived>> {
    let org =
        crate::caller::org_with(app, caller, org_slug, muster_core::Permission::AuditRead).await?;
    let policy: RetentionPolicy = crate::orgs::setting(app, &org.id, "audit_retention").await?;
    let Some(days) = policy.keep_days else {
        return Ok(None);
    };
    let check = crate::audit::verify(app, &org.id, &org.slug).await?;
    if !check.findings.is_empty() {
        return Err(AppError::Refused(format!(
            "the audit chain of {} does not verify; nothing archived: {}",
            org.slug,
            check.findings.join("; ")
        )));
    }
    let cutoff = app.now_ms() - i64::from(days) * 86_400_000;
    let (from_after, prev_hash) = start(app, &org.id).await?;
    let mut lines: Vec<Line> = Vec::new();
    'pages: loop {
        let after = lines.last().map_or(from_after, |l| l.seq);
        let page = muster_store::audit::chain_page(&app.db, &org.id, after, 5000).await?;
        if page.is_empty() {
            break;
        }
        for (link, event) in page {
            match event {
                Some(event) if event.occurred_at < cutoff && lines.len() < PER_ARCHIVE => {
                    lines.push(Line {
                        seq: link.seq,
                        hash: link.hash,
                        event,
                    });
                }
                _ => break 'pages,
            }
        }
    }
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return Ok(None);
    };
    let (from_seq, seq, hash) = (first.seq, last.seq, last.hash.clone());
    let name = format!("{}-audit-{from_seq:010}-{seq:010}.jsonl", org.slug);
    let header = Header {
        muster_audit_archive: 1,
        org_id: org.id.clone(),
        org_slug: org.slug.clone(),
        from_seq,
        prev_hash: prev_hash.clone(),
    };
    let mut body = json_line(&header)?;
    for l in &lines {
        body.extend(json_line(l)?);
    }
    let signer = app
        .key
        .checkpoint_signer()
        .ok_or_else(|| AppError::Refused("the server key cannot sign checkpoints".into()))?;
    let mut checkpoint = Checkpoint {
        org_id: org.id.clone(),
        seq,
        hash,
        from_seq,
        prev_hash,
        events: i64::try_from(lines.len()).unwrap_or(i64::MAX),
        archive_name: name.clone(),
        archive_sha256: audit::hex(&Sha256::digest(&body)),
        created_at: app.now_ms(),
        signature: String::new(),
    };
    checkpoint.signature = audit::hex(signer.sign(checkpoint.signed_text().as_bytes()).as_ref());
    body.extend(json_line(&Footer {
        checkpoint: checkpoint.clone(),
        public_key: audit::hex(signer.public_key().as_ref()),
    })?);
    let file = write_durably(dir, &name, &body)?;

    // The file is on disk before anything is deleted; the checkpoint and
    // the deletion commit together, with their own audit event.
    let mut tx = app.db.begin().await?;
    let pruned = muster_store::retention::checkpoint_and_prune(&mut tx, &checkpoint).await?;
    let ev = crate::audit::Event::new(&org.id, "audit.archived")
        .security()
        .impersonal()
        .detail("archive", &name)
        .detail("from_seq", from_seq)
        .detail("to_seq", seq)
        .detail("events", pruned)
        .detail("archive_sha256", &checkpoint.archive_sha256);
    crate::audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(Some(Archived {
        org: org.slug,
        events: checkpoint.events,
        from_seq,
        to_seq: seq,
        file,
    }))
}

/// Where the organization's chain in the database starts: after its newest
/// checkpoint, or at the beginning.
pub(crate) async fn start(app: &App, org_id: &str) -> Result<(i64, String)> {
    Ok(muster_store::retention::latest(&app.db, org_id)
        .await?
        .map_or((0, GENESIS.to_owned()), |k| (k.seq, k.hash)))
}

/// Whether this server's key signed the checkpoint.
pub fn signed_here(app: &App, k: &Checkpoint) -> bool {
    let Some(signer) = app.key.checkpoint_signer() else {
        return false;
    };
    let Some(sig) = unhex(&k.signature) else {
        return false;
    };
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ED25519,
        signer.public_key().as_ref(),
    )
    .verify(k.signed_text().as_bytes(), &sig)
    .is_ok()
}

/// This server's checkpoint-signing public key, hex.
pub fn public_key(app: &App) -> Option<String> {
    app.key
        .checkpoint_signer()
        .map(|s| audit::hex(s.public_key().as_ref()))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

fn json_line<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec(v)
        .map_err(|e| AppError::Refused(format!("cannot write the archive: {e}")))?;
    out.push(b'\n');
    Ok(out)
}

/// Writes `name` in `dir` through a temporary file, synced, then renamed:
/// a crash leaves either no archive or a whole one.
fn write_durably(dir: &Path, name: &str, body: &[u8]) -> Result<PathBuf> {
    let fail = |e: std::io::Error| {
        AppError::Refused(format!(
            "cannot write the archive in {}: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    f.write_all(body).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

/// What checking one archive file found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchiveCheck {
    pub file: String,
    pub org_id: String,
    pub from_seq: i64,
    pub to_seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub findings: Vec<String>,
}

/// Proves one archive: every link replays from the header's starting hash,
/// the last one is the checkpoint's, the content is what the checkpoint
/// hashed, and this server's key signed the checkpoint.
pub fn verify_archive(app: &App, path: &Path) -> std::result::Result<ArchiveCheck, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut rows: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    if rows.last().is_some_and(|l| l.is_empty()) {
        rows.pop();
    }
    let bad = |what: &str| format!("{} is not a Muster audit archive: {what}", path.display());
    let (Some(head), Some(foot)) = (rows.first(), rows.last()) else {
        return Err(bad("empty"));
    };
    let header: Header = serde_json::from_slice(head).map_err(|_| bad("no header"))?;
    let footer: Footer = serde_json::from_slice(foot).map_err(|_| bad("no checkpoint"))?;
    let k = footer.checkpoint;
    let mut findings = Vec::new();
    let content_len = text.len() - foot.len() - 1;
    let content = text.get(..content_len).unwrap_or_default();
    if audit::hex(&Sha256::digest(content)) != k.archive_sha256 {
        findings.push("the content is not what the checkpoint hashed: modified".to_owned());
    }
    if !signed_here(app, &k) {
        findings
            .push("the checkpoint is not signed by this server's key: forged or altered".into());
    }
    let mut links = Vec::new();
    let mut events = std::collections::HashMap::new();
    for (i, row) in rows
        .iter()
        .enumerate()
        .skip(1)
        .take(rows.len().saturating_sub(2))
    {
        match serde_json::from_slice::<Line>(row) {
            Ok(l) => {
                links.push(Link {
                    seq: l.seq,
                    event_id: l.event.id.clone(),
                    hash: l.hash,
                });
                events.insert(l.event.id.clone(), l.event);
            }
            Err(_) => findings.push(format!("line {} is not a link", i + 1)),
        }
    }
    findings.extend(
        audit::verify((header.from_seq - 1, &header.prev_hash), &links, |id| {
            events.get(id)
        })
        .iter()
        .map(ToString::to_string),
    );
    let last = links.last().map(|l| (l.seq, l.hash.clone()));
    if last != Some((k.seq, k.hash.clone()))
        || (header.from_seq, &header.prev_hash, &header.org_id)
            != (k.from_seq, &k.prev_hash, &k.org_id)
    {
        findings.push("the links do not end where the checkpoint says: cut short".into());
    }
    Ok(ArchiveCheck {
        file: path.display().to_string(),
        org_id: k.org_id,
        from_seq: k.from_seq,
        to_seq: k.seq,
        prev_hash: k.prev_hash,
        hash: k.hash,
        findings,
    })
}

/// Proves archive files and how they join up: each one by itself, each
/// starting where the previous one (or the database's checkpoint before it,
/// or the beginning of the chain) ended, and each ending at a checkpoint the
/// database still holds — so archives plus database make one chain.
pub async fn verify_archives(app: &App, paths: &[PathBuf]) -> Result<Vec<ArchiveCheck>> {
    let mut checks: Vec<ArchiveCheck> = paths
        .iter()
        .map(|p| {
            verify_archive(app, p).unwrap_or_else(|e| ArchiveCheck {
                file: p.display().to_string(),
                findings: vec![e],
                ..ArchiveCheck::default()
            })
        })
        .collect();
    checks.sort_by(|a, b| (&a.org_id, a.from_seq).cmp(&(&b.org_id, b.from_seq)));
    let mut previous: Option<(String, i64, String)> = None;
    for c in &mut checks {
        if c.org_id.is_empty() {
            continue;
        }
        let joins = match &previous {
            Some((org, to_seq, hash)) if *org == c.org_id => {
                c.from_seq == to_seq + 1 && c.prev_hash == *hash
            }
            _ if c.from_seq == 1 => c.prev_hash == GENESIS,
            _ => muster_store::retention::get(&app.db, &c.org_id, c.from_seq - 1)
                .await?
                .is_some_and(|k| k.hash == c.prev_hash),
        };
        if !joins {
            c.findings.push(format!(
                "does not start where the chain before link {} ended: links missing or altered",
                c.from_seq
            ));
        }
        let held = muster_store::retention::get(&app.db, &c.org_id, c.to_seq).await?;
        if held.is_none_or(|k| k.hash != c.hash) {
            c.findings.push(format!(
                "the database holds no checkpoint at link {} with this hash",
                c.to_seq
            ));
        }
        previous = Some((c.org_id.clone(), c.to_seq, c.hash.clone()));
    }
    Ok(checks)
}
