//! Delivering the webhook outbox: signing (Standard Webhooks 1.0), sending,
//! retrying with back-off, giving up and disabling an endpoint, the delivery
//! log, and redelivery by hand.
//!
//! Order: each endpoint receives its messages in event order. Only the
//! oldest undelivered message of an endpoint is attempted; later ones wait
//! behind it, so a receiver that was down gets everything, in order, once it
//! is back. A message keeps its `webhook-id` (the event id) on every attempt,
//! so a receiver drops a repeat by that id. One instance dispatches at a time
//! (a shared lease).

use super::targets::PublicOnly;
use crate::audit::{self, Event};
use crate::paging::{Page, rfc3339};
use crate::{App, AppError, Caller, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use muster_store::webhooks::{self as store, AttemptRow, DeliveryRow, EndpointRow, Outcome};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEASE: &str = "webhooks";
const LEASE_MS: i64 = 60_000;
/// Seconds to wait after the 1st, 2nd, … failed attempt. After the last
/// one fails (about 28 hours after the first) the message is given up and
/// the endpoint disabled: that receiver is not coming back by itself.
const RETRY_AFTER_S: [i64; 8] = [5, 60, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
/// Messages one endpoint may send in one pass, so one busy endpoint cannot
/// hold the lease for ever.
const PER_PASS: usize = 500;
/// Endpoints served at once.
const PARALLEL: usize = 8;

/// The client that sends deliveries: no redirects (a 3xx is a failure, so a
/// receiver cannot bounce a signed message elsewhere), no proxy from the
/// environment, names resolved to public addresses only unless the operator
/// allows private targets.
pub(crate) fn client(allow_private: bool) -> std::result::Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent("Muster-Webhooks");
    if !allow_private {
        b = b.dns_resolver(Arc::new(PublicOnly));
    }
    b.build()
        .map_err(|e| format!("cannot build the webhook client: {e}"))
}

/// What a dispatcher pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub delivered: usize,
    pub failed_attempts: usize,
    pub endpoints_disabled: usize,
}

impl std::ops::AddAssign for Report {
    fn add_assign(&mut self, o: Self) {
        self.delivered += o.delivered;
        self.failed_attempts += o.failed_attempts;
        self.endpoints_disabled += o.endpoints_disabled;
    }
}

/// One pass: every enabled endpoint whose oldest message is due sends what
/// it can, in order. Returns `None` when another instance holds the lease.
pub async fn deliver_due(app: &App) -> Result<Option<Report>> {
    let now = app.now_ms();
    // Read first: an idle pass costs no write.
    let endpoints = store::with_due_head(&app.db, now).await?;
    let mut report = Report::default();
    if endpoints.is_empty() {
        return Ok(Some(report));
    }
    if !renew(app).await? {
        return Ok(None);
    }
    for chunk in endpoints.chunks(PARALLEL) {
        let mut set = tokio::task::JoinSet::new();
        for e in chunk.iter().cloned() {
            let app = app.clone();
            set.spawn(async move { drain(&app, e).await });
        }
        while let Some(done) = set.join_next().await {
            match done {
                Ok(Ok(r)) => report += r,
                Ok(Err(e)) => tracing::error!(error = %e, "a webhook endpoint's pass failed"),
                Err(e) => tracing::error!(error = %e, "a webhook endpoint's pass panicked"),
            }
        }
    }
    Ok(Some(report))
}

async fn renew(app: &App) -> Result<bool> {
    let now = app.now_ms();
    Ok(
        muster_store::schedules::acquire_lease(&app.db, LEASE, &app.instance, now, now + LEASE_MS)
            .await?,
    )
}

/// Sends the endpoint's due messages in order until one fails.
async fn drain(app: &App, endpoint: EndpointRow) -> Result<Report> {
    let mut report = Report::default();
    let mut sent = 0;
    while sent < PER_PASS {
        // Read again each batch: an admin may have turned the endpoint
        // off, deleted it or changed its URL meanwhile.
        let endpoint = match store::get(&app.db, &endpoint.org_id, &endpoint.id).await? {
            Some(e) if e.disabled_at.is_none() => e,
            _ => break,
        };
        let batch = store::pending(&app.db, &endpoint.id, 50).await?;
        if batch.is_empty() {
            break;
        }
        for d in batch {
            if d.next_attempt_at > app.now_ms() {
                return Ok(report);
            }
            // Keep the lease for as long as messages go out: another
            // instance taking over mid-stream could send out of order.
            if !renew(app).await? {
                return Ok(report);
            }
            sent += 1;
            match attempt(app, &endpoint, &d, false).await? {
                Outcome::Delivered => report.delivered += 1,
                Outcome::Retry(_) => {
                    report.failed_attempts += 1;
                    return Ok(report);
                }
                Outcome::Failed => {
                    report.failed_attempts += 1;
                    report.endpoints_disabled += 1;
                    return Ok(report);
                }
            }
        }
    }
    Ok(report)
}

