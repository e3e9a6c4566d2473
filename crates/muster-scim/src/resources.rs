//! Muster's users and groups as SCIM resources (RFC 7643 §4.1, §4.2, §4.3)
//! and back. Rendering always produces canonical JSON (schema spellings), so
//! the PATCH engine and filters work on what clients see.

use crate::error::{Result, ScimError};
use crate::normalize;
use crate::schema::{ENTERPRISE, GROUP, LIFECYCLE, Resource, USER};
use muster_core::EmailAddress;
use muster_core::users::{MultiValue, Profile};
use serde_json::{Map, Value, json};

/// ETag of a resource version (RFC 7644 §3.14): weak, as the representation
/// varies with `attributes`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// What rendering a user needs, whatever table it came from.
pub struct UserDoc<'a> {
    pub base: &'a str,
    pub id: &'a str,
    pub user_name: &'a str,
    pub email: &'a str,
    pub active: bool,
    pub profile: &'a Profile,
    pub created: &'a str,
    pub last_modified: &'a str,
    pub version: i64,
    /// Direct groups `(id, name)`, when asked for.
    pub groups: Option<&'a [(String, String)]>,
    /// Pending start and end dates (the lifecycle extension).
    pub dates: AccessDates,
}

/// A user's pending start and end dates, in milliseconds since the epoch:
/// Muster's lifecycle extension ([`LIFECYCLE`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessDates {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

fn rfc3339(ms: i64) -> String {
    muster_core::clock::from_millis(ms)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A date of the lifecycle extension; `normalize` has checked its form.
fn date(m: &Map<String, Value>, k: &str) -> Option<i64> {
    let s = m.get(k)?.as_str()?;
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(muster_core::clock::to_millis)
}

fn put_str(m: &mut Map<String, Value>, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(k.into(), Value::String(v.clone()));
    }
}

fn values(list: &[MultiValue]) -> Value {
    Value::Array(
        list.iter()
            .map(|v| {
                let mut o = Map::new();
                o.insert("value".into(), Value::String(v.value.clone()));
                put_str(&mut o, "type", &v.kind);
                if let Some(p) = v.primary {
                    o.insert("primary".into(), Value::Bool(p));
                }
                Value::Object(o)
            })
            .collect(),
    )
}

pub fn render_user(d: &UserDoc) -> Value {
    let p = d.profile;
    let mut m = Map::new();
    let mut schemas = vec![json!(USER)];
    m.insert("id".into(), json!(d.id));
    put_str(&mut m, "externalId", &p.external_id);
    m.insert("userName".into(), json!(d.user_name));
    let mut name = Map::new();
    put_str(&mut name, "formatted", &p.formatted_name);
    put_str(&mut name, "familyName", &p.family_name);
    put_str(&mut name, "givenName", &p.given_name);
    put_str(&mut name, "middleName", &p.middle_name);
    put_str(&mut name, "honorificPrefix", &p.honorific_prefix);
    put_str(&mut name, "honorificSuffix", &p.honorific_suffix);
    if !name.is_empty() {
        m.insert("name".into(), Value::Object(name));
    }
    put_str(&mut m, "displayName", &p.display_name);
    put_str(&mut m, "nickName", &p.nick_name);
    put_str(&mut m, "profileUrl", &p.profile_url);
    put_str(&mut m, "title", &p.title);
    put_str(&mut m, "userType", &p.user_type);
    put_str(&mut m, "preferredLanguage", &p.preferred_language);
    put_str(&mut m, "locale", &p.locale);
    put_str(&mut m, "timezone", &p.timezone);
    m.insert("active".into(), json!(d.active));
    let has_own = p
        .emails
        .iter()
        .any(|e| e.value.eq_ignore_ascii_case(d.email));
    let emails = if has_own {
        values(&p.emails)
    } else {
        json!([{"value": d.email, "primary": true}])
    };
    m.insert("emails".into(), emails);
    if !p.phone_numbers.is_empty() {
        m.insert("phoneNumbers".into(), values(&p.phone_numbers));
    }
    if let Some(groups) = d.groups {
        let list: Vec<Value> = groups
            .iter()
            .map(|(id, name)| {
                json!({"value": id, "$ref": format!("{}/Groups/{id}", d.base), "display": name, "type": "direct"})
            })
            .collect();
        m.insert("groups".into(), Value::Array(list));
    }
    let e = &p.enterprise;
    let mut ext = Map::new();
    put_str(&mut ext, "employeeNumber", &e.employee_number);
    put_str(&mut ext, "costCenter", &e.cost_center);
    put_str(&mut ext, "organization", &e.organization);
    put_str(&mut ext, "division", &e.division);
    put_str(&mut ext, "department", &e.department);
    if let Some(mgr) = &e.manager {
        ext.insert(
            "manager".into(),
            json!({"value": mgr, "$ref": format!("{}/Users/{mgr}", d.base)}),
        );
    }
    if !ext.is_empty() {
        schemas.push(json!(ENTERPRISE));
        m.insert(ENTERPRISE.into(), Value::Object(ext));
    }
    let mut dates = Map::new();
    put_str(&mut dates, "startDate", &d.dates.start.map(rfc3339));
    put_str(&mut dates, "endDate", &d.dates.end.map(rfc3339));
    if !dates.is_empty() {
        schemas.push(json!(LIFECYCLE));
        m.insert(LIFECYCLE.into(), Value::Object(dates));
    }
    m.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": d.created,
            "lastModified": d.last_modified,
            "location": format!("{}/Users/{}", d.base, d.id),
            "version": etag(d.version),
        }),
    );
    m.insert("schemas".into(), Value::Array(schemas));
    Value::Object(m)
}

