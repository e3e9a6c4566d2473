//! Discovery documents (RFC 7644 §4, RFC 7643 §5, §6): what this service
//! provider supports, stated truthfully — clients such as Entra ID and Okta
//! read them to decide what to send.

use crate::schema::Resource;
use serde_json::{Value, json};

/// Largest page a list returns, whatever `count` asks for.
pub const MAX_RESULTS: usize = 1000;
/// Bulk limits (RFC 7644 §3.7): operations per request, bytes per request.
pub const BULK_MAX_OPERATIONS: usize = 1000;
pub const BULK_MAX_PAYLOAD: usize = 1024 * 1024;

pub fn service_provider_config(base: &str, bulk: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {
            "supported": bulk,
            "maxOperations": if bulk { BULK_MAX_OPERATIONS } else { 0 },
            "maxPayloadSize": if bulk { BULK_MAX_PAYLOAD } else { 0 },
        },
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": 100,
            "maxPageSize": MAX_RESULTS,
            "cursorTimeout": 3600,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "SCIM token",
            "description": "A SCIM token of the organization, sent as 'Authorization: Bearer <token>'",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

/// The User ResourceType lists the enterprise extension only. The lifecycle
/// extension is served at `/Schemas` and accepted on `/Users`, but generic
/// clients that fill every advertised attribute with random values (as
/// conformance tools do) would send dates that are not dates, or in the past;
/// `schemaExtensions` is optional (RFC 7643 §6), and an IdP maps the two
/// attributes by their full name (docs/guide.md).
pub fn resource_type(res: Resource, base: &str) -> Value {
    let extensions: Vec<Value> = res
        .extensions()
        .iter()
        .filter(|(urn, _)| *urn != crate::schema::LIFECYCLE)
        .map(|(urn, _)| json!({"schema": urn, "required": false}))
        .collect();
    let mut v = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": res.name(),
        "name": res.name(),
        "endpoint": res.endpoint(),
        "description": match res {
            Resource::User => "User accounts of the organization",
            Resource::Group => "Groups of users and of other groups",
        },
        "schema": res.schema(),
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", res.name())},
    });
    if !extensions.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        o.insert("schemaExtensions".into(), Value::Array(extensions));
    }
    v
}

/// A ListResponse (RFC 7644 §3.4.2) of discovery resources: all on one page.
pub fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [crate::LIST_RESPONSE],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}
