//! Audit events and the per-organization hash chain (DESIGN.md §1 "Audit log").
//!
//! Events are written in the transaction of the change they record. The chain
//! links them afterwards: a sealer takes the organization's unsealed events in
//! batches and appends, for each, `hash = SHA-256(domain ‖ prev ‖ seq ‖ event)`
//! over the event's stored text. Sealing in batches keeps the chain's one
//! serial point out of every request's commit, which is what lets concurrent
//! writers in one organization commit in parallel. `verify` replays the chain.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first event of every organization's chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    ApiToken,
    ScimToken,
    Cli,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ApiToken => "api_token",
            Self::ScimToken => "scim_token",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }
}

/// Who did it. `id` is the user, token or operator name; `label` is what a
/// person reading the log recognises (an email, a token's name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub label: Option<String>,
    /// For tokens: the user the token acts for.
    pub on_behalf_of: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: None,
            label: None,
            on_behalf_of: None,
        }
    }
    pub fn cli(operator: &str) -> Self {
        Self {
            kind: ActorKind::Cli,
            id: None,
            label: Some(operator.to_owned()),
            on_behalf_of: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Info,
    Security,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "INFO",
            Self::Security => "SECURITY",
            Self::Error => "ERROR",
        }
    }
}

/// Where the request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The browser's device cookie (a credential: never stored, never
    /// part of an event; the risk engine hashes it).
    #[serde(skip)]
    pub device: Option<String>,
}

/// An event as stored: every field is the exact text that is hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: String,
    pub org_id: String,
    pub occurred_at: i64,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub actor_label: Option<String>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub severity: String,
    /// JSON text: `{ field: [before, after] }`, secrets already redacted.
    pub changes: String,
    /// JSON text of `Context` plus the actor's `on_behalf_of`.
    pub context: String,
}

impl StoredEvent {
    /// A canonical, unambiguous encoding: a JSON array of the fields in a fixed
    /// order (strings are escaped, so no field can run into the next).
    pub fn canonical(&self) -> String {
        serde_json::json!([
            self.id,
            self.org_id,
            self.occurred_at,
            self.actor_kind,
            self.actor_id,
            self.actor_label,
            self.action,
            self.target_kind,
            self.target_id,
            self.severity,
            self.changes,
            self.context,
        ])
        .to_string()
    }
}

/// The link of event number `seq` given the previous link's hash.
pub fn chain_hash(prev: &str, seq: i64, event: &StoredEvent) -> String {
    let mut h = Sha256::new();
    h.update(b"muster-audit-v1\n");
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(event.canonical().as_bytes());
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// One stored link of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: i64,
    pub event_id: String,
    pub hash: String,
}

/// What `verify` found wrong, naming the place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Finding {
    /// The sequence skips or repeats numbers: links were removed or reordered.
    SequenceGap { expected: i64, found: i64 },
    /// A link points at an event that no longer exists.
    EventMissing { seq: i64, event_id: String },
    /// The event's stored text, or the link, no longer matches its hash.
    HashMismatch { seq: i64, event_id: String },
    /// An event sits in the table that the chain never sealed and that is not
    /// waiting to be sealed: it was inserted behind the server's back.
    UnchainedEvent { event_id: String },
    /// The checkpoint the chain starts from (after archiving) is not signed
    /// by this server's key.
    BadCheckpoint { seq: i64 },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SequenceGap { expected, found } => {
                write!(
                    f,
                    "sequence gap: expected link {expected}, found {found} (links deleted or reordered)"
                )
            }
            Self::EventMissing { seq, event_id } => {
                write!(f, "event {event_id} (link {seq}) is missing: deleted")
            }
            Self::HashMismatch { seq, event_id } => {
                write!(
                    f,
                    "event {event_id} (link {seq}) does not match its hash: modified or reordered"
                )
            }
            Self::BadCheckpoint { seq } => {
                write!(
                    f,
                    "the checkpoint at link {seq} is not signed by this server's key: forged or altered"
                )
            }
            Self::UnchainedEvent { event_id } => {
                write!(
                    f,
                    "event {event_id} is not in the chain: inserted outside Muster"
                )
            }
        }
    }
}

