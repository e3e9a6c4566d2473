//! The schemas Muster serves (RFC 7643 §4, §7, §8.7.1): exactly the attributes
//! it stores, with their types, mutability and case sensitivity. The same
//! tables drive `/Schemas`, filter evaluation, PATCH and input normalisation,
//! so what is advertised is what is enforced.

use serde_json::{Value, json};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Muster's own User extension: the start and end dates of the scheduled
/// lifecycle, for IdPs that map a hire or leave date to them.
pub const LIFECYCLE: &str = "urn:muster:params:scim:schemas:extension:lifecycle:2.0:User";
pub const SCHEMA_URNS: [&str; 4] = [USER, GROUP, ENTERPRISE, LIFECYCLE];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    DateTime,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Default,
    /// Only when named in `attributes` (RFC 7643 §7).
    Request,
    Never,
}

#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub kind: Kind,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub unique: bool,
    pub sub: &'static [Attr],
    pub ref_types: &'static [&'static str],
    pub canonical: &'static [&'static str],
    pub description: &'static str,
}

const fn text(name: &'static str, description: &'static str) -> Attr {
    Attr {
        name,
        kind: Kind::String,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique: false,
        sub: &[],
        ref_types: &[],
        canonical: &[],
        description,
    }
}

const fn complex(name: &'static str, sub: &'static [Attr], description: &'static str) -> Attr {
    Attr {
        kind: Kind::Complex,
        sub,
        ..text(name, description)
    }
}

const fn multi(name: &'static str, sub: &'static [Attr], description: &'static str) -> Attr {
    Attr {
        multi: true,
        ..complex(name, sub, description)
    }
}

const PRIMARY: Attr = Attr {
    kind: Kind::Boolean,
    ..text(
        "primary",
        "Whether this is the preferred value; at most one is",
    )
};

const TYPED_VALUES: [Attr; 3] = [
    text("value", "The value"),
    text("type", "A label such as work or home"),
    PRIMARY,
];

/// An email needs its address: a user must have one to sign in.
const EMAIL_VALUES: [Attr; 3] = [
    Attr {
        required: true,
        ..text("value", "The address")
    },
    text("type", "A label such as work or home"),
    PRIMARY,
];

const NAME: [Attr; 6] = [
    text("formatted", "The full name, formatted for display"),
    text("familyName", "Family name"),
    text("givenName", "Given name"),
    text("middleName", "Middle name"),
    text("honorificPrefix", "Honorific prefix, such as Ms."),
    text("honorificSuffix", "Honorific suffix, such as III"),
];

const GROUP_REF: [Attr; 4] = [
    Attr {
        mutability: Mutability::ReadOnly,
        ..text("value", "The group's id")
    },
    Attr {
        kind: Kind::Reference,
        mutability: Mutability::ReadOnly,
        ref_types: &["Group"],
        ..text("$ref", "The group's URI")
    },
    Attr {
        mutability: Mutability::ReadOnly,
        ..text("display", "The group's display name")
    },
    Attr {
        mutability: Mutability::ReadOnly,
        ..text("type", "direct or indirect membership")
    },
];

pub static USER_ATTRS: [Attr; 15] = [
    Attr {
        required: true,
        unique: true,
        ..text(
            "userName",
            "Unique within the organization, compared case-insensitively",
        )
    },
    complex("name", &NAME, "The person's name"),
    text("displayName", "Name to display"),
    text("nickName", "Casual name"),
    Attr {
        kind: Kind::Reference,
        ref_types: &["external"],
        ..text("profileUrl", "A page about the person")
    },
    text("title", "Job title"),
    text(
        "userType",
        "Relationship to the organization, such as Employee",
    ),
    text("preferredLanguage", "Preferred language, such as en-US"),
    text("locale", "Locale for formatting, such as en-US"),
    text("timezone", "Time zone, such as Europe/Paris"),
    // Every account is either active or not, so the attribute is always
    // there: it cannot be removed, only set.
    Attr {
        kind: Kind::Boolean,
        required: true,
        ..text(
            "active",
            "false deactivates the account (every session and token ends); true reactivates it",
        )
    },
    Attr {
        case_exact: true,
        mutability: Mutability::WriteOnly,
        returned: Returned::Never,
        ..text(
            "password",
            "Checked against the organization's password policy; never returned",
        )
    },
    Attr {
        required: true,
        ..multi(
            "emails",
            &EMAIL_VALUES,
            "Email addresses; the primary one signs in and is unique in the organization",
        )
    },
    multi("phoneNumbers", &TYPED_VALUES, "Phone numbers"),
    Attr {
        mutability: Mutability::ReadOnly,
        returned: Returned::Request,
        ..multi(
            "groups",
            &GROUP_REF,
            "Groups the user belongs to, directly or through nested groups",
        )
    },
];

