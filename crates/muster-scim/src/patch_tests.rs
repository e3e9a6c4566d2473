use super::*;
use crate::ScimType;
use crate::schema::ENTERPRISE;
use serde_json::json;

fn user() -> Value {
    json!({
        "id": "u1",
        "userName": "alice",
        "active": true,
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [
            {"value": "alice@example.com", "type": "work", "primary": true},
            {"value": "alice@home.example", "type": "home"}
        ],
    })
}

fn run(doc: &mut Value, ops: Value) -> Result<()> {
    let body = json!({"schemas": [crate::PATCH_OP], "Operations": ops});
    let ops = parse(&body)?;
    apply(Resource::User, doc, &ops)
}

fn patched(ops: Value) -> Value {
    let mut d = user();
    run(&mut d, ops).unwrap();
    d
}

fn err(ops: Value) -> ScimError {
    let mut d = user();
    run(&mut d, ops).unwrap_err()
}

#[test]
fn replace_add_remove_simple_and_sub_attributes() {
    let d = patched(json!([
        {"op": "replace", "path": "name.givenName", "value": "Ally"},
        {"op": "add", "path": "title", "value": "Engineer"},
        {"op": "remove", "path": "name.familyName"},
    ]));
    assert_eq!(d["name"], json!({"givenName": "Ally"}));
    assert_eq!(d["title"], "Engineer");
}

#[test]
fn entra_style_capitalised_ops_and_values_without_path() {
    let d = patched(json!([
        {"op": "Replace", "value": {"active": "False", "name.familyName": "L.", "displayName": "Al"}},
        {"op": "Add", "value": {ENTERPRISE: {"schemas": ["x"], "department": "R&D", "manager": "m1"}}},
        {"op": "Add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "C7"}},
    ]));
    assert_eq!(d["active"], false);
    assert_eq!(d["name"]["familyName"], "L.");
    assert_eq!(d["displayName"], "Al");
    assert_eq!(
        d[ENTERPRISE],
        json!({"department": "R&D", "manager": {"value": "m1"}, "costCenter": "C7"})
    );
}

#[test]
fn a_bare_extension_urn_path_addresses_the_whole_extension() {
    let d = patched(json!([
        {"op": "add", "path": ENTERPRISE, "value": {"department": "Ops", "employeeNumber": "7"}},
    ]));
    assert_eq!(
        d[ENTERPRISE],
        json!({"department": "Ops", "employeeNumber": "7"})
    );
    let mut d2 = d.clone();
    run(&mut d2, json!([{"op": "remove", "path": ENTERPRISE}])).unwrap();
    assert!(d2.get(ENTERPRISE).is_none());
}

#[test]
fn value_path_filters_select_elements() {
    let d = patched(json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@new.example"},
    ]));
    assert_eq!(d["emails"][0]["value"], "a@new.example");
    assert_eq!(d["emails"][1]["value"], "alice@home.example");

    let d = patched(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]));
    assert_eq!(d["emails"].as_array().unwrap().len(), 1);

    // Add through a filter that matches nothing creates the element it names.
    let d = patched(json!([
        {"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+33 1 23"},
    ]));
    assert_eq!(
        d["phoneNumbers"],
        json!([{"type": "mobile", "value": "+33 1 23"}])
    );
}

#[test]
fn multi_valued_add_appends_and_keeps_one_primary() {
    let d = patched(json!([
        {"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other", "primary": true}]},
    ]));
    let emails = d["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 3);
    let primaries: Vec<_> = emails.iter().filter(|e| e["primary"] == true).collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(primaries[0]["value"], "new@example.com");
    // Adding an existing value again does not duplicate it.
    let d = patched(json!([
        {"op": "add", "path": "emails", "value": [{"value": "alice@home.example", "type": "home"}]},
    ]));
    assert_eq!(d["emails"].as_array().unwrap().len(), 2);
}

