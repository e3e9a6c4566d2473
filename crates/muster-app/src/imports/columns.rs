//! What a CSV column holds: its header (or an operator's `--map`) resolved to
//! a SCIM attribute (RFC 7643 §4.1, §4.3) or one of Muster's own fields.
//! Headers are matched without regard to case, spaces, `_` or `-`, so
//! "First Name", "first_name" and "givenName" all land on `name.givenName`.

use muster_scim::schema::ENTERPRISE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A top-level string attribute of the core User schema.
    Core(&'static str),
    /// A sub-attribute of `name`.
    Name(&'static str),
    /// An attribute of the enterprise extension other than `manager`.
    Enterprise(&'static str),
    /// The manager, as a user id, externalId or email address.
    Manager,
    /// The address the account signs in with.
    Email,
    /// Every address: a JSON array of SCIM values, or addresses split by `;`.
    Emails,
    /// Every phone number, written as `Emails` is.
    PhoneNumbers,
    /// One phone number of this type.
    Phone(&'static str),
    /// Role keys, split by `;`.
    Roles,
    /// One custom attribute.
    Custom(String),
    /// Every custom attribute, as a JSON object.
    CustomJson,
    /// Written by `muster export` for people to read (id, state, source,
    /// created); never imported.
    ReadOnly,
    /// Asked for with `--map column=ignore`.
    Ignore,
}

/// Lower-case, without spaces, `_` and `-`: how headers are compared.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

const ALIASES: &[(&[&str], Target)] = &[
    (
        &["username", "login", "upn", "userprincipalname"],
        Target::Core("userName"),
    ),
    (&["externalid"], Target::Core("externalId")),
    (&["displayname"], Target::Core("displayName")),
    (&["nickname"], Target::Core("nickName")),
    (&["title", "jobtitle"], Target::Core("title")),
    (&["usertype"], Target::Core("userType")),
    (&["profileurl"], Target::Core("profileUrl")),
    (&["locale"], Target::Core("locale")),
    (&["timezone"], Target::Core("timezone")),
    (
        &["preferredlanguage", "language"],
        Target::Core("preferredLanguage"),
    ),
    (
        &["givenname", "firstname", "name.givenname"],
        Target::Name("givenName"),
    ),
    (
        &["familyname", "lastname", "surname", "name.familyname"],
        Target::Name("familyName"),
    ),
    (
        &["middlename", "name.middlename"],
        Target::Name("middleName"),
    ),
    (
        &["formattedname", "fullname", "name.formatted"],
        Target::Name("formatted"),
    ),
    (
        &["honorificprefix", "name.honorificprefix"],
        Target::Name("honorificPrefix"),
    ),
    (
        &["honorificsuffix", "name.honorificsuffix"],
        Target::Name("honorificSuffix"),
    ),
    (
        &["employeenumber", "employeeid"],
        Target::Enterprise("employeeNumber"),
    ),
    (
        &["costcenter", "costcentre"],
        Target::Enterprise("costCenter"),
    ),
    (
        &["organization", "organisation"],
        Target::Enterprise("organization"),
    ),
    (&["division"], Target::Enterprise("division")),
    (&["department"], Target::Enterprise("department")),
    (
        &["manager", "manageremail", "managerid", "manager.value"],
        Target::Manager,
    ),
    (
        &["email", "emailaddress", "mail", "workemail", "primaryemail"],
        Target::Email,
    ),
    (&["emails"], Target::Emails),
    (&["phonenumbers"], Target::PhoneNumbers),
    (
        &["phone", "phonenumber", "workphone", "telephone"],
        Target::Phone("work"),
    ),
    (
        &["mobile", "mobilephone", "cellphone"],
        Target::Phone("mobile"),
    ),
    (&["roles", "role"], Target::Roles),
    (&["customattributes"], Target::CustomJson),
    (&["active"], Target::Core("active")),
    (
        &["id", "state", "source", "created", "lastmodified"],
        Target::ReadOnly,
    ),
];

/// The target a header (or the right side of `--map`) names, if any.
pub fn target(name: &str) -> Option<Target> {
    let name = name.trim();
    let lower = name.to_lowercase();
    if matches!(lower.as_str(), "ignore" | "-") {
        return Some(Target::Ignore);
    }
    if let Some(rest) = lower.strip_prefix("custom.") {
        let key = name.get(name.len() - rest.len()..).unwrap_or(rest).trim();
        return (!key.is_empty()).then(|| Target::Custom(key.to_owned()));
    }
    // `urn:…:enterprise:2.0:User:department`, as SCIM flattens extension names.
    let prefix = format!("{}:", ENTERPRISE.to_lowercase());
    let folded = match lower.strip_prefix(&prefix) {
        Some(rest) => fold(rest),
        None => fold(name),
    };
    ALIASES
        .iter()
        .find(|(names, _)| names.contains(&folded.as_str()))
        .map(|(_, t)| t.clone())
}

/// The key of `Profile`'s JSON that a target sets (`enterprise.department`,
/// `custom_attributes.shoe_size`); `None` for what is not profile data.
pub fn profile_key(t: &Target) -> Option<String> {
    let snake = |s: &str| -> String {
        match s {
            "formatted" => "formatted_name".into(),
            other => other.chars().fold(String::new(), |mut acc, c| {
                if c.is_ascii_uppercase() {
                    acc.push('_');
                    acc.push(c.to_ascii_lowercase());
                } else {
                    acc.push(c);
                }
                acc
            }),
        }
    };
    match t {
        Target::Core("userName" | "active") => None,
        Target::Core(n) | Target::Name(n) => Some(snake(n)),
        Target::Enterprise(n) => Some(format!("enterprise.{}", snake(n))),
        Target::Manager => Some("enterprise.manager".into()),
        Target::Emails => Some("emails".into()),
        Target::PhoneNumbers | Target::Phone(_) => Some("phone_numbers".into()),
        Target::Custom(k) => Some(format!("custom_attributes.{k}")),
        Target::CustomJson => Some("custom_attributes".into()),
        Target::Email | Target::Roles | Target::ReadOnly | Target::Ignore => None,
    }
}

/// Every profile key, for a line that gives a whole user (JSON Lines).
pub const ALL_PROFILE_KEYS: &[&str] = &[
    "formatted_name",
    "given_name",
    "family_name",
    "middle_name",
    "honorific_prefix",
    "honorific_suffix",
    "display_name",
    "nick_name",
    "title",
    "user_type",
    "profile_url",
    "locale",
    "timezone",
    "preferred_language",
    "emails",
    "phone_numbers",
    "external_id",
    "enterprise.employee_number",
    "enterprise.cost_center",
    "enterprise.organization",
    "enterprise.division",
    "enterprise.department",
    "enterprise.manager",
];

/// A header row resolved: each column's target, or the columns nobody mapped.
pub fn resolve(header: &[String], maps: &[(String, String)]) -> Result<Vec<Target>, String> {
    let mut out = Vec::with_capacity(header.len());
    let mut unknown = Vec::new();
    for h in header {
        let mapped = maps
            .iter()
            .find(|(col, _)| col.trim().eq_ignore_ascii_case(h.trim()));
        let t = match mapped {
            Some((_, attr)) => match target(attr) {
                Some(t) => t,
                None => {
                    return Err(format!(
                        "--map {h}={attr}: '{attr}' is not an attribute Muster knows"
                    ));
                }
            },
            None => match target(h) {
                Some(t) => t,
                None => {
                    unknown.push(h.clone());
                    continue;
                }
            },
        };
        if t != Target::Ignore && t != Target::ReadOnly && out.contains(&t) {
            return Err(format!(
                "two columns hold the same attribute (the second is '{h}'); map one of them to 'ignore'"
            ));
        }
        out.push(t);
    }
    for (col, _) in maps {
        if !header
            .iter()
            .any(|h| h.trim().eq_ignore_ascii_case(col.trim()))
        {
            return Err(format!(
                "--map names a column the file does not have: '{col}'"
            ));
        }
    }
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(|u| format!("'{u}'")).collect();
        let first = unknown.first().map(String::as_str).unwrap_or_default();
        return Err(format!(
            "unknown column{} {}: map each to an attribute or to a custom attribute, or ignore it, e.g. --map \"{first}=custom.{}\" or --map \"{first}=ignore\"",
            if unknown.len() > 1 { "s" } else { "" },
            list.join(", "),
            fold(first),
        ));
    }
    if !out
        .iter()
        .any(|t| matches!(t, Target::Email | Target::Emails | Target::Core("userName")))
    {
        return Err("the file has no email column: add one named 'email' (or map a column to it with --map)".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn headers_are_matched_loosely() {
        assert_eq!(target("First Name"), Some(Target::Name("givenName")));
        assert_eq!(target("family_name"), Some(Target::Name("familyName")));
        assert_eq!(target("E-mail"), Some(Target::Email));
        assert_eq!(target("name.givenName"), Some(Target::Name("givenName")));
        assert_eq!(
            target("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            Some(Target::Enterprise("department"))
        );
        assert_eq!(
            target("custom.Shoe Size"),
            Some(Target::Custom("Shoe Size".into()))
        );
        assert_eq!(target("custom."), None);
        assert_eq!(target("shoe size"), None);
        assert_eq!(target("Active"), Some(Target::Core("active")));
        assert_eq!(
            profile_key(&Target::Core("active")),
            None,
            "a state, not profile data"
        );
        assert_eq!(
            profile_key(&Target::Core("displayName")).as_deref(),
            Some("display_name")
        );
        assert_eq!(
            profile_key(&Target::Name("formatted")).as_deref(),
            Some("formatted_name")
        );
        assert_eq!(
            profile_key(&Target::Enterprise("costCenter")).as_deref(),
            Some("enterprise.cost_center")
        );
    }

    #[test]
    fn unknown_columns_are_refused_with_a_map_to_fix_them() {
        let e = resolve(&cols(&["email", "Shoe Size", "Desk"]), &[]).unwrap_err();
        assert!(e.contains("'Shoe Size', 'Desk'"), "{e}");
        assert!(e.contains("--map \"Shoe Size=custom.shoesize\""), "{e}");
        let maps = vec![
            ("shoe size".to_owned(), "custom.shoe".to_owned()),
            ("Desk".to_owned(), "ignore".to_owned()),
        ];
        let t = resolve(&cols(&["email", "Shoe Size", "Desk"]), &maps).unwrap();
        assert_eq!(
            t,
            vec![Target::Email, Target::Custom("shoe".into()), Target::Ignore]
        );
    }

    #[test]
    fn a_header_without_an_address_or_with_a_column_twice_is_refused() {
        assert!(
            resolve(&cols(&["givenName"]), &[])
                .unwrap_err()
                .contains("no email column")
        );
        let e = resolve(&cols(&["email", "mail"]), &[]).unwrap_err();
        assert!(e.contains("same attribute"), "{e}");
        let bad = vec![("Desk".to_owned(), "shoe".to_owned())];
        let e = resolve(&cols(&["email", "Desk"]), &bad).unwrap_err();
        assert!(e.contains("not an attribute"), "{e}");
        let missing = vec![("Nope".to_owned(), "title".to_owned())];
        assert!(
            resolve(&cols(&["email"]), &missing)
                .unwrap_err()
                .contains("'Nope'")
        );
    }
}