const MANAGER: [Attr; 3] = [
    text("value", "The manager's id"),
    Attr {
        kind: Kind::Reference,
        ref_types: &["User"],
        ..text("$ref", "The manager's URI")
    },
    Attr {
        mutability: Mutability::ReadOnly,
        ..text("displayName", "The manager's display name")
    },
];

pub static ENTERPRISE_ATTRS: [Attr; 6] = [
    text("employeeNumber", "Employee number"),
    text("costCenter", "Cost center"),
    text("organization", "Organization"),
    text("division", "Division"),
    text("department", "Department"),
    complex(
        "manager",
        &MANAGER,
        "The user's manager, a user of the same organization",
    ),
];

const fn date(name: &'static str, description: &'static str) -> Attr {
    Attr {
        kind: Kind::DateTime,
        ..text(name, description)
    }
}

pub static LIFECYCLE_ATTRS: [Attr; 2] = [
    date(
        "startDate",
        "When the user gets access (activated, unsuspended or reactivated); pending dates only",
    ),
    date(
        "endDate",
        "When the user is deactivated; pending dates only",
    ),
];

/// RFC 7643 §8.7.1: a member is its id, its URI and its type.
const MEMBER: [Attr; 3] = [
    Attr {
        mutability: Mutability::Immutable,
        ..text("value", "The member's id")
    },
    Attr {
        kind: Kind::Reference,
        mutability: Mutability::Immutable,
        ref_types: &["User", "Group"],
        ..text("$ref", "The member's URI")
    },
    Attr {
        mutability: Mutability::Immutable,
        canonical: &["User", "Group"],
        ..text("type", "User or Group")
    },
];

pub static GROUP_ATTRS: [Attr; 2] = [
    Attr {
        required: true,
        unique: true,
        ..text("displayName", "Unique within the organization")
    },
    multi("members", &MEMBER, "Users and groups in this group"),
];

/// Attributes every resource has (RFC 7643 §3.1), looked up before the schema's.
pub static COMMON_ATTRS: [Attr; 3] = [
    Attr {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        returned: Returned::Always,
        unique: true,
        ..text("id", "Assigned by Muster")
    },
    Attr {
        case_exact: true,
        ..text(
            "externalId",
            "The IdP's identifier, unique in the organization",
        )
    },
    Attr {
        mutability: Mutability::ReadOnly,
        ..complex("meta", &META, "Resource metadata")
    },
];

const META: [Attr; 5] = [
    Attr {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        ..text("resourceType", "User or Group")
    },
    Attr {
        kind: Kind::DateTime,
        mutability: Mutability::ReadOnly,
        ..text("created", "When the resource was created")
    },
    Attr {
        kind: Kind::DateTime,
        mutability: Mutability::ReadOnly,
        ..text("lastModified", "When the resource last changed")
    },
    Attr {
        kind: Kind::Reference,
        case_exact: true,
        mutability: Mutability::ReadOnly,
        ..text("location", "The resource's URI")
    },
    Attr {
        case_exact: true,
        mutability: Mutability::ReadOnly,
        ..text("version", "The resource's ETag")
    },
];

static USER_EXTENSIONS: [(&str, &[Attr]); 2] = [
    (ENTERPRISE, &ENTERPRISE_ATTRS),
    (LIFECYCLE, &LIFECYCLE_ATTRS),
];

/// The kind of resource a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

impl Resource {
    pub fn schema(self) -> &'static str {
        match self {
            Self::User => USER,
            Self::Group => GROUP,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "/Users",
            Self::Group => "/Groups",
        }
    }
    pub fn core_attrs(self) -> &'static [Attr] {
        match self {
            Self::User => &USER_ATTRS,
            Self::Group => &GROUP_ATTRS,
        }
    }
    pub fn extensions(self) -> &'static [(&'static str, &'static [Attr])] {
        match self {
            Self::User => &USER_EXTENSIONS,
            Self::Group => &[],
        }
    }

    /// Resolves a top-level attribute: `(extension URN or None, definition)`.
    pub fn attr(
        self,
        urn: Option<&str>,
        name: &str,
    ) -> Option<(Option<&'static str>, &'static Attr)> {
        let core = |n: &str| {
            COMMON_ATTRS
                .iter()
                .chain(self.core_attrs())
                .find(|a| a.name.eq_ignore_ascii_case(n))
                .map(|a| (None, a))
        };
        match urn {
            None => core(name),
            Some(u) if u.eq_ignore_ascii_case(self.schema()) => core(name),
            Some(u) => self
                .extensions()
                .iter()
                .find(|(x, _)| x.eq_ignore_ascii_case(u))
                .and_then(|(x, attrs)| {
                    attrs
                        .iter()
                        .find(|a| a.name.eq_ignore_ascii_case(name))
                        .map(|a| (Some(*x), a))
                }),
        }
    }

    /// The extension whose URN is `key` (a key of a resource's JSON object).
    pub fn extension(self, key: &str) -> Option<(&'static str, &'static [Attr])> {
        self.extensions()
            .iter()
            .find(|(x, _)| x.eq_ignore_ascii_case(key))
            .copied()
    }
}

