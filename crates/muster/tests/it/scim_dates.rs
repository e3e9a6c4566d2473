//! Start and end dates over SCIM (issue 6 §4): Muster's lifecycle extension
//! sets the same schedule as the REST API, and the scheduler carries it out.

use crate::scim::{PATCH, assert_scim_error, new_user, scim, scim_token};
use crate::*;
use muster_testkit::muster_app::scheduler::run_due;
use muster_testkit::muster_core::clock::Clock;
use serde_json::Value;
use time::Duration;

fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

const LIFECYCLE: &str = "urn:muster:params:scim:schemas:extension:lifecycle:2.0:User";

fn at(t: &TestApp, from_now: Duration) -> String {
    (t.clock.now() + from_now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn schedule(t: &TestApp, admin: &str, id: &str) -> Value {
    let path = format!("/api/v1/orgs/acme/users/{id}/schedule");
    let (s, v) = t.call("GET", &path, Some(admin), None).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn state(t: &TestApp, admin: &str, id: &str) -> Value {
    let path = format!("/api/v1/orgs/acme/users/{id}");
    t.call("GET", &path, Some(admin), None).await.1["state"].clone()
}

async fn patch(t: &TestApp, tok: &str, id: &str, op: Value) -> (u16, Value) {
    let body = json!({"schemas": [PATCH], "Operations": [op]});
    let (s, _, v) = scim(t, "PATCH", &format!("/Users/{id}"), tok, Some(body), &[]).await;
    (s.as_u16(), v)
}

async fn an_idp_sets_dates_and_the_scheduler_carries_them_out(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let (start, end) = (at(&t, Duration::hours(1)), at(&t, Duration::days(2)));
    // A hire date and a leave date, as Entra ID maps them to the extension.
    let u = new_user(
        &t,
        &tok,
        "dana",
        json!({LIFECYCLE: {"startDate": start, "endDate": end}}),
    )
    .await;
    let id = u["id"].as_str().unwrap().to_owned();
    assert_eq!(u[LIFECYCLE], json!({"startDate": start, "endDate": end}));
    assert!(u["schemas"].as_array().unwrap().contains(&json!(LIFECYCLE)));
    let plain = new_user(&t, &tok, "erin", json!({})).await;
    assert!(plain.get(LIFECYCLE).is_none(), "{plain}");
    // The REST API sees the same schedule.
    let s = schedule(&t, &admin, &id).await;
    assert_eq!((&s["start"], &s["end"]), (&json!(start), &json!(end)));
    // A filter on the dates finds the user with an end date, and only it.
    let f = format!("{LIFECYCLE}:endDate gt \"{}\"", at(&t, Duration::days(1)));
    let q = format!("/Users?filter={}", encode(&f));
    let (s, _, list) = scim(&t, "GET", &q, &tok, None, &[]).await;
    assert_eq!(
        (s.as_u16(), &list["totalResults"]),
        (200, &json!(1)),
        "{list}"
    );
    assert_eq!(list["Resources"][0]["id"], json!(id));

    t.clock.advance(Duration::hours(2));
    let report = run_due(&t.app).await.unwrap().unwrap();
    assert_eq!(report.activated, 1);
    assert_eq!(state(&t, &admin, &id).await, "active");
    let (_, _, v) = scim(&t, "GET", &format!("/Users/{id}"), &tok, None, &[]).await;
    assert_eq!(v[LIFECYCLE], json!({"endDate": end}), "{v}");

    // Okta's full-replace PUT sends the start date again, now past and
    // carried out: accepted, not scheduled again.
    let mut full = v.clone();
    full[LIFECYCLE] = json!({"startDate": start, "endDate": end});
    let (s, _, v) = scim(&t, "PUT", &format!("/Users/{id}"), &tok, Some(full), &[]).await;
    assert_eq!(s.as_u16(), 200, "{v}");
    assert_eq!(v[LIFECYCLE], json!({"endDate": end}), "{v}");
    // A PUT that leaves the extension out keeps the dates.
    let mut bare = v.clone();
    bare.as_object_mut().unwrap().remove(LIFECYCLE);
    let (s, _, v) = scim(&t, "PUT", &format!("/Users/{id}"), &tok, Some(bare), &[]).await;
    assert_eq!((s.as_u16(), &v[LIFECYCLE]), (200, &json!({"endDate": end})));

    // PATCH moves the end date; the change is audited with the token as actor.
    let later = at(&t, Duration::days(3));
    let path = format!("{LIFECYCLE}:endDate");
    let (s, v) = patch(
        &t,
        &tok,
        &id,
        json!({"op": "replace", "path": path, "value": later}),
    )
    .await;
    assert_eq!((s, &v[LIFECYCLE]["endDate"]), (200, &json!(later)), "{v}");
    assert_eq!(schedule(&t, &admin, &id).await["end"], json!(later));
    let (_, page) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?target={id}&action=user.updated"),
            Some(&admin),
            None,
        )
        .await;
    let ev = &page["items"][0];
    assert_eq!(ev["actor_kind"], "scim_token", "{ev}");
    assert_eq!(ev["changes"][LIFECYCLE][1]["endDate"], json!(later), "{ev}");

    // A start date added and removed again leaves nothing pending.
    let soon = at(&t, Duration::days(1));
    let spath = format!("{LIFECYCLE}:startDate");
    let (s, v) = patch(
        &t,
        &tok,
        &id,
        json!({"op": "add", "path": spath, "value": soon}),
    )
    .await;
    assert_eq!((s, &v[LIFECYCLE]["startDate"]), (200, &json!(soon)), "{v}");
    let (s, v) = patch(&t, &tok, &id, json!({"op": "remove", "path": spath})).await;
    assert_eq!(s, 200, "{v}");
    assert!(v[LIFECYCLE].get("startDate").is_none(), "{v}");
    assert_eq!(schedule(&t, &admin, &id).await["start"], Value::Null);

    // The end date comes: deactivated by the scheduler, not shown any more.
    t.clock.advance(Duration::days(4));
    assert_eq!(run_due(&t.app).await.unwrap().unwrap().deactivated, 1);
    assert_eq!(state(&t, &admin, &id).await, "deactivated");
    let (_, _, v) = scim(&t, "GET", &format!("/Users/{id}"), &tok, None, &[]).await;
    assert_eq!(
        (&v["active"], v.get(LIFECYCLE)),
        (&json!(false), None),
        "{v}"
    );
}
both!(an_idp_sets_dates_and_the_scheduler_carries_them_out);

async fn bulk_creations_with_dates_are_scheduled(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let end = at(&t, Duration::days(30));
    let flat = format!("{LIFECYCLE}:endDate");
    let (s, _, v) = scim(
        &t,
        "POST",
        "/Bulk",
        &tok,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "a", "data": {
                    "userName": "fay", "emails": [{"value": "fay@example.com"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "b", "data": {
                    "userName": "gus", "emails": [{"value": "gus@example.com"}],
                    flat: end}},
                {"method": "POST", "path": "/Users", "bulkId": "c", "data": {
                    "userName": "hal", "emails": [{"value": "hal@example.com"}]}},
            ]
        })),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ops = v["Operations"].as_array().unwrap();
    assert!(ops.iter().all(|o| o["status"] == "201"), "{v}");
    let gus = ops[1]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(schedule(&t, &admin, gus).await["end"], json!(end));
    let fay = ops[0]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert_eq!(schedule(&t, &admin, fay).await["end"], Value::Null);
}
both!(bulk_creations_with_dates_are_scheduled);

async fn filters_over_the_whole_directory_see_the_dates(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    // More users than one page: a filter no index serves renders them all.
    let ops: Vec<Value> = (0..1000)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
            "data": {"userName": format!("u{i}"), "emails": [{"value": format!("u{i}@example.com")}]}}))
        .collect();
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
    let (s, _, v) = scim(&t, "POST", "/Bulk", &tok, Some(body), &[]).await;
    assert_eq!(s, 200);
    assert!(
        v["Operations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "201")
    );
    let end = at(&t, Duration::days(9));
    let dated = new_user(&t, &tok, "kim", json!({LIFECYCLE: {"endDate": end}})).await;
    let f = format!("{LIFECYCLE}:endDate pr");
    let (s, _, list) = scim(
        &t,
        "GET",
        &format!("/Users?filter={}", encode(&f)),
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(
        (s.as_u16(), &list["totalResults"]),
        (200, &json!(1)),
        "{list}"
    );
    assert_eq!(list["Resources"][0]["id"], dated["id"]);
    assert_eq!(list["Resources"][0][LIFECYCLE]["endDate"], json!(end));
}
both!(filters_over_the_whole_directory_see_the_dates);

async fn past_malformed_or_disordered_dates_are_refused_and_change_nothing(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    let u = new_user(&t, &tok, "ivy", json!({})).await;
    let id = u["id"].as_str().unwrap().to_owned();
    let before = t.fingerprint().await;
    let pending = "SELECT COUNT(*) FROM scheduled_transitions";
    let scheduled = t.scalar(pending).await;
    for dates in [
        json!({"endDate": at(&t, Duration::minutes(-5))}),
        json!({"startDate": "next tuesday"}),
        json!({"startDate": "2030-01-01"}),
        json!({"endDate": 1_900_000_000}),
        json!({"startDate": at(&t, Duration::days(2)), "endDate": at(&t, Duration::days(1))}),
    ] {
        let body =
            json!({"userName": "jo", "emails": [{"value": "jo@example.com"}], LIFECYCLE: dates});
        let (s, _, v) = scim(&t, "POST", "/Users", &tok, Some(body), &[]).await;
        assert_scim_error(s, &v, 400, Some("invalidValue"));
        assert!(v["detail"].as_str().unwrap().contains("Date"), "{v}");
        let op = json!({"op": "replace", "path": LIFECYCLE, "value": dates});
        let (s, v) = patch(&t, &tok, &id, op).await;
        assert_eq!(s, 400, "{dates}: {v}");
        assert_eq!(v["scimType"], "invalidValue", "{v}");
    }
    assert_eq!(t.fingerprint().await, before);
    assert_eq!(t.scalar(pending).await, scheduled);

    // The extension is served at /Schemas; the User resource type leaves it
    // out of schemaExtensions (discovery.rs says why).
    let (s, _, v) = scim(&t, "GET", &format!("/Schemas/{LIFECYCLE}"), &tok, None, &[]).await;
    assert_eq!(s.as_u16(), 200, "{v}");
    let names: Vec<_> = v["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].clone(), a["type"].clone()))
        .collect();
    assert_eq!(
        names,
        [
            (json!("startDate"), json!("dateTime")),
            (json!("endDate"), json!("dateTime"))
        ]
    );
    let (_, _, rt) = scim(&t, "GET", "/ResourceTypes/User", &tok, None, &[]).await;
    assert!(!rt.to_string().contains(LIFECYCLE), "{rt}");
}
both!(past_malformed_or_disordered_dates_are_refused_and_change_nothing);
