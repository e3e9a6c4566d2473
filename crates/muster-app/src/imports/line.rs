//! One line of an import file made a checked `Candidate`. A CSV row is first
//! written as the JSON a JSON Lines file carries — a SCIM user (RFC 7643 §4.1,
//! with the enterprise extension of §4.3) plus Muster's own extension — so
//! both formats are checked by the same code, and by the same SCIM parsing as
//! `POST /scim/v2/Users`.

use super::columns::{ALL_PROFILE_KEYS, Target, profile_key};
use muster_core::EmailAddress;
use muster_core::users::Profile;
use muster_scim::resources::{canonical, parse_user};
use muster_scim::schema::{ENTERPRISE, Resource};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Muster's extension of a user in JSON Lines: the sign-in address, role
/// keys and custom attributes, which SCIM has no place for.
pub const MUSTER: &str = "urn:muster:params:scim:schemas:extension:muster:1.0:User";

/// A line that passed every check that needs no database.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub line: i64,
    /// `None`: the email for a new user, unchanged for an existing one.
    pub user_name: Option<String>,
    pub email: EmailAddress,
    /// Without its manager, which is resolved against the organization.
    pub profile: Profile,
    /// The manager as written: a user id, an externalId or an email.
    pub manager: Option<String>,
    pub roles: Option<Vec<String>>,
    /// `active` as the line gives it: `false` deactivates, `true` reactivates.
    pub active: Option<bool>,
    /// The keys of `Profile`'s JSON this line sets; the others are left as
    /// they are on an existing user.
    pub covers: Vec<String>,
}

/// Why a line was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: i64,
    pub field: String,
    pub reason: String,
}

