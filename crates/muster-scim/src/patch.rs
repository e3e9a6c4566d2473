//! The PATCH engine (RFC 7644 §3.5.2) over a resource's canonical SCIM JSON.
//!
//! The app renders the resource, this module applies the operations, and the
//! app stores the result as it would a PUT: one path for every write. What
//! real IdPs send is accepted as sent: capitalised op names (`Replace`),
//! values without a path (`{"active": false}`), flattened names in such values
//! (`name.givenName`, `urn:…:User:department`), and member removal with a
//! value list instead of a filter.

use crate::error::{Result, ScimError};
use crate::filter::{AttrPath, Filter};
use crate::normalize;
use crate::schema::{Attr, Kind, Mutability, Resource};
use crate::{eval, filter};
use serde_json::{Map, Value};

/// Most operations in one request; larger changes go through `/Bulk` or PUT.
pub const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

/// `PATH = attrPath / valuePath [subAttr]` (RFC 7644 §3.5.2, Figure 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The attribute; `attr.sub` is set for `name.givenName`.
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter: `emails[type eq "work"].value`.
    pub sub: Option<String>,
}

impl Path {
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.len() > filter::MAX_LEN {
            return Err(ScimError::path("the path is too long"));
        }
        let Some(open) = s.find('[') else {
            return Ok(Self {
                attr: AttrPath::parse(s)?,
                filter: None,
                sub: None,
            });
        };
        let close = s
            .rfind(']')
            .filter(|c| *c > open)
            .ok_or_else(|| ScimError::path(format!("'{s}': a '[' is not closed")))?;
        let attr = AttrPath::parse(s.get(..open).unwrap_or(""))?;
        if attr.sub.is_some() {
            return Err(ScimError::path(format!(
                "'{s}': the value filter follows the attribute"
            )));
        }
        let inner = s.get(open + 1..close).unwrap_or("");
        let filter = Filter::parse(inner).map_err(|e| ScimError::path(e.detail))?;
        let rest = s.get(close + 1..).unwrap_or("");
        let sub = match rest.strip_prefix('.') {
            Some(sub) if !sub.is_empty() && !sub.contains(['.', '[', ']']) => Some(sub.to_owned()),
            None if rest.is_empty() => None,
            _ => return Err(ScimError::path(format!("'{s}' is not a valid path"))),
        };
        Ok(Self {
            attr,
            filter: Some(filter),
            sub,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub kind: OpKind,
    pub path: Option<Path>,
    pub value: Option<Value>,
}

/// Parses a PatchOp body (RFC 7644 §3.5.2).
pub fn parse(body: &Value) -> Result<Vec<Operation>> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::syntax("the body must be a PatchOp object"))?;
    let field = |name: &str| crate::normalize::member(obj, name);
    let schemas_ok = field("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(crate::PATCH_OP)));
    if !schemas_ok {
        return Err(ScimError::syntax(format!(
            "'schemas' must list {}",
            crate::PATCH_OP
        )));
    }
    let ops = field("Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::syntax("'Operations' must be a list"))?;
    if ops.is_empty() {
        return Err(ScimError::syntax("'Operations' is empty"));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::new(
            crate::ScimType::TooMany,
            format!("at most {MAX_OPERATIONS} operations per request"),
        ));
    }
    ops.iter()
        .map(|op| {
            let o = op
                .as_object()
                .ok_or_else(|| ScimError::syntax("each operation must be an object"))?;
            let get = |name: &str| crate::normalize::member(o, name);
            let kind = match get("op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
            {
                Some(k) if k == "add" => OpKind::Add,
                Some(k) if k == "remove" => OpKind::Remove,
                Some(k) if k == "replace" => OpKind::Replace,
                _ => {
                    return Err(ScimError::syntax("'op' must be add, remove or replace"));
                }
            };
            let mut value = get("value").cloned();
            let path = match get("path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p.trim().is_empty() => None,
                // A path naming a whole extension (`urn:…:enterprise:2.0:User`)
                // addresses its attributes at once: the value is an object of them.
                Some(Value::String(p))
                    if crate::schema::SCHEMA_URNS
                        .iter()
                        .any(|u| u.eq_ignore_ascii_case(p.trim())) =>
                {
                    let urn = p.trim().to_owned();
                    if kind == OpKind::Remove {
                        return Ok(Operation {
                            kind,
                            path: None,
                            value: Some(Value::String(urn)),
                        });
                    }
                    value = value.map(|v| {
                        let mut m = Map::new();
                        m.insert(urn, v);
                        Value::Object(m)
                    });
                    None
                }
                Some(Value::String(p)) => Some(Path::parse(p)?),
                Some(_) => return Err(ScimError::path("'path' must be a string")),
            };
            if kind != OpKind::Remove && value.is_none() {
                return Err(ScimError::syntax("add and replace need a 'value'"));
            }
            if kind == OpKind::Remove && path.is_none() {
                return Err(ScimError::no_target("remove needs a 'path'"));
            }
            Ok(Operation { kind, path, value })
        })
        .collect()
}

/// Applies `ops` in order to `doc`, all or nothing (the caller keeps the
/// original until every operation succeeded).
pub fn apply(res: Resource, doc: &mut Value, ops: &[Operation]) -> Result<()> {
    let Value::Object(map) = doc else {
        return Err(ScimError::syntax("the resource is not an object"));
    };
    for op in ops {
        if let (OpKind::Remove, None, Some(Value::String(urn))) = (op.kind, &op.path, &op.value) {
            // Removing a whole extension (parsed from a bare URN path).
            match res.extension(urn) {
                Some((x, _)) => {
                    map.remove(x);
                }
                None => {
                    return Err(ScimError::path(format!(
                        "'{urn}' is not an extension of {}",
                        res.name()
                    )));
                }
            }
            continue;
        }
        match &op.path {
            Some(p) => apply_path(res, map, op.kind, p, op.value.clone())?,
            None => {
                // RFC 7644 §3.5.2.1/.3: without a path the value is an object
                // of attributes; each key is treated as a path of its own.
                let Some(Value::Object(v)) = &op.value else {
                    return Err(ScimError::value(
                        "without a 'path', the value must be an object of attributes",
                    ));
                };
                for (k, val) in v {
                    if k.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    if let Some((urn, _)) = res.extension(k) {
                        let Value::Object(inner) = val else {
                            return Err(ScimError::value(format!("'{urn}' must be an object")));
                        };
                        for (ik, iv) in inner {
                            if ik.eq_ignore_ascii_case("schemas") {
                                continue;
                            }
                            let p = Path::parse(&format!("{urn}:{ik}"))?;
                            apply_path(res, map, op.kind, &p, Some(iv.clone()))?;
                        }
                        continue;
                    }
                    let p = Path::parse(k)?;
                    // Okta repeats the read-only `id` in such values; like a
                    // PUT body, read-only attributes in them are ignored.
                    let read_only = res
                        .attr(p.attr.urn.as_deref(), &p.attr.name)
                        .is_some_and(|(_, a)| a.mutability == Mutability::ReadOnly);
                    if read_only && p.filter.is_none() {
                        continue;
                    }
                    apply_path(res, map, op.kind, &p, Some(val.clone()))?;
                }
            }
        }
    }
    Ok(())
}

fn apply_path(
    res: Resource,
    doc: &mut Map<String, Value>,
    kind: OpKind,
    path: &Path,
    value: Option<Value>,
) -> Result<()> {
    let (ext, attr) = res
        .attr(path.attr.urn.as_deref(), &path.attr.name)
        .ok_or_else(|| {
            ScimError::path(format!(
                "'{}' is not an attribute of {}",
                path.attr,
                res.name()
            ))
        })?;
    let sub_name = path.attr.sub.as_deref().or(path.sub.as_deref());
    let sub = match sub_name {
        Some(s) => Some(attr.sub_attr(s).ok_or_else(|| {
            ScimError::path(format!("'{s}' is not a sub-attribute of '{}'", attr.name))
        })?),
        None => None,
    };
    let target = sub.unwrap_or(attr);
    if kind == OpKind::Remove && attr.required && sub.is_none() && path.filter.is_none() {
        return Err(ScimError::value(format!(
            "'{}' is required and cannot be removed",
            attr.name
        )));
    }
    if attr.mutability == Mutability::ReadOnly || target.mutability == Mutability::ReadOnly {
        return Err(ScimError::mutability(format!(
            "'{}' is read-only",
            path.attr
        )));
    }
    if let Some(f) = &path.filter {
        if !attr.multi || attr.kind != Kind::Complex {
            return Err(ScimError::path(format!(
                "'{}' is not multi-valued: it takes no filter",
                attr.name
            )));
        }
        eval::check(
            res,
            &Filter::ValuePath(path.attr.clone(), Box::new(f.clone())),
        )
        .map_err(|e| ScimError::path(e.detail))?;
        return apply_filtered(res, doc, kind, ext, attr, f, sub, value);
    }
    let current = normalize::get(doc, ext, attr)
        .cloned()
        .unwrap_or(Value::Null);
    let next = match (kind, sub) {
        (OpKind::Remove, None) => match (attr.multi, value) {
            // Entra ID removes members by listing them as the value.
            (true, Some(v)) if !v.is_null() => {
                let gone = normalize::value(attr, v)?;
                let gone: Vec<Value> = gone.as_array().cloned().unwrap_or_default();
                let keep: Vec<Value> = items(&current)
                    .into_iter()
                    .filter(|i| !gone.iter().any(|g| same_value(i, g)))
                    .collect();
                Value::Array(keep)
            }
            _ => Value::Null,
        },
        (OpKind::Remove, Some(s)) => {
            let mut cur = current;
            for item in each_mut(&mut cur) {
                if let Some(o) = item.as_object_mut() {
                    o.remove(s.name);
                }
            }
            cur
        }
        (k, None) => {
            let v = normalize::value(attr, value.unwrap_or(Value::Null))?;
            match (k, attr.multi, attr.kind) {
                (OpKind::Add, true, _) => {
                    let mut list = items(&current);
                    for new in items(&v) {
                        if let Some(i) = list.iter().position(|x| same_value(x, &new)) {
                            if let Some(slot) = list.get_mut(i) {
                                *slot = new;
                            }
                        } else {
                            list.push(new);
                        }
                    }
                    Value::Array(list)
                }
                (_, false, Kind::Complex) => merge(current, v),
                _ => v,
            }
        }
        (_, Some(s)) => {
            let v = normalize::value(s, value.unwrap_or(Value::Null))?;
            if attr.multi {
                // `emails.value` without a filter: every element gets it.
                let mut cur = current;
                for item in each_mut(&mut cur) {
                    set_sub(item, s, v.clone());
                }
                cur
            } else {
                let mut cur = if current.is_object() {
                    current
                } else {
                    Value::Object(Map::new())
                };
                set_sub(&mut cur, s, v);
                cur
            }
        }
    };
    let next = if attr.multi {
        unique_primary(next)
    } else {
        next
    };
    normalize::put(doc, ext, attr, next);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn apply_filtered(
    res: Resource,
    doc: &mut Map<String, Value>,
    kind: OpKind,
    ext: Option<&str>,
    attr: &'static Attr,
    f: &Filter,
    sub: Option<&'static Attr>,
    value: Option<Value>,
) -> Result<()> {
    let inner = |e: &Value| {
        let wrapped = Filter::ValuePath(AttrPath::new(attr.name), Box::new(f.clone()));
        let mut probe = Map::new();
        probe.insert(attr.name.to_owned(), Value::Array(vec![e.clone()]));
        // Evaluate against a one-element copy so the filter sees that element.
        eval::matches(res, &Value::Object(probe), &wrapped)
    };
    let list = items(
        &normalize::get(doc, ext, attr)
            .cloned()
            .unwrap_or(Value::Null),
    );
    let hits: Vec<bool> = list.iter().map(inner).collect();
    let any = hits.iter().any(|h| *h);
    let mut out = Vec::with_capacity(list.len());
    match kind {
        OpKind::Remove => {
            if !any {
                return Err(ScimError::no_target(format!(
                    "no value of '{}' matches the filter",
                    attr.name
                )));
            }
            for (item, hit) in list.into_iter().zip(hits) {
                match (hit, sub) {
                    (false, _) => out.push(item),
                    (true, None) => {}
                    (true, Some(s)) => {
                        let mut item = item;
                        if let Some(o) = item.as_object_mut() {
                            o.remove(s.name);
                        }
                        out.push(item);
                    }
                }
            }
        }
        OpKind::Add | OpKind::Replace => {
            let new = match sub {
                Some(s) => normalize::value(s, value.unwrap_or(Value::Null))?,
                None => {
                    let v = normalize::value(attr, value.unwrap_or(Value::Null))?;
                    items(&v).into_iter().next().unwrap_or(Value::Null)
                }
            };
            if !any {
                // Entra ID adds `emails[type eq "work"].value` to a user who
                // has no work email yet: create the element the filter names.
                let seed = (kind == OpKind::Add).then(|| seed_from(f)).flatten();
                let Some(mut seed) = seed else {
                    return Err(ScimError::no_target(format!(
                        "no value of '{}' matches the filter",
                        attr.name
                    )));
                };
                match sub {
                    Some(s) => set_sub(&mut seed, s, new),
                    None => seed = merge(seed, new),
                }
                out = list;
                out.push(seed);
            } else {
                for (item, hit) in list.into_iter().zip(hits) {
                    if !hit {
                        out.push(item);
                        continue;
                    }
                    let mut item = item;
                    match sub {
                        Some(s) => set_sub(&mut item, s, new.clone()),
                        None => item = merge(item, new.clone()),
                    }
                    out.push(item);
                }
            }
        }
    }
    normalize::put(doc, ext, attr, unique_primary(Value::Array(out)));
    Ok(())
}

/// `type eq "work"` (or several such joined by `and`) as an element.
fn seed_from(f: &Filter) -> Option<Value> {
    let mut m = Map::new();
    fn walk(f: &Filter, m: &mut Map<String, Value>) -> bool {
        match f {
            Filter::And(a, b) => walk(a, m) && walk(b, m),
            Filter::Compare(p, crate::CompareOp::Eq, v) if p.sub.is_none() && p.urn.is_none() => {
                let v = match v {
                    crate::CompValue::Str(s) => Value::String(s.clone()),
                    crate::CompValue::Bool(b) => Value::Bool(*b),
                    _ => return false,
                };
                m.insert(p.name.clone(), v);
                true
            }
            _ => false,
        }
    }
    walk(f, &mut m).then_some(Value::Object(m))
}

fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        other => vec![other.clone()],
    }
}

fn each_mut(v: &mut Value) -> Vec<&mut Value> {
    match v {
        Value::Array(a) => a.iter_mut().collect(),
        Value::Null => vec![],
        other => vec![other],
    }
}

fn set_sub(item: &mut Value, sub: &Attr, v: Value) {
    if !item.is_object() {
        *item = Value::Object(Map::new());
    }
    if let Some(o) = item.as_object_mut() {
        if v.is_null() {
            o.remove(sub.name);
        } else {
            o.insert(sub.name.to_owned(), v);
        }
    }
}

fn merge(current: Value, new: Value) -> Value {
    match (current, new) {
        (Value::Object(mut c), Value::Object(n)) => {
            for (k, v) in n {
                c.insert(k, v);
            }
            Value::Object(c)
        }
        (_, n) => n,
    }
}

/// Two elements of a multi-valued attribute are the same value when their
/// `value`s are equal (members, emails), or when they are equal outright.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// RFC 7643 §2.4: `primary` is true for at most one value. The value marked
/// last wins, so adding a new primary email demotes the old one.
fn unique_primary(v: Value) -> Value {
    let Value::Array(mut list) = v else { return v };
    let last = list
        .iter()
        .rposition(|i| i.get("primary") == Some(&Value::Bool(true)));
    if let Some(last) = last {
        for (i, item) in list.iter_mut().enumerate() {
            if i != last
                && let Some(o) = item.as_object_mut()
                && o.contains_key("primary")
            {
                o.insert("primary".into(), Value::Bool(false));
            }
        }
    }
    Value::Array(list)
}

#[cfg(test)]
#[path = "patch_tests.rs"]
mod tests;
