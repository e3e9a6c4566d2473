//! Scheduled lifecycle (issue 6 §4): start and end dates, suspension after
//! inactivity, deletion after a grace period, legal holds, several runners.

use crate::*;
use muster_testkit::muster_app::scheduler::{RunReport, run_due};
use muster_testkit::muster_app::{App, DbOptions};
use muster_testkit::muster_core::clock::Clock;
use serde_json::Value;
use std::sync::Arc;
use time::Duration;

fn at(t: &TestApp, from_now: Duration) -> String {
    (t.clock.now() + from_now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn run(t: &TestApp) -> RunReport {
    run_due(&t.app)
        .await
        .unwrap()
        .expect("no other runner holds the lease")
}

async fn state(t: &TestApp, admin: &str, id: &str) -> Value {
    let (_, u) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/users/{id}"),
            Some(admin),
            None,
        )
        .await;
    u["state"].clone()
}

async fn end_and_start_dates_deactivate_then_restore_access_on_time(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (id, token) = t
        .user_with_token("acme", "cy@acme.example", &["member"])
        .await;
    let path = format!("/api/v1/orgs/acme/users/{id}/schedule");
    let end = at(&t, Duration::days(1));
    let (s, v) = t
        .call("PUT", &path, Some(&admin), Some(json!({"end": end})))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((&v["end"], &v["start"]), (&json!(end), &Value::Null));

    // Not yet due: nothing happens.
    assert_eq!(run(&t).await, RunReport::default());
    assert_eq!(t.call("GET", "/api/v1/me", Some(&token), None).await.0, 200);

    t.clock.advance(Duration::hours(25));
    assert_eq!(run(&t).await.deactivated, 1);
    assert_eq!(state(&t, &admin, &id).await, "deactivated");
    assert_eq!(t.call("GET", "/api/v1/me", Some(&token), None).await.0, 401);
    let (_, page) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?target={id}&action=user.deactivate"),
            Some(&admin),
            None,
        )
        .await;
    let ev = &page["items"][0];
    assert_eq!(
        (&ev["actor_kind"], &ev["actor_label"]),
        (&json!("system"), &json!("scheduler"))
    );
    assert_eq!(ev["changes"]["revoked"]["counts"]["api_tokens"], 1, "{ev}");
    assert!(ev["changes"]["schedule"]["due_at"].is_string(), "{ev}");
    // Done once: a second run finds nothing, and the history says so.
    assert_eq!(run(&t).await, RunReport::default());
    let (_, v) = t.call("GET", &path, Some(&admin), None).await;
    assert_eq!(v["end"], Value::Null);
    assert_eq!(v["history"][0]["outcome"], "done");

    // A start date brings the account back (it has a password: active).
    let start = at(&t, Duration::days(2));
    let (s, _) = t
        .call("PUT", &path, Some(&admin), Some(json!({"start": start})))
        .await;
    assert_eq!(s, 200);
    t.clock.advance(Duration::days(3));
    assert_eq!(run(&t).await.activated, 1);
    assert_eq!(state(&t, &admin, &id).await, "active");
    // The old token stays dead.
    assert_eq!(t.call("GET", "/api/v1/me", Some(&token), None).await.0, 401);
}
both!(end_and_start_dates_deactivate_then_restore_access_on_time);

