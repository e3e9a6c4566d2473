//! `EmailAddress`: parsed once at the edge. Uniqueness inside an organization is
//! case-insensitive (DESIGN §1), so the value carries its comparison key.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid email address")]
pub struct InvalidEmail(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// A pragmatic subset of RFC 5321: one `@`, a non-empty local part of at most
    /// 64 octets without spaces or control characters, and a domain of dot-separated
    /// labels (letters, digits, hyphens; not starting or ending with a hyphen).
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let s = raw.trim();
        let bad = || InvalidEmail(truncate(raw));
        if s.len() > 254 {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || local.len() > 64
            || domain.contains('@')
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || local
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c))
        {
            return Err(bad());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(bad());
        }
        for l in &labels {
            if l.is_empty()
                || l.len() > 63
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(bad());
            }
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that makes `Ann@Example.com` and `ann@example.com` the same address.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl TryFrom<String> for EmailAddress {
    type Error = InvalidEmail;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}
impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_the_domain() {
        let e = EmailAddress::parse(" Ann.Lee+x@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ann.Lee+x@example.com");
        assert_eq!(e.key(), "ann.lee+x@example.com");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@-b.com",
            "a@b-.com",
            "a@b..com",
            ".a@b.com",
            "a..b@c.com",
            "a@b_c.com",
            "<a>@b.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn addresses_differing_only_in_case_share_a_key() {
        let a = EmailAddress::parse("ANN@example.com").unwrap();
        let b = EmailAddress::parse("ann@EXAMPLE.com").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.key(), b.key());
    }
}