/// Sends one message once, logs the attempt and moves the delivery on.
async fn attempt(
    app: &App,
    endpoint: &EndpointRow,
    d: &DeliveryRow,
    manual: bool,
) -> Result<Outcome> {
    let at = app.now_ms();
    let started = Instant::now();
    let result = send(app, endpoint, d, at).await;
    let (http_status, error) = match result {
        Ok(s) if (200..300).contains(&s) => (Some(i64::from(s)), None),
        Ok(s) => (
            Some(i64::from(s)),
            Some(format!("the receiver answered HTTP {s}")),
        ),
        Err(e) => (None, Some(e)),
    };
    let failures = d.attempts + 1;
    let outcome = match (&error, manual) {
        (None, _) => Outcome::Delivered,
        // A redelivery by hand changes nothing of the automatic schedule.
        (Some(_), true) if d.status == "failed" => Outcome::Failed,
        (Some(_), true) => Outcome::Retry(d.next_attempt_at),
        (Some(_), false) => usize::try_from(failures - 1)
            .ok()
            .and_then(|i| RETRY_AFTER_S.get(i))
            .map_or(Outcome::Failed, |s| Outcome::Retry(at + s * 1000)),
    };
    let log = AttemptRow {
        attempt: 0,
        at,
        manual: i64::from(manual),
        http_status,
        error: error.clone(),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    };
    let mut tx = app.db.begin().await?;
    store::record_attempt(&mut tx, d, &log, outcome).await?;
    let give_up = outcome == Outcome::Failed && !manual && d.status == "pending";
    if give_up {
        let reason = format!(
            "turned off after {failures} failed attempts to deliver one message (last: {})",
            error.as_deref().unwrap_or("")
        );
        if store::disable(&mut tx, &endpoint.id, at, &reason).await? {
            for (user_id, email) in store::owners(&mut tx, &endpoint.org_id).await? {
                crate::signin::queue_email(
                    app,
                    &mut tx,
                    &endpoint.org_id,
                    &user_id,
                    "webhook_disabled",
                    &endpoint.id,
                    &email,
                )
                .await?;
            }
            let ev = Event::new(&endpoint.org_id, "webhook.disabled")
                .target("webhook", &endpoint.id)
                .error()
                .impersonal()
                .detail("url", &endpoint.url)
                .detail("reason", &reason)
                .detail("message", &d.event_id);
            audit::record(app, &mut tx, &Caller::system("webhooks"), ev).await?;
        }
    }
    tx.commit().await?;
    if give_up {
        crate::signin::email_committed(app);
    }
    if let Some(e) = &error {
        tracing::warn!(endpoint = %endpoint.id, message = %d.event_id, error = %e, "webhook not delivered");
    }
    Ok(outcome)
}

/// The message's body, signed and posted; the receiver's status, or why
/// there is none.
async fn send(
    app: &App,
    endpoint: &EndpointRow,
    d: &DeliveryRow,
    at: i64,
) -> std::result::Result<u16, String> {
    let url = app.webhook_targets.check(&endpoint.url)?;
    let body = payload(app, d).await?;
    let timestamp = at.div_euclid(1000);
    let mut secrets = vec![open_secret(app, endpoint, &endpoint.secret_sealed)?];
    if let Some(prev) = &endpoint.previous_secret_sealed
        && endpoint.previous_until.is_some_and(|u| u > at)
    {
        secrets.push(open_secret(app, endpoint, prev)?);
    }
    let signature = secrets
        .iter()
        .map(|s| sign(s, &d.event_id, timestamp, &body).map(|sig| format!("v1,{sig}")))
        .collect::<std::result::Result<Vec<_>, _>>()?
        .join(" ");
    let client = app.webhook_client()?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(response.status().as_u16())
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut why = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        why = format!("{why}: {c}");
        cause = c.source();
    }
    why
}

fn open_secret(
    app: &App,
    endpoint: &EndpointRow,
    sealed: &str,
) -> std::result::Result<String, String> {
    app.key
        .open(&format!("webhook:{}", endpoint.id), sealed)
        .map_err(|e| e.to_string())
}

