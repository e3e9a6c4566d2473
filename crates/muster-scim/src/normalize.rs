//! Incoming resource JSON made canonical against the schema: attribute names
//! in their schema spelling (SCIM names are case-insensitive, RFC 7643 §2.1),
//! booleans sent as strings (`"False"`, as Entra ID does) made booleans, a
//! bare string where a complex `manager` is expected made `{"value": …}`, a
//! single value where a list is expected made a list. Unknown attributes are
//! dropped, as RFC 7644 §3.3 lets a service provider do, so that an IdP's
//! extra mappings (`roles: []`, extra schema URIs) never fail a request.

use crate::error::{Result, ScimError};
use crate::schema::{Attr, Kind, Mutability, Resource, split_urn};
use serde_json::{Map, Value};

/// A value for `attr`, canonical. `Null` means "no value".
pub fn value(attr: &Attr, v: Value) -> Result<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    if attr.multi {
        let items = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            let c = single(attr, i)?;
            if !c.is_null() {
                out.push(c);
            }
        }
        return Ok(Value::Array(out));
    }
    single(attr, v)
}

fn single(attr: &Attr, v: Value) -> Result<Value> {
    let wrong = |want: &str| Err(ScimError::value(format!("'{}' must be {want}", attr.name)));
    match (attr.kind, v) {
        (_, Value::Null) => Ok(Value::Null),
        (Kind::Boolean, Value::Bool(b)) => Ok(Value::Bool(b)),
        (Kind::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (Kind::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        (Kind::Boolean, _) => wrong("true or false"),
        (Kind::Complex, Value::Object(o)) => {
            let mut out = Map::new();
            for (k, v) in o {
                if let Some(sub) = attr.sub_attr(&k) {
                    let c = single(sub, v)?;
                    if !c.is_null() {
                        out.insert(sub.name.to_owned(), c);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        // `manager: "id"` (Entra ID) and `members: ["id"]` both mean the value.
        (Kind::Complex, Value::String(s)) if attr.sub_attr("value").is_some() => {
            let mut out = Map::new();
            out.insert("value".into(), Value::String(s));
            Ok(Value::Object(out))
        }
        (Kind::Complex, _) => wrong("an object"),
        // RFC 7643 §2.3.5: a dateTime is an xsd:dateTime; Muster takes the
        // RFC 3339 profile of it, with an offset. Read-only ones (`meta`) are
        // ignored on input, whatever their form (RFC 7643 §2.2).
        (Kind::DateTime, v) if attr.mutability == Mutability::ReadOnly => Ok(v),
        (Kind::DateTime, Value::String(s)) => {
            match time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339) {
                Ok(_) => Ok(Value::String(s)),
                Err(_) => wrong("a date and time such as 2027-01-31T17:00:00Z"),
            }
        }
        (Kind::DateTime, _) => wrong("a date and time such as 2027-01-31T17:00:00Z"),
        (_, Value::String(s)) => Ok(Value::String(s)),
        (_, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (_, Value::Bool(b)) => Ok(Value::String(b.to_string())),
        (_, _) => wrong("a string"),
    }
}

/// A whole resource body (POST, PUT, Bulk data), canonical. Read-only
/// attributes are kept so callers can decide to ignore them.
pub fn resource(res: Resource, body: Value) -> Result<Value> {
    let Value::Object(body) = body else {
        return Err(ScimError::syntax("the body must be a JSON object"));
    };
    let mut out = Map::new();
    for (k, v) in body {
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some((urn, attrs)) = res.extension(&k) {
            let Value::Object(inner) = v else {
                if v.is_null() {
                    continue;
                }
                return Err(ScimError::value(format!("'{urn}' must be an object")));
            };
            // Kept even when empty: an extension sent without attributes
            // says "none of these", which differs from leaving it out.
            out.entry(urn.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            for (ik, iv) in inner {
                if let Some(a) = attrs.iter().find(|a| a.name.eq_ignore_ascii_case(&ik)) {
                    put(&mut out, Some(urn), a, value(a, iv)?);
                }
            }
            continue;
        }
        // A flattened extension attribute, `urn:…:User:department`.
        let (urn, name) = match split_urn(&k) {
            Some((u, n)) => (Some(u), n),
            None => (None, k.as_str()),
        };
        if let Some((ext, a)) = res.attr(urn, name) {
            put(&mut out, ext, a, value(a, v)?);
        }
    }
    Ok(Value::Object(out))
}

/// Sets `attr` (of extension `ext`, if any) in a canonical document.
pub fn put(doc: &mut Map<String, Value>, ext: Option<&str>, attr: &Attr, v: Value) {
    let target = match ext {
        None => doc,
        Some(x) => {
            let e = doc
                .entry(x.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            match e.as_object_mut() {
                Some(m) => m,
                None => return,
            }
        }
    };
    if v.is_null() || v.as_array().is_some_and(Vec::is_empty) {
        target.remove(attr.name);
    } else {
        target.insert(attr.name.to_owned(), v);
    }
}

/// A member of a request object by case-insensitive name (RFC 7644 §3.10:
/// `Operations`, `op`, `failOnErrors`… are not case-sensitive).
pub fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Reads `attr` from a canonical document.
pub fn get<'a>(doc: &'a Map<String, Value>, ext: Option<&str>, attr: &Attr) -> Option<&'a Value> {
    match ext {
        None => doc.get(attr.name),
        Some(x) => doc.get(x)?.as_object()?.get(attr.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ENTERPRISE;
    use serde_json::json;

    #[test]
    fn what_idps_send_becomes_canonical() {
        let doc = resource(
            Resource::User,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:x:extra"],
                "USERNAME": "bob",
                "Active": "False",
                "name": {"GivenName": "Bob", "formatted": "Bob B", "nonsense": 1},
                "emails": {"value": "bob@example.com", "Primary": "true"},
                "roles": [],
                ENTERPRISE: {"Manager": "0042", "department": 7},
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "CC1",
            }),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({
                "userName": "bob",
                "active": false,
                "name": {"givenName": "Bob", "formatted": "Bob B"},
                "emails": [{"value": "bob@example.com", "primary": true}],
                ENTERPRISE: {"manager": {"value": "0042"}, "department": "7", "costCenter": "CC1"},
            })
        );
    }

    #[test]
    fn wrong_types_are_invalid_values() {
        for body in [
            json!({"active": "maybe"}),
            json!({"name": "Bob"}),
            json!({"userName": {"a": 1}}),
            json!({"emails": [[1]]}),
            json!({ENTERPRISE: "x"}),
        ] {
            let e = resource(Resource::User, body.clone()).unwrap_err();
            assert_eq!(e.scim_type, Some(crate::ScimType::InvalidValue), "{body}");
        }
        assert!(resource(Resource::User, json!([1])).is_err());
    }
}
