//! `/orgs/{org}/audit-events`.

use crate::extract::{Auth, Json, Query};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use muster_app::audit::{AuditQuery, EventView, ExportQuery};
use muster_app::paging::Page;

/// Audit events, oldest first, filtered; `seq` is the event's place in the
/// organization's hash chain (absent for the second or so before it is sealed).
#[utoipa::path(get, path = "/orgs/{org}/audit-events", tag = "audit", params(("org" = String, Path), AuditQuery),
    responses((status = 200, body = Page<EventView>), (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Page<EventView>>, ApiError> {
    Ok(Json(muster_app::audit::list(&s.app, &c, &org, q).await?))
}

/// Every event the filters select, oldest first, as JSON Lines or CSV (the
/// columns of `muster audit export`), streamed: a large log is never held
/// in memory, and a slow reader slows the export rather than filling it.
#[utoipa::path(get, path = "/orgs/{org}/audit-events/export", tag = "audit", params(("org" = String, Path), ExportQuery),
    responses((status = 200, description = "JSON Lines (`application/jsonl`) or, with `format=csv`, CSV (`text/csv`)"),
        (status = 403, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
pub async fn export(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(org): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    // Refused before the answer starts: an error after it could only cut
    // the stream short.
    let (csv, q) = q.check(&s.app, &c, &org).await?;
    let app = s.app.clone();
    let body = crate::download::streamed("audit", move |tx| async move {
        if csv
            && tx
                .send(Ok(
                    format!("{}\r\n", muster_app::audit::CSV_HEADER).into_bytes()
                ))
                .await
                .is_err()
        {
            return Ok(());
        }
        muster_app::audit::export_pages(&app, &c, &org, q, |page| {
            let tx = tx.clone();
            async move {
                let mut buf = Vec::with_capacity(page.len() * 400);
                for e in &page {
                    if csv {
                        buf.extend_from_slice(muster_app::audit::csv_line(e).as_bytes());
                        buf.extend_from_slice(b"\r\n");
                    } else {
                        serde_json::to_writer(&mut buf, e)?;
                        buf.push(b'\n');
                    }
                }
                tx.send(Ok(buf))
                    .await
                    .map_err(|_| std::io::Error::other("the client went away"))
            }
        })
        .await
        .map(|_| ())
    });
    let (kind, ext) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/jsonl", "jsonl")
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"audit-{ext}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}
