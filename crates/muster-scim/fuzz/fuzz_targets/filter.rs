//! Any string as a SCIM filter: parsed, checked against the User and Group
//! schemas and evaluated over a user document. It must answer, never crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use muster_scim::schema::Resource;
use muster_scim::{Filter, eval};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(f) = Filter::parse(text) else { return };
    let doc = serde_json::json!({
        "id": "u1", "userName": "alice", "active": true,
        "emails": [{"value": "a@example.com", "type": "work", "primary": true}],
        "meta": {"created": "2026-01-01T00:00:00Z"}
    });
    for res in [Resource::User, Resource::Group] {
        if eval::check(res, &f).is_ok() {
            let _ = eval::matches(res, &doc, &f);
        }
    }
});
