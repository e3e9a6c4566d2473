//! Hearing that another process changed what authenticating a session
//! reads, so that the session cache can forget its copies.
//!
//! - **PostgreSQL**: triggers (migration 0019) call `pg_notify('muster_auth')`
//!   in the changing transaction, so the announcement is sent when, and only
//!   if, it commits — whichever process or tool made the change. Writes that
//!   cannot change an authentication stay silent.
//! - **SQLite** cannot send anything to another process, but a connection can
//!   tell whether anyone else committed since it last looked
//!   (`PRAGMA data_version`). A connection of its own looks every
//!   `SQLITE_POLL`; any commit by another connection (the CLI, or this
//!   process's own writer) counts as a change.

use crate::{Db, Result};
use sqlx::Connection;
use sqlx::postgres::PgListener;
use sqlx::sqlite::SqliteConnection;
use std::time::Duration;

const CHANNEL: &str = "muster_auth";

/// How often SQLite's data version is read: how long a change made by
/// another process (a `muster` CLI run) may go unnoticed.
pub const SQLITE_POLL: Duration = Duration::from_millis(10);

/// A connection watching for changes.
pub struct AuthChanges {
    source: Source,
}

enum Source {
    Postgres(PgListener),
    Sqlite {
        conn: SqliteConnection,
        version: i64,
    },
}

/// What `AuthChanges::next` heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Something an authentication reads (may have) changed.
    Change,
    /// The connection was lost: changes from now on are missed until the
    /// caller connects again (and must then forget what it read before).
    Lost,
}

impl AuthChanges {
    /// Watches on a connection of its own (not one of the pools').
    pub async fn connect(db: &Db) -> Result<Self> {
        let source = match db {
            Db::Postgres(pool, ..) => {
                // A pool of one of its own, so that the listener does not
                // hold one of the request pool's connections for ever.
                let own = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with((*pool.connect_options()).clone())
                    .await?;
                let mut listener = PgListener::connect_with(&own).await?;
                // A lost connection is reported, not silently reopened: the
                // caller must know that announcements may have been missed.
                listener.eager_reconnect(false);
                listener.listen(CHANNEL).await?;
                Source::Postgres(listener)
            }
            Db::Sqlite { read, .. } => {
                let mut conn = SqliteConnection::connect_with(&read.connect_options()).await?;
                let version = data_version(&mut conn).await?;
                Source::Sqlite { conn, version }
            }
        };
        Ok(Self { source })
    }

    /// Waits for the next change.
    pub async fn next(&mut self) -> Heard {
        match &mut self.source {
            // `try_recv` answers `None` when the connection has been lost;
            // any other error leaves the connection in doubt, which is the same.
            Source::Postgres(listener) => match listener.try_recv().await {
                Ok(Some(_)) => Heard::Change,
                Ok(None) | Err(_) => Heard::Lost,
            },
            Source::Sqlite { conn, version } => loop {
                tokio::time::sleep(SQLITE_POLL).await;
                match data_version(conn).await {
                    Ok(v) if v == *version => {}
                    Ok(v) => {
                        *version = v;
                        return Heard::Change;
                    }
                    Err(_) => return Heard::Lost,
                }
            },
        }
    }
}

async fn data_version(conn: &mut SqliteConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(conn)
        .await?)
}
