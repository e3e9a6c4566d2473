//! API-token authentication reads, grouped.
//!
//! Every request with an API token reads its token, user, organization and
//! the user's permissions from the database (`caller::authenticate_api_token`):
//! nothing is kept between requests, so a token revoked or a role removed
//! through any instance is refused by every instance on the very next request
//! (issue 6 §2). What costs is not the read but the statement: a round trip,
//! executor start-up and the eight-table recursive query, once per request.
//! So concurrent requests queue here and one task reads whatever gathered
//! while its previous read ran, as one statement (`tokens::for_auth_many`).
//!
//! Freshness is kept: a request never joins a read already running — it
//! waits for the next one, which starts after the request arrived, so it sees
//! every change committed before then. A lone request is read at once.
//!
//! The rows read are also kept (`recent`), for one use only: a user creation
//! may start from one, unconfirmed, because its write checks in the same
//! statement that the token still reads the same (`caller::Unconfirmed`,
//! `muster_store::creations`). Nothing else is ever authorized from them.

use muster_store::Db;
use muster_store::tokens::TokenAuthRow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// The most tokens read in one statement.
const MAX_BATCH: usize = muster_store::tokens::PADDED;

type Answer = Result<Option<Arc<TokenAuthRow>>, Arc<muster_store::StoreError>>;
type Queued = (String, oneshot::Sender<Answer>);

#[derive(Clone, Default)]
pub(crate) struct TokenReads {
    queue: Arc<OnceLock<mpsc::Sender<Queued>>>,
    /// Statements run since start (for tests: fewer than requests when
    /// requests were grouped).
    reads: Arc<AtomicU64>,
    /// Unconfirmed callers whose creation found their authority changed.
    refusals: Arc<AtomicU64>,
    /// The last row read of each token that has a fingerprint (PostgreSQL).
    recent: Arc<Mutex<Recent>>,
}

type Recent = HashMap<String, Arc<TokenAuthRow>>;

/// Tokens kept in `recent`; past it the map starts over (a miss costs one
/// grouped read, never a wrong answer).
const RECENT: usize = 4096;

impl TokenReads {
    /// The token `id` with what authentication needs, read after this call
    /// began.
    pub async fn read(&self, db: &Db, id: String) -> crate::Result<Option<Arc<TokenAuthRow>>> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(1024);
            // Not `self`: the reader must not keep its own queue open.
            let kept = (self.reads.clone(), self.recent.clone());
            tokio::spawn(reader(db.clone(), rx, kept));
            tx
        });
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError((id, _))) = queue.send((id, reply)).await {
            // The reader is gone (shutting down): read directly.
            let rows = muster_store::tokens::for_auth_many(db, &[id]).await?;
            return Ok(rows.into_iter().next().map(Arc::new));
        }
        match answer.await {
            Ok(Ok(row)) => Ok(row),
            // The failure of a read is every waiting request's; each logs it.
            Ok(Err(e)) => Err(muster_store::StoreError::Shared(e).into()),
            Err(_) => Err(muster_store::StoreError::Config(
                "the token reader stopped before answering".into(),
            )
            .into()),
        }
    }

    /// Statements run since start.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Unconfirmed callers refused since start (`caller::Unconfirmed`).
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    pub(crate) fn count_refusal(&self) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("muster_api_token_unconfirmed_refused_total").increment(1);
    }

    /// The last row read of token `id`, if it has a fingerprint: a starting
    /// point that only a checked write may confirm.
    pub(crate) fn recent(&self, id: &str) -> Option<Arc<TokenAuthRow>> {
        self.recent.lock().ok()?.get(id).cloned()
    }

    /// Records that token `id`'s use at `now` was written, so that a kept
    /// row does not ask for the same write again.
    pub(crate) fn used(&self, id: &str, now: i64) {
        if let Ok(mut m) = self.recent.lock()
            && let Some(row) = m.get_mut(id)
        {
            Arc::make_mut(row).last_used_at = Some(now);
        }
    }
}

type Kept = (Arc<AtomicU64>, Arc<Mutex<Recent>>);

fn keep(recent: &Mutex<Recent>, ids: &[String], found: &HashMap<String, Arc<TokenAuthRow>>) {
    let Ok(mut m) = recent.lock() else { return };
    if m.len() >= RECENT {
        m.clear();
    }
    for id in ids {
        match found.get(id) {
            Some(row) if row.fingerprint.is_some() => m.insert(id.clone(), row.clone()),
            _ => m.remove(id),
        };
    }
}

async fn reader(db: Db, mut rx: mpsc::Receiver<Queued>, (reads, recent): Kept) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut waiting, MAX_BATCH).await > 0 {
        reads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("muster_api_token_reads_total").increment(1);
        answer(&db, std::mem::take(&mut waiting), &recent).await;
    }
}

async fn answer(db: &Db, waiting: Vec<Queued>, recent: &Mutex<Recent>) {
    // One token asked for by several requests is read once for all.
    let mut ids: Vec<String> = waiting.iter().map(|(id, _)| id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    match muster_store::tokens::for_auth_many(db, &ids).await {
        Ok(rows) => {
            let found: HashMap<String, Arc<TokenAuthRow>> = rows
                .into_iter()
                .map(|r| (r.id.clone(), Arc::new(r)))
                .collect();
            keep(recent, &ids, &found);
            for (id, reply) in waiting {
                let _ = reply.send(Ok(found.get(&id).cloned()));
            }
        }
        Err(e) => {
            let e = Arc::new(e);
            for (_, reply) in waiting {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
