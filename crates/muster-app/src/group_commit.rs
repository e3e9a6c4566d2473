//! Group commit of new users.
//!
//! Every commit waits for its flush to disk, and on PostgreSQL every
//! statement also costs its own executor start-up, index descents and
//! triggers, whatever the number of rows. So concurrent creations queue
//! here, and one task writes whatever gathered while the previous write ran
//! (up to `MAX_BATCH`) as one transaction — on PostgreSQL one statement
//! (`muster_store::creations`): many creations, one flush, one statement.
//! Nobody waits for a batch to fill: a lone creation is written at once.
//! Each caller is answered only after its batch is durable.
//!
//! A batch that fails (one creation's unique conflict, say) is written again
//! one creation at a time, so each gets exactly the outcome it would have had
//! alone.
//!
//! A creation started from an unconfirmed caller (`caller::Unconfirmed`)
//! carries what it was authorized with; a batch holding any is written by
//! one statement that first checks them all (`users::insert_checked`). When
//! one fails, nothing is written: those creations are answered
//! `AuthorityChanged` (their requests are authorized afresh) and the others
//! are written again without them.
//!
//! PostgreSQL wrote directly until 2026-12-06: batching there had gained
//! nothing while each SCIM creation still read for its special cases before
//! writing (BENCHMARKS.md); once a lone creation wrote first, it gained a
//! quarter (SCIM) to two fifths (REST) ("Group commit on PostgreSQL").

use muster_core::audit::StoredEvent;
use muster_store::roles::AssignmentRow;
use muster_store::tokens::Authority;
use muster_store::users::{NewUser, UserRow};
use muster_store::{Db, StoreError};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// The most creations written in one transaction.
const MAX_BATCH: usize = 64;

/// How long the writer keeps its connection without creations.
const IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// A new user and what is written with it, owned, on its way to the writer.
pub(crate) struct Job {
    pub row: UserRow,
    pub assignments: Vec<AssignmentRow>,
    pub event: StoredEvent,
    pub idp_values: Option<String>,
    pub audit_key: String,
    /// What an unconfirmed caller was authorized with, checked by the write.
    pub authority: Option<Authority>,
}

type Queued = (Job, oneshot::Sender<muster_store::Result<()>>);

#[derive(Clone, Default)]
pub(crate) struct GroupCommit {
    queue: Arc<OnceLock<mpsc::Sender<Queued>>>,
}

impl GroupCommit {
    /// Writes the new user, durably, together with whatever else is queued.
    pub async fn insert(&self, db: &Db, job: Job) -> muster_store::Result<()> {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(writer(db.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError((job, _))) = queue.send((job, reply)).await {
            // The writer is gone (shutting down): write directly.
            return write_one(db, &job).await;
        }
        match answer.await {
            Ok(r) => r,
            Err(_) => Err(muster_store::StoreError::Config(
                "the user writer stopped before answering".into(),
            )),
        }
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut conn = muster_store::users::Connection::default();
    loop {
        // The connection kept for checked writes goes back to the pool after
        // a second without creations: closing the pool at shutdown waits for
        // it. (`recv_many` is cancel-safe: a timeout loses nothing.)
        let received = if conn.held() {
            match tokio::time::timeout(IDLE, rx.recv_many(&mut batch, MAX_BATCH)).await {
                Ok(n) => n,
                Err(_) => {
                    conn = muster_store::users::Connection::default();
                    continue;
                }
            }
        } else {
            rx.recv_many(&mut batch, MAX_BATCH).await
        };
        if received == 0 {
            break;
        }
        let jobs = std::mem::take(&mut batch);
        let mut checks: Vec<Authority> = jobs
            .iter()
            .filter_map(|(j, _)| j.authority.clone())
            .collect();
        checks.sort();
        checks.dedup();
        if checks.is_empty() {
            write(&db, jobs).await;
            continue;
        }
        let checked = {
            let news: Vec<NewUser<'_>> = jobs.iter().map(|(j, _)| new_user(j)).collect();
            muster_store::users::insert_checked(&db, &mut conn, &news, &checks).await
        };
        match checked {
            Ok(()) => answer(jobs, || Ok(())),
            Err(StoreError::AuthorityChanged) => {
                let (unconfirmed, rest) =
                    jobs.into_iter().partition(|(j, _)| j.authority.is_some());
                answer(unconfirmed, || Err(StoreError::AuthorityChanged));
                write(&db, rest).await;
            }
            Err(_) => each_alone(&db, jobs).await,
        }
    }
}

/// Writes `jobs`, none unconfirmed, as one transaction.
async fn write(db: &Db, jobs: Vec<Queued>) {
    if jobs.is_empty() {
        return;
    }
    let all = {
        let news: Vec<NewUser<'_>> = jobs.iter().map(|(j, _)| new_user(j)).collect();
        muster_store::users::insert_all(db, &news).await
    };
    match all {
        Ok(()) => answer(jobs, || Ok(())),
        Err(e) if jobs.len() == 1 => {
            if let Some((_, reply)) = jobs.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(_) => each_alone(db, jobs).await,
    }
}

fn answer(jobs: Vec<Queued>, mut outcome: impl FnMut() -> muster_store::Result<()>) {
    for (_, reply) in jobs {
        let _ = reply.send(outcome());
    }
}

/// Nothing of the batch was written: each on its own now.
async fn each_alone(db: &Db, jobs: Vec<Queued>) {
    for (job, reply) in jobs {
        let _ = reply.send(write_one(db, &job).await);
    }
}

fn new_user(j: &Job) -> NewUser<'_> {
    NewUser {
        row: &j.row,
        assignments: &j.assignments,
        event: &j.event,
        idp_values: j.idp_values.as_deref(),
        audit_key: Some(&j.audit_key),
        invitation: None,
    }
}

async fn write_one(db: &Db, job: &Job) -> muster_store::Result<()> {
    match &job.authority {
        Some(a) => {
            let mut conn = muster_store::users::Connection::default();
            let one = [new_user(job)];
            muster_store::users::insert_checked(db, &mut conn, &one, std::slice::from_ref(a)).await
        }
        None => muster_store::users::insert_all(db, &[new_user(job)]).await,
    }
}
