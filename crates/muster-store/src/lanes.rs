//! PostgreSQL connections held out of sqlx's pool for the two statements
//! every password sign-in runs (`failures::attempt`, `openings::open`).
//!
//! sqlx 0.9 pings each connection as it goes back to its pool — a Sync
//! message and its ReadyForQuery — after every statement, however it ended:
//! a second round trip per statement, which wakes a PostgreSQL backend and a
//! runtime thread on cores that argon2id keeps busy. Without it a sign-in
//! took about five fewer context switches (28 → 23) and a tenth to a fifth
//! less CPU beside the hash (BENCHMARKS.md, "No ping after a sign-in's
//! statements"). Held connections outlive the pool's `max_lifetime`; they
//! are replaced only when found dead.
//!
//! A lane is a pooled connection kept here. A statement takes a free lane
//! (or, when every lane is busy, an ordinary pooled connection) and gives
//! it back with `Lane::done` once the statement completed. A lane dropped
//! any other way — an error, a request cancelled mid-statement — returns
//! its connection to sqlx's pool, which pings it there and closes it if it
//! is broken; the slot takes a fresh connection next time. A lane idle for
//! `PING_AFTER_IDLE` is pinged before use, as the pool's own connections.

use crate::Result;
use crate::db::PING_AFTER_IDLE;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::{Mutex, MutexGuard};

/// How many connections are held: a sign-in's statements take well under a
/// millisecond, so two lanes are rarely both busy; the pool serves the rest.
/// At most a quarter of the pool, so that a small pool is never all lanes.
const LANES: usize = 2;

pub struct Lanes {
    pool: PgPool,
    slots: Vec<Mutex<Option<Held>>>,
    next: AtomicUsize,
}

struct Held {
    conn: PoolConnection<Postgres>,
    used: Instant,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("slots", &self.slots.len())
            .finish()
    }
}

/// A connection for one statement; see the module note.
pub(crate) struct Lane<'a> {
    conn: PoolConnection<Postgres>,
    slot: Option<MutexGuard<'a, Option<Held>>>,
}

impl Lanes {
    /// Lanes over `pool`, which opens at most `max_connections`.
    pub(crate) fn new(pool: PgPool, max_connections: u32) -> Self {
        let n = LANES.min(max_connections as usize / 4);
        Self {
            pool,
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// A free lane, or a connection from the pool when none is free.
    pub(crate) async fn take(&self) -> Result<Lane<'_>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.slots.len() {
            let Some(Ok(mut slot)) = self
                .slots
                .get((start + i) % self.slots.len())
                .map(Mutex::try_lock)
            else {
                continue;
            };
            let conn = match slot.take() {
                Some(h) if h.used.elapsed() < PING_AFTER_IDLE => h.conn,
                Some(mut h) => match h.conn.ping().await {
                    Ok(()) => h.conn,
                    // Dropped: the pool finds it dead and closes it.
                    Err(_) => self.pool.acquire().await?,
                },
                None => self.pool.acquire().await?,
            };
            return Ok(Lane {
                conn,
                slot: Some(slot),
            });
        }
        Ok(Lane {
            conn: self.pool.acquire().await?,
            slot: None,
        })
    }

    /// Gives every held connection back to the pool (before it closes).
    pub(crate) async fn release(&self) {
        for slot in &self.slots {
            slot.lock().await.take();
        }
    }
}

impl Lane<'_> {
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// The statement completed: the connection goes back to its lane.
    pub(crate) fn done(self) {
        if let Some(mut slot) = self.slot {
            *slot = Some(Held {
                conn: self.conn,
                used: Instant::now(),
            });
        }
    }
}
