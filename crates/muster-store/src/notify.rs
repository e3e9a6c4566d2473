//! Hearing, on PostgreSQL, that another process changed what authenticating
//! a session reads. Triggers (migration 0019) call `pg_notify('muster_auth')`
//! in the changing transaction, so the announcement is sent when, and only
//! if, it commits — whichever process or tool made the change.

use crate::{Db, Result};
use sqlx::postgres::PgListener;

const CHANNEL: &str = "muster_auth";

/// A connection listening for announcements; `None` on SQLite, which has no
/// way to tell another process (a CLI run) about a change.
pub struct AuthChanges {
    listener: PgListener,
}

/// What `AuthChanges::next` heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Something an authentication reads changed.
    Change,
    /// The connection was lost: announcements from now on are missed until
    /// the caller connects again (and must then forget what it read before).
    Lost,
}

impl AuthChanges {
    /// Listens on a connection of its own (not one of the pool's).
    pub async fn connect(db: &Db) -> Result<Option<Self>> {
        let Db::Postgres(pool) = db else {
            return Ok(None);
        };
        // A pool of one of its own, so that the listener does not hold one
        // of the request pool's connections for ever.
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with((*pool.connect_options()).clone())
            .await?;
        let mut listener = PgListener::connect_with(&own).await?;
        // A lost connection is reported, not silently reopened: the caller
        // must know that announcements may have been missed.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(Some(Self { listener }))
    }

    /// Waits for the next announcement.
    pub async fn next(&mut self) -> Heard {
        // `try_recv` answers `None` when the connection has been lost; any
        // other error leaves the connection in doubt, which is the same.
        match self.listener.try_recv().await {
            Ok(Some(_)) => Heard::Change,
            Ok(None) | Err(_) => Heard::Lost,
        }
    }
}
