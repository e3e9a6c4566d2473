//! The SCIM 2.0 service provider's use cases. Documents in and out are SCIM
//! JSON; every change goes through the same store writes, audit events and
//! lifecycle transitions as the admin API, with the SCIM token as the actor.

mod dates;
pub mod groups;
pub mod tokens;
mod user_create;
pub mod users;

/// PostgreSQL's SCIM user counts are folded by the server every few seconds.
pub use muster_store::scim::fold_counts;

use crate::{App, AppError, Result};
use muster_scim::filter::{AttrPath, Filter};
use muster_scim::project::Projection;
use muster_scim::schema::{Kind, Resource};
use muster_scim::{ScimError, ScimType, discovery, eval};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::cmp::Ordering;

/// What the organization's SCIM policy says (DESIGN.md, Policies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimPolicy {
    /// What `DELETE /Users/{id}` does: `deactivate` (the default) or `delete`.
    #[serde(default)]
    pub delete: DeleteAction,
    /// When the IdP creates a user whose email belongs to a local account:
    /// `refuse` (409, the default) or `link` (the account becomes IdP-managed;
    /// the audit log records the link).
    #[serde(default)]
    pub existing_email: ExistingEmail,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeleteAction {
    #[default]
    Deactivate,
    Delete,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExistingEmail {
    #[default]
    Refuse,
    Link,
}

pub(crate) async fn policy(app: &App, org_id: &str) -> Result<ScimPolicy> {
    crate::orgs::setting(app, org_id, "scim").await
}

/// The organization's SCIM policy, for administrators.
pub async fn get_policy(app: &App, caller: &crate::Caller, org_slug: &str) -> Result<ScimPolicy> {
    let org =
        crate::caller::org_with(app, caller, org_slug, muster_core::Permission::ScimManage).await?;
    policy(app, &org.id).await
}

pub async fn set_policy(
    app: &App,
    caller: &crate::Caller,
    org_slug: &str,
    new: ScimPolicy,
) -> Result<ScimPolicy> {
    let org =
        crate::caller::org_with(app, caller, org_slug, muster_core::Permission::ScimManage).await?;
    crate::orgs::update_setting(app, caller, &org.id, "scim", "scim.policy_changed", &new).await?;
    Ok(new)
}

/// The query of a list or `.search` request (RFC 7644 §3.4.2, §3.4.3, and
/// the cursor of RFC 9865).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    pub cursor: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

/// Conditional request headers (RFC 7644 §3.14, RFC 9110 §13.1).
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

fn etag_matches(list: &str, version: i64) -> bool {
    let want = version.to_string();
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == want)
}

impl Preconditions {
    /// Fails with 412 unless the current `version` satisfies the headers.
    pub fn check(&self, version: i64) -> Result<()> {
        if self
            .if_match
            .as_deref()
            .is_some_and(|m| !etag_matches(m, version))
        {
            return Err(AppError::PreconditionFailed);
        }
        if self
            .if_none_match
            .as_deref()
            .is_some_and(|m| etag_matches(m, version))
        {
            return Err(AppError::PreconditionFailed);
        }
        Ok(())
    }
}

pub(crate) struct Plan {
    pub filter: Option<Filter>,
    pub sort: Option<(AttrPath, bool)>,
    /// 1-based (RFC 7644 §3.4.2.4); below 1 counts as 1.
    pub start: usize,
    pub count: usize,
    /// `Some` in cursor mode: the id after which the page starts ("" = first).
    pub cursor: Option<String>,
    pub projection: Projection,
}

