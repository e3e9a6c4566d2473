//! Filters checked against the schema and evaluated over a resource's SCIM
//! JSON (RFC 7644 §3.4.2.2). `check` runs once per request and rejects what
//! cannot be evaluated (unknown attributes, `gt` on a boolean, a date that is
//! not one); `matches` is then total.
//!
//! Semantics chosen where the RFC leaves room, as the common IdPs expect:
//! a multi-valued attribute matches when any of its values does; a complex
//! multi-valued attribute without a sub-attribute compares its `value`s;
//! `ne` is the negation of `eq` (an absent attribute is "not equal");
//! strings compare per the attribute's `caseExact`, dates chronologically.

use crate::error::{Result, ScimError};
use crate::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::schema::{Attr, Kind, Resource};
use serde_json::Value;
use std::cmp::Ordering;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The definition that `path` compares against: the sub-attribute if named,
/// the `value` sub-attribute of a complex attribute, or the attribute itself.
fn target(res: Resource, scope: Option<&'static Attr>, path: &AttrPath) -> Result<&'static Attr> {
    let unknown = || ScimError::filter(format!("'{path}' is not an attribute of {}", res.name()));
    let attr = match scope {
        // Inside `emails[...]`, names are the element's sub-attributes.
        Some(parent) if path.urn.is_none() => parent.sub_attr(&path.name).ok_or_else(unknown)?,
        _ => {
            res.attr(path.urn.as_deref(), &path.name)
                .ok_or_else(unknown)?
                .1
        }
    };
    match (&path.sub, attr.kind) {
        (Some(s), Kind::Complex) => attr.sub_attr(s).ok_or_else(unknown),
        (Some(_), _) => Err(unknown()),
        (None, Kind::Complex) => attr.sub_attr("value").ok_or_else(|| {
            ScimError::filter(format!(
                "'{path}' is complex: name one of its sub-attributes"
            ))
        }),
        (None, _) => Ok(attr),
    }
}

/// Rejects filters that name unknown attributes or compare values of the
/// wrong type, with `invalidFilter`.
pub fn check(res: Resource, f: &Filter) -> Result<()> {
    check_in(res, None, f)
}

fn check_in(res: Resource, scope: Option<&'static Attr>, f: &Filter) -> Result<()> {
    if let Filter::Present(p) | Filter::Compare(p, ..) = f
        && p.name.eq_ignore_ascii_case("password")
    {
        // RFC 7644 §3.12 `sensitive`: a filter travels in the URL, where a
        // password must never be; it is not searchable either.
        return Err(ScimError::new(
            crate::ScimType::Sensitive,
            "'password' cannot be filtered on: it would put a secret in a URL",
        ));
    }
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_in(res, scope, a)?;
            check_in(res, scope, b)
        }
        Filter::Not(a) => check_in(res, scope, a),
        Filter::Present(p) => target(res, scope, p).map(|_| ()),
        Filter::ValuePath(p, inner) => {
            let (_, attr) = res
                .attr(p.urn.as_deref(), &p.name)
                .filter(|(_, a)| a.kind == Kind::Complex)
                .ok_or_else(|| {
                    ScimError::filter(format!(
                        "'{p}' is not a complex attribute of {}",
                        res.name()
                    ))
                })?;
            check_in(res, Some(attr), inner)
        }
        Filter::Compare(p, op, v) => {
            let attr = target(res, scope, p)?;
            let ordering = matches!(
                op,
                CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
            );
            let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
            let wrong = |what: &str| {
                Err(ScimError::filter(format!(
                    "'{p} {} …': {what}",
                    op.as_str()
                )))
            };
            match (attr.kind, v) {
                (_, CompValue::Null) if !matches!(op, CompareOp::Eq | CompareOp::Ne) => {
                    wrong("null only compares with eq or ne")
                }
                (Kind::Boolean, CompValue::Bool(_)) if ordering || substring => {
                    wrong("booleans only compare with eq or ne")
                }
                (Kind::Boolean, CompValue::Bool(_) | CompValue::Null) => Ok(()),
                (Kind::Boolean, _) => wrong("compare a boolean with true or false"),
                (Kind::DateTime, CompValue::Str(s)) => {
                    if substring {
                        return wrong("dates compare with eq, ne, gt, ge, lt or le");
                    }
                    OffsetDateTime::parse(s, &Rfc3339).map(|_| ()).map_err(|_| {
                        ScimError::filter(format!("\"{s}\" is not an RFC 3339 date-time"))
                    })
                }
                (Kind::DateTime, CompValue::Null) => Ok(()),
                (Kind::DateTime, _) => wrong("compare a date with a quoted RFC 3339 date-time"),
                (_, CompValue::Str(_) | CompValue::Null) => Ok(()),
                (_, _) => wrong("compare a string attribute with a quoted string"),
            }
        }
    }
}