impl RowError {
    pub fn new(line: i64, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            line,
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A CSV row as the JSON a JSON Lines line would hold. `cells` pairs each
/// column's target with its (trimmed) text.
pub fn csv_doc(line: i64, cells: &[(&Target, &str)]) -> Result<Value, RowError> {
    let mut doc = Map::new();
    let mut name = Map::new();
    let mut ent = Map::new();
    let mut ext = Map::new();
    let mut phones: Vec<Value> = Vec::new();
    let mut custom = Map::new();
    for (t, cell) in cells {
        let cell = super::export::undefuse(cell.trim());
        let text = || Value::String(cell.to_owned());
        match t {
            Target::Core("active") if cell.is_empty() => {}
            Target::Core(n) => {
                doc.insert((*n).into(), text());
            }
            Target::Name(n) => {
                name.insert((*n).into(), text());
            }
            Target::Enterprise(n) => {
                ent.insert((*n).into(), text());
            }
            Target::Manager => {
                ent.insert("manager".into(), json!({ "value": cell }));
            }
            Target::Email => {
                ext.insert("email".into(), text());
            }
            Target::Emails => {
                doc.insert("emails".into(), list(line, "emails", cell)?);
            }
            Target::PhoneNumbers => {
                if let Value::Array(a) = list(line, "phoneNumbers", cell)? {
                    phones.extend(a);
                }
            }
            Target::Phone(kind) if !cell.is_empty() => {
                phones.push(json!({ "value": cell, "type": kind }));
            }
            Target::Phone(_) => {}
            // Empty: the organization's default for a new user, no change
            // for an existing one; `-`: no role at all.
            Target::Roles if cell == "-" => {
                ext.insert("roles".into(), json!([]));
            }
            Target::Roles if !cell.is_empty() => {
                let keys: Vec<&str> = cell
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                ext.insert("roles".into(), json!(keys));
            }
            Target::Roles => {}
            Target::Custom(k) if !cell.is_empty() => {
                custom.insert(k.clone(), text());
            }
            Target::Custom(_) => {}
            Target::CustomJson if !cell.is_empty() => match serde_json::from_str(cell) {
                Ok(Value::Object(m)) => custom.extend(m),
                _ => {
                    return Err(RowError::new(
                        line,
                        "customAttributes",
                        "give a JSON object, such as {\"shoe_size\": \"42\"}",
                    ));
                }
            },
            Target::CustomJson | Target::ReadOnly | Target::Ignore => {}
        }
    }
    if !name.is_empty() {
        doc.insert("name".into(), Value::Object(name));
    }
    if !ent.is_empty() {
        doc.insert(ENTERPRISE.into(), Value::Object(ent));
    }
    if !phones.is_empty() {
        doc.insert("phoneNumbers".into(), Value::Array(phones));
    }
    if !custom.is_empty() {
        ext.insert("customAttributes".into(), Value::Object(custom));
    }
    doc.insert(MUSTER.into(), Value::Object(ext));
    Ok(Value::Object(doc))
}

/// A multi-valued cell: a JSON array of SCIM values, or values split by `;`.
fn list(line: i64, field: &str, cell: &str) -> Result<Value, RowError> {
    if cell.starts_with('[') {
        return serde_json::from_str::<Value>(cell)
            .ok()
            .filter(Value::is_array)
            .ok_or_else(|| {
                RowError::new(
                    line,
                    field,
                    "give a JSON array of {\"value\": …} objects, or values separated by ';'",
                )
            });
    }
    Ok(Value::Array(
        cell.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|v| json!({ "value": v }))
            .collect(),
    ))
}

/// The profile keys a CSV header sets.
pub fn csv_covers(targets: &[Target]) -> Vec<String> {
    let mut out: Vec<String> = targets.iter().filter_map(profile_key).collect();
    out.dedup();
    out
}

/// The profile keys a whole-user JSON line sets: all of them (as a SCIM PUT
/// does, RFC 7644 §3.5.1), and the custom attributes when it gives them.
pub fn json_covers(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = ALL_PROFILE_KEYS.iter().map(|k| (*k).to_owned()).collect();
    if doc
        .get(MUSTER)
        .and_then(|m| m.get("customAttributes"))
        .is_some()
    {
        out.push("custom_attributes".into());
    }
    out
}

/// Attributes a line may carry but that an import never writes.
const READ_ONLY: &[&str] = &["schemas", "id", "meta", "groups"];

/// Checks one line's document and makes it a `Candidate`.
pub fn candidate(line: i64, doc: Value, covers: Vec<String>) -> Result<Candidate, RowError> {
    let err = |field: &str, reason: String| RowError::new(line, field, reason);
    let Value::Object(mut doc) = doc else {
        return Err(err("line", "each line must be one JSON object".into()));
    };
    let ext = take(&mut doc, MUSTER).unwrap_or(Value::Null);
    let empty = Map::new();
    let ext = match &ext {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return Err(err(MUSTER, "must be an object".into())),
    };
    for k in ext.keys() {
        if !["email", "roles", "customAttributes", "state", "source"].contains(&k.as_str()) {
            return Err(err(k, format!("unknown attribute '{k}' in {MUSTER}")));
        }
    }
    for k in doc.keys() {
        if k.eq_ignore_ascii_case("password") {
            return Err(err(
                "password",
                "an import never carries passwords: people set theirs when they activate their account".into(),
            ));
        }
        let known = READ_ONLY.iter().any(|r| r.eq_ignore_ascii_case(k))
            || Resource::User.extension(k).is_some()
            || Resource::User.attr(None, k).is_some();
        if !known {
            return Err(err(k, format!("unknown attribute '{k}'")));
        }
    }
    let manager = doc
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(ENTERPRISE))
        .and_then(|(_, e)| e.as_object_mut())
        .and_then(|e| take(e, "manager"))
        .and_then(|m| match m {
            Value::String(s) => Some(s),
            Value::Object(o) => o.get("value").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let canon = canonical(Resource::User, Value::Object(doc)).map_err(|e| err("", e.detail))?;
    let mut canon = match canon {
        Value::Object(m) => m,
        _ => return Err(err("line", "each line must be one JSON object".into())),
    };
    let user_name = canon
        .get("userName")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let listed = canon
        .get("emails")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let chosen = ext
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            let primary = listed
                .iter()
                .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
                .or_else(|| listed.first());
            primary
                .and_then(|e| e.get("value"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| user_name.clone().filter(|u| EmailAddress::parse(u).is_ok()))
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| err("email", "a user needs an email address".into()))?;
    let email = EmailAddress::parse(&chosen).map_err(|e| err("email", e.to_string()))?;
    // parse_user wants a userName and an address; give it ours where the
    // line left them out, then take back what the line did not say.
    canon.insert(
        "userName".into(),
        Value::String(
            user_name
                .clone()
                .unwrap_or_else(|| email.as_str().to_owned()),
        ),
    );
    let placeholder = listed.is_empty();
    if placeholder {
        canon.insert("emails".into(), json!([{ "value": email.as_str() }]));
    }
    let input = parse_user(&Value::Object(canon)).map_err(|e| {
        // Profile checks say "field: reason"; keep the field apart.
        match e.detail.split_once(": ") {
            Some((f, reason))
                if f.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.') =>
            {
                err(f, reason.to_owned())
            }
            _ => err("", e.detail),
        }
    })?;
    let active = input.active;
    let mut profile = input.profile;
    if placeholder {
        profile.emails.clear();
    }
    profile.enterprise.manager = None;
    match ext.get("customAttributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => profile.custom_attributes = m.clone(),
        Some(_) => return Err(err("customAttributes", "must be an object".into())),
    }
    profile.validate().map_err(|e| err(e.field, e.reason))?;
    let roles = match ext.get("roles") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| err("roles", "give role keys as strings".into()))?,
        ),
        Some(_) => return Err(err("roles", "give a list of role keys".into())),
    };
    if let Some(r) = &roles
        && r.len() > 20
    {
        return Err(err("roles", "at most 20 roles".into()));
    }
    Ok(Candidate {
        line,
        user_name,
        email,
        profile,
        manager,
        roles,
        active,
        covers,
    })
}

