//! Crypto-shredding of the audit log (DESIGN.md §5, issue 6 §3).
//!
//! Every person has an audit key: 32 random bytes, sealed with the server key
//! and kept in the person's own `users` row. The personal data of an audit
//! event — who acted (`actor_label`), from where (`context`: IP, user agent)
//! and what changed about whom (`changes`) — is sealed with the key of the
//! person it describes before the event is written. The hash chain covers
//! that stored form. Deleting the user deletes the row and with it the key:
//! the chain still verifies, the events stay in place with their ids,
//! actions and times, and their personal data can no longer be read by
//! anyone, the server's operator included.
//!
//! Keys are cached in memory for writing only. Reading always fetches them
//! from the database, so a deletion on another instance is honoured at once;
//! a stale cached key can only seal data that nobody will be able to open.

use crate::{App, Caller, Result, caller::Principal};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use muster_core::audit::StoredEvent;
use muster_store::Tx;
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// A sealed field: `$sealed:v1:<person id>:<base64(nonce ‖ ciphertext ‖ tag)>`.
const SEALED: &str = "$sealed:v1:";
/// What stands for a field whose person no longer existed when it was written.
const ERASED: &str = "$erased";
/// At most this many keys stay cached; past it the cache starts afresh.
const CACHE_MAX: usize = 50_000;

type Key = [u8; 32];

/// Audit keys already opened, by user id (write side only; see above).
#[derive(Default)]
pub struct KeyCache(Mutex<HashMap<String, Key>>);

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache(..)")
    }
}

impl KeyCache {
    fn get(&self, id: &str) -> Option<Key> {
        self.0.lock().ok().and_then(|m| m.get(id).copied())
    }
    fn put(&self, id: &str, key: Key) {
        if let Ok(mut m) = self.0.lock() {
            if m.len() >= CACHE_MAX {
                m.clear();
            }
            m.insert(id.to_owned(), key);
        }
    }
    /// Drops a deleted person's key from this instance's memory.
    pub(crate) fn forget(&self, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(id);
        }
    }
}

fn key_context(user_id: &str) -> String {
    format!("audit-key:{user_id}")
}

fn open_key(app: &App, user_id: &str, sealed: &str) -> Option<Key> {
    let text = app.key.open(&key_context(user_id), sealed).ok()?;
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| Key::try_from(b).ok())
}

fn fresh(app: &App, user_id: &str) -> (Key, String) {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let sealed = app
        .key
        .seal(&key_context(user_id), &URL_SAFE_NO_PAD.encode(key));
    (key, sealed)
}

/// A key for a user about to be created: the sealed form goes into its row.
pub(crate) fn new_key(app: &App, user_id: &str) -> String {
    let (key, sealed) = fresh(app, user_id);
    app.audit_keys.put(user_id, key);
    sealed
}

/// The key to seal `user_id`'s data with, made on first use for users that
/// predate erasure; `None` once the user is deleted.
async fn key_for_write(app: &App, tx: &mut Tx, user_id: &str) -> Result<Option<Key>> {
    if let Some(k) = app.audit_keys.get(user_id) {
        return Ok(Some(k));
    }
    let sealed = match muster_store::erasure::key(tx, user_id).await? {
        None => return Ok(None),
        Some(Some(sealed)) => sealed,
        Some(None) => {
            let (_, mine) = fresh(app, user_id);
            // Another request may have set one meanwhile: use whichever won.
            match muster_store::erasure::set_key_if_missing(tx, user_id, &mine).await? {
                Some(k) => k,
                None => return Ok(None),
            }
        }
    };
    let key = open_key(app, user_id, &sealed).ok_or_else(|| {
        crate::AppError::Refused(
            "an audit key cannot be read with this server's key; every instance must share one"
                .into(),
        )
    })?;
    app.audit_keys.put(user_id, key);
    Ok(Some(key))
}

/// Whom an event's personal fields describe: the acting person (a user, or
/// the user a token acts for) and the user it is about.
struct Persons<'a> {
    /// Whose key seals `actor_label` and `context`.
    actor: Option<&'a str>,
    /// Whose key seals `changes`.
    subject: Option<&'a str>,
}

fn persons<'a>(caller: &'a Caller, ev: &'a StoredEvent) -> Persons<'a> {
    let target = (ev.target_kind.as_deref() == Some("user"))
        .then_some(ev.target_id.as_deref())
        .flatten();
    let actor = match &caller.principal {
        Principal::User { user_id, .. } => Some(user_id.as_str()),
        // A sign-in attempt names the account it claimed: that person's data.
        Principal::Anonymous { .. } => target,
        Principal::Operator { .. } | Principal::ScimToken { .. } => None,
    };
    Persons {
        actor,
        subject: target.or(actor),
    }
}

