//! Muster's use cases. Each one that changes state is one transaction that
//! makes the change, writes its audit event and (later) enqueues its email or
//! webhook; every surface — REST, CLI, SCIM, pages, scheduler — calls these.

pub mod access;
pub mod audit;
pub mod caller;
mod error;
pub mod groups;
pub mod orgs;
pub mod roles;
pub mod secrets;
pub mod tokens;
pub mod users;

pub use caller::{Caller, Principal};
pub use error::AppError;
pub use muster_store::{Backend, Db, DbOptions};

use muster_core::Clock;
use std::sync::Arc;

pub type Result<T> = std::result::Result<T, AppError>;

/// Everything a use case needs, built once in `main` and passed down.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    sealer: Arc<tokio::sync::Notify>,
}

impl App {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            clock,
            sealer: Arc::new(tokio::sync::Notify::new()),
        }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        muster_core::clock::to_millis(self.clock.now())
    }

    /// Opens the database, applies migrations and makes sure the personal
    /// directory exists.
    pub async fn open(url: &str, opts: &DbOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        let db = Db::connect(url, opts).await?;
        db.migrate().await?;
        let app = Self::new(db, clock);
        orgs::ensure_personal(&app).await?;
        Ok(app)
    }
}