/// Replays a chain segment. `links` must be in the order stored (by seq);
/// `event` looks an event up by id. `start` is the (seq, hash) before the
/// segment: `(0, GENESIS)` for a whole chain.
pub fn verify<'a>(
    start: (i64, &str),
    links: impl IntoIterator<Item = &'a Link>,
    event: impl Fn(&str) -> Option<&'a StoredEvent>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let (mut expected, mut prev) = (start.0 + 1, start.1.to_owned());
    for link in links {
        if link.seq != expected {
            findings.push(Finding::SequenceGap {
                expected,
                found: link.seq,
            });
        }
        match event(&link.event_id) {
            None => findings.push(Finding::EventMissing {
                seq: link.seq,
                event_id: link.event_id.clone(),
            }),
            Some(ev) => {
                if ev.id != link.event_id || chain_hash(&prev, link.seq, ev) != link.hash {
                    findings.push(Finding::HashMismatch {
                        seq: link.seq,
                        event_id: link.event_id.clone(),
                    });
                }
            }
        }
        // Continue from the stored hash so one bad link is reported once, not
        // as a cascade down the rest of the chain.
        prev.clone_from(&link.hash);
        expected = link.seq + 1;
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn ev(n: i64) -> StoredEvent {
        StoredEvent {
            id: format!("e{n}"),
            org_id: "o".into(),
            occurred_at: 1_000 + n,
            actor_kind: "cli".into(),
            actor_id: None,
            actor_label: Some("ops".into()),
            action: "user.created".into(),
            target_kind: Some("user".into()),
            target_id: Some(format!("u{n}")),
            severity: "INFO".into(),
            changes: "{}".into(),
            context: "{}".into(),
        }
    }

    fn chain(events: &[StoredEvent]) -> Vec<Link> {
        let mut prev = GENESIS.to_owned();
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let seq = i as i64 + 1;
                prev = chain_hash(&prev, seq, e);
                Link {
                    seq,
                    event_id: e.id.clone(),
                    hash: prev.clone(),
                }
            })
            .collect()
    }

    fn run(links: &[Link], events: &[StoredEvent]) -> Vec<Finding> {
        let by_id: HashMap<&str, &StoredEvent> =
            events.iter().map(|e| (e.id.as_str(), e)).collect();
        verify((0, GENESIS), links, |id| by_id.get(id).copied())
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let events: Vec<_> = (1..=5).map(ev).collect();
        assert!(run(&chain(&events), &events).is_empty());
    }

    #[test]
    fn a_modified_event_is_named() {
        let mut events: Vec<_> = (1..=5).map(ev).collect();
        let links = chain(&events);
        events[2].changes = r#"{"state":["active","deactivated"]}"#.into();
        assert_eq!(
            run(&links, &events),
            vec![Finding::HashMismatch {
                seq: 3,
                event_id: "e3".into()
            }]
        );
    }

    #[test]
    fn a_deleted_event_is_named() {
        let mut events: Vec<_> = (1..=5).map(ev).collect();
        let links = chain(&events);
        events.remove(1);
        assert_eq!(
            run(&links, &events),
            vec![Finding::EventMissing {
                seq: 2,
                event_id: "e2".into()
            }]
        );
    }

    #[test]
    fn swapped_links_are_detected() {
        let events: Vec<_> = (1..=5).map(ev).collect();
        let mut links = chain(&events);
        links.swap(1, 2);
        assert!(!run(&links, &events).is_empty());
        // Swapping which event each link points to, keeping seq order:
        let mut links = chain(&events);
        let (a, b) = (links[1].event_id.clone(), links[2].event_id.clone());
        links[1].event_id = b;
        links[2].event_id = a;
        let f = run(&links, &events);
        assert!(
            f.contains(&Finding::HashMismatch {
                seq: 2,
                event_id: "e3".into()
            }),
            "{f:?}"
        );
    }

    #[test]
    fn a_removed_link_leaves_a_gap() {
        let events: Vec<_> = (1..=5).map(ev).collect();
        let mut links = chain(&events);
        links.remove(3);
        let f = run(&links, &events);
        assert!(
            f.contains(&Finding::SequenceGap {
                expected: 4,
                found: 5
            }),
            "{f:?}"
        );
    }

    #[test]
    fn canonical_form_cannot_be_shifted_between_fields() {
        let mut a = ev(1);
        let mut b = ev(1);
        a.actor_label = Some("x\",\"y".into());
        b.actor_label = Some("x".into());
        b.action = "y".into();
        assert_ne!(a.canonical(), b.canonical());
    }
}