/// Seals `ev`'s personal fields in place, before it is written in `tx`.
/// `changes_are_personal` is false only for events whose changes are known to
/// hold none (the deletion's own event, which must stay readable).
pub(crate) async fn seal(
    app: &App,
    tx: &mut Tx,
    caller: &Caller,
    ev: &mut StoredEvent,
    changes_are_personal: bool,
) -> Result<()> {
    let p = persons(caller, ev);
    let (actor, subject) = (p.actor.map(str::to_owned), p.subject.map(str::to_owned));
    let mut keys: HashMap<String, Option<Key>> = HashMap::new();
    for id in [&actor, &subject].into_iter().flatten() {
        if !keys.contains_key(id) {
            keys.insert(id.clone(), key_for_write(app, tx, id).await?);
        }
    }
    let whose = Whose {
        actor,
        subject,
        changes_are_personal,
    };
    whose.apply(ev, |id| keys.get(id).copied().flatten());
    Ok(())
}

/// Seals without a transaction at hand (a user creation, written later in a
/// batch; a sign-in, written in one statement): opens a short one only when
/// a key is not cached.
pub(crate) async fn seal_outside(
    app: &App,
    caller: &Caller,
    ev: &mut StoredEvent,
    changes_are_personal: bool,
) -> Result<()> {
    let p = persons(caller, ev);
    let all_cached = [p.actor, p.subject]
        .into_iter()
        .flatten()
        .all(|id| app.audit_keys.get(id).is_some());
    if !all_cached {
        let mut tx = app.db.begin().await?;
        seal(app, &mut tx, caller, ev, changes_are_personal).await?;
        return tx.commit().await.map_err(Into::into);
    }
    let whose = Whose {
        actor: p.actor.map(str::to_owned),
        subject: p.subject.map(str::to_owned),
        changes_are_personal,
    };
    whose.apply(ev, |id| app.audit_keys.get(id));
    Ok(())
}

/// Which person's key seals which field of one event.
struct Whose {
    actor: Option<String>,
    subject: Option<String>,
    changes_are_personal: bool,
}

impl Whose {
    /// `key` gives a person's key, `None` once the person is deleted: the
    /// field is then stored as erased, never in clear.
    fn apply(&self, ev: &mut StoredEvent, key: impl Fn(&str) -> Option<Key>) {
        let id = ev.id.clone();
        let with = |person: &Option<String>, field: &str, text: &str| -> Option<String> {
            let person = person.as_deref()?;
            Some(match key(person) {
                Some(k) => seal_field(&k, person, &id, field, text),
                None => ERASED.to_owned(),
            })
        };
        if let Some(label) = &ev.actor_label
            && let Some(s) = with(&self.actor, "actor_label", label)
        {
            ev.actor_label = Some(s);
        }
        if let Some(s) = with(&self.actor, "context", &ev.context) {
            ev.context = s;
        }
        if self.changes_are_personal
            && let Some(s) = with(&self.subject, "changes", &ev.changes)
        {
            ev.changes = s;
        }
    }
}

fn cipher(key: &Key) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key)
        .ok()
        .map(LessSafeKey::new)
}

/// The associated data binds a sealed field to its event and field, so a
/// sealed value moved elsewhere does not open there.
fn aad(event_id: &str, field: &str) -> String {
    format!("{event_id}\0{field}")
}

fn seal_field(key: &Key, person: &str, event_id: &str, field: &str, text: &str) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut buf = text.as_bytes().to_vec();
    let sealed = cipher(key).is_some_and(|c| {
        c.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(event_id, field).as_bytes()),
            &mut buf,
        )
        .is_ok()
    });
    if !sealed {
        // Unreachable with a 32-byte key and inputs under 64 GiB; never
        // store the clear text instead.
        return ERASED.to_owned();
    }
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    format!("{SEALED}{person}:{}", URL_SAFE_NO_PAD.encode(out))
}

