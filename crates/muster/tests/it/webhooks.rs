//! Webhooks (issue 6 §6): a real HTTP receiver on loopback, signatures
//! checked by the test kit's own implementation of the Standard Webhooks
//! scheme (RFC 2104 over SHA-256, not the server's HMAC), retries with
//! back-off while the receiver is down, order per user, automatic disabling
//! with an email to the owners, redelivery, and the refusal of private
//! targets.

use crate::*;
use muster_testkit::muster_app::webhooks::delivery::{Report, deliver_due};
use muster_testkit::muster_core::clock::Clock;
use muster_testkit::webhooks::{Message, Receiver, verifies};
use serde_json::Value;
use std::sync::atomic::Ordering;
use time::Duration;

fn now_s(t: &TestApp) -> i64 {
    t.clock.now().unix_timestamp()
}

async fn pass(t: &TestApp) -> Report {
    deliver_due(&t.app)
        .await
        .unwrap()
        .expect("no other dispatcher holds the lease")
}

async fn endpoint(t: &TestApp, admin: &str, url: &str, types: Value) -> (String, String) {
    let (s, v) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/webhooks",
            Some(admin),
            Some(json!({"url": url, "event_types": types, "description": "HR sync"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let secret = v["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (v["id"].as_str().unwrap().to_owned(), secret)
}

async fn act(t: &TestApp, admin: &str, id: &str, action: &str) {
    let path = format!("/api/v1/orgs/acme/users/{id}/{action}");
    let (s, v) = t.call("POST", &path, Some(admin), None).await;
    assert_eq!(s, 200, "{action}: {v}");
}

/// `(target, type)` of each message, in the order received.
fn sequence(ms: &[Message]) -> Vec<(String, String)> {
    ms.iter()
        .map(|m| {
            let v = m.json();
            let target = v["data"]["target_id"].as_str().unwrap_or("").to_owned();
            (target, v["type"].as_str().unwrap().to_owned())
        })
        .collect()
}

async fn signed_events_reach_a_receiver_in_order_after_it_was_down(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let mut rx = Receiver::start().await;
    let (hook, secret) = endpoint(&t, &admin, &rx.url(), json!(["user.*"])).await;
    let (ann, _) = t
        .user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (bob, _) = t
        .user_with_token("acme", "bob@acme.example", &["member"])
        .await;
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/groups",
            Some(&admin),
            Some(json!({"name": "Ops"})),
        )
        .await;
    assert_eq!(s, 201);

    let r = pass(&t).await;
    assert_eq!((r.delivered, r.failed_attempts), (2, 0), "{r:?}");
    let first = rx.messages();
    assert_eq!(
        sequence(&first),
        vec![
            (ann.clone(), "user.created".into()),
            (bob.clone(), "user.created".into())
        ],
        "only the subscribed type, not group.created"
    );
    for m in &first {
        assert!(verifies(m, &secret, now_s(&t)), "signature of {}", m.id);
        assert_eq!(
            m.json()["data"]["id"],
            json!(m.id),
            "webhook-id is the event id"
        );
    }
    let mut forged = first[0].clone();
    forged.body.extend_from_slice(b" ");
    assert!(
        !verifies(&forged, &secret, now_s(&t)),
        "a changed body fails"
    );
    assert!(!verifies(
        &first[0],
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        now_s(&t)
    ));

    // Down: changes keep coming; each pass tries the oldest once and backs off.
    rx.stop();
    act(&t, &admin, &ann, "suspend").await;
    act(&t, &admin, &bob, "deactivate").await;
    act(&t, &admin, &ann, "unsuspend").await;
    act(&t, &admin, &ann, "deactivate").await;
    act(&t, &admin, &bob, "reactivate").await;
    let r = pass(&t).await;
    assert_eq!((r.delivered, r.failed_attempts), (0, 1), "{r:?}");
    assert_eq!(
        pass(&t).await,
        Report::default(),
        "not due again before the back-off"
    );
    let log_path = format!("/api/v1/orgs/acme/webhooks/{hook}/deliveries?status=pending");
    let (_, log) = t.call("GET", &log_path, Some(&admin), None).await;
    let pending = log["items"].as_array().unwrap();
    assert_eq!(pending.len(), 5);
    let head = pending.last().unwrap();
    assert_eq!(
        (&head["attempts"], &head["event_type"]),
        (&json!(1), &json!("user.suspend"))
    );
    assert!(head["last_error"].as_str().unwrap().len() > 5, "{head}");
    t.clock.advance(Duration::seconds(6));
    assert_eq!(pass(&t).await.failed_attempts, 1);

    rx.restart().await;
    t.clock.advance(Duration::seconds(61));
    let r = pass(&t).await;
    assert_eq!((r.delivered, r.failed_attempts), (5, 0), "{r:?}");
    let all = rx.messages();
    let after: Vec<_> = sequence(&all[2..]);
    assert_eq!(
        after,
        vec![
            (ann.clone(), "user.suspend".into()),
            (bob.clone(), "user.deactivate".into()),
            (ann.clone(), "user.unsuspend".into()),
            (ann.clone(), "user.deactivate".into()),
            (bob.clone(), "user.reactivate".into()),
        ]
    );
    let mut ids: Vec<_> = all.iter().map(|m| m.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "no message twice");
    assert!(all.iter().all(|m| verifies(m, &secret, now_s(&t))));

    // Redelivery by hand: the same webhook-id again, logged as manual.
    let again = &all[3].id;
    let path = format!("/api/v1/orgs/acme/webhooks/{hook}/deliveries/{again}/redeliver");
    let (s, d) = t.call("POST", &path, Some(&admin), None).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["status"], "delivered");
    let log = d["log"].as_array().unwrap();
    assert_eq!(log.last().unwrap()["manual"], true);
    assert_eq!(log.last().unwrap()["http_status"], 204);
    let last = rx.messages().last().cloned().unwrap();
    assert_eq!((&last.id, &last.body), (again, &all[3].body));
    assert!(verifies(&last, &secret, now_s(&t)));
    assert_eq!(t.audit_count("webhook.redelivered", again).await, 1);
}
both!(signed_events_reach_a_receiver_in_order_after_it_was_down);

async fn a_failing_endpoint_is_turned_off_and_the_owners_are_told(t: TestApp) {
    let sink = muster_testkit::smtp::SmtpSink::start().await;
    let admin = t.org_with_owner("acme").await;
    let rx = Receiver::start().await;
    rx.status.store(500, Ordering::SeqCst);
    let (hook, secret) = endpoint(&t, &admin, &rx.url(), json!(["*"])).await;
    let (cy, _) = t
        .user_with_token("acme", "cy@acme.example", &["member"])
        .await;

    let mut disabled = 0;
    for _ in 0..9 {
        let r = pass(&t).await;
        assert_eq!(r.delivered, 0);
        disabled += r.endpoints_disabled;
        t.clock.advance(Duration::hours(11));
    }
    assert_eq!(disabled, 1, "given up after the ninth failure");
    assert_eq!(rx.messages().len(), 9, "each attempt reached the receiver");
    assert!(
        rx.messages()
            .iter()
            .all(|m| verifies(m, &secret, m.timestamp.parse().unwrap()))
    );
    let path = format!("/api/v1/orgs/acme/webhooks/{hook}");
    let (_, e) = t.call("GET", &path, Some(&admin), None).await;
    assert_eq!(e["enabled"], false, "{e}");
    assert!(
        e["disabled_reason"].as_str().unwrap().contains("HTTP 500"),
        "{e}"
    );
    assert_eq!(t.audit_count("webhook.disabled", "HTTP 500").await, 1);
    t.deliver_mail(&sink).await;
    let mail = sink
        .messages()
        .into_iter()
        .find(|m| m.to.iter().any(|to| to == "owner@acme.example"))
        .expect("the owner is told");
    assert!(mail.text().contains(&rx.url()), "{}", mail.text());

    // Turned off: nothing is queued for it; the first message stays given up.
    let queued = t.scalar("SELECT COUNT(*) FROM webhook_deliveries").await;
    act(&t, &admin, &cy, "suspend").await;
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM webhook_deliveries").await,
        queued
    );
    assert_eq!(pass(&t).await, Report::default());

    // The receiver is fixed and the endpoint turned back on: the messages
    // that waited go out in order, and the given-up one is redelivered.
    rx.status.store(200, Ordering::SeqCst);
    let (s, e) = t
        .call("PATCH", &path, Some(&admin), Some(json!({"enabled": true})))
        .await;
    assert_eq!((s.as_u16(), &e["enabled"]), (200, &json!(true)), "{e}");
    let r = pass(&t).await;
    assert!(r.delivered >= 1 && r.failed_attempts == 0, "{r:?}");
    let (_, failed) = t
        .call(
            "GET",
            &format!("{path}/deliveries?status=failed"),
            Some(&admin),
            None,
        )
        .await;
    let failed = failed["items"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 1);
    let id = failed[0]["webhook_id"].as_str().unwrap();
    let (s, d) = t
        .call(
            "POST",
            &format!("{path}/deliveries/{id}/redeliver"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(
        (s.as_u16(), &d["status"]),
        (200, &json!("delivered")),
        "{d}"
    );
    assert_eq!(d["attempts"], 10);
}
both!(a_failing_endpoint_is_turned_off_and_the_owners_are_told);

async fn private_targets_are_refused_by_default_and_bad_input_changes_nothing(mut t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let rx = Receiver::start().await;
    // Saved while private targets were allowed, then the operator turns
    // that off: the delivery is refused at send time, nothing reaches it.
    let (hook, _) = endpoint(&t, &admin, &rx.url(), json!(["user.*"])).await;
    t.forbid_private_webhooks();
    t.user_with_token("acme", "di@acme.example", &["member"])
        .await;
    assert_eq!(pass(&t).await.failed_attempts, 1);
    assert!(rx.messages().is_empty());
    let (_, log) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/webhooks/{hook}/deliveries"),
            Some(&admin),
            None,
        )
        .await;
    assert!(
        log["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("https"),
        "{log}"
    );

    let before = t.fingerprint().await;
    let port = rx.addr.port();
    for (url, why) in [
        (format!("http://127.0.0.1:{port}/hook"), "https"),
        (format!("https://127.0.0.1:{port}/hook"), "private"),
        ("https://10.0.0.8/hook".into(), "private"),
        ("https://169.254.169.254/latest/meta-data".into(), "private"),
        ("https://[::ffff:7f00:1]/hook".into(), "private"),
        ("https://localhost/hook".into(), "public host"),
        ("https://user:pw@hooks.example.com/".into(), "credentials"),
    ] {
        let (s, v) = t
            .call(
                "POST",
                "/api/v1/orgs/acme/webhooks",
                Some(&admin),
                Some(json!({"url": url, "event_types": ["*"]})),
            )
            .await;
        assert_eq!(s, 422, "{url}: {v}");
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(why) || v.to_string().contains(why),
            "{url}: {v}"
        );
    }
    for types in [
        json!([]),
        json!(["users.*"]),
        json!(["user.%"]),
        json!("user.*"),
    ] {
        let (s, v) = t
            .call(
                "POST",
                "/api/v1/orgs/acme/webhooks",
                Some(&admin),
                Some(json!({"url": "https://hooks.example.com/x", "event_types": types})),
            )
            .await;
        assert!(s == 422 || s == 400, "{types}: {s} {v}");
        assert!(!v.to_string().contains("SELECT"), "{v}");
    }
    let patch = format!("/api/v1/orgs/acme/webhooks/{hook}");
    let (s, _) = t
        .call(
            "PATCH",
            &patch,
            Some(&admin),
            Some(json!({"url": "https://192.168.1.1/"})),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(t.fingerprint().await, before, "nothing changed");
    let (_, e) = t.call("GET", &patch, Some(&admin), None).await;
    assert_eq!(e["url"], json!(rx.url()));

    let (s, v) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/webhooks",
            Some(&admin),
            Some(json!({"url": "https://93.184.216.34/hook", "event_types": ["*"]})),
        )
        .await;
    assert_eq!(s, 201, "a public address is accepted: {v}");
}
both!(private_targets_are_refused_by_default_and_bad_input_changes_nothing);

async fn endpoints_are_per_organization_and_need_webhooks_manage(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let other = t.org_with_owner("globex").await;
    let (_, member) = t
        .user_with_token("acme", "m@acme.example", &["member"])
        .await;
    let rx = Receiver::start().await;
    let (hook, secret) = endpoint(&t, &admin, &rx.url(), json!(["user.*"])).await;
    let base = format!("/api/v1/orgs/acme/webhooks/{hook}");
    assert_eq!(
        t.call("GET", "/api/v1/orgs/acme/webhooks", Some(&member), None)
            .await
            .0,
        403
    );
    for (method, path) in [
        ("GET", base.clone()),
        ("PATCH", base.clone()),
        ("DELETE", base.clone()),
        ("POST", format!("{base}/rotate-secret")),
        ("GET", format!("{base}/deliveries")),
    ] {
        let cross = path.replace("/orgs/acme/", "/orgs/globex/");
        let body = (method == "PATCH").then(|| json!({"enabled": false}));
        let (s, v) = t.call(method, &cross, Some(&other), body).await;
        assert_eq!(s, 404, "{method} {cross}: {v}");
    }
    // Globex's events never reach Acme's endpoint.
    t.user_with_token("globex", "g@globex.example", &["member"])
        .await;
    t.user_with_token("acme", "a2@acme.example", &["member"])
        .await;
    assert_eq!(pass(&t).await.delivered, 1, "only acme's member");
    assert!(
        rx.messages()
            .iter()
            .all(|m| !m.json().to_string().contains("globex"))
    );

    // Rotation: both secrets sign for a day, then only the new one.
    let (s, v) = t
        .call("POST", &format!("{base}/rotate-secret"), Some(&admin), None)
        .await;
    assert_eq!(s, 200, "{v}");
    let new = v["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, secret);
    t.user_with_token("acme", "n@acme.example", &["member"])
        .await;
    pass(&t).await;
    let m = rx.messages().last().cloned().unwrap();
    assert_eq!(m.signature.split(' ').count(), 2);
    assert!(verifies(&m, &secret, now_s(&t)) && verifies(&m, &new, now_s(&t)));
    t.clock.advance(Duration::hours(25));
    t.user_with_token("acme", "o@acme.example", &["member"])
        .await;
    pass(&t).await;
    let m = rx.messages().last().cloned().unwrap();
    assert!(verifies(&m, &new, now_s(&t)) && !verifies(&m, &secret, now_s(&t)));

    let (s, _) = t.call("DELETE", &base, Some(&admin), None).await;
    assert_eq!(s, 204);
    assert_eq!(t.scalar("SELECT COUNT(*) FROM webhook_deliveries").await, 0);
    assert_eq!(t.audit_count("webhook.deleted", &rx.url()).await, 1);
}
both!(endpoints_are_per_organization_and_need_webhooks_manage);

async fn every_path_that_records_an_event_queues_its_webhook_and_a_refusal_queues_none(t: TestApp) {
    use crate::scim::{new_user, scim, scim_token};
    let admin = t.org_with_owner("acme").await;
    let rx = Receiver::start().await;
    endpoint(&t, &admin, &rx.url(), json!(["user.*", "scim.*"])).await;
    let tok = scim_token(&t, &admin, "acme").await;
    // SCIM creations go through the batched writer, not the single-event path.
    let mut ids = Vec::new();
    for name in ["Eve", "Fay", "Gus"] {
        ids.push(
            new_user(&t, &tok, name, json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let (s, _, v) = scim(
        &t,
        "PATCH",
        &format!("/Users/{}", ids[0]),
        &tok,
        Some(patch),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // A refused change writes neither an event nor a message.
    let queued = t.scalar("SELECT COUNT(*) FROM webhook_deliveries").await;
    let path = format!("/api/v1/orgs/acme/users/{}/unsuspend", ids[1]);
    let (s, _) = t.call("POST", &path, Some(&admin), None).await;
    assert_eq!(s, 409);
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM webhook_deliveries").await,
        queued
    );

    // Exactly one message per subscribed event, no more, no fewer.
    let subscribed = t
        .scalar(
            "SELECT COUNT(*) FROM audit_events WHERE action LIKE 'user.%' OR action LIKE 'scim.%'",
        )
        .await
        - 1; // the owner's creation, before the endpoint existed
    assert_eq!(queued, subscribed);
    assert_eq!(pass(&t).await.delivered, usize::try_from(queued).unwrap());
    let got = sequence(&rx.messages());
    for id in &ids {
        assert!(
            got.contains(&(id.clone(), "user.created".into())),
            "{got:?}"
        );
    }
    assert_eq!(
        got.last().unwrap(),
        &(ids[0].clone(), "user.deactivate".into())
    );
}
both!(every_path_that_records_an_event_queues_its_webhook_and_a_refusal_queues_none);

async fn two_instances_deliver_each_message_once(t: TestApp) {
    use muster_testkit::muster_app::{App, DbOptions};
    let admin = t.org_with_owner("acme").await;
    let rx = Receiver::start().await;
    endpoint(&t, &admin, &rx.url(), json!(["user.*"])).await;
    for i in 0..20 {
        t.user_with_token("acme", &format!("p{i}@acme.example"), &["member"])
            .await;
    }
    let key = muster_testkit::muster_app::sealing::ServerKey::load_or_create(
        &t.data_dir.join("server.key"),
    )
    .unwrap();
    let clock: std::sync::Arc<dyn Clock> = t.clock.clone();
    let other = App::open(&t.url, &DbOptions { max_connections: 4 }, clock)
        .await
        .unwrap()
        .with_server_key(key)
        .with_private_webhook_targets(true);
    let (a, b) = tokio::join!(deliver_due(&t.app), deliver_due(&other));
    let (a, b) = (a.unwrap(), b.unwrap());
    let working = [a, b].iter().flatten().filter(|r| r.delivered > 0).count();
    assert_eq!(working, 1, "one dispatcher at a time: {a:?} {b:?}");
    let sent: usize = [a, b].iter().flatten().map(|r| r.delivered).sum();
    assert_eq!(sent, 20);
    let ids: Vec<String> = rx.messages().iter().map(|m| m.id.clone()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (20, 20), "each message once");
    assert_eq!(ids, unique, "in event order");
}
both!(two_instances_deliver_each_message_once);