async fn dates_in_the_past_or_out_of_order_are_refused_and_change_nothing(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (id, _) = t
        .user_with_token("acme", "di@acme.example", &["member"])
        .await;
    let path = format!("/api/v1/orgs/acme/users/{id}/schedule");
    let before = t.fingerprint().await;
    for (body, field) in [
        (json!({"end": at(&t, Duration::minutes(-1))}), "end"),
        (json!({"start": at(&t, Duration::days(-30))}), "start"),
        (
            json!({"start": at(&t, Duration::days(2)), "end": at(&t, Duration::days(1))}),
            "end",
        ),
        (json!({"end": "next tuesday"}), "end"),
    ] {
        let (s, v) = t.call("PUT", &path, Some(&admin), Some(body.clone())).await;
        assert_eq!(s, 422, "{body}: {v}");
        assert!(v.to_string().contains(field), "{v}");
    }
    let (s, _) = t
        .call("PUT", &path, Some(&admin), Some(json!({"ends": "x"})))
        .await;
    assert_eq!(s, 422);
    // A member may not schedule anyone.
    let (_, member) = t
        .user_with_token("acme", "mo@acme.example", &["member"])
        .await;
    let before_member = t.fingerprint().await;
    let (s, _) = t
        .call(
            "PUT",
            &path,
            Some(&member),
            Some(json!({"end": at(&t, Duration::days(1))})),
        )
        .await;
    assert_eq!(s, 403);
    assert_eq!(t.fingerprint().await, before_member);
    assert_ne!(
        before, before_member,
        "the member's creation is the only change"
    );
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM scheduled_transitions").await,
        0
    );
}
both!(dates_in_the_past_or_out_of_order_are_refused_and_change_nothing);

async fn users_without_a_sign_in_for_the_policy_days_are_suspended(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (s, v) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/lifecycle-policy",
            Some(&admin),
            Some(json!({"suspend_after_inactive_days": 0})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (active, _) = t
        .user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    let (idle, idle_token) = t
        .user_with_token("acme", "ida@acme.example", &["member"])
        .await;
    // Off by default: a year of silence changes nothing.
    t.clock.advance(Duration::days(20));
    let (s, v) = t
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "ann@acme.example", "password": "Str0ng!pass", "org": "acme"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    t.clock.advance(Duration::days(11));
    assert_eq!(run(&t).await.suspended, 0);
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/lifecycle-policy",
            Some(&admin),
            Some(json!({"suspend_after_inactive_days": 30})),
        )
        .await;
    assert_eq!(s, 200);
    // 31 days without a sign-in: suspended, its token refused; 11 days: kept.
    let r = run(&t).await;
    // The owner made by the test kit never signed in either.
    assert_eq!(r.suspended, 2, "{r:?}");
    assert_eq!(state(&t, &admin_of(&t).await, &idle).await, "suspended");
    assert_eq!(state(&t, &admin_of(&t).await, &active).await, "active");
    assert_eq!(
        t.call("GET", "/api/v1/me", Some(&idle_token), None).await.0,
        401
    );
    assert_eq!(t.audit_count("user.suspend", "inactive_days").await, 2);
}
both!(users_without_a_sign_in_for_the_policy_days_are_suspended);

