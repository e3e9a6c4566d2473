//! The provisioning sequences the IdPs document, replayed step by step with
//! their own request bodies: Microsoft's "Tutorial: Develop and plan
//! provisioning for a SCIM endpoint in Microsoft Entra ID" and Okta's "SCIM
//! 2.0 protocol reference".

use crate::scim::{ENT, PATCH, scim, scim_token};
use crate::*;
use axum::http::StatusCode;
use serde_json::Value;

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

async fn entra_id_user_and_group_operations(t: TestApp) {
    let admin = t.org_with_owner("contoso").await;
    let tok = scim_token(&t, &admin, "contoso").await;
    let user_name = "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081";
    let by_name = format!("/Users?filter=userName%20eq%20%22{user_name}%22");

    // Get User by query - Zero results.
    let (s, h, v) = scim(&t, "GET", &by_name, &tok, None, &[]).await;
    assert_eq!(
        (s, v["totalResults"].clone()),
        (StatusCode::OK, json!(0)),
        "{v}"
    );
    assert_eq!(h["content-type"], "application/scim+json");
    assert_eq!(
        v["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );

    // Create User.
    let (s, h, u) = scim(&t, "POST", "/Users", &tok, Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": user_name,
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": []
    })), &[]).await;
    assert_eq!(s, 201, "{u}");
    let id = u["id"].as_str().unwrap().to_owned();
    assert_eq!(
        h["location"].to_str().unwrap(),
        u["meta"]["location"].as_str().unwrap()
    );
    assert!(
        h["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/Users/{id}"))
    );
    assert_eq!(
        h["etag"].to_str().unwrap(),
        u["meta"]["version"].as_str().unwrap()
    );
    assert_eq!(u["userName"], user_name);
    assert_eq!(u["externalId"], "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef");
    assert_eq!(u["name"]["formatted"], "givenName familyName");
    assert_eq!(u["active"], true);
    assert_eq!(u["meta"]["resourceType"], "User");

    // Get User, and Get User by query.
    let (s, _, g) = scim(&t, "GET", &format!("/Users/{id}"), &tok, None, &[]).await;
    assert_eq!((s, g["id"].clone()), (StatusCode::OK, json!(id)));
    let (_, _, v) = scim(&t, "GET", &by_name, &tok, None, &[]).await;
    assert_eq!(
        (v["totalResults"].clone(), v["Resources"][0]["id"].clone()),
        (json!(1), json!(id))
    );
    let (_, _, v) = scim(
        &t,
        "GET",
        "/Users?filter=userName%20eq%20%22non-existent%20user%22",
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(v["totalResults"], 0);

    // Update User [Multi-valued properties].
    let (s, _, v) = scim(&t, "PATCH", &format!("/Users/{id}"), &tok, Some(patch(json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
    ]))), &[]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["emails"][0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(v["name"]["familyName"], "updatedFamilyName");

    // Update User [Single-valued properties].
    let new_name = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com";
    let (s, _, v) = scim(
        &t,
        "PATCH",
        &format!("/Users/{id}"),
        &tok,
        Some(patch(json!([
            {"op": "Replace", "path": "userName", "value": new_name}
        ]))),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["userName"].clone()),
        (StatusCode::OK, json!(new_name))
    );

    // What Entra ID also sends: a value object without a path, and the
    // manager as a bare id.
    let (_, _, boss) = scim(&t, "POST", "/Users", &tok, Some(json!({
        "userName": "boss@testuser.com", "emails": [{"value": "boss@testuser.com", "type": "work", "primary": true}]
    })), &[]).await;
    let boss_id = boss["id"].as_str().unwrap();
    let (s, _, v) = scim(
        &t,
        "PATCH",
        &format!("/Users/{id}"),
        &tok,
        Some(patch(json!([
            {"op": "Add", "value": {"displayName": "Test User", "title": "Tester"}},
            {"op": "Add", "path": format!("{ENT}:manager"), "value": boss_id},
            {"op": "Replace", "path": format!("{ENT}:department"), "value": "QA"}
        ]))),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["displayName"].clone(), v["title"].clone()),
        (json!("Test User"), json!("Tester"))
    );
    assert_eq!(v[ENT]["manager"]["value"], boss_id);
    assert_eq!(v[ENT]["department"], "QA");
    assert!(v["schemas"].as_array().unwrap().contains(&json!(ENT)));

    // Disable User.
    let (s, _, v) = scim(
        &t,
        "PATCH",
        &format!("/Users/{id}"),
        &tok,
        Some(patch(json!([
            {"op": "Replace", "path": "active", "value": false}
        ]))),
        &[],
    )
    .await;
    assert_eq!((s, v["active"].clone()), (StatusCode::OK, json!(false)));

    // Create Group (with Entra's extra schema URI), Get Group, by displayName.
    let (s, _, g) = scim(
        &t,
        "POST",
        "/Groups",
        &tok,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                        "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"}
        })),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    assert_eq!(g["displayName"], "displayName");
    let (s, _, v) = scim(
        &t,
        "GET",
        &format!("/Groups/{gid}?excludedAttributes=members"),
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert!(v.get("members").is_none());
    let (_, _, v) = scim(
        &t,
        "GET",
        "/Groups?excludedAttributes=members&filter=displayName%20eq%20%22displayName%22",
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(v["totalResults"], 1);
    assert!(v["Resources"][0].get("members").is_none());

    // Update Group [Non-member attributes], [Add Members], [Remove Members].
    let (s, _, _) = scim(&t, "PATCH", &format!("/Groups/{gid}"), &tok, Some(patch(json!([
        {"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}
    ]))), &[]).await;
    assert_eq!(s, 200);
    let (s, _, _) = scim(&t, "PATCH", &format!("/Groups/{gid}"), &tok, Some(patch(json!([
        {"op": "Add", "path": "members", "value": [{"$ref": null, "value": id}, {"$ref": null, "value": boss_id}]}
    ]))), &[]).await;
    assert_eq!(s, 204);
    let (_, _, v) = scim(&t, "GET", &format!("/Groups/{gid}"), &tok, None, &[]).await;
    assert_eq!(
        v["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );
    assert_eq!(v["members"].as_array().unwrap().len(), 2, "{v}");
    let (s, _, _) = scim(
        &t,
        "PATCH",
        &format!("/Groups/{gid}"),
        &tok,
        Some(patch(json!([
            {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": id}]}
        ]))),
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let (_, _, v) = scim(
        &t,
        "GET",
        &format!("/Groups/{gid}?filter=members%5Bvalue%20eq%20%22{id}%22%5D"),
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(
        v["members"],
        json!([{"value": boss_id, "$ref": format!("http://muster.test/scim/v2/Users/{boss_id}"), "type": "User"}])
    );

    // Delete Group, Delete User.
    assert_eq!(
        scim(&t, "DELETE", &format!("/Groups/{gid}"), &tok, None, &[])
            .await
            .0,
        204
    );
    assert_eq!(
        scim(&t, "GET", &format!("/Groups/{gid}"), &tok, None, &[])
            .await
            .0,
        404
    );
    assert_eq!(
        scim(&t, "DELETE", &format!("/Users/{id}"), &tok, None, &[])
            .await
            .0,
        204
    );
    assert_eq!(
        scim(&t, "GET", &format!("/Users/{id}"), &tok, None, &[])
            .await
            .0,
        404
    );
}
both!(entra_id_user_and_group_operations);

async fn okta_user_and_group_operations(t: TestApp) {
    let admin = t.org_with_owner("okta-org").await;
    let tok = scim_token(&t, &admin, "okta-org").await;
    // Okta's example pushes "1mz050nq" as the password: the organization
    // chose a length-only policy that accepts it.
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/okta-org/password-policy",
            Some(&admin),
            Some(json!({"rule": "length", "min_length": 8})),
        )
        .await;
    assert_eq!(s, 200);

    let (s, _, v) = scim(
        &t,
        "GET",
        "/Users?filter=userName%20eq%20%22test.user@okta.local%22&startIndex=1&count=100",
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(
        (s, v["totalResults"].clone(), v["startIndex"].clone()),
        (StatusCode::OK, json!(0), json!(1))
    );

    let (s, _, u) = scim(
        &t,
        "POST",
        "/Users",
        &tok,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        })),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{u}");
    assert!(u.get("password").is_none() && !u.to_string().contains("1mz050nq"));
    let id = u["id"].as_str().unwrap().to_owned();

    let (s, _, v) = scim(&t, "GET", &format!("/Users/{id}"), &tok, None, &[]).await;
    assert_eq!((s, v["locale"].clone()), (StatusCode::OK, json!("en-US")));

    // Update: Okta PUTs the whole user back, read-only parts included.
    let mut whole = v.clone();
    whole["name"]["givenName"] = json!("Another");
    whole["groups"] = json!([]);
    let (s, _, v) = scim(&t, "PUT", &format!("/Users/{id}"), &tok, Some(whole), &[]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["name"]["givenName"].clone(), v["id"].clone()),
        (json!("Another"), json!(id))
    );

    // Deactivate, then reactivate.
    for active in [false, true] {
        let (s, _, v) = scim(
            &t,
            "PATCH",
            &format!("/Users/{id}"),
            &tok,
            Some(patch(json!([
                {"op": "replace", "value": {"active": active}}
            ]))),
            &[],
        )
        .await;
        assert_eq!((s, v["active"].clone()), (StatusCode::OK, json!(active)));
    }

    // Groups: search, create, read, rename (value repeats the id), members.
    let (_, _, v) = scim(
        &t,
        "GET",
        "/Groups?filter=displayName%20eq%20%22Test%20SCIMv2%22&startIndex=1&count=100",
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(v["totalResults"], 0);
    let (s, _, g) = scim(
        &t,
        "POST",
        "/Groups",
        &tok,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Test SCIMv2",
            "members": []
        })),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().unwrap().to_owned();
    let (s, _, v) = scim(
        &t,
        "PATCH",
        &format!("/Groups/{gid}"),
        &tok,
        Some(patch(json!([
            {"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}}
        ]))),
        &[],
    )
    .await;
    assert_eq!(
        (s, v["displayName"].clone()),
        (StatusCode::OK, json!("Test SCIMv2 renamed")),
        "{v}"
    );
    let (s, _, _) = scim(&t, "PATCH", &format!("/Groups/{gid}"), &tok, Some(patch(json!([
        {"op": "add", "path": "members", "value": [{"value": id, "display": "test.user@okta.local"}]}
    ]))), &[]).await;
    assert_eq!(s, 204);
    let (_, _, v) = scim(&t, "GET", &format!("/Groups/{gid}"), &tok, None, &[]).await;
    assert_eq!(v["members"][0]["value"], id.as_str());
    let (s, _, _) = scim(
        &t,
        "PATCH",
        &format!("/Groups/{gid}"),
        &tok,
        Some(patch(json!([
            {"op": "remove", "path": format!("members[value eq \"{id}\"]")}
        ]))),
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let (_, _, v) = scim(&t, "GET", &format!("/Groups/{gid}"), &tok, None, &[]).await;
    assert!(v.get("members").is_none(), "{v}");
    // Membership through PUT.
    let (s, _, v) = scim(&t, "PUT", &format!("/Groups/{gid}"), &tok, Some(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": gid, "displayName": "Test SCIMv2", "members": [{"value": id, "display": "test.user@okta.local"}]
    })), &[]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["members"][0]["value"], id.as_str());
    // The user's groups, on request.
    let (_, _, v) = scim(
        &t,
        "GET",
        &format!("/Users/{id}?attributes=groups"),
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(v["groups"][0]["value"], gid.as_str(), "{v}");
    assert_eq!(
        scim(&t, "DELETE", &format!("/Groups/{gid}"), &tok, None, &[])
            .await
            .0,
        204
    );
}
both!(okta_user_and_group_operations);
