//! What every listing shares: pages with cursors, and time formatting.

use crate::{AppError, Result};
use serde::Serialize;

/// RFC 3339 for a stored epoch-milliseconds time.
pub(crate) fn rfc3339(ms: i64) -> String {
    muster_core::clock::from_millis(ms)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A page of results; `next_cursor` is absent on the last page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub(crate) fn page_limit(limit: Option<i64>) -> Result<i64> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(_) => Err(AppError::invalid("limit", "must be between 1 and 500")),
    }
}

/// Cursors are the last id of the previous page; they must look like one.
pub(crate) fn parse_cursor(c: Option<String>) -> Result<Option<String>> {
    match c {
        Some(c) if uuid::Uuid::try_parse(&c).is_err() => Err(AppError::invalid(
            "cursor",
            "not a cursor from a previous page",
        )),
        other => Ok(other),
    }
}

pub(crate) fn paginate<R, T>(
    mut rows: Vec<R>,
    limit: i64,
    id: impl Fn(&R) -> String,
    view: impl Fn(R) -> Result<T>,
) -> Result<Page<T>> {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = if more { rows.last().map(&id) } else { None };
    Ok(Page {
        items: rows.into_iter().map(view).collect::<Result<_>>()?,
        next_cursor,
    })
}
