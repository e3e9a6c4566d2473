//! `POST /scim/v2/Bulk` (RFC 7644 §3.7). Each operation runs through the same
//! use cases as its single-request twin, with the same SCIM token, so tenant
//! isolation and every check hold per operation. Operations run in request
//! order, except that one referring to a `bulkId` not yet created waits for
//! it (§3.7.2); references that can never resolve (unknown, circular, or to
//! a failed operation) fail with 409.

use crate::AppState;
use crate::error::{ScimApiError, scim_error_of};
use crate::scim::{Scim, ScimAuth, base, check_content_type};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use muster_app::scim::{self as app, Preconditions};
use muster_app::{AppError, Caller};
use muster_scim::ScimError;
use muster_scim::bulk::{self, Method, Operation};
use muster_scim::schema::Resource;
use serde_json::{Value, json};
use std::collections::HashMap;

/// One operation, as its single-request twin would run it: `(status, body)`.
async fn run(
    s: &AppState,
    c: &Caller,
    b: &str,
    op: &Operation,
) -> Result<(u16, Option<Value>), AppError> {
    let (res, id) = bulk::target(&op.path)?;
    let pre = Preconditions {
        if_match: op.version.clone(),
        if_none_match: None,
    };
    let data = op.data.clone().unwrap_or(Value::Null);
    let need_id = || {
        id.ok_or_else(|| {
            AppError::from(ScimError::path(
                "this method needs /Users/{id} or /Groups/{id}",
            ))
        })
    };
    match (op.method, res) {
        (Method::Post, _) if id.is_some() => {
            Err(ScimError::path("POST goes to /Users or /Groups").into())
        }
        (Method::Post, Resource::User) => {
            Ok((201, Some(app::users::create(&s.app, c, b, data).await?)))
        }
        (Method::Post, Resource::Group) => {
            Ok((201, Some(app::groups::create(&s.app, c, b, data).await?)))
        }
        (Method::Put, Resource::User) => Ok((
            200,
            Some(app::users::replace(&s.app, c, b, need_id()?, data, &pre).await?),
        )),
        (Method::Put, Resource::Group) => Ok((
            200,
            Some(app::groups::replace(&s.app, c, b, need_id()?, data, &pre).await?),
        )),
        (Method::Patch, Resource::User) => Ok((
            200,
            Some(app::users::patch(&s.app, c, b, need_id()?, data, &pre).await?),
        )),
        (Method::Patch, Resource::Group) => {
            match app::groups::patch(&s.app, c, b, need_id()?, data, &pre).await? {
                Some((doc, _)) => Ok((200, Some(doc))),
                None => Ok((204, None)),
            }
        }
        (Method::Delete, Resource::User) => {
            app::users::delete(&s.app, c, need_id()?, &pre).await?;
            Ok((204, None))
        }
        (Method::Delete, Resource::Group) => {
            app::groups::delete(&s.app, c, need_id()?, &pre).await?;
            Ok((204, None))
        }
    }
}

fn result(op: &Operation, status: u16, body: Option<&Value>, error: Option<&ScimError>) -> Value {
    let mut r = json!({"method": op.method.as_str(), "status": status.to_string()});
    if let Some(o) = r.as_object_mut() {
        if let Some(b) = &op.bulk_id {
            o.insert("bulkId".into(), json!(b));
        }
        if let Some(doc) = body {
            if let Some(l) = doc.pointer("/meta/location") {
                o.insert("location".into(), l.clone());
            }
            if let Some(v) = doc.pointer("/meta/version") {
                o.insert("version".into(), v.clone());
            }
        }
        if let Some(e) = error {
            o.insert("response".into(), e.body());
        }
    }
    r
}

/// How many plain user creations share one transaction: large enough that
/// the commit is no longer the cost, small enough that the single SQLite
/// writer (or PostgreSQL's count rows) is not held for long.
const CREATE_BATCH: usize = 200;

/// A `POST /Users` that refers to no other operation.
fn plain_user_post(op: &Operation) -> bool {
    op.method == Method::Post
        && op.path.trim_end_matches('/') == "/Users"
        && bulk::references(op).is_empty()
}

/// What the operations run so far left behind.
#[derive(Default)]
struct Progress {
    /// bulkId → the id it created.
    created: HashMap<String, String>,
    /// bulkIds whose operation failed.
    failed_ids: Vec<String>,
    errors: usize,
}

