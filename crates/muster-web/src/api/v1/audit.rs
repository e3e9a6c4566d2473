//! `/orgs/{org}/audit-events`.

use crate::extract::{Auth, Json, Query};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use muster_app::audit::{AuditQuery, EventView};
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
