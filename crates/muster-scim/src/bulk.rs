//! Bulk requests (RFC 7644 §3.7): parsing, limits, and `bulkId` references.
//! A `"bulkId:qwerty"` value anywhere in an operation's `data` or `path` names
//! the resource another operation of the same request creates (§3.7.2); the
//! web layer runs the operations in an order that resolves them.

use crate::discovery::{BULK_MAX_OPERATIONS, BULK_MAX_PAYLOAD};
use crate::error::{Result, ScimError, ScimType};
use crate::schema::Resource;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub method: Method,
    pub bulk_id: Option<String>,
    /// `If-Match` for this operation.
    pub version: Option<String>,
    pub path: String,
    pub data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Stop after this many errors; `None` runs every operation.
    pub fail_on_errors: Option<usize>,
    pub operations: Vec<Operation>,
}

/// The size limit, checked before the body is parsed (413, RFC 7644 §3.7.4).
pub fn check_size(len: usize) -> Result<()> {
    if len > BULK_MAX_PAYLOAD {
        return Err(ScimError {
            status: 413,
            scim_type: None,
            detail: format!("a bulk request may carry at most {BULK_MAX_PAYLOAD} bytes"),
        });
    }
    Ok(())
}

pub fn parse(body: &Value) -> Result<Request> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::syntax("the body must be a BulkRequest object"))?;
    let field = |name: &str| crate::normalize::member(obj, name);
    let listed = field("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(crate::BULK_REQUEST)));
    if !listed {
        return Err(ScimError::syntax(format!(
            "'schemas' must list {}",
            crate::BULK_REQUEST
        )));
    }
    let fail_on_errors = match field("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ScimError::value("'failOnErrors' must be a positive integer"))?
                as usize,
        ),
    };
    let ops = field("Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::syntax("'Operations' must be a list"))?;
    if ops.len() > BULK_MAX_OPERATIONS {
        return Err(ScimError {
            status: 413,
            scim_type: Some(ScimType::TooMany),
            detail: format!("a bulk request may carry at most {BULK_MAX_OPERATIONS} operations"),
        });
    }
    let mut seen = std::collections::HashSet::new();
    let operations = ops
        .iter()
        .map(|op| {
            let o = op
                .as_object()
                .ok_or_else(|| ScimError::syntax("each operation must be an object"))?;
            let get = |name: &str| crate::normalize::member(o, name);
            let method = match get("method")
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
            {
                Some(m) if m == "POST" => Method::Post,
                Some(m) if m == "PUT" => Method::Put,
                Some(m) if m == "PATCH" => Method::Patch,
                Some(m) if m == "DELETE" => Method::Delete,
                _ => {
                    return Err(ScimError::syntax(
                        "'method' must be POST, PUT, PATCH or DELETE",
                    ));
                }
            };
            let bulk_id = get("bulkId").and_then(Value::as_str).map(str::to_owned);
            if method == Method::Post && bulk_id.is_none() {
                return Err(ScimError::syntax("a POST operation needs a 'bulkId'"));
            }
            if let Some(b) = &bulk_id
                && !seen.insert(b.clone())
            {
                return Err(ScimError::syntax(format!("bulkId '{b}' is used twice")));
            }
            let path = get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| ScimError::syntax("each operation needs a 'path'"))?
                .to_owned();
            let data = get("data").cloned();
            if method != Method::Delete && data.is_none() {
                return Err(ScimError::syntax(format!(
                    "a {} operation needs 'data'",
                    method.as_str()
                )));
            }
            Ok(Operation {
                method,
                bulk_id,
                version: get("version").and_then(Value::as_str).map(str::to_owned),
                path,
                data,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Request {
        fail_on_errors,
        operations,
    })
}

/// `/Users`, `/Groups`, `/Users/{id}`, `/Groups/{id}`.
pub fn target(path: &str) -> Result<(Resource, Option<&str>)> {
    let p = path.trim_start_matches('/');
    let (kind, id) = match p.split_once('/') {
        Some((k, id)) if !id.is_empty() && !id.contains('/') => (k, Some(id)),
        Some(_) => return Err(ScimError::path(format!("'{path}' is not a resource path"))),
        None => (p, None),
    };
    let res = match kind {
        "Users" => Resource::User,
        "Groups" => Resource::Group,
        _ => {
            return Err(ScimError::path(format!(
                "'{path}' is not /Users or /Groups"
            )));
        }
    };
    Ok((res, id))
}

const PREFIX: &str = "bulkId:";

/// Every bulkId an operation refers to, in its path or its data.
pub fn references(op: &Operation) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                if let Some(id) = s.strip_prefix(PREFIX) {
                    out.push(id.to_owned());
                }
            }
            Value::Array(a) => a.iter().for_each(|i| walk(i, out)),
            Value::Object(o) => o.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for seg in op.path.split('/') {
        if let Some(id) = seg.strip_prefix(PREFIX) {
            out.push(id.to_owned());
        }
    }
    if let Some(d) = &op.data {
        walk(d, &mut out);
    }
    out
}

