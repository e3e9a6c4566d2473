//! The admin REST API.

pub mod v1;