/// `base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))`, the key being the
/// secret after `whsec_`, base64-decoded (Standard Webhooks 1.0, "Signature
/// scheme").
pub fn sign(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> std::result::Result<String, String> {
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
        .ok_or("the endpoint's secret is not a whsec_ secret")?;
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(format!("{id}.{timestamp}.").as_bytes());
    ctx.update(body);
    Ok(STANDARD.encode(ctx.sign().as_ref()))
}

/// `{"type", "timestamp", "data"}` as Standard Webhooks lays a message out;
/// `data` is the audit event as the API shows it, with personal data opened
/// at send time — so a person deleted meanwhile is sent erased.
async fn payload(app: &App, d: &DeliveryRow) -> std::result::Result<Vec<u8>, String> {
    let view = audit::view(app, &d.org_id, &d.event_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the event is no longer in the database")?;
    let message = serde_json::json!({
        "type": d.event_type,
        "timestamp": view.occurred_at,
        "data": view,
    });
    serde_json::to_vec(&message).map_err(|e| e.to_string())
}

/// A message to an endpoint, as the delivery log shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id` header: the event's id, the same on every attempt.
    pub webhook_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed` (given up; redeliver by hand).
    pub status: String,
    pub attempts: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    /// When the next automatic attempt is due, while pending.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_attempt_at: Option<String>,
    pub last_http_status: Option<i64>,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<String>,
    /// Every attempt, oldest first (on a single delivery only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<Vec<AttemptView>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: i64,
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    /// Asked for by an admin rather than scheduled.
    pub manual: bool,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl DeliveryView {
    fn new(d: DeliveryRow, log: Option<Vec<AttemptRow>>) -> Self {
        Self {
            next_attempt_at: (d.status == "pending").then(|| rfc3339(d.next_attempt_at)),
            created_at: rfc3339(d.created_at),
            last_attempt_at: d.last_attempt_at.map(rfc3339),
            delivered_at: d.delivered_at.map(rfc3339),
            last_http_status: d.last_status,
            log: log.map(|l| {
                l.into_iter()
                    .map(|a| AttemptView {
                        attempt: a.attempt,
                        at: rfc3339(a.at),
                        manual: a.manual != 0,
                        http_status: a.http_status,
                        error: a.error,
                        duration_ms: a.duration_ms,
                    })
                    .collect()
            }),
            webhook_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 500; default 50.
    pub limit: Option<i64>,
}

/// The endpoint's delivery log, newest first.
pub async fn list(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    endpoint_id: &str,
    q: DeliveryQuery,
) -> Result<Page<DeliveryView>> {
    let (_, endpoint) = super::endpoint(app, caller, org_slug, endpoint_id).await?;
    if let Some(s) = q.status.as_deref()
        && !matches!(s, "pending" | "delivered" | "failed")
    {
        return Err(AppError::invalid(
            "status",
            "one of pending, delivered, failed",
        ));
    }
    let limit = crate::paging::page_limit(q.limit)?;
    let before = crate::paging::parse_cursor(q.cursor)?;
    let rows = store::deliveries(
        &app.db,
        &endpoint.id,
        q.status.as_deref(),
        before.as_deref(),
        limit + 1,
    )
    .await?;
    crate::paging::paginate(
        rows,
        limit,
        |d| d.event_id.clone(),
        |d| Ok(DeliveryView::new(d, None)),
    )
}

/// One message with every attempt.
pub async fn get(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    endpoint_id: &str,
    webhook_id: &str,
) -> Result<DeliveryView> {
    let (_, endpoint) = super::endpoint(app, caller, org_slug, endpoint_id).await?;
    detail(app, &endpoint, webhook_id).await
}

async fn detail(app: &App, endpoint: &EndpointRow, webhook_id: &str) -> Result<DeliveryView> {
    let d = store::delivery(&app.db, &endpoint.id, webhook_id)
        .await?
        .ok_or(AppError::NotFound("delivery"))?;
    let log = store::attempts(&app.db, &endpoint.id, webhook_id).await?;
    Ok(DeliveryView::new(d, Some(log)))
}

/// Sends a message again now, with the same `webhook-id`, whatever its
/// state; the answer carries the attempt's outcome in its log. A message
/// given up on and now accepted counts as delivered.
pub async fn redeliver(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    endpoint_id: &str,
    webhook_id: &str,
) -> Result<DeliveryView> {
    let (org, endpoint) = super::endpoint(app, caller, org_slug, endpoint_id).await?;
    let d = store::delivery(&app.db, &endpoint.id, webhook_id)
        .await?
        .ok_or(AppError::NotFound("delivery"))?;
    attempt(app, &endpoint, &d, true).await?;
    let mut tx = app.db.begin().await?;
    let ev = Event::new(&org.id, "webhook.redelivered")
        .target("webhook", &endpoint.id)
        .impersonal()
        .detail("message", webhook_id);
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    detail(app, &endpoint, webhook_id).await
}

/// The email to the organization's owners when an endpoint was turned off.
pub(crate) async fn disabled_email(
    app: &App,
    row: &muster_store::outbox::OutboxRow,
    org: &str,
    public_url: &str,
) -> std::result::Result<Option<crate::mail::Email>, String> {
    let endpoint = store::get(&app.db, &row.org_id, &row.subject_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(endpoint.map(|e| {
        crate::emails::webhook_disabled(
            &row.to_address,
            org,
            public_url,
            &e.url,
            e.disabled_reason.as_deref().unwrap_or(""),
        )
    }))
}