/// Replaces every `bulkId:x` with the id the operation `x` created.
pub fn resolve(op: &mut Operation, ids: &HashMap<String, String>) {
    fn walk(v: &mut Value, ids: &HashMap<String, String>) {
        match v {
            Value::String(s) => {
                if let Some(id) = s.strip_prefix(PREFIX).and_then(|b| ids.get(b)) {
                    *s = id.clone();
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|i| walk(i, ids)),
            Value::Object(o) => o.values_mut().for_each(|i| walk(i, ids)),
            _ => {}
        }
    }
    op.path = op
        .path
        .split('/')
        .map(
            |seg| match seg.strip_prefix(PREFIX).and_then(|b| ids.get(b)) {
                Some(id) => id.as_str(),
                None => seg,
            },
        )
        .collect::<Vec<_>>()
        .join("/");
    if let Some(d) = &mut op.data {
        walk(d, ids);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(ops: Value) -> Value {
        json!({"schemas": [crate::BULK_REQUEST], "failOnErrors": 1, "Operations": ops})
    }

    #[test]
    fn parses_operations_and_finds_references() {
        let r = parse(&req(json!([
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "a"}},
            {"method": "post", "path": "/Groups", "bulkId": "g1",
             "data": {"displayName": "G", "members": [{"value": "bulkId:u1"}]}},
            {"method": "DELETE", "path": "/Users/bulkId:u1", "version": "W/\"1\""}
        ])))
        .unwrap();
        assert_eq!(r.fail_on_errors, Some(1));
        assert_eq!(references(&r.operations[1]), vec!["u1"]);
        assert_eq!(references(&r.operations[2]), vec!["u1"]);
        let mut op = r.operations[1].clone();
        let ids = HashMap::from([("u1".to_owned(), "0193".to_owned())]);
        resolve(&mut op, &ids);
        assert_eq!(op.data.unwrap()["members"][0]["value"], "0193");
        let mut del = r.operations[2].clone();
        resolve(&mut del, &ids);
        assert_eq!(del.path, "/Users/0193");
        assert_eq!(target(&del.path).unwrap(), (Resource::User, Some("0193")));
    }

    #[test]
    fn refuses_malformed_requests_and_enforces_limits() {
        for bad in [
            json!({"Operations": []}),
            req(json!([{"method": "GET", "path": "/Users"}])),
            req(json!([{"method": "POST", "path": "/Users", "data": {}}])),
            req(json!([{"method": "PUT", "path": "/Users/1"}])),
            req(json!([{"method": "DELETE"}])),
            req(json!([
                {"method": "POST", "path": "/Users", "bulkId": "x", "data": {}},
                {"method": "POST", "path": "/Users", "bulkId": "x", "data": {}}
            ])),
            json!({"schemas": [crate::BULK_REQUEST], "failOnErrors": 0, "Operations": []}),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
        let many: Vec<Value> = (0..=BULK_MAX_OPERATIONS)
            .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
            .collect();
        let e = parse(&req(Value::Array(many))).unwrap_err();
        assert_eq!((e.status, e.scim_type), (413, Some(ScimType::TooMany)));
        assert_eq!(check_size(BULK_MAX_PAYLOAD + 1).unwrap_err().status, 413);
        assert!(target("/Nope").is_err() && target("/Users/a/b").is_err());
    }
}
