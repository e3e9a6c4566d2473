//! The session cache: what authenticating a session read, kept for at most a
//! second so that a busy client does not cost a database round trip per
//! request (issue 4's `/me` target; issue 6 §2). Organizations looked up by
//! slug for sign-ins are kept by the same rules, except that in this process
//! only commits that wrote an organization count (`muster_store::org_commits`).
//! SCIM tokens are kept by the same rules, except that in this process only
//! commits that wrote a SCIM token or an organization count
//! (`muster_store::token_commits`): an IdP's provisioning run is thousands of
//! requests with one token, each of which commits. (API tokens are not kept:
//! a token revoked or a role removed through one instance is refused by the
//! others on the very next request, issue 6 §2; a SCIM token, like a session,
//! within a second.)
//!
//! A copy is trusted only while nothing could have changed it:
//! - **in this process**, every committed transaction moves
//!   `muster_store::commits()`; a copy read before the count moved is dropped,
//!   so a revocation, role change or deactivation made here counts from the
//!   very next request, as it did without the cache;
//! - **in other processes** (instances, CLI runs, hand-written SQL), the
//!   changes are heard by `spawn_session_listener`, which moves `heard`: on
//!   PostgreSQL the changes that matter announce themselves through triggers
//!   (migration 0019); on SQLite any other connection's commit is seen
//!   within `muster_store::notify::SQLITE_POLL`;
//! - **when changes could be missed** (the watch not yet connected, or
//!   disconnected) nothing is cached at all;
//! - and whatever happens, no copy outlives `TTL`: a change whose
//!   announcement was lost in a network failure still counts within a second.
//!
//! Each check that depends on the time (idle and absolute ends, step-up
//! freshness) is still computed on every request from the copy's timestamps,
//! and the secret is compared on every request.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a copy is trusted, announcements or not.
const TTL: Duration = Duration::from_secs(1);
/// Copies held per kind; at this size the cache starts afresh (a full cache
/// holds copies older than a second anyway, or sessions beyond any one
/// instance's load).
const CAPACITY: usize = 100_000;

const SESSION_HITS: &str = "muster_session_cache_hits_total";

/// What the copy was read under: both counts must still be the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    commits: u64,
    heard: u64,
}

struct Entry<V> {
    stamp: Stamp,
    at: Instant,
    value: Arc<V>,
}

/// Copies of one kind of row, by key.
pub struct Copies<K, V> {
    map: Mutex<HashMap<K, Entry<V>>>,
    /// The commits this process made that may change such a row: all of
    /// them for a session's rows; for an organization's, only those that
    /// wrote an organization (else every sign-in's commit would drop it).
    commits: fn() -> u64,
    hits: AtomicU64,
    /// The Prometheus counter of hits.
    metric: &'static str,
}

impl<K, V> Copies<K, V> {
    fn counting(commits: fn() -> u64, metric: &'static str) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            commits,
            hits: AtomicU64::new(0),
            metric,
        }
    }
}

pub struct SessionCache {
    /// Moved by every announcement, and when the listener (re)connects.
    heard: AtomicU64,
    /// True while the watch is connected: only then would another
    /// process's change be heard.
    listening: AtomicBool,
    pub(crate) auth: Copies<String, muster_store::sessions::SessionAuthRow>,
    pub(crate) me: Copies<String, muster_store::sessions::SessionUserRow>,
    /// Organizations by slug, for sign-ins (the same rules, another count).
    pub(crate) orgs: Copies<String, muster_store::orgs::OrgRow>,
    /// SCIM tokens by id, with their organization's slug (another count).
    pub(crate) scim: Copies<String, muster_store::scim::ScimAuthRow>,
}

/// What may change a SCIM token's authentication in this process: a write
/// to a SCIM token, or to an organization (its slug).
fn scim_commits() -> u64 {
    muster_store::token_commits().wrapping_add(muster_store::org_commits())
}

impl Default for SessionCache {
    fn default() -> Self {
        Self {
            heard: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            auth: Copies::counting(muster_store::commits, SESSION_HITS),
            me: Copies::counting(muster_store::commits, SESSION_HITS),
            orgs: Copies::counting(muster_store::org_commits, "muster_org_cache_hits_total"),
            scim: Copies::counting(scim_commits, "muster_scim_token_cache_hits_total"),
        }
    }
}

impl SessionCache {
    /// The counts now for `copies`, or `None` when nothing may be cached.
    fn stamp<K, V>(&self, copies: &Copies<K, V>) -> Option<Stamp> {
        if !self.listening.load(Ordering::SeqCst) {
            return None;
        }
        Some(Stamp {
            commits: (copies.commits)(),
            heard: self.heard.load(Ordering::SeqCst),
        })
    }