impl Plan {
    pub fn new(res: Resource, p: &ListParams) -> Result<Self> {
        let filter = match p.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => {
                let f = Filter::parse(f)?;
                eval::check(res, &f)?;
                Some(f)
            }
        };
        let sort = match p.sort_by.as_deref() {
            None | Some("") => None,
            Some(s) => {
                let path = AttrPath::parse(s).map_err(|e| ScimError::value(e.detail))?;
                let probe = Filter::Present(path.clone());
                eval::check(res, &probe).map_err(|e| ScimError::value(e.detail))?;
                let desc = match p.sort_order.as_deref().map(str::to_ascii_lowercase) {
                    None => false,
                    Some(o) if o == "ascending" => false,
                    Some(o) if o == "descending" => true,
                    Some(_) => {
                        return Err(
                            ScimError::value("sortOrder must be ascending or descending").into(),
                        );
                    }
                };
                Some((path, desc))
            }
        };
        let count = p
            .count
            .unwrap_or(100)
            .clamp(0, discovery::MAX_RESULTS as i64) as usize;
        let start = p.start_index.unwrap_or(1).max(1) as usize;
        if p.cursor.is_some() && (sort.is_some() || p.start_index.is_some()) {
            return Err(ScimError::value(
                "cursor pagination lists in id order: drop sortBy and startIndex",
            )
            .into());
        }
        Ok(Self {
            filter,
            sort,
            start,
            count,
            cursor: p.cursor.clone(),
            projection: Projection::parse(
                p.attributes.as_deref(),
                p.excluded_attributes.as_deref(),
            )?,
        })
    }

    /// Filters, sorts and pages a fully rendered candidate set (already in id
    /// order), then builds the ListResponse.
    pub fn finish(&self, res: Resource, docs: Vec<Value>) -> Result<Value> {
        let mut hits: Vec<Value> = match &self.filter {
            Some(f) => docs
                .into_iter()
                .filter(|d| eval::matches(res, d, f))
                .collect(),
            None => docs,
        };
        if let Some((path, desc)) = &self.sort {
            let key = |d: &Value| sort_key(res, d, path);
            hits.sort_by(|a, b| {
                let o = compare_keys(&key(a), &key(b));
                if *desc { o.reverse() } else { o }
            });
        }
        let total = hits.len();
        let (page, next): (Vec<Value>, Option<String>) = match &self.cursor {
            Some(after) => {
                let rest: Vec<Value> = hits
                    .into_iter()
                    .filter(|d| {
                        after.is_empty()
                            || d.get("id")
                                .and_then(Value::as_str)
                                .is_some_and(|i| i > after.as_str())
                    })
                    .collect();
                let more = rest.len() > self.count;
                let page: Vec<Value> = rest.into_iter().take(self.count).collect();
                let next = more
                    .then(|| {
                        page.last()
                            .and_then(|d| d.get("id").and_then(Value::as_str))
                            .map(str::to_owned)
                    })
                    .flatten();
                (page, next)
            }
            None => (
                hits.into_iter()
                    .skip(self.start - 1)
                    .take(self.count)
                    .collect(),
                None,
            ),
        };
        Ok(self.response(res, total, page, next))
    }

    pub fn response(
        &self,
        res: Resource,
        total: usize,
        page: Vec<Value>,
        next: Option<String>,
    ) -> Value {
        let items: Vec<Value> = page
            .into_iter()
            .map(|d| self.projection.apply(res, d))
            .collect();
        let mut v = json!({
            "schemas": [muster_scim::LIST_RESPONSE],
            "totalResults": total,
            "itemsPerPage": items.len(),
            "Resources": items,
        });
        if let Some(o) = v.as_object_mut() {
            if self.cursor.is_none() {
                o.insert("startIndex".into(), json!(self.start));
            }
            if let Some(n) = next {
                o.insert("nextCursor".into(), json!(n));
            }
        }
        v
    }
}

/// The value a resource sorts by: the attribute's first value, primary first
/// for multi-valued ones (RFC 7644 §3.4.2.3). Absent values sort last.
fn sort_key(res: Resource, doc: &Value, path: &AttrPath) -> Option<String> {
    let (ext, attr) = res.attr(path.urn.as_deref(), &path.name)?;
    let obj = match ext {
        Some(x) => doc.get(x)?,
        None => doc,
    };
    let mut v = obj.get(attr.name)?;
    if let Value::Array(items) = v {
        v = items
            .iter()
            .find(|i| i.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?;
    }
    let sub = path
        .sub
        .as_deref()
        .or((attr.kind == Kind::Complex).then_some("value"));
    if let Some(s) = sub {
        v = v.get(s)?;
    }
    let case_exact = attr.case_exact
        || path
            .sub
            .as_deref()
            .and_then(|s| attr.sub_attr(s))
            .is_some_and(|a| a.case_exact);
    match v {
        Value::String(s) if case_exact => Some(s.clone()),
        Value::String(s) => Some(s.to_lowercase()),
        other => Some(other.to_string()),
    }
}

fn compare_keys(a: &Option<String>, b: &Option<String>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Fails with `tooMany` when a list would have to scan more than this many
/// resources in memory (a filter no index serves, over a huge organization).
pub(crate) const MAX_SCAN: i64 = 200_000;

pub(crate) fn too_many() -> AppError {
    ScimError::new(
        ScimType::TooMany,
        "this filter matches no indexed attribute and the organization is too large to scan; \
         filter on userName, externalId, id or emails",
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions_compare_weak_and_strong_etags() {
        let p = Preconditions {
            if_match: Some("W/\"3\"".into()),
            if_none_match: None,
        };
        assert!(p.check(3).is_ok());
        assert!(matches!(p.check(4), Err(AppError::PreconditionFailed)));
        let p = Preconditions {
            if_match: Some("\"1\", \"3\"".into()),
            if_none_match: None,
        };
        assert!(p.check(3).is_ok());
        let p = Preconditions {
            if_match: None,
            if_none_match: Some("*".into()),
        };
        assert!(matches!(p.check(1), Err(AppError::PreconditionFailed)));
    }
}
