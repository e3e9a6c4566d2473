//! Writing audit events, sealing them into the chain, verifying and exporting.

use crate::{App, Caller, Result};
use muster_core::AuditEventId;
use muster_core::audit::{self, Finding, Severity, StoredEvent};
use muster_store::Tx;
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// One audit event, built by a use case and written in its transaction.
pub struct Event<'a> {
    pub org_id: &'a str,
    pub action: &'a str,
    pub target: Option<(&'a str, &'a str)>,
    pub severity: Severity,
    /// `{ field: [before, after] }`; secrets never go in.
    pub changes: Map<String, Value>,
    /// Whether `changes` may hold personal data, sealed with the subject's
    /// key (`erasure`); false only where they cannot.
    personal: bool,
}

impl<'a> Event<'a> {
    pub fn new(org_id: &'a str, action: &'a str) -> Self {
        Self {
            org_id,
            action,
            target: None,
            severity: Severity::Info,
            changes: Map::new(),
            personal: true,
        }
    }
    pub fn target(mut self, kind: &'a str, id: &'a str) -> Self {
        self.target = Some((kind, id));
        self
    }
    pub fn security(mut self) -> Self {
        self.severity = Severity::Security;
        self
    }
    /// Something meant to happen did not (a scheduled transition refused).
    pub fn error(mut self) -> Self {
        self.severity = Severity::Error;
        self
    }
    /// The changes hold no personal data and stay readable after the
    /// subject is deleted (the deletion's own record).
    pub fn impersonal(mut self) -> Self {
        self.personal = false;
        self
    }
    pub fn change(mut self, field: &str, before: impl Serialize, after: impl Serialize) -> Self {
        let pair = serde_json::json!([before, after]);
        self.changes.insert(field.to_owned(), pair);
        self
    }
    pub fn detail(mut self, field: &str, value: impl Serialize) -> Self {
        self.changes.insert(
            field.to_owned(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }
}

/// Writes `ev` in `tx` and wakes the sealer once the caller commits.
pub async fn record(app: &App, tx: &mut Tx, caller: &Caller, ev: Event<'_>) -> Result<String> {
    let personal = ev.personal;
    let mut stored = build(app, caller, ev);
    crate::erasure::seal(app, tx, caller, &mut stored, personal).await?;
    muster_store::audit::insert(tx, &stored).await?;
    app.sealer.notify_one();
    app.webhook_queued();
    Ok(stored.id)
}

/// `ev` built and sealed for a use case that writes it itself, in one
/// statement with its change; it calls `App::event_written` once that
/// statement is written.
pub(crate) async fn sealed(app: &App, caller: &Caller, ev: Event<'_>) -> Result<StoredEvent> {
    let personal = ev.personal;
    let mut stored = build(app, caller, ev);
    crate::erasure::seal_outside(app, caller, &mut stored, personal).await?;
    Ok(stored)
}

/// The stored form of `ev`, before its personal data is sealed (`record` and
/// `sealed` seal it).
fn build(app: &App, caller: &Caller, ev: Event<'_>) -> StoredEvent {
    let actor = caller.actor();
    let mut context = serde_json::to_value(&caller.ctx).unwrap_or(Value::Null);
    if let (Some(on_behalf), Value::Object(m)) = (&actor.on_behalf_of, &mut context) {
        m.insert("on_behalf_of".into(), Value::String(on_behalf.clone()));
    }
    StoredEvent {
        id: AuditEventId::new().to_string(),
        org_id: ev.org_id.to_owned(),
        occurred_at: app.now_ms(),
        actor_kind: actor.kind.as_str().to_owned(),
        actor_id: actor.id,
        actor_label: actor.label,
        action: ev.action.to_owned(),
        target_kind: ev.target.map(|t| t.0.to_owned()),
        target_id: ev.target.map(|t| t.1.to_owned()),
        severity: ev.severity.as_str().to_owned(),
        changes: Value::Object(ev.changes).to_string(),
        context: context.to_string(),
    }
}

/// How long the sealer lets new events gather before sealing them.
const SEAL_GATHER: Duration = Duration::from_millis(250);

impl App {
    /// Wakes the sealer after an event was committed outside `record`.
    pub(crate) fn event_written(&self) {
        self.sealer.notify_one();
        self.webhook_queued();
    }

    /// Seals every organization's pending events into its chain; returns how many.
    pub async fn seal_all(&self) -> Result<usize> {
        use std::sync::atomic::Ordering;
        let mut total = 0;
        for org in muster_store::audit::orgs_pending(&self.db).await? {
            loop {
                let n = muster_store::audit::seal(&self.db, &org, 1000).await?;
                total += n;
                if n < 1000 {
                    break;
                }
            }
        }
        if self.sealed_since_vacuum.fetch_add(total, Ordering::Relaxed) + total >= 2_000 {
            self.sealed_since_vacuum.store(0, Ordering::Relaxed);
            muster_store::audit::vacuum_queue(&self.db).await?;
        }
        Ok(total)
    }

    /// Runs the sealer until the returned task is aborted: woken by new
    /// events, and every second in case another instance wrote some.
    pub fn spawn_sealer(&self) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(Duration::from_secs(1), app.sealer.notified()).await;
                // Let a burst of commits gather into one batch: each pass
                // costs about nine statements whatever its size, which at
                // 20 ms was two statements per sign-in during a burst and at
                // 100 ms still about one.
                tokio::time::sleep(SEAL_GATHER).await;
                if let Err(e) = app.seal_all().await {
                    tracing::error!(error = %e, "sealing the audit chain failed");
                }
            }
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub org: String,
    pub events_checked: i64,
    pub findings: Vec<String>,
}

/// Replays the organization's whole chain, a page at a time.
pub async fn verify(app: &App, org_id: &str, org_slug: &str) -> Result<Verification> {
    app.seal_all().await?;
    let mut findings: Vec<Finding> = Vec::new();
    // Links up to the newest checkpoint were archived (`retention`): the
    // chain in the database starts from its hash, if this server signed it.
    let mut start = (0_i64, audit::GENESIS.to_owned());
    if let Some(k) = muster_store::retention::latest(&app.db, org_id).await? {
        if !crate::retention::signed_here(app, &k) {
            findings.push(Finding::BadCheckpoint { seq: k.seq });
        }
        start = (k.seq, k.hash);
    }
    loop {
        let page = muster_store::audit::chain_page(&app.db, org_id, start.0, 5000).await?;
        let Some(last) = page.last().map(|(l, _)| (l.seq, l.hash.clone())) else {
            break;
        };
        let links: Vec<_> = page.iter().map(|(l, _)| l.clone()).collect();
        let events: std::collections::HashMap<&str, &StoredEvent> = page
            .iter()
            .filter_map(|(_, e)| e.as_ref())
            .map(|e| (e.id.as_str(), e))
            .collect();
        findings.extend(audit::verify((start.0, &start.1), &links, |id| {
            events.get(id).copied()
        }));
        start = last;
    }
    if let Some((seq, hash)) = muster_store::audit::head(&app.db, org_id).await?
        && (seq != start.0 || (seq > 0 && hash != start.1))
    {
        findings.push(Finding::SequenceGap {
            expected: seq,
            found: start.0,
        });
    }
    for event_id in muster_store::audit::unchained(&app.db, org_id).await? {
        findings.push(Finding::UnchainedEvent { event_id });
    }
    Ok(Verification {
        org: org_slug.to_owned(),
        events_checked: start.0,
        findings: findings.iter().map(ToString::to_string).collect(),
    })
}

/// An audit event as the API and exports show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: String,
    pub seq: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: String,
    /// The same moment on the acting person's clock (their profile's time
    /// zone), RFC 3339 with the offset; absent when not known.
    pub occurred_at_local: Option<String>,
    /// That time zone, e.g. `Europe/Paris`.
    pub actor_time_zone: Option<String>,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub severity: String,
    #[schema(value_type = Object)]
    pub changes: Value,
    #[schema(value_type = Object)]
    pub context: Value,
    /// The person this event describes was deleted: its personal data
    /// (`actor_label`, `context`, `changes`) can no longer be read.
    pub erased: bool,
}

