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
//! PostgreSQL wrote directly until 2026-12-06: batching there had gained
//! nothing while each SCIM creation still read for its special cases before
//! writing (BENCHMARKS.md); once a lone creation wrote first, it gained a
//! quarter (SCIM) to two fifths (REST) ("Group commit on PostgreSQL").

use muster_core::audit::StoredEvent;
use muster_store::Db;
use muster_store::roles::AssignmentRow;
use muster_store::users::{NewUser, UserRow};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, oneshot};

/// The most creations written in one transaction.
const MAX_BATCH: usize = 64;

/// A new user and what is written with it, owned, on its way to the writer.
pub(crate) struct Job {
    pub row: UserRow,
    pub assignments: Vec<AssignmentRow>,
    pub event: StoredEvent,
    pub idp_values: Option<String>,
    pub audit_key: String,
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
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let all = {
            let news: Vec<NewUser<'_>> = jobs.iter().map(|(j, _)| new_user(j)).collect();
            muster_store::users::insert_all(&db, &news).await
        };
        match all {
            Ok(()) => {
                for (_, reply) in jobs {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) if jobs.len() == 1 => {
                if let Some((_, reply)) = jobs.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(_) => {
                // Nothing of the batch was written: each on its own now.
                for (job, reply) in jobs {
                    let _ = reply.send(write_one(&db, &job).await);
                }
            }
        }
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
    muster_store::users::insert_all(db, &[new_user(job)]).await
}
