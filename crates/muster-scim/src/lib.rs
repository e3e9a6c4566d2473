//! SCIM 2.0 (RFC 7643, RFC 7644) as pure code: the schemas Muster serves,
//! filters, attribute paths, the PATCH engine, projections and SCIM errors.
//! Nothing here does I/O; the store turns filters into SQL and the app runs
//! the use cases.

pub mod bulk;
pub mod discovery;
pub mod error;
pub mod eval;
pub mod filter;
pub mod normalize;
pub mod patch;
pub mod project;
pub mod resources;
pub mod schema;

pub use error::{ScimError, ScimType};
pub use filter::{AttrPath, CompValue, CompareOp, Filter};

/// RFC 7644 §3.1: the media type of every SCIM response.
pub const MEDIA_TYPE: &str = "application/scim+json";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