    /// The copy of `key`'s row if it can be trusted; otherwise `load`s it
    /// (and keeps it when it may). `None` rows (unknown sessions) are not kept.
    pub(crate) async fn get<K, V, F, Fut>(
        &self,
        copies: &Copies<K, V>,
        key: &K,
        load: F,
    ) -> crate::Result<Option<Arc<V>>>
    where
        K: Hash + Eq + Clone,
        F: FnOnce() -> Fut,
        Fut: Future<Output = crate::Result<Option<V>>>,
    {
        // Taken before the read: a change committed during it moves a count,
        // and the copy is then never trusted.
        let stamp = self.stamp(copies);
        if let Some(s) = stamp {
            let map = copies.map.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = map.get(key)
                && e.stamp == s
                && e.at.elapsed() < TTL
            {
                copies.hits.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(copies.metric).increment(1);
                return Ok(Some(e.value.clone()));
            }
        }
        let Some(value) = load().await?.map(Arc::new) else {
            return Ok(None);
        };
        if let Some(stamp) = stamp {
            let mut map = copies.map.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= CAPACITY {
                map.clear();
            }
            let entry = Entry {
                stamp,
                at: Instant::now(),
                value: value.clone(),
            };
            map.insert(key.clone(), entry);
        }
        Ok(Some(value))
    }

    /// Sessions authenticated from a copy since start (for tests and metrics).
    pub fn hits(&self) -> u64 {
        self.auth.hits.load(Ordering::Relaxed) + self.me.hits.load(Ordering::Relaxed)
    }

    /// Organizations found from a copy since start (for tests).
    pub fn org_hits(&self) -> u64 {
        self.orgs.hits.load(Ordering::Relaxed)
    }

    /// SCIM tokens found from a copy since start (for tests).
    pub fn scim_hits(&self) -> u64 {
        self.scim.hits.load(Ordering::Relaxed)
    }

    /// Whether copies are being kept (the watch is connected).
    pub fn active(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// Announcements heard (and reconnections) since start, for tests.
    pub fn heard(&self) -> u64 {
        self.heard.load(Ordering::SeqCst)
    }

    fn hear(&self) {
        self.heard.fetch_add(1, Ordering::SeqCst);
    }

    /// Connected: announcements are heard from now on; anything read before
    /// is forgotten (what was missed meanwhile is unknown).
    fn resume(&self) {
        self.hear();
        self.listening.store(true, Ordering::SeqCst);
    }

    /// Disconnected: nothing is trusted or kept until `resume`.
    fn suspend(&self) {
        self.listening.store(false, Ordering::SeqCst);
        self.hear();
    }
}

impl crate::App {
    /// Watches for other processes' changes (`muster_store::notify`) and
    /// lets the session cache work while it does. Reconnects after a lost
    /// connection, caching nothing meanwhile.
    pub fn spawn_session_listener(&self) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let cache = &app.sessions;
            loop {
                match muster_store::notify::AuthChanges::connect(&app.db).await {
                    Ok(mut changes) => {
                        cache.resume();
                        while changes.next().await == muster_store::notify::Heard::Change {
                            cache.hear();
                        }
                        cache.suspend();
                        tracing::warn!(
                            "the session cache lost its watch on the database; reconnecting"
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the session cache cannot watch the database");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_store::orgs::OrgRow;

    fn org() -> OrgRow {
        OrgRow {
            id: "o1".into(),
            slug: "acme".into(),
            name: "Acme".into(),
            kind: "business".into(),
            settings: "{}".into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    /// An organization's copy is trusted until an organization is written
    /// here (or something is heard), and not after.
    #[tokio::test]
    async fn an_organizations_copy_goes_with_an_organizations_write() {
        let cache = SessionCache::default();
        cache.resume();
        let loads = AtomicU64::new(0);
        let key = "acme".to_owned();
        let get = || {
            cache.get(&cache.orgs, &key, || async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(Some(org()))
            })
        };
        assert!(get().await.ok().flatten().is_some());
        assert!(get().await.ok().flatten().is_some());
        assert_eq!(loads.load(Ordering::SeqCst), 1, "the copy was not used");
        // A write made outside `Tx` counts as an organization's.
        muster_store::note_write();
        assert!(get().await.ok().flatten().is_some());
        assert_eq!(loads.load(Ordering::SeqCst), 2, "a stale copy was used");
        cache.hear();
        assert!(get().await.ok().flatten().is_some());
        assert_eq!(
            loads.load(Ordering::SeqCst),
            3,
            "a copy outlived what was heard"
        );
        assert_eq!(cache.org_hits(), 1);
    }
}