impl Attr {
    pub fn sub_attr(&self, name: &str) -> Option<&'static Attr>
    where
        Self: 'static,
    {
        self.sub.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// Splits `urn:…:Name.sub` into the schema URN and the rest. Known URNs are
/// matched first, since they contain dots ("2.0") and colons of their own.
pub fn split_urn(word: &str) -> Option<(&str, &str)> {
    if !word
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        return None;
    }
    for urn in SCHEMA_URNS {
        if word.len() > urn.len()
            && word
                .get(..urn.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(urn))
            && word.as_bytes().get(urn.len()) == Some(&b':')
        {
            return Some((word.get(..urn.len())?, word.get(urn.len() + 1..)?));
        }
    }
    let i = word.rfind(':')?;
    Some((word.get(..i)?, word.get(i + 1..)?))
}

fn attr_json(a: &Attr) -> Value {
    let mut v = json!({
        "name": a.name,
        "type": match a.kind {
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::DateTime => "dateTime",
            Kind::Reference => "reference",
            Kind::Complex => "complex",
        },
        "multiValued": a.multi,
        "description": a.description,
        "required": a.required,
        "caseExact": a.case_exact,
        "mutability": match a.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        },
        "returned": match a.returned {
            Returned::Always => "always",
            Returned::Default => "default",
            Returned::Request => "request",
            Returned::Never => "never",
        },
        "uniqueness": if a.unique { "server" } else { "none" },
    });
    if let Some(o) = v.as_object_mut() {
        if a.kind == Kind::Complex {
            o.insert(
                "subAttributes".into(),
                Value::Array(a.sub.iter().map(attr_json).collect()),
            );
        }
        if a.kind == Kind::Reference {
            o.insert("referenceTypes".into(), json!(a.ref_types));
        }
        if !a.canonical.is_empty() {
            o.insert("canonicalValues".into(), json!(a.canonical));
        }
    }
    v
}

/// One `/Schemas` entry (RFC 7643 §7).
pub fn schema_json(id: &str, base: &str) -> Option<Value> {
    let (name, description, attrs): (&str, &str, &[Attr]) = match id {
        USER => ("User", "User account", &USER_ATTRS),
        GROUP => ("Group", "Group", &GROUP_ATTRS),
        ENTERPRISE => ("EnterpriseUser", "Enterprise user", &ENTERPRISE_ATTRS),
        LIFECYCLE => (
            "MusterLifecycle",
            "Start and end dates of the user's access",
            &LIFECYCLE_ATTRS,
        ),
        _ => return None,
    };
    Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attrs.iter().map(attr_json).collect::<Vec<_>>(),
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_urn_handles_dots_and_colons_inside_known_urns() {
        assert_eq!(
            split_urn("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
            Some((ENTERPRISE, "manager.value"))
        );
        assert_eq!(
            split_urn("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:userName").map(|(_, r)| r),
            Some("userName")
        );
        assert_eq!(split_urn("userName"), None);
        assert_eq!(split_urn("urn:x:y"), Some(("urn:x", "y")));
    }

    #[test]
    fn attributes_resolve_case_insensitively_including_extensions() {
        let (x, a) = Resource::User.attr(None, "USERNAME").unwrap();
        assert_eq!((x, a.name), (None, "userName"));
        let (x, a) = Resource::User
            .attr(
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"),
                "Manager",
            )
            .unwrap();
        assert_eq!((x, a.name), (Some(ENTERPRISE), "manager"));
        assert!(Resource::Group.attr(None, "userName").is_none());
        assert!(Resource::User.attr(None, "meta").is_some());
    }

    #[test]
    fn every_schema_renders_with_its_attributes() {
        for id in SCHEMA_URNS {
            let s = schema_json(id, "http://x/scim/v2").unwrap();
            assert!(!s["attributes"].as_array().unwrap().is_empty(), "{id}");
        }
        assert!(schema_json("urn:nope", "").is_none());
    }
}