impl EventView {
    fn new(l: muster_store::audit::ListedEvent, seen: &crate::erasure::Revealed) -> Self {
        let e = l.event;
        let zone = seen.zones.get(&e.id).cloned();
        Self {
            erased: seen.erased.contains(&e.id),
            occurred_at_local: zone
                .as_deref()
                .and_then(|z| crate::erasure::local_time(e.occurred_at, z)),
            actor_time_zone: zone,
            id: e.id,
            seq: l.seq,
            occurred_at: crate::paging::rfc3339(e.occurred_at),
            actor_kind: e.actor_kind,
            actor_id: e.actor_id,
            actor_label: e.actor_label,
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            severity: e.severity,
            changes: serde_json::from_str(&e.changes).unwrap_or(Value::Null),
            context: serde_json::from_str(&e.context).unwrap_or(Value::Null),
        }
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Actor id (a user, or a token id).
    pub actor: Option<String>,
    /// Target id (a user, group, role…).
    pub target: Option<String>,
    /// An action such as `user.deactivate`, or a prefix ending in `.` (`user.`).
    pub action: Option<String>,
    /// RFC 3339; events at or after.
    pub since: Option<String>,
    /// RFC 3339; events before.
    pub until: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500; default 50.
    pub limit: Option<i64>,
}

fn parse_time(field: &str, v: Option<&str>) -> Result<Option<i64>> {
    v.map(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(muster_core::clock::to_millis)
            .map_err(|_| {
                crate::AppError::invalid(
                    field,
                    "give an RFC 3339 time such as 2026-11-25T10:00:00Z",
                )
            })
    })
    .transpose()
}