/// A sign-in is recorded as activity at most once a minute (the `users` row
/// is not rewritten on every sign-in of a busy account): a second sign-in
/// within the minute leaves the recorded time, one after it moves it.
async fn a_sign_in_is_recorded_at_most_once_a_minute(t: TestApp) {
    async fn sign_in(t: &TestApp) {
        let body = json!({"email": "ann@acme.example", "password": "Str0ng!pass", "org": "acme"});
        let (s, v) = t.call("POST", "/api/v1/auth/login", None, Some(body)).await;
        assert_eq!(s, 200, "{v}");
    }
    async fn last(t: &TestApp, id: &str) -> i64 {
        let sql = format!("SELECT COALESCE(last_sign_in_at, -1) FROM users WHERE id = '{id}'");
        t.scalar(&sql).await
    }
    fn now_ms(t: &TestApp) -> i64 {
        (t.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }
    t.org_with_owner("acme").await;
    let (ann, _) = t
        .user_with_token("acme", "ann@acme.example", &["member"])
        .await;
    assert_eq!(last(&t, &ann).await, -1);
    sign_in(&t).await;
    let first = now_ms(&t);
    assert_eq!(last(&t, &ann).await, first);
    t.clock.advance(Duration::seconds(59));
    sign_in(&t).await;
    assert_eq!(last(&t, &ann).await, first, "within the minute: unchanged");
    t.clock.advance(Duration::seconds(1));
    sign_in(&t).await;
    assert_eq!(last(&t, &ann).await, now_ms(&t), "a minute later: moved");
}
both!(a_sign_in_is_recorded_at_most_once_a_minute);

/// A fresh admin token (the owner's may be suspended by then).
async fn admin_of(t: &TestApp) -> String {
    t.user_with_token(
        "acme",
        &format!("a{}@acme.example", uuid::Uuid::now_v7().simple()),
        &["admin"],
    )
    .await
    .1
}

async fn deactivated_users_are_deleted_after_the_grace_period_unless_held(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (gone, _) = t
        .user_with_token("acme", "go@acme.example", &["member"])
        .await;
    let (held, _) = t
        .user_with_token("acme", "he@acme.example", &["member"])
        .await;
    let (kept, _) = t
        .user_with_token("acme", "ke@acme.example", &["member"])
        .await;
    for id in [&gone, &held] {
        let (s, _) = t
            .call(
                "POST",
                &format!("/api/v1/orgs/acme/users/{id}/deactivate"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, 200);
    }
    let (s, _) = t
        .call(
            "PUT",
            &format!("/api/v1/orgs/acme/users/{held}/legal-hold"),
            Some(&admin),
            Some(json!({"reason": "Case 9"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/lifecycle-policy",
            Some(&admin),
            Some(json!({"delete_deactivated_after_days": 7})),
        )
        .await;
    assert_eq!(s, 200);
    t.clock.advance(Duration::days(6));
    assert_eq!(run(&t).await.deleted, 0, "still within the grace period");
    t.clock.advance(Duration::days(2));
    assert_eq!(run(&t).await.deleted, 1);
    let get = |id: &str| format!("/api/v1/orgs/acme/users/{id}");
    assert_eq!(t.call("GET", &get(&gone), Some(&admin), None).await.0, 404);
    assert_eq!(state(&t, &admin, &held).await, "deactivated");
    assert_eq!(state(&t, &admin, &kept).await, "active");
    let (_, page) = t
        .call(
            "GET",
            &format!("/api/v1/orgs/acme/audit-events?target={gone}&action=user.delete"),
            Some(&admin),
            None,
        )
        .await;
    let ev = &page["items"][0];
    assert_eq!(
        (&ev["actor_kind"], &ev["actor_label"]),
        (&json!("system"), &json!("scheduler"))
    );
    assert_eq!(ev["changes"]["reason"]["grace_days"], 7, "{ev}");
}
both!(deactivated_users_are_deleted_after_the_grace_period_unless_held);

/// Two instances on one database: every dated transition runs exactly once.
async fn two_instances_carry_out_each_dated_transition_once(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let (id, _) = t
            .user_with_token("acme", &format!("u{i}@acme.example"), &["member"])
            .await;
        let (s, _) = t
            .call(
                "PUT",
                &format!("/api/v1/orgs/acme/users/{id}/schedule"),
                Some(&admin),
                Some(json!({"end": at(&t, Duration::hours(1))})),
            )
            .await;
        assert_eq!(s, 200);
        ids.push(id);
    }
    t.clock.advance(Duration::hours(2));
    let key = muster_testkit::muster_app::sealing::ServerKey::load_or_create(
        &t.data_dir.join("server.key"),
    )
    .unwrap();
    let other = App::open(
        &t.url,
        &DbOptions { max_connections: 4 },
        t.clock.clone() as Arc<dyn Clock>,
    )
    .await
    .unwrap()
    .with_server_key(key);
    let (a, b) = tokio::join!(run_due(&t.app), run_due(&other));
    let done = [a.unwrap(), b.unwrap()]
        .iter()
        .flatten()
        .map(|r| r.deactivated)
        .sum::<usize>();
    assert_eq!(done, 30);
    // The lease is free again and nothing is left to do.
    assert_eq!(run_due(&other).await.unwrap(), Some(RunReport::default()));
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'user.deactivate'")
            .await,
        30
    );
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM users WHERE state = 'deactivated'")
            .await,
        30
    );
}
both!(two_instances_carry_out_each_dated_transition_once);
