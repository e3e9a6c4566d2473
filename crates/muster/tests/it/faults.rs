//! Faults (issue 6): a server killed with SIGKILL in the middle of
//! deactivating a thousand users leaves each one either fully deactivated,
//! with its receipt, or untouched; the audit chain verifies after restart.

use crate::*;
use muster_testkit::muster_app::{Caller, audit, users};
use muster_testkit::muster_core::clock::{self, Clock};
use muster_testkit::muster_store::access::{GrantKind, insert_grant};

const USERS: usize = 1000;

async fn sigkill_during_a_thousand_deactivations_leaves_each_user_whole(t: TestApp) {
    t.org_with_owner("acme").await;
    let op = Caller::operator("test");
    let org = muster_testkit::muster_store::orgs::by_slug(&t.app.db, "acme")
        .await
        .unwrap()
        .unwrap()
        .id;
    // A thousand provisioned users, each with a session to revoke.
    let mut ids = Vec::with_capacity(USERS);
    let setup = std::time::Instant::now();
    for i in 0..USERS {
        let input = users::NewUser {
            email: format!("p{i}@acme.example"),
            user_name: None,
            profile: Default::default(),
            roles: None,
            password: None,
            org_unit_id: None,
        };
        ids.push(users::create(&t.app, &op, "acme", input).await.unwrap().id);
    }
    let mut tx = t.app.db.begin().await.unwrap();
    for id in &ids {
        insert_grant(&mut tx, GrantKind::Session, &format!("s-{id}"), &org, id, 0)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    // Every one's end date has come (by the server's real clock).
    let now = clock::to_millis(clock::SystemClock.now());
    let rows: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            format!(
                "('sch-{i}', '{org}', '{id}', 'deactivate', {}, {})",
                now - 1000,
                now - 2000
            )
        })
        .collect();
    t.raw(&format!(
        "INSERT INTO scheduled_transitions (id, org_id, user_id, action, due_at, created_at) VALUES {}",
        rows.join(", ")
    ))
    .await;

    eprintln!("set up {USERS} users in {:?}", setup.elapsed());
    // The server's scheduler starts on them at once; kill it mid-way.
    let mut server = crate::instances::spawn(&t);
    let deactivated = "SELECT COUNT(*) FROM users WHERE state = 'deactivated'";
    let started = std::time::Instant::now();
    while t.scalar(deactivated).await < 25 {
        assert!(
            started.elapsed().as_secs() < 120,
            "the scheduler never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    eprintln!("killed {:?} after start", started.elapsed());
    server.child.wait().unwrap();
    let done = t.scalar(deactivated).await;
    assert!(
        (25..USERS as i64).contains(&done),
        "killed mid-way: {done} of {USERS} deactivated"
    );

    // Each user is whole: deactivated with its event, receipt, revoked
    // session and claimed schedule — or untouched on every count.
    let deact_event = "EXISTS (SELECT 1 FROM audit_events e WHERE e.target_id = u.id AND e.action = 'user.deactivate')";
    let live_session =
        "EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL)";
    let claimed = "EXISTS (SELECT 1 FROM scheduled_transitions x WHERE x.user_id = u.id AND x.done_at IS NOT NULL)";
    let whole_done = format!(
        "SELECT COUNT(*) FROM users u WHERE u.org_id = '{org}' AND u.state = 'deactivated' \
         AND {deact_event} AND NOT {live_session} AND {claimed}"
    );
    let untouched = format!(
        "SELECT COUNT(*) FROM users u WHERE u.org_id = '{org}' AND u.state = 'provisioned' \
         AND NOT {deact_event} AND {live_session} AND NOT {claimed}"
    );
    assert_eq!(t.scalar(&whole_done).await, done);
    assert_eq!(t.scalar(&untouched).await, USERS as i64 - done);
    assert_eq!(
        t.audit_count("user.deactivate", "\"total\":1").await,
        done,
        "every deactivation carries its receipt"
    );

    // Restarted (this process opens the database afresh), the chain verifies.
    let out = crate::cli::muster(&t, &["audit", "verify", "--org", "acme"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = audit::verify(&t.app, &org, "acme").await.unwrap();
    assert!(v.findings.is_empty(), "{:?}", v.findings);
    assert!(v.events_checked > done, "{v:?}");
}
both!(sigkill_during_a_thousand_deactivations_leaves_each_user_whole);

/// PostgreSQL closes every connection of the test's database but the
/// test's own, then they sit idle past the pool's one-second check.
async fn close_connections_then_idle(t: &TestApp) {
    t.raw(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
}

/// A PostgreSQL connection that was closed while it sat idle in the pool (a
/// restart, an administrator, a dropped network path) is replaced before a
/// request gets it: the pool pings a connection idle for a second or more
/// (`db.rs`), not at every acquire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_closed_while_idle_are_replaced_before_use() {
    let Some(t) = TestApp::postgres(module_path!()).await else {
        return;
    };
    t.org_with_owner("acme").await;
    let read = || muster_testkit::muster_store::orgs::by_slug(&t.app.db, "acme");
    // Several connections open, then all idle.
    for r in futures::future::join_all((0..6).map(|_| read())).await {
        assert!(r.unwrap().is_some());
    }
    let others = "SELECT COUNT(*) FROM pg_stat_activity \
                  WHERE datname = current_database() AND pid <> pg_backend_pid()";
    assert!(
        t.scalar(others).await >= 2,
        "the pool holds several connections"
    );
    close_connections_then_idle(&t).await;
    for _ in 0..12 {
        let org = read().await.expect("a live connection, not a closed one");
        assert!(org.is_some());
    }
}

/// The connections held out of the pool for sign-ins' statements
/// (`lanes.rs`) are checked the same way: after PostgreSQL closed them while
/// idle, the next sign-ins get live connections, not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sign_in_lanes_closed_while_idle_are_replaced_before_use() {
    use crate::signin::{PW, login, signed_up};
    use axum::http::StatusCode;
    use muster_testkit::smtp::SmtpSink;
    let Some(t) = TestApp::postgres(module_path!()).await else {
        return;
    };
    let sink = SmtpSink::start().await;
    signed_up(&t, &sink, "ann@example.com").await;
    // Both lanes in use once (each sign-in runs two statements).
    let (s, b) = login(&t, "ann@example.com", PW).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    close_connections_then_idle(&t).await;
    for _ in 0..6 {
        let (s, b) = login(&t, "ann@example.com", PW).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "a live connection, not a closed one: {b}"
        );
        assert!(b["session_token"].as_str().is_some(), "{b}");
    }
}