fn open_field(key: &Key, event_id: &str, field: &str, payload: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let (nonce, body) = raw.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut body = body.to_vec();
    let plain = cipher(key)?
        .open_in_place(nonce, Aad::from(aad(event_id, field).as_bytes()), &mut body)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// The person a stored field is sealed for, and its payload.
fn sealed_parts(text: &str) -> Option<(&str, &str)> {
    text.strip_prefix(SEALED)?.split_once(':')
}

fn is_protected(text: &str) -> bool {
    text.starts_with(SEALED) || text == ERASED
}

/// What reading a page of events learned besides their opened fields.
#[derive(Debug, Default)]
pub(crate) struct Revealed {
    /// Events with personal data that can no longer be read.
    pub erased: HashSet<String>,
    /// The acting person's time zone (from their profile), by event id.
    pub zones: HashMap<String, String>,
}

/// Opens the personal fields of `events` in place for reading. Fields whose
/// key is gone (the person was deleted) become empty (`null`), and the event
/// is reported erased. Keys are read from the database, never the cache.
pub(crate) async fn reveal(app: &App, events: &mut [&mut StoredEvent]) -> Result<Revealed> {
    let mut wanted: Vec<String> = Vec::new();
    for e in events.iter() {
        for text in [
            e.actor_label.as_deref().unwrap_or(""),
            &e.context,
            &e.changes,
        ] {
            if let Some((person, _)) = sealed_parts(text)
                && !wanted.iter().any(|w| w == person)
            {
                wanted.push(person.to_owned());
            }
        }
    }
    let mut keys: HashMap<String, Key> = HashMap::new();
    let mut zones: HashMap<String, String> = HashMap::new();
    if !wanted.is_empty() {
        for (id, sealed, profile) in muster_store::erasure::people(&app.db, &wanted).await? {
            if let Some(k) = sealed.and_then(|s| open_key(app, &id, &s)) {
                keys.insert(id.clone(), k);
            }
            let zone = serde_json::from_str::<serde_json::Value>(&profile)
                .ok()
                .and_then(|p| p.get("timezone")?.as_str().map(str::to_owned));
            if let Some(z) = zone {
                zones.insert(id, z);
            }
        }
    }
    let open = |event_id: &str, field: &str, text: &str| -> Option<Option<String>> {
        if !is_protected(text) {
            return None;
        }
        let opened = sealed_parts(text).and_then(|(person, payload)| {
            keys.get(person)
                .and_then(|k| open_field(k, event_id, field, payload))
        });
        Some(opened)
    };
    let mut out = Revealed::default();
    for e in events.iter_mut() {
        let mut gone = false;
        let id = e.id.clone();
        // The actor's sealed label names the acting person.
        if let Some((person, _)) = e.actor_label.as_deref().and_then(sealed_parts)
            && let Some(z) = zones.get(person)
        {
            out.zones.insert(id.clone(), z.clone());
        }
        if let Some(label) = &e.actor_label
            && let Some(o) = open(&id, "actor_label", label)
        {
            gone |= o.is_none();
            e.actor_label = o;
        }
        if let Some(o) = open(&id, "context", &e.context) {
            gone |= o.is_none();
            e.context = o.unwrap_or_else(|| "null".into());
        }
        if let Some(o) = open(&id, "changes", &e.changes) {
            gone |= o.is_none();
            e.changes = o.unwrap_or_else(|| "null".into());
        }
        if gone {
            out.erased.insert(id);
        }
    }
    Ok(out)
}

/// `ms` as the wall-clock time in `zone` (an IANA name such as
/// `Europe/Paris`), RFC 3339 with its offset; `None` for an unknown zone.
pub(crate) fn local_time(ms: i64, zone: &str) -> Option<String> {
    let tz = jiff::tz::TimeZone::get(zone).ok()?;
    let at = jiff::Timestamp::from_millisecond(ms).ok()?;
    Some(
        at.to_zoned_datetime(tz)
            .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_field_opens_only_for_its_event_and_field() {
        let key = [7u8; 32];
        let s = seal_field(&key, "u1", "e1", "changes", r#"{"email":"a@b.c"}"#);
        assert!(!s.contains("a@b.c"));
        let (person, payload) = sealed_parts(&s).unwrap();
        assert_eq!(person, "u1");
        assert_eq!(
            open_field(&key, "e1", "changes", payload).unwrap(),
            r#"{"email":"a@b.c"}"#
        );
        assert!(open_field(&key, "e2", "changes", payload).is_none());
        assert!(open_field(&key, "e1", "context", payload).is_none());
        assert!(open_field(&[8u8; 32], "e1", "changes", payload).is_none());
    }

    #[test]
    fn local_time_follows_the_zone_and_its_daylight_saving() {
        // 2026-07-01T12:00:00Z and 2026-12-01T12:00:00Z.
        let (summer, winter) = (1_782_907_200_000, 1_796_126_400_000);
        assert_eq!(
            local_time(summer, "Europe/Paris").as_deref(),
            Some("2026-07-01T14:00:00.000+02:00")
        );
        assert_eq!(
            local_time(winter, "Europe/Paris").as_deref(),
            Some("2026-12-01T13:00:00.000+01:00")
        );
        assert_eq!(
            local_time(winter, "America/New_York").as_deref(),
            Some("2026-12-01T07:00:00.000-05:00")
        );
        assert_eq!(local_time(winter, "Mars/Olympus_Mons"), None);
    }

    #[test]
    fn only_sealed_or_erased_text_is_treated_as_protected() {
        assert!(is_protected(ERASED));
        assert!(is_protected("$sealed:v1:u:abc"));
        assert!(!is_protected(r#"{"a":1}"#) && !is_protected("alice@example.com"));
    }
}
