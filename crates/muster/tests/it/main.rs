//! Muster's integration tests: one binary, a module per feature. Every test
//! that touches storage runs on SQLite and on PostgreSQL (`both!`).

// Test helpers outside #[test] functions may unwrap too: a failure is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod access;
mod access_policy;
mod admin_console;
mod admin_refusals;
mod admin_scoped;
mod admin_sections;
mod admin_structure;
mod audit;
mod authz;
mod bad_input;
mod cli;
mod connections;
mod domains;
mod erasure;
mod faults;
mod federation;
mod federation_sso;
mod groups;
mod guests;
mod imports;
mod instances;
mod invitations;
mod mfa;
mod mfa_pages;
mod ops;
mod org_units;
mod pages;
mod passkeys;
mod retention;
mod risk;
mod scheduler;
mod schema;
mod scim;
mod scim_bulk;
mod scim_dates;
mod scim_idp;
mod scim_lifecycle;
mod scim_paging;
mod scim_token_cache;
mod scoped_roles;
mod session_cache;
mod signin;
mod signin_account;
mod statistics;
mod webhooks;
mod workspaces;

pub use muster_testkit::{TestApp, both};
pub use serde_json::json;

/// `token` with its last character changed: a forgery that can never equal
/// the original (appending a fixed letter would, one time in 64).
pub fn forge(token: &str) -> String {
    let mut t = token.to_owned();
    let last = t.pop().unwrap_or('A');
    t.push(if last == 'A' { 'B' } else { 'A' });
    t
}
