//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9): which
//! attributes a response carries. `id`, `schemas` and `meta` are always there
//! (`returned: always`); `password` never is; `groups` only when asked for.

use crate::error::{Result, ScimError};
use crate::filter::AttrPath;
use crate::schema::{Resource, Returned};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

fn parse_list(list: Option<&str>) -> Result<Vec<AttrPath>> {
    let Some(list) = list else { return Ok(vec![]) };
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| AttrPath::parse(s).map_err(|e| ScimError::value(e.detail)))
        .collect()
}

impl Projection {
    pub fn parse(attributes: Option<&str>, excluded: Option<&str>) -> Result<Self> {
        Ok(Self {
            attributes: parse_list(attributes)?,
            excluded: parse_list(excluded)?,
        })
    }

    fn names(list: &[AttrPath], res: Resource, name: &str) -> bool {
        list.iter().any(|p| {
            p.sub.is_none()
                && res
                    .attr(p.urn.as_deref(), &p.name)
                    .is_some_and(|(_, a)| a.name == name)
        })
    }

    /// Whether the response needs `name` at all, so that the app can skip
    /// loading it (a group's members, a user's groups).
    pub fn wants(&self, res: Resource, name: &str) -> bool {
        let Some((_, attr)) = res.attr(None, name) else {
            return false;
        };
        if Self::names(&self.excluded, res, name) {
            return false;
        }
        let named = self.attributes.iter().any(|p| {
            res.attr(p.urn.as_deref(), &p.name)
                .is_some_and(|(_, a)| a.name == name)
        });
        match attr.returned {
            Returned::Request => named,
            _ => self.attributes.is_empty() || named,
        }
    }

    /// Trims a rendered resource to what was asked for.
    pub fn apply(&self, res: Resource, doc: Value) -> Value {
        let Value::Object(m) = doc else { return doc };
        let mut out = Map::new();
        for (k, v) in m {
            if matches!(k.as_str(), "id" | "schemas" | "meta") {
                out.insert(k, v);
                continue;
            }
            if let Some((urn, attrs)) = res.extension(&k) {
                let Value::Object(inner) = v else { continue };
                let mut kept = Map::new();
                for (ik, iv) in inner {
                    let Some(a) = attrs.iter().find(|a| a.name == ik) else {
                        continue;
                    };
                    if let Some(v) = self.keep(Some(urn), a.name, a.returned, iv) {
                        kept.insert(ik, v);
                    }
                }
                if !kept.is_empty() {
                    out.insert(k, Value::Object(kept));
                }
                continue;
            }
            let Some((_, a)) = res.attr(None, &k) else {
                continue;
            };
            if let Some(v) = self.keep(None, a.name, a.returned, v) {
                out.insert(k, v);
            }
        }
        Value::Object(out)
    }

    fn matches(p: &AttrPath, urn: Option<&str>, name: &str) -> bool {
        let same_urn = match (p.urn.as_deref(), urn) {
            (None, _) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (Some(a), None) => {
                a.eq_ignore_ascii_case(crate::schema::USER)
                    || a.eq_ignore_ascii_case(crate::schema::GROUP)
            }
        };
        same_urn && p.name.eq_ignore_ascii_case(name)
    }

    fn keep(&self, urn: Option<&str>, name: &str, returned: Returned, v: Value) -> Option<Value> {
        if returned == Returned::Never {
            return None;
        }
        let excluded: Vec<&AttrPath> = self
            .excluded
            .iter()
            .filter(|p| Self::matches(p, urn, name))
            .collect();
        if excluded.iter().any(|p| p.sub.is_none()) && returned != Returned::Always {
            return None;
        }
        let v = strip_subs(v, excluded.iter().filter_map(|p| p.sub.as_deref()), false);
        if self.attributes.is_empty() {
            return (returned != Returned::Request).then_some(v);
        }
        let asked: Vec<&AttrPath> = self
            .attributes
            .iter()
            .filter(|p| Self::matches(p, urn, name))
            .collect();
        if asked.is_empty() {
            return (returned == Returned::Always).then_some(v);
        }
        if asked.iter().any(|p| p.sub.is_none()) {
            return Some(v);
        }
        Some(strip_subs(
            v,
            asked.iter().filter_map(|p| p.sub.as_deref()),
            true,
        ))
    }
}

/// Removes (or, with `keep_only`, keeps only) the named sub-attributes of a
/// complex value or of each element of a multi-valued one.
fn strip_subs<'a>(v: Value, subs: impl Iterator<Item = &'a str>, keep_only: bool) -> Value {
    let subs: Vec<&str> = subs.collect();
    if subs.is_empty() && !keep_only {
        return v;
    }
    let one = |o: Map<String, Value>| -> Map<String, Value> {
        o.into_iter()
            .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)) == keep_only)
            .collect()
    };
    match v {
        Value::Object(o) => Value::Object(one(o)),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|i| match i {
                    Value::Object(o) => Value::Object(one(o)),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ENTERPRISE;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["s"], "id": "u1", "userName": "a", "title": "t",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@x.io", "type": "work"}],
            "groups": [{"value": "g1"}],
            ENTERPRISE: {"department": "D", "costCenter": "C"},
            "meta": {"version": "W/\"1\""}
        })
    }

    fn proj(a: Option<&str>, x: Option<&str>) -> Value {
        Projection::parse(a, x)
            .unwrap()
            .apply(Resource::User, user())
    }

    #[test]
    fn attributes_keep_only_what_is_named_plus_always_returned() {
        let v = proj(Some("userName,name.givenName"), None);
        assert_eq!(
            v,
            json!({"schemas": ["s"], "id": "u1", "userName": "a", "name": {"givenName": "A"},
                   "meta": {"version": "W/\"1\""}})
        );
        let v = proj(Some(&format!("{ENTERPRISE}:department")), None);
        assert_eq!(v[ENTERPRISE], json!({"department": "D"}));
        assert!(v.get("userName").is_none());
    }

    #[test]
    fn excluded_attributes_drop_what_is_named_but_never_the_id() {
        let v = proj(None, Some("title,emails.type,id"));
        assert!(v.get("title").is_none());
        assert_eq!(v["emails"], json!([{"value": "a@x.io"}]));
        assert_eq!(v["id"], "u1");
        assert!(
            v.get("groups").is_none(),
            "groups is returned on request only"
        );
    }

    #[test]
    fn wants_tells_the_app_what_it_can_skip_loading() {
        let p = Projection::parse(None, Some("members")).unwrap();
        assert!(!p.wants(Resource::Group, "members"));
        let p = Projection::parse(None, None).unwrap();
        assert!(p.wants(Resource::Group, "members"));
        assert!(!p.wants(Resource::User, "groups"));
        let p = Projection::parse(Some("groups"), None).unwrap();
        assert!(p.wants(Resource::User, "groups"));
        assert!(Projection::parse(Some("a..b"), None).is_err());
    }
}