/// Whether `doc` (a resource rendered as SCIM JSON) matches `f`. Call `check`
/// first: anything it would reject simply does not match here.
pub fn matches(res: Resource, doc: &Value, f: &Filter) -> bool {
    matches_in(res, None, doc, f)
}

fn matches_in(res: Resource, scope: Option<&'static Attr>, doc: &Value, f: &Filter) -> bool {
    match f {
        Filter::And(a, b) => matches_in(res, scope, doc, a) && matches_in(res, scope, doc, b),
        Filter::Or(a, b) => matches_in(res, scope, doc, a) || matches_in(res, scope, doc, b),
        Filter::Not(a) => !matches_in(res, scope, doc, a),
        Filter::Present(p) => values(res, scope, doc, p).iter().any(|v| present(v)),
        Filter::ValuePath(p, inner) => {
            let Some((ext, attr)) = res.attr(p.urn.as_deref(), &p.name) else {
                return false;
            };
            match lookup(doc, ext, attr.name) {
                Some(Value::Array(items)) => {
                    items.iter().any(|e| matches_in(res, Some(attr), e, inner))
                }
                Some(v @ Value::Object(_)) => matches_in(res, Some(attr), v, inner),
                _ => false,
            }
        }
        Filter::Compare(p, CompareOp::Ne, v) => !matches_in(
            res,
            scope,
            doc,
            &Filter::Compare(p.clone(), CompareOp::Eq, v.clone()),
        ),
        Filter::Compare(p, op, v) => {
            let Ok(attr) = target(res, scope, p) else {
                return false;
            };
            let found = values(res, scope, doc, p);
            if *v == CompValue::Null {
                return !found.iter().any(|x| present(x));
            }
            found.iter().any(|x| compare(attr, x, *op, v))
        }
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn lookup<'a>(doc: &'a Value, ext: Option<&str>, name: &str) -> Option<&'a Value> {
    let obj = match ext {
        Some(x) => doc.get(x)?,
        None => doc,
    };
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Every value `path` reaches in `doc`, flattened across multi-valued attributes.
fn values<'a>(
    res: Resource,
    scope: Option<&'static Attr>,
    doc: &'a Value,
    path: &AttrPath,
) -> Vec<&'a Value> {
    let (ext, attr) = match scope {
        Some(parent) if path.urn.is_none() => match parent.sub_attr(&path.name) {
            Some(a) => (None, a),
            None => return vec![],
        },
        _ => match res.attr(path.urn.as_deref(), &path.name) {
            Some(found) => found,
            None => return vec![],
        },
    };
    let Some(v) = lookup(doc, ext, attr.name) else {
        return vec![];
    };
    let sub = match (&path.sub, attr.kind) {
        (Some(s), _) => Some(s.as_str()),
        (None, Kind::Complex) => Some("value"),
        (None, _) => None,
    };
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    match sub {
        None => items,
        Some(s) => items
            .into_iter()
            .filter_map(|i| lookup(i, None, s))
            .collect(),
    }
}

fn compare(attr: &Attr, found: &Value, op: CompareOp, want: &CompValue) -> bool {
    match (attr.kind, found, want) {
        (Kind::Boolean, Value::Bool(b), CompValue::Bool(w)) => op == CompareOp::Eq && b == w,
        (Kind::DateTime, Value::String(s), CompValue::Str(w)) => {
            match (
                OffsetDateTime::parse(s, &Rfc3339),
                OffsetDateTime::parse(w, &Rfc3339),
            ) {
                (Ok(a), Ok(b)) => ordered(op, a.cmp(&b)),
                _ => false,
            }
        }
        (_, Value::String(s), CompValue::Str(w)) => {
            let (s, w) = if attr.case_exact {
                (s.clone(), w.clone())
            } else {
                (s.to_lowercase(), w.to_lowercase())
            };
            match op {
                CompareOp::Co => s.contains(&w),
                CompareOp::Sw => s.starts_with(&w),
                CompareOp::Ew => s.ends_with(&w),
                _ => ordered(op, s.cmp(&w)),
            }
        }
        (_, Value::Number(n), CompValue::Num(w)) => n
            .as_f64()
            .and_then(|n| n.partial_cmp(w))
            .is_some_and(|o| ordered(op, o)),
        _ => false,
    }
}

