//! Bearer token format. A token is `<prefix>_<id>_<secret>`: the id finds the
//! row, and the secret is compared to the stored hash in constant time, so a
//! lookup never turns into a timing oracle on the secret.

use uuid::Uuid;

pub const API_TOKEN_PREFIX: &str = "mst";
/// SCIM tokens look different, so that one is never pasted where the other goes.
pub const SCIM_TOKEN_PREFIX: &str = "mss";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    pub id: Uuid,
    pub secret: &'a str,
}

/// Splits a presented token; `None` for anything not of the expected shape.
pub fn parse<'a>(prefix: &str, token: &'a str) -> Option<ParsedToken<'a>> {
    let rest = token.strip_prefix(prefix)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 32 || secret.len() != 43 {
        return None;
    }
    if !secret
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    Some(ParsedToken {
        id: Uuid::try_parse(id).ok()?,
        secret,
    })
}

/// The presented form of a new token (`secret` is 43 characters of base64url).
pub fn format(prefix: &str, id: Uuid, secret: &str) -> String {
    format!("{prefix}_{}_{secret}", id.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_tokens_parse_back() {
        let id = Uuid::now_v7();
        let secret = "A".repeat(43);
        let t = format(API_TOKEN_PREFIX, id, &secret);
        let p = parse(API_TOKEN_PREFIX, &t).unwrap();
        assert_eq!(p.id, id);
        assert_eq!(p.secret, secret);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let id = Uuid::now_v7().simple().to_string();
        let s = "A".repeat(43);
        for bad in [
            String::new(),
            format!("xyz_{id}_{s}"),
            format!("mst_{id}"),
            format!("mst_{id}_{}", "A".repeat(42)),
            format!("mst_{}_{s}", "z".repeat(32)),
            format!("mst_{id}_{}", "A".repeat(42) + "!"),
        ] {
            assert!(parse(API_TOKEN_PREFIX, &bad).is_none(), "{bad}");
        }
    }
}
