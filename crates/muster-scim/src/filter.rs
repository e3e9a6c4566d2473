//! SCIM filters (RFC 7644 §3.4.2.2): lexer, parser and AST, plus the attribute
//! paths they share with PATCH (RFC 7644 §3.5.2, ABNF in Figure 1).
//!
//! Precedence is the RFC's: `not` binds tightest, then `and`, then `or`;
//! parentheses group. Keywords and operators are case-insensitive. Input size
//! and nesting are bounded so that any string gets an answer, never a crash:
//! the parser recurses at most `MAX_DEPTH` levels.

use crate::error::{Result, ScimError};
use crate::schema;
use std::fmt;

/// Longest filter accepted, in bytes. Real IdP filters are under 200.
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of parentheses, `not` and value paths.
pub const MAX_DEPTH: usize = 32;

/// `[URI ":"] ATTRNAME ["." subAttr]`, kept as written; the schema resolves
/// names case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN, when the path names one (extension attributes).
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    pub fn new(name: &str) -> Self {
        Self {
            urn: None,
            name: name.into(),
            sub: None,
        }
    }

    /// Parses one attribute path word such as `emails.value` or
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
    pub fn parse(word: &str) -> Result<Self> {
        let bad = || ScimError::path(format!("'{word}' is not an attribute path"));
        let (urn, rest) = match schema::split_urn(word) {
            Some((urn, rest)) => (Some(urn.to_owned()), rest),
            None => (None, word),
        };
        let mut parts = rest.split('.');
        let name = parts.next().filter(|n| valid_name(n)).ok_or_else(bad)?;
        let sub = match parts.next() {
            Some(s) if valid_name(s) => Some(s.to_owned()),
            Some(_) => return Err(bad()),
            None => None,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self {
            urn,
            name: name.to_owned(),
            sub,
        })
    }

    /// The same path with `sub` as its sub-attribute (inside a value path).
    pub fn with_sub(&self, sub: Option<String>) -> Self {
        Self {
            urn: self.urn.clone(),
            name: self.name.clone(),
            sub,
        }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA
/// (RFC 7643 §2.1); `$ref` is the one reserved name with a `$`.
fn valid_name(n: &str) -> bool {
    if n.eq_ignore_ascii_case("$ref") {
        return true;
    }
    let mut cs = n.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic())
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(w: &str) -> Option<Self> {
        Some(match w.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }
}

/// compValue = false / null / true / number / string (RFC 7644 Figure 1).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, CompValue),
    /// `emails[type eq "work"]`: the inner filter's paths are relative to the
    /// multi-valued attribute's elements.
    ValuePath(AttrPath, Box<Filter>),
}

impl Filter {
    pub fn parse(input: &str) -> Result<Self> {
        if input.len() > MAX_LEN {
            return Err(ScimError::filter(format!(
                "the filter is longer than {MAX_LEN} bytes"
            )));
        }
        let tokens = lex(input)?;
        let mut p = Parser { tokens, pos: 0 };
        let f = p.or(0)?;
        match p.peek() {
            None => Ok(f),
            Some(t) => Err(ScimError::filter(format!("unexpected {t} in the filter"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Str(String),
    Word(String),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open => write!(f, "'('"),
            Self::Close => write!(f, "')'"),
            Self::OpenBracket => write!(f, "'['"),
            Self::CloseBracket => write!(f, "']'"),
            Self::Str(s) => write!(f, "string \"{s}\""),
            Self::Word(w) => write!(f, "'{w}'"),
        }
    }
}

pub(crate) fn lex(input: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut it = input.char_indices().peekable();
    while let Some(&(i, c)) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '(' | ')' | '[' | ']' => {
                it.next();
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenBracket,
                    _ => Token::CloseBracket,
                });
            }
            '"' => {
                // A JSON string (RFC 7644 §3.4.2.2: "string" is RFC 7159's).
                let rest = input.get(i..).unwrap_or("");
                let end = string_end(rest)
                    .ok_or_else(|| ScimError::filter("a string in the filter is not closed"))?;
                let lit = rest.get(..end).unwrap_or("");
                let s: String = serde_json::from_str(lit)
                    .map_err(|_| ScimError::filter(format!("{lit} is not a valid JSON string")))?;
                out.push(Token::Str(s));
                while it.peek().is_some_and(|&(j, _)| j < i + end) {
                    it.next();
                }
            }
            _ => {
                let start = i;
                let mut end = input.len();
                while let Some(&(j, c)) = it.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"') {
                        end = j;
                        break;
                    }
                    it.next();
                }
                out.push(Token::Word(input.get(start..end).unwrap_or("").to_owned()));
            }
        }
    }
    Ok(out)
}

