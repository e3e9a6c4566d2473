//! Store errors. Constraint violations are told apart so the app can say which
//! value clashed; anything else is internal and never shown to a client.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conflict on {0}")]
    Conflict(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A creation made with an unconfirmed caller was not written: the
    /// caller's token, user, organization or permissions changed since they
    /// were read (`creations`). The request is to be authorized afresh.
    #[error("the caller's authority changed since it was read")]
    AuthorityChanged,
    /// One failure answered to several callers (a grouped read).
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            // PostgreSQL names the constraint; SQLite puts "table.column" in
            // the message. Either way the index names below are what we match.
            let what = db
                .constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned());
            return Self::Conflict(what);
        }
        Self::Database(e)
    }
}
