//! Persistence for Muster over SQLite and PostgreSQL.
//!
//! One `Db` enum over the two pools; one module per aggregate. A query both
//! dialects understand is written once and run through `on_db!`/`on_tx!`;
//! where the dialects differ, the two forms sit side by side.

#[macro_use]
mod macros;
pub mod access;
pub mod audit;
mod creations;
pub mod dashboard;
mod db;
pub mod devices;
pub mod domains;
pub mod email_tokens;
pub mod erasure;
mod error;
pub mod failures;
pub mod federation;
pub mod groups;
pub mod imports;
pub mod invitations;
mod lanes;
pub mod mfa;
pub mod notify;
pub mod openings;
pub mod org_units;
pub mod orgs;
pub mod outbox;
pub mod retention;
pub mod roles;
pub mod schedules;
pub mod scim;
pub mod scratch;
pub mod sessions;
pub mod statistics;
pub mod tokens;
pub mod users;
pub mod webhooks;
pub mod workspaces;

pub use db::{Backend, Db, DbOptions, Tx, commits, note_write, org_commits, token_commits};
pub use error::StoreError;

pub type Result<T> = std::result::Result<T, StoreError>;