/// Byte length of the JSON string literal at the start of `s`, quotes included.
fn string_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn depth(depth: usize) -> Result<usize> {
        if depth >= MAX_DEPTH {
            return Err(ScimError::filter(format!(
                "the filter nests deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(depth + 1)
    }

    fn or(&mut self, depth: usize) -> Result<Filter> {
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and(depth)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Filter> {
        let mut left = self.unary(depth)?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary(depth)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Filter> {
        let depth = Self::depth(depth)?;
        if self.keyword("not") && matches!(self.tokens.get(self.pos + 1), Some(Token::Open)) {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.group(depth)?)));
        }
        if matches!(self.peek(), Some(Token::Open)) {
            return self.group(depth);
        }
        self.attr_exp(depth)
    }

    fn group(&mut self, depth: usize) -> Result<Filter> {
        self.pos += 1; // "("
        let f = self.or(depth)?;
        match self.next() {
            Some(Token::Close) => Ok(f),
            Some(t) => Err(ScimError::filter(format!("expected ')' but found {t}"))),
            None => Err(ScimError::filter("a '(' is not closed")),
        }
    }

    fn attr_exp(&mut self, depth: usize) -> Result<Filter> {
        let word = match self.next() {
            Some(Token::Word(w)) => w,
            Some(t) => {
                return Err(ScimError::filter(format!(
                    "expected an attribute but found {t}"
                )));
            }
            None => return Err(ScimError::filter("the filter ends too early")),
        };
        let path = AttrPath::parse(&word).map_err(|e| ScimError::filter(e.detail))?;
        if matches!(self.peek(), Some(Token::OpenBracket)) {
            if path.sub.is_some() {
                return Err(ScimError::filter(format!(
                    "'{word}[' : a value filter follows the attribute, not its sub-attribute"
                )));
            }
            self.pos += 1;
            let inner = self.or(depth)?;
            if contains_value_path(&inner) {
                return Err(ScimError::filter("value filters cannot be nested"));
            }
            return match self.next() {
                Some(Token::CloseBracket) => Ok(Filter::ValuePath(path, Box::new(inner))),
                _ => Err(ScimError::filter("a '[' is not closed")),
            };
        }
        let op = match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path));
            }
            Some(Token::Word(w)) => CompareOp::parse(&w)
                .ok_or_else(|| ScimError::filter(format!("'{w}' is not a filter operator")))?,
            Some(t) => {
                return Err(ScimError::filter(format!(
                    "expected an operator after '{word}' but found {t}"
                )));
            }
            None => {
                return Err(ScimError::filter(format!(
                    "expected an operator after '{word}'"
                )));
            }
        };
        let value = match self.next() {
            Some(Token::Str(s)) => CompValue::Str(s),
            Some(Token::Word(w)) => match w.as_str() {
                "true" => CompValue::Bool(true),
                "false" => CompValue::Bool(false),
                "null" => CompValue::Null,
                n => CompValue::Num(
                    n.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && looks_numeric(n))
                        .ok_or_else(|| {
                            ScimError::filter(format!(
                                "'{n}' is not a value: quote strings, as in \"{n}\""
                            ))
                        })?,
                ),
            },
            Some(t) => {
                return Err(ScimError::filter(format!(
                    "expected a value after '{word} {}' but found {t}",
                    op.as_str()
                )));
            }
            None => {
                return Err(ScimError::filter(format!(
                    "expected a value after '{word} {}'",
                    op.as_str()
                )));
            }
        };
        Ok(Filter::Compare(path, op, value))
    }
}

/// JSON numbers only: `inf`, `NaN` and `1e` are not numbers in a filter.
fn looks_numeric(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        && s.chars().any(|c| c.is_ascii_digit())
}