pub(crate) fn store_query(q: AuditQuery, limit: i64) -> Result<muster_store::audit::EventQuery> {
    for (field, v) in [
        ("actor", &q.actor),
        ("target", &q.target),
        ("action", &q.action),
    ] {
        if v.as_ref().is_some_and(|s| s.len() > 256) {
            return Err(crate::AppError::invalid(field, "at most 256 characters"));
        }
    }
    Ok(muster_store::audit::EventQuery {
        since: parse_time("since", q.since.as_deref())?,
        until: parse_time("until", q.until.as_deref())?,
        actor_id: q.actor,
        target_id: q.target,
        action: q.action,
        after: crate::paging::parse_cursor(q.cursor)?,
        limit,
        actor_kind: None,
        newest_first: false,
    })
}

pub async fn list(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    q: AuditQuery,
) -> Result<crate::paging::Page<EventView>> {
    let org =
        crate::caller::org_with(app, caller, org_slug, muster_core::Permission::AuditRead).await?;
    let limit = crate::paging::page_limit(q.limit)?;
    let mut rows = muster_store::audit::list(&app.db, &org.id, &store_query(q, limit + 1)?).await?;
    let erased = reveal(app, &mut rows).await?;
    crate::paging::paginate(
        rows,
        limit,
        |r| r.event.id.clone(),
        |r| Ok(EventView::new(r, &erased)),
    )
}

/// The same events newest first, optionally only those of one kind of
/// actor (the console's audit log, and a SCIM page's provisioning activity).
pub async fn newest(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    q: AuditQuery,
    actor_kind: Option<&str>,
) -> Result<crate::paging::Page<EventView>> {
    let org =
        crate::caller::org_with(app, caller, org_slug, muster_core::Permission::AuditRead).await?;
    let limit = crate::paging::page_limit(q.limit)?;
    let mut sq = store_query(q, limit + 1)?;
    sq.newest_first = true;
    sq.actor_kind = actor_kind.map(str::to_owned);
    let mut rows = muster_store::audit::list(&app.db, &org.id, &sq).await?;
    let erased = reveal(app, &mut rows).await?;
    crate::paging::paginate(
        rows,
        limit,
        |r| r.event.id.clone(),
        |r| Ok(EventView::new(r, &erased)),
    )
}

/// One event of the organization by id (the console's event page).
pub async fn get(app: &App, caller: &Caller, org_slug: &str, id: &str) -> Result<EventView> {
    let org =
        crate::caller::org_with(app, caller, org_slug, muster_core::Permission::AuditRead).await?;
    view(app, &org.id, id)
        .await?
        .ok_or(crate::AppError::NotFound("audit event"))
}

/// One event of the organization as the API shows it.
pub(crate) async fn view(app: &App, org_id: &str, id: &str) -> Result<Option<EventView>> {
    let Some(row) = muster_store::audit::get(&app.db, org_id, id).await? else {
        return Ok(None);
    };
    let mut rows = [row];
    let seen = reveal(app, &mut rows).await?;
    let [row] = rows;
    Ok(Some(EventView::new(row, &seen)))
}