/// Removes a member by case-insensitive name (SCIM names are, RFC 7643 §2.1).
fn take(m: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = m.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    m.remove(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(cells: &[(Target, &str)]) -> Result<Candidate, RowError> {
        let refs: Vec<(&Target, &str)> = cells.iter().map(|(t, c)| (t, *c)).collect();
        let targets: Vec<Target> = cells.iter().map(|(t, _)| t.clone()).collect();
        candidate(7, csv_doc(7, &refs)?, csv_covers(&targets))
    }

    #[test]
    fn a_csv_row_becomes_the_user_it_describes() {
        let c = csv(&[
            (Target::Email, " Ann@Acme.example "),
            (Target::Name("givenName"), "Ann"),
            (Target::Emails, "ann@acme.example; ann@home.example"),
            (Target::Phone("mobile"), "'+1 555 0100"),
            (Target::Custom("desk".into()), "4F"),
            (Target::Manager, "E9"),
            (Target::Roles, "admin; member"),
            (Target::Core("title"), ""),
        ])
        .unwrap();
        assert_eq!(c.email.as_str(), "Ann@acme.example");
        assert_eq!(c.user_name, None);
        assert_eq!(c.profile.given_name.as_deref(), Some("Ann"));
        assert_eq!(c.profile.emails.len(), 2);
        assert_eq!(
            c.profile.phone_numbers[0].value, "+1 555 0100",
            "a defused cell is read back"
        );
        assert_eq!(c.profile.phone_numbers[0].kind.as_deref(), Some("mobile"));
        assert_eq!(c.profile.custom_attributes["desk"], "4F");
        assert_eq!(c.profile.title, None, "an empty cell clears");
        assert_eq!(c.manager.as_deref(), Some("E9"));
        assert_eq!(c.roles, Some(vec!["admin".to_owned(), "member".to_owned()]));
        assert!(c.covers.contains(&"title".to_owned()));
        assert!(c.covers.contains(&"custom_attributes.desk".to_owned()));
        assert!(c.covers.contains(&"given_name".to_owned()));
    }

    #[test]
    fn empty_roles_mean_the_default_and_a_dash_means_none() {
        let c = csv(&[(Target::Email, "a@acme.example"), (Target::Roles, "")]).unwrap();
        assert_eq!(c.roles, None);
        let c = csv(&[(Target::Email, "a@acme.example"), (Target::Roles, "-")]).unwrap();
        assert_eq!(c.roles, Some(vec![]));
    }

    #[test]
    fn a_json_line_is_checked_like_a_scim_user() {
        let line = |v: Value| {
            let covers = json_covers(&v);
            candidate(3, v, covers)
        };
        let c = line(json!({"userName": "ann", "emails": [{"value": "a@x.example"}, {"value": "b@x.example", "primary": true}]}))
            .unwrap();
        assert_eq!(
            c.email.as_str(),
            "b@x.example",
            "the primary address signs in"
        );
        assert!(!c.covers.contains(&"custom_attributes".to_owned()));
        let c = line(json!({"userName": "ann", MUSTER: {"email": "c@x.example", "customAttributes": {"k": 1}}}))
            .unwrap();
        assert_eq!(c.email.as_str(), "c@x.example");
        assert!(
            c.profile.emails.is_empty(),
            "no placeholder address is kept"
        );
        assert!(c.covers.contains(&"custom_attributes".to_owned()));
        for (bad, field) in [
            (json!({"userName": "a@x.example", "shoe": 1}), "shoe"),
            (
                json!({"userName": "a@x.example", "Password": "x"}),
                "password",
            ),
            (json!({"userName": "no-address"}), "email"),
            (
                json!({"userName": "a@x.example", MUSTER: {"wat": 1}}),
                "wat",
            ),
            (
                json!({"userName": "a@x.example", MUSTER: {"roles": "admin"}}),
                "roles",
            ),
            (
                json!({"userName": "a@x.example", "title": "t".repeat(300)}),
                "title",
            ),
            (json!(["not", "an", "object"]), "line"),
        ] {
            let e = line(bad.clone()).unwrap_err();
            assert_eq!(
                (e.line, e.field.as_str()),
                (3, field),
                "{bad}: {}",
                e.reason
            );
        }
    }
}
