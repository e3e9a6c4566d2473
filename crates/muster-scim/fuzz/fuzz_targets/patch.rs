//! Any bytes as a PATCH body: if they are JSON, parsed as a PatchOp and
//! applied to a user and a group. It must answer, never crash, and a success
//! leaves at most one primary email.
#![no_main]

use libfuzzer_sys::fuzz_target;
use muster_scim::patch;
use muster_scim::schema::Resource;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(ops) = patch::parse(&body) else { return };
    let mut user = json!({
        "id": "u1", "userName": "alice", "active": true,
        "name": {"givenName": "Alice"},
        "emails": [{"value": "a@example.com", "type": "work", "primary": true},
                   {"value": "b@example.com", "type": "home"}]
    });
    if patch::apply(Resource::User, &mut user, &ops).is_ok() {
        let primaries = user["emails"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|x| x["primary"] == true).count());
        assert!(primaries <= 1, "two primary emails: {user}");
    }
    let mut group = json!({"id": "g1", "displayName": "Eng", "members": [{"value": "u1"}]});
    let _ = patch::apply(Resource::Group, &mut group, &ops);
});