fn ordered(op: CompareOp, o: Ordering) -> bool {
    match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "0193",
            "externalId": "AbC",
            "userName": "Alice@Example.com",
            "active": true,
            "title": "Engineer",
            "emails": [
                {"value": "alice@example.com", "type": "work", "primary": true},
                {"value": "alice@home.example", "type": "home"}
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "R&D", "manager": {"value": "0042"}
            },
            "meta": {"created": "2026-01-02T03:04:05Z", "lastModified": "2026-06-01T00:00:00Z"}
        })
    }

    fn m(filter: &str) -> bool {
        let f = Filter::parse(filter).unwrap();
        check(Resource::User, &f).unwrap();
        matches(Resource::User, &user(), &f)
    }

    #[test]
    fn every_operator_on_strings_respects_case_exactness() {
        assert!(m(r#"userName eq "alice@example.com""#));
        assert!(m(r#"username EQ "ALICE@EXAMPLE.COM""#));
        assert!(!m(r#"id eq "0193 ""#));
        // externalId is caseExact; userName is not.
        assert!(m(r#"externalId eq "AbC""#));
        assert!(!m(r#"externalId eq "abc""#));
        assert!(m(r#"userName co "@EXAMPLE""#));
        assert!(m(r#"userName sw "alice""#));
        assert!(m(r#"userName ew ".COM""#));
        assert!(m(r#"userName ne "bob""#));
        assert!(!m(r#"userName ne "alice@example.com""#));
        assert!(m(r#"title gt "A""#) && m(r#"title ge "engineer""#));
        assert!(m(r#"title lt "Z""#) && m(r#"title le "engineer""#));
        assert!(!m(r#"title gt "engineer""#));
    }

    #[test]
    fn presence_and_absence() {
        assert!(m("title pr"));
        assert!(!m("nickName pr"));
        assert!(m("nickName ne \"x\""));
        assert!(m("nickName eq null"));
        assert!(!m("title eq null"));
    }

    #[test]
    fn multi_valued_value_paths_and_sub_attributes() {
        assert!(m(r#"emails co "home.example""#));
        assert!(m(r#"emails.type eq "home""#));
        assert!(m(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!m(r#"emails[type eq "home" and value co "@example.com"]"#));
        assert!(m(r#"emails[primary eq true]"#));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d""#
        ));
        assert!(m(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "0042""#
        ));
    }

    #[test]
    fn logic_and_booleans_and_dates() {
        assert!(m(r#"active eq true and not (title eq "x")"#));
        assert!(m(r#"active eq false or title pr"#));
        assert!(!m(r#"not (active eq true)"#));
        assert!(m(r#"meta.created gt "2026-01-01T00:00:00Z""#));
        assert!(m(r#"meta.lastModified le "2026-06-01T02:00:00+02:00""#));
        assert!(!m(r#"meta.created lt "2026-01-02T03:04:05Z""#));
    }

    #[test]
    fn filtering_on_the_password_is_sensitive() {
        let f = Filter::parse(r#"password eq "hunter2""#).unwrap();
        let e = check(Resource::User, &f).unwrap_err();
        assert_eq!(e.scim_type, Some(crate::ScimType::Sensitive));
    }

    #[test]
    fn check_refuses_what_cannot_be_evaluated() {
        for bad in [
            r#"nope eq "x""#,
            r#"active gt true"#,
            r#"active eq "yes""#,
            r#"meta.created gt "yesterday""#,
            r#"meta.created co "2026""#,
            r#"userName eq 5"#,
            r#"title gt null"#,
            r#"emails.nope eq "x""#,
            r#"title[value eq "x"]"#,
            r#"name eq "x""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName eq "x""#,
        ] {
            let f = Filter::parse(bad).unwrap();
            let e = check(Resource::User, &f).unwrap_err();
            assert_eq!(e.scim_type, Some(crate::ScimType::InvalidFilter), "{bad}");
        }
    }
}