async fn reveal(
    app: &App,
    rows: &mut [muster_store::audit::ListedEvent],
) -> Result<crate::erasure::Revealed> {
    let mut events: Vec<&mut StoredEvent> = rows.iter_mut().map(|r| &mut r.event).collect();
    crate::erasure::reveal(app, &mut events).await
}

/// Streams every event matching `q` to `sink`, one at a time (the CLI's
/// export, the test kit's reader).
pub async fn export(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    q: AuditQuery,
    mut sink: impl FnMut(EventView) -> std::io::Result<()>,
) -> Result<u64> {
    export_pages(app, caller, org_slug, q, |page| {
        std::future::ready(page.into_iter().try_for_each(&mut sink))
    })
    .await
}

/// Every event matching `q`, a page of up to 1,000 at a time, oldest first:
/// the export as the filters show it. `sink` may await (a response body with
/// back-pressure); its error stops the export.
pub async fn export_pages<F, Fut>(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    q: AuditQuery,
    mut sink: F,
) -> Result<u64>
where
    F: FnMut(Vec<EventView>) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    let org =
        crate::caller::org_with(app, caller, org_slug, muster_core::Permission::AuditRead).await?;
    app.seal_all().await?;
    let mut sq = store_query(q, 1000)?;
    let mut n = 0;
    loop {
        let mut rows = muster_store::audit::list(&app.db, &org.id, &sq).await?;
        let erased = reveal(app, &mut rows).await?;
        let Some(last) = rows.last().map(|r| r.event.id.clone()) else {
            break;
        };
        let full = rows.len() as i64 == sq.limit;
        let page: Vec<EventView> = rows
            .into_iter()
            .map(|r| EventView::new(r, &erased))
            .collect();
        n += page.len() as u64;
        sink(page)
            .await
            .map_err(|e| crate::AppError::Refused(format!("could not write the export: {e}")))?;
        if !full {
            break;
        }
        sq.after = Some(last);
    }
    Ok(n)
}

/// The filters of an export over HTTP, and its format.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `jsonl` (default) or `csv`.
    pub format: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    /// An action, or a prefix ending in `.`.
    pub action: Option<String>,
    /// RFC 3339; events at or after.
    pub since: Option<String>,
    /// RFC 3339; events before.
    pub until: Option<String>,
}

impl ExportQuery {
    /// The format (`true` for CSV) and the filters, checked — so that a bad
    /// request is refused before a streamed answer starts.
    pub async fn check(
        self,
        app: &App,
        caller: &Caller,
        org_slug: &str,
    ) -> Result<(bool, AuditQuery)> {
        crate::caller::org_with(app, caller, org_slug, muster_core::Permission::AuditRead).await?;
        let csv = match self.format.as_deref() {
            None | Some("jsonl") => false,
            Some("csv") => true,
            Some(_) => return Err(crate::AppError::invalid("format", "jsonl or csv")),
        };
        let q = AuditQuery {
            actor: self.actor,
            target: self.target,
            action: self.action,
            since: self.since,
            until: self.until,
            cursor: None,
            limit: None,
        };
        store_query(q.clone(), 1)?;
        Ok((csv, q))
    }
}

/// The CSV export's header line (RFC 4180), in the order of `csv_line`.
pub const CSV_HEADER: &str = "seq,id,occurred_at,occurred_at_local,actor_time_zone,severity,actor_kind,actor_id,actor_label,action,target_kind,target_id,erased,changes,context";

/// One event as a CSV line, without the line break.
pub fn csv_line(e: &EventView) -> String {
    let cells = [
        e.seq.map(|s| s.to_string()).unwrap_or_default(),
        e.id.clone(),
        e.occurred_at.clone(),
        e.occurred_at_local.clone().unwrap_or_default(),
        e.actor_time_zone.clone().unwrap_or_default(),
        e.severity.clone(),
        e.actor_kind.clone(),
        e.actor_id.clone().unwrap_or_default(),
        e.actor_label.clone().unwrap_or_default(),
        e.action.clone(),
        e.target_kind.clone().unwrap_or_default(),
        e.target_id.clone().unwrap_or_default(),
        e.erased.to_string(),
        e.changes.to_string(),
        e.context.to_string(),
    ];
    let quoted: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
    quoted.join(",")
}

/// RFC 4180 quoting; a leading formula character is defused for
/// spreadsheets (CSV injection), since labels and changes are user input.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
    }
}