fn contains_value_path(f: &Filter) -> bool {
    match f {
        Filter::ValuePath(..) => true,
        Filter::And(a, b) | Filter::Or(a, b) => contains_value_path(a) || contains_value_path(b),
        Filter::Not(a) => contains_value_path(a),
        Filter::Present(_) | Filter::Compare(..) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eq(p: &str, v: &str) -> Filter {
        Filter::Compare(
            AttrPath::parse(p).unwrap(),
            CompareOp::Eq,
            CompValue::Str(v.into()),
        )
    }

    #[test]
    fn parses_every_operator_case_insensitively() {
        for op in ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"] {
            for spelled in [op.to_owned(), op.to_uppercase()] {
                let f = Filter::parse(&format!("userName {spelled} \"x\"")).unwrap();
                let Filter::Compare(_, parsed, _) = f else {
                    panic!("{f:?}")
                };
                assert_eq!(parsed.as_str(), op);
            }
        }
        assert_eq!(
            Filter::parse("title PR").unwrap(),
            Filter::Present(AttrPath::new("title"))
        );
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        let f = Filter::parse(r#"a eq "1" or b eq "2" and not (c eq "3")"#).unwrap();
        assert_eq!(
            f,
            Filter::Or(
                Box::new(eq("a", "1")),
                Box::new(Filter::And(
                    Box::new(eq("b", "2")),
                    Box::new(Filter::Not(Box::new(eq("c", "3"))))
                ))
            )
        );
        let g = Filter::parse(r#"(a eq "1" or b eq "2") and c eq "3""#).unwrap();
        assert!(matches!(g, Filter::And(..)));
    }

    #[test]
    fn value_paths_sub_attributes_and_urns() {
        let f = Filter::parse(r#"emails[type eq "work" and value co "@example.com"]"#).unwrap();
        let Filter::ValuePath(p, inner) = f else {
            panic!()
        };
        assert_eq!(p.name, "emails");
        assert!(matches!(*inner, Filter::And(..)));
        let g = Filter::parse(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "42""#,
        )
        .unwrap();
        let Filter::Compare(p, ..) = g else { panic!() };
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(
            (p.name.as_str(), p.sub.as_deref()),
            ("manager", Some("value"))
        );
    }

    #[test]
    fn values_of_every_json_kind() {
        for (text, want) in [
            ("true", CompValue::Bool(true)),
            ("false", CompValue::Bool(false)),
            ("null", CompValue::Null),
            ("42", CompValue::Num(42.0)),
            ("-1.5e2", CompValue::Num(-150.0)),
            (r#""a \"q\" \u00e9""#, CompValue::Str("a \"q\" é".into())),
        ] {
            let f = Filter::parse(&format!("x eq {text}")).unwrap();
            assert_eq!(f, Filter::Compare(AttrPath::new("x"), CompareOp::Eq, want));
        }
    }

    #[test]
    fn refuses_malformed_filters_with_invalid_filter() {
        for bad in [
            "",
            "userName",
            "userName eq",
            "userName eq bob",
            "userName like \"x\"",
            "(userName eq \"x\"",
            "userName eq \"x\")",
            "emails[type eq \"work\"",
            "emails[type[value eq \"x\"] eq \"y\"]",
            "userName eq \"unterminated",
            "1abc eq \"x\"",
            "a.b.c eq \"x\"",
            "x eq inf",
            "x eq NaN",
            "and",
        ] {
            let e = Filter::parse(bad).unwrap_err();
            assert_eq!(
                e.scim_type,
                Some(crate::ScimType::InvalidFilter),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_and_huge_input_are_refused_not_crashed() {
        let deep = format!("{}a pr{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(Filter::parse(&deep).is_err());
        let nots = format!("{}a pr{}", "not (".repeat(100), ")".repeat(100));
        assert!(Filter::parse(&nots).is_err());
        let long = format!("a eq \"{}\"", "x".repeat(MAX_LEN));
        assert!(Filter::parse(&long).is_err());
        let ok = format!("{}a pr{}", "(".repeat(20), ")".repeat(20));
        assert!(Filter::parse(&ok).is_ok());
    }

    proptest! {
        #[test]
        fn any_input_gets_an_answer(s in "\\PC{0,200}") {
            let _ = Filter::parse(&s);
        }

        #[test]
        fn filter_like_input_gets_an_answer(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("("), Just(")"), Just("["), Just("]"), Just(" and "), Just(" or "),
                    Just("not "), Just("userName"), Just(" eq "), Just(" pr"), Just("\"x\""),
                    Just("emails"), Just(".value"), Just("1"), Just("true"), Just("\\"), Just("\""),
                ],
                0..60,
            )
        ) {
            let _ = Filter::parse(&parts.concat());
        }

        #[test]
        fn a_printed_comparison_parses_back(
            name in "[a-zA-Z][a-zA-Z0-9_-]{0,10}",
            value in "\\PC{0,20}",
        ) {
            let text = format!("{name} eq {}", serde_json::Value::String(value.clone()));
            let f = Filter::parse(&text).unwrap();
            prop_assert_eq!(f, Filter::Compare(AttrPath::new(&name), CompareOp::Eq, CompValue::Str(value)));
        }
    }
}