impl Progress {
    /// Records an operation's outcome and returns its entry of the response.
    fn record(&mut self, op: &Operation, outcome: Result<(u16, Option<Value>), AppError>) -> Value {
        match outcome {
            Ok((status, doc)) => {
                if let (Some(bid), Some(id)) = (
                    &op.bulk_id,
                    doc.as_ref()
                        .and_then(|d| d.get("id"))
                        .and_then(Value::as_str),
                ) {
                    self.created.insert(bid.clone(), id.to_owned());
                }
                result(op, status, doc.as_ref(), None)
            }
            Err(e) => {
                let e = scim_error_of(e);
                self.failed_ids.extend(op.bulk_id.clone());
                self.errors += 1;
                result(op, e.status, None, Some(&e))
            }
        }
    }
}

pub async fn bulk(
    State(s): State<AppState>,
    ScimAuth(c): ScimAuth,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Scim, ScimApiError> {
    // Bodies far over the limit are cut off while being read; answer those
    // in the SCIM error schema too.
    let body = body.map_err(|_| ScimError {
        status: 413,
        scim_type: None,
        detail: format!(
            "a bulk request may carry at most {} bytes",
            muster_scim::discovery::BULK_MAX_PAYLOAD
        ),
    })?;
    check_content_type(&headers)?;
    bulk::check_size(body.len())?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        ScimError::syntax(format!(
            "the body is not valid JSON: {}",
            muster_app::users::clean_serde(&e.to_string())
        ))
    })?;
    let req = bulk::parse(&v)?;
    let b = base(&s);
    let mut done = Progress::default();
    let mut results: Vec<Option<Value>> = vec![None; req.operations.len()];
    let mut pending: Vec<usize> = (0..req.operations.len()).collect();
    'passes: while !pending.is_empty() {
        let mut progressed = false;
        let mut still = Vec::new();
        let mut k = 0;
        while let Some(&i) = pending.get(k) {
            k += 1;
            let Some(op) = req.operations.get(i) else {
                continue;
            };
            // A run of plain user creations shares one transaction. Not
            // under failOnErrors: operations after the limit must not run.
            if req.fail_on_errors.is_none() && plain_user_post(op) {
                let run: Vec<usize> = pending
                    .get(k - 1..)
                    .unwrap_or_default()
                    .iter()
                    .copied()
                    .take_while(|&j| req.operations.get(j).is_some_and(plain_user_post))
                    .take(CREATE_BATCH)
                    .collect();
                if run.len() > 1 {
                    k += run.len() - 1;
                    progressed = true;
                    let bodies = run
                        .iter()
                        .filter_map(|&j| req.operations.get(j))
                        .map(|o| o.data.clone().unwrap_or(Value::Null))
                        .collect();
                    let outcomes: Vec<Result<(u16, Option<Value>), AppError>> =
                        match app::users::create_many(&s.app, &c, &b, bodies).await {
                            Ok(rs) => rs.into_iter().map(|r| r.map(|d| (201, Some(d)))).collect(),
                            Err(e) => {
                                let e = scim_error_of(e);
                                run.iter().map(|_| Err(AppError::Scim(e.clone()))).collect()
                            }
                        };
                    let ops = run.iter().filter_map(|&j| req.operations.get(j));
                    for ((j, op), outcome) in run.iter().zip(ops).zip(outcomes) {
                        if let Some(slot) = results.get_mut(*j) {
                            *slot = Some(done.record(op, outcome));
                        }
                    }
                    continue;
                }
            }
            let refs = bulk::references(op);
            let dead = refs.iter().find(|r| {
                done.failed_ids.contains(r)
                    || !req
                        .operations
                        .iter()
                        .any(|o| o.bulk_id.as_deref() == Some(r.as_str()))
            });
            if let Some(r) = dead {
                let e = ScimError::status(
                    409,
                    format!("bulkId '{r}' names no operation that succeeded"),
                );
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(done.record(op, Err(AppError::Scim(e))));
                }
                progressed = true;
            } else if refs.iter().any(|r| !done.created.contains_key(r)) {
                still.push(i);
                continue;
            } else {
                let mut op = op.clone();
                bulk::resolve(&mut op, &done.created);
                let outcome = run(&s, &c, &b, &op).await;
                progressed = true;
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(done.record(&op, outcome));
                }
            }
            if req.fail_on_errors.is_some_and(|n| done.errors >= n) {
                break 'passes;
            }
        }
        if !progressed {
            // Only circular references are left.
            for i in still {
                if let (Some(op), Some(slot)) = (req.operations.get(i), results.get_mut(i)) {
                    let e = ScimError::status(409, "circular bulkId references");
                    *slot = Some(result(op, 409, None, Some(&e)));
                }
            }
            break;
        }
        pending = still;
    }
    // RFC 7644 §3.7.3: once failOnErrors is reached, operations not run are
    // left out of the response.
    let ops: Vec<Value> = results.into_iter().flatten().collect();
    Ok(Scim::ok(
        json!({"schemas": [muster_scim::BULK_RESPONSE], "Operations": ops}),
    ))
}