#[test]
fn group_members_by_patch_including_entra_value_list_removal() {
    let mut g =
        json!({"displayName": "Eng", "members": [{"value": "a"}, {"value": "b"}, {"value": "c"}]});
    let body = json!({"schemas": [crate::PATCH_OP], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": "c"}]},
        {"op": "Add", "path": "members", "value": [{"value": "d"}]},
        {"op": "remove", "path": "members[value eq \"b\"]"},
    ]});
    apply(Resource::Group, &mut g, &parse(&body).unwrap()).unwrap();
    assert_eq!(g["members"], json!([{"value": "d"}]));
    let body =
        json!({"schemas": [crate::PATCH_OP], "Operations": [{"op": "remove", "path": "members"}]});
    apply(Resource::Group, &mut g, &parse(&body).unwrap()).unwrap();
    assert!(g.get("members").is_none());
}

#[test]
fn refusals_carry_the_right_scim_type() {
    let cases = [
        (
            json!([{"op": "move", "path": "title", "value": "x"}]),
            ScimType::InvalidSyntax,
        ),
        (
            json!([{"op": "add", "path": "title"}]),
            ScimType::InvalidSyntax,
        ),
        (json!([{"op": "remove"}]), ScimType::NoTarget),
        (
            json!([{"op": "add", "path": "nope", "value": 1}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "add", "path": "name.nope", "value": 1}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "add", "path": "title[value eq \"x\"]", "value": 1}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "add", "path": "emails[type eq]", "value": 1}]),
            ScimType::InvalidPath,
        ),
        (
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "replace", "path": "meta.created", "value": "x"}]),
            ScimType::Mutability,
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "replace", "value": "not an object"}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "remove", "path": "emails[type eq \"fax\"]"}]),
            ScimType::NoTarget,
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"fax\"].value", "value": "x@y.z"}]),
            ScimType::NoTarget,
        ),
        (
            json!([{"op": "remove", "path": "active"}]),
            ScimType::InvalidValue,
        ),
        (
            json!([{"op": "remove", "path": "userName"}]),
            ScimType::InvalidValue,
        ),
    ];
    for (ops, want) in cases {
        let e = err(ops.clone());
        assert_eq!(e.scim_type, Some(want), "{ops}: {e:?}");
    }
    let too_many: Vec<Value> = (0..=MAX_OPERATIONS)
        .map(|_| json!({"op": "add", "path": "title", "value": "x"}))
        .collect();
    assert_eq!(
        err(Value::Array(too_many)).scim_type,
        Some(ScimType::TooMany)
    );
    let e = parse(&json!({"Operations": []})).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            "[a-zA-Z\\[\\]\". ]{0,12}".prop_map(Value::String),
            any::<i32>().prop_map(|n| json!(n)),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("value".to_owned()),
                        Just("type".to_owned()),
                        Just("primary".to_owned()),
                        Just("emails".to_owned()),
                        Just("name".to_owned()),
                        Just("givenName".to_owned()),
                        Just("active".to_owned()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn any_path() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("emails".to_owned()),
            Just("emails[type eq \"work\"].value".to_owned()),
            Just("emails[value co \"@\"]".to_owned()),
            Just("name.givenName".to_owned()),
            Just("name".to_owned()),
            Just("active".to_owned()),
            Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager".to_owned()),
            "[a-zA-Z.\\[\\]\" ]{0,30}",
        ]
    }

    proptest! {
        #[test]
        fn any_patch_gets_an_answer_and_a_failed_one_is_refused_cleanly(
            ops in proptest::collection::vec(
                (prop_oneof![Just("add"), Just("Replace"), Just("remove"), Just("x")], any_path(), any_json()),
                1..6,
            )
        ) {
            let ops: Vec<Value> = ops.into_iter()
                .map(|(op, path, value)| json!({"op": op, "path": path, "value": value}))
                .collect();
            let mut d = user();
            if run(&mut d, Value::Array(ops)).is_ok() {
                // Whatever succeeded leaves at most one primary email.
                let n = d["emails"].as_array().map_or(0, |e| e.iter().filter(|x| x["primary"] == true).count());
                prop_assert!(n <= 1);
            }
        }

        #[test]
        fn any_path_string_parses_or_is_refused(p in "\\PC{0,80}") {
            let _ = Path::parse(&p);
        }
    }
}