/// A user as a client wrote it: what Muster stores, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct UserInput {
    pub user_name: String,
    pub email: EmailAddress,
    pub active: Option<bool>,
    /// Never echoed; checked against the organization's password policy.
    pub password: Option<String>,
    pub profile: Profile,
    /// The lifecycle extension's dates; absent means none.
    pub dates: AccessDates,
}

fn text(doc: &Map<String, Value>, k: &str) -> Option<String> {
    doc.get(k)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

fn multi(doc: &Map<String, Value>, k: &str) -> Vec<MultiValue> {
    doc.get(k)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    Some(MultiValue {
                        value: i.get("value")?.as_str()?.to_owned(),
                        kind: i.get("type").and_then(Value::as_str).map(str::to_owned),
                        primary: i.get("primary").and_then(Value::as_bool),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a canonical user document (from `normalize::resource` or a patched
/// rendering). Read-only attributes in it are ignored (RFC 7643 §2.2).
pub fn parse_user(doc: &Value) -> Result<UserInput> {
    let empty = Map::new();
    let m = doc.as_object().unwrap_or(&empty);
    let user_name =
        text(m, "userName").ok_or_else(|| ScimError::value("'userName' is required"))?;
    if !muster_core::users::valid_user_name(&user_name) {
        return Err(ScimError::value(
            "'userName' must be 1 to 256 printable characters",
        ));
    }
    let emails = multi(m, "emails");
    // The sign-in address: the primary email, else the first, else a userName
    // that is an address (Entra ID's userPrincipalName usually is).
    let chosen = emails
        .iter()
        .find(|e| e.is_primary())
        .or_else(|| emails.first())
        .map(|e| e.value.clone())
        .or_else(|| {
            EmailAddress::parse(&user_name)
                .ok()
                .map(|e| e.as_str().to_owned())
        })
        .ok_or_else(|| {
            ScimError::value(
                "a user needs an email address: give 'emails' or an address as 'userName'",
            )
        })?;
    let email = EmailAddress::parse(&chosen)
        .map_err(|e| ScimError::value(format!("emails: '{chosen}': {e}")))?;
    for e in &emails {
        EmailAddress::parse(&e.value)
            .map_err(|err| ScimError::value(format!("emails: '{}': {err}", e.value)))?;
    }
    let name = m.get("name").and_then(Value::as_object).unwrap_or(&empty);
    let ext = m
        .get(ENTERPRISE)
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let manager = ext
        .get("manager")
        .and_then(|v| v.get("value"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let profile = Profile {
        formatted_name: text(name, "formatted"),
        given_name: text(name, "givenName"),
        family_name: text(name, "familyName"),
        middle_name: text(name, "middleName"),
        honorific_prefix: text(name, "honorificPrefix"),
        honorific_suffix: text(name, "honorificSuffix"),
        display_name: text(m, "displayName"),
        nick_name: text(m, "nickName"),
        profile_url: text(m, "profileUrl"),
        title: text(m, "title"),
        user_type: text(m, "userType"),
        locale: text(m, "locale"),
        timezone: text(m, "timezone"),
        preferred_language: text(m, "preferredLanguage"),
        emails,
        phone_numbers: multi(m, "phoneNumbers"),
        external_id: text(m, "externalId"),
        enterprise: muster_core::users::Enterprise {
            employee_number: text(ext, "employeeNumber"),
            cost_center: text(ext, "costCenter"),
            organization: text(ext, "organization"),
            division: text(ext, "division"),
            department: text(ext, "department"),
            manager,
        },
        custom_attributes: Map::new(),
    };
    let lifecycle = m
        .get(LIFECYCLE)
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let dates = AccessDates {
        start: date(lifecycle, "startDate"),
        end: date(lifecycle, "endDate"),
    };
    profile
        .validate()
        .map_err(|e| ScimError::value(format!("{}: {}", e.field, e.reason)))?;
    Ok(UserInput {
        user_name,
        email,
        active: m.get("active").and_then(Value::as_bool),
        password: text(m, "password"),
        profile,
        dates,
    })
}

/// A member of a group as SCIM shows it.
pub struct MemberDoc<'a> {
    pub id: &'a str,
    pub is_group: bool,
}

pub struct GroupDoc<'a> {
    pub base: &'a str,
    pub id: &'a str,
    pub display_name: &'a str,
    pub external_id: Option<&'a str>,
    pub created: &'a str,
    pub last_modified: &'a str,
    pub version: i64,
    /// `None` when `members` was excluded: the list was never loaded.
    pub members: Option<&'a [MemberDoc<'a>]>,
}

pub fn render_group(d: &GroupDoc) -> Value {
    let mut m = Map::new();
    m.insert("schemas".into(), json!([GROUP]));
    m.insert("id".into(), json!(d.id));
    if let Some(x) = d.external_id {
        m.insert("externalId".into(), json!(x));
    }
    m.insert("displayName".into(), json!(d.display_name));
    // An empty list is left out, as every other unassigned attribute is.
    if let Some(members) = d.members.filter(|m| !m.is_empty()) {
        let list: Vec<Value> = members
            .iter()
            .map(|mb| {
                let (kind, path) = if mb.is_group {
                    ("Group", "Groups")
                } else {
                    ("User", "Users")
                };
                json!({"value": mb.id, "$ref": format!("{}/{path}/{}", d.base, mb.id), "type": kind})
            })
            .collect();
        m.insert("members".into(), Value::Array(list));
    }
    m.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": d.created,
            "lastModified": d.last_modified,
            "location": format!("{}/Groups/{}", d.base, d.id),
            "version": etag(d.version),
        }),
    );
    Value::Object(m)
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupInput {
    pub display_name: String,
    pub external_id: Option<String>,
    /// Member ids with the type the client gave, if any (`User`/`Group`).
    pub members: Vec<(String, Option<String>)>,
}

pub fn parse_group(doc: &Value) -> Result<GroupInput> {
    let empty = Map::new();
    let m = doc.as_object().unwrap_or(&empty);
    let display_name =
        text(m, "displayName").ok_or_else(|| ScimError::value("'displayName' is required"))?;
    if display_name.chars().count() > 128 || display_name.chars().any(char::is_control) {
        return Err(ScimError::value(
            "'displayName' must be 1 to 128 printable characters",
        ));
    }
    let members = m
        .get("members")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|i| {
                    let id = i.get("value").and_then(Value::as_str).ok_or_else(|| {
                        ScimError::value("each member needs a 'value' (the member's id)")
                    })?;
                    Ok((
                        id.to_owned(),
                        i.get("type").and_then(Value::as_str).map(str::to_owned),
                    ))
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(GroupInput {
        display_name,
        external_id: text(m, "externalId"),
        members,
    })
}

/// A request body made canonical, as `normalize::resource` does, for `res`.
pub fn canonical(res: Resource, body: Value) -> Result<Value> {
    normalize::resource(res, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc<'a>(p: &'a Profile) -> UserDoc<'a> {
        UserDoc {
            base: "https://m.example/scim/v2",
            id: "u1",
            user_name: "alice",
            email: "alice@example.com",
            active: true,
            profile: p,
            created: "2026-01-01T00:00:00Z",
            last_modified: "2026-01-02T00:00:00Z",
            version: 3,
            groups: None,
            dates: AccessDates::default(),
        }
    }

    #[test]
    fn lifecycle_dates_render_only_when_pending_and_parse_back() {
        let p = Profile::default();
        let plain = render_user(&doc(&p));
        assert!(plain.get(LIFECYCLE).is_none());
        assert_eq!(plain["schemas"], json!([USER]));
        let dated = render_user(&UserDoc {
            dates: AccessDates {
                start: None,
                end: Some(1_800_000_000_000),
            },
            ..doc(&p)
        });
        assert_eq!(dated[LIFECYCLE], json!({"endDate": "2027-01-15T08:00:00Z"}));
        assert_eq!(dated["schemas"], json!([USER, LIFECYCLE]));
        // Any offset is accepted and means the same instant.
        let sent = canonical(
            Resource::User,
            json!({"userName": "a@x.io", LIFECYCLE: {"EndDate": "2027-01-15T09:00:00+01:00"}}),
        )
        .unwrap();
        let parsed = parse_user(&sent).unwrap();
        assert_eq!(parsed.dates.end, Some(1_800_000_000_000));
        assert_eq!(parsed.dates.start, None);
        for bad in [
            "tomorrow",
            "2027-01-15",
            "00000000-0000-4000-8000-000000000000",
        ] {
            let body = json!({"userName": "a@x.io", LIFECYCLE: {"startDate": bad}});
            let e = canonical(Resource::User, body).unwrap_err();
            assert_eq!(e.scim_type, Some(crate::ScimType::InvalidValue), "{bad}");
        }
        let flat = format!("{LIFECYCLE}:startDate");
        let e = canonical(Resource::User, json!({"userName": "a@x.io", flat: 5})).unwrap_err();
        assert_eq!(e.scim_type, Some(crate::ScimType::InvalidValue));
    }

    #[test]
    fn a_rendered_user_parses_back_to_the_same_profile() {
        let input = canonical(
            Resource::User,
            json!({
                "userName": "alice", "externalId": "E1",
                "name": {"givenName": "Alice", "familyName": "L", "formatted": "Alice L"},
                "emails": [{"value": "alice@example.com", "type": "work", "primary": true},
                           {"value": "a@home.example", "type": "home", "primary": false}],
                "phoneNumbers": [{"value": "+1 555", "type": "mobile"}],
                "title": "Eng", "userType": "Employee", "active": "True",
                ENTERPRISE: {"department": "R&D", "manager": "m1"},
            }),
        )
        .unwrap();
        let parsed = parse_user(&input).unwrap();
        assert_eq!(parsed.email.as_str(), "alice@example.com");
        assert_eq!(parsed.active, Some(true));
        let rendered = render_user(&doc(&parsed.profile));
        let again = parse_user(&rendered).unwrap();
        assert_eq!(again.profile, parsed.profile);
        assert_eq!(rendered["meta"]["version"], "W/\"3\"");
        assert_eq!(rendered[ENTERPRISE]["manager"]["value"], "m1");
        assert_eq!(rendered["emails"][1]["primary"], false);
    }

    #[test]
    fn the_sign_in_email_is_the_primary_then_the_first_then_the_user_name() {
        let p = |v: Value| parse_user(&canonical(Resource::User, v).unwrap());
        let u = p(
            json!({"userName": "x", "emails": [{"value": "a@x.io"}, {"value": "b@x.io", "primary": true}]}),
        );
        assert_eq!(u.unwrap().email.as_str(), "b@x.io");
        let u = p(json!({"userName": "x", "emails": [{"value": "a@x.io"}]}));
        assert_eq!(u.unwrap().email.as_str(), "a@x.io");
        let u = p(json!({"userName": "upn@corp.example"}));
        assert_eq!(u.unwrap().email.as_str(), "upn@corp.example");
        for bad in [
            json!({"userName": "no-address"}),
            json!({"emails": [{"value": "a@x.io"}]}),
            json!({"userName": "x", "emails": [{"value": "not an address"}]}),
            json!({"userName": "x\u{0}y", "emails": [{"value": "a@x.io"}]}),
        ] {
            let e = p(bad.clone()).unwrap_err();
            assert_eq!(e.scim_type, Some(crate::ScimType::InvalidValue), "{bad}");
        }
    }

    #[test]
    fn groups_render_members_only_when_loaded() {
        let members = [MemberDoc {
            id: "u1",
            is_group: false,
        }];
        let mut d = GroupDoc {
            base: "b",
            id: "g1",
            display_name: "Eng",
            external_id: None,
            created: "c",
            last_modified: "l",
            version: 1,
            members: Some(&members),
        };
        assert_eq!(render_group(&d)["members"][0]["type"], "User");
        d.members = None;
        assert!(render_group(&d).get("members").is_none());
        let g = parse_group(&json!({"displayName": "Eng", "members": [{"value": "u1"}]})).unwrap();
        assert_eq!(g.members, vec![("u1".to_owned(), None)]);
        assert!(parse_group(&json!({"members": []})).is_err());
    }
}
