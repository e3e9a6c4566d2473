//! Audit retention (issue 6 §5): old events archived to a file, pruned only
//! under a signed checkpoint, and `muster audit verify` proving the chain
//! left in the database and the archives.

use crate::cli::muster;
use crate::*;
use muster_testkit::muster_app::Caller;
use muster_testkit::muster_app::retention::archive;
use serde_json::Value;
use time::Duration;

async fn users(t: &TestApp, admin: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let (s, v) = t
            .call(
                "POST",
                "/api/v1/orgs/acme/users",
                Some(admin),
                Some(json!({"email": format!("{prefix}{i}@acme.example")})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
}

async fn events_in_db(t: &TestApp) -> i64 {
    t.scalar(
        "SELECT COUNT(*) FROM audit_events e JOIN orgs o ON o.id = e.org_id WHERE o.slug = 'acme'",
    )
    .await
}

fn verify_cli(t: &TestApp, archives: &[&std::path::Path]) -> (bool, String) {
    let mut args = vec!["audit", "verify", "--org", "acme"];
    for a in archives {
        args.extend(["--archive", a.to_str().unwrap()]);
    }
    let out = muster(t, &args, None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn old_events_are_archived_under_a_signed_checkpoint_and_all_still_verifies(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    // An endpoint that never gets its messages (nothing dispatches here).
    let (s, _) = t
        .call(
            "POST",
            "/api/v1/orgs/acme/webhooks",
            Some(&admin),
            Some(json!({"url": "http://127.0.0.1:9/never", "event_types": ["user.*"]})),
        )
        .await;
    assert_eq!(s, 201);
    users(&t, &admin, "old", 4).await;
    let dir = t.data_dir.join("archive");
    let op = Caller::operator("test");

    // No policy, nothing archived; a retention below 30 days is refused.
    assert!(archive(&t.app, &op, "acme", &dir).await.unwrap().is_none());
    let (s, v) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/audit-retention",
            Some(&admin),
            Some(json!({"keep_days": 5})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/audit-retention",
            Some(&admin),
            Some(json!({"keep_days": 90})),
        )
        .await;
    assert_eq!((s.as_u16(), &v["keep_days"]), (200, &json!(90)));
    t.clock.advance(Duration::days(100));
    users(&t, &admin, "new", 2).await;
    t.clock.advance(Duration::days(89));
    let before = events_in_db(&t).await;

    let first = archive(&t.app, &op, "acme", &dir)
        .await
        .unwrap()
        .expect("old events");
    assert!(first.events >= 6, "{first:?}");
    assert_eq!(first.from_seq, 1);
    assert_eq!(
        events_in_db(&t).await,
        before - first.events + 1,
        "pruned; +1 for audit.archived"
    );
    let (_, page) = t
        .call(
            "GET",
            "/api/v1/orgs/acme/audit-events?limit=500",
            Some(&admin),
            None,
        )
        .await;
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(!actions.contains(&"org.created"), "{actions:?}");
    assert!(actions.contains(&"audit.archived"), "{actions:?}");
    let text = std::fs::read_to_string(&first.file).unwrap();
    assert!(
        text.lines().count() as i64 == first.events + 2,
        "header, links, checkpoint"
    );
    assert!(text.contains("\"org.created\""));

    let (ok, out) = verify_cli(&t, &[&first.file]);
    assert!(ok, "{out}");
    // The old events' undelivered messages are closed, saying why.
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'failed' AND last_error LIKE '%archived%'")
            .await,
        4
    );
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")
            .await,
        2,
        "the two newer users' messages still wait"
    );
    assert!(
        out.contains("chain intact") && out.contains("checkpoint signed"),
        "{out}"
    );

    // Still append-only for everything a checkpoint does not cover.
    let kept = t
        .scalar("SELECT COUNT(*) FROM audit_chain c JOIN orgs o ON o.id = c.org_id WHERE o.slug = 'acme'")
        .await;
    let e = t.try_raw("DELETE FROM audit_events").await.unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    assert!(t.try_raw("DELETE FROM audit_chain").await.is_err());
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM audit_chain c JOIN orgs o ON o.id = c.org_id WHERE o.slug = 'acme'").await,
        kept
    );

    // A second archive continues the first; together, or each alone with
    // the database, they prove the whole history.
    t.clock.advance(Duration::days(10));
    let second = archive(&t.app, &op, "acme", &dir)
        .await
        .unwrap()
        .expect("newer events");
    assert_eq!(second.from_seq, first.to_seq + 1);
    for set in [
        vec![first.file.as_path(), second.file.as_path()],
        vec![second.file.as_path()],
    ] {
        let (ok, out) = verify_cli(&t, &set);
        assert!(ok, "{out}");
    }
    // Giving the second without the first as if it began the chain is no proof.
    let copy = dir.join("copy.jsonl");
    let doctored = std::fs::read_to_string(&second.file).unwrap().replacen(
        &format!("\"from_seq\":{}", second.from_seq),
        "\"from_seq\":1",
        1,
    );
    std::fs::write(&copy, doctored).unwrap();
    let (ok, out) = verify_cli(&t, &[&copy]);
    assert!(!ok && out.contains("ARCHIVE BROKEN"), "{out}");

    // An edited archive line is found and named.
    let line = text.lines().nth(2).unwrap();
    let mut victim: Value = serde_json::from_str(line).unwrap();
    let id = victim["event"]["id"].as_str().unwrap().to_owned();
    victim["event"]["actor_label"] = json!("mallory");
    let edited = text.replacen(line, &victim.to_string(), 1);
    assert_ne!(edited, text);
    std::fs::write(&first.file, edited).unwrap();
    let (ok, out) = verify_cli(&t, &[&first.file]);
    assert!(!ok && out.contains("ARCHIVE BROKEN"), "{out}");
    assert!(out.contains("modified") && out.contains(&id), "{out}");
}
both!(old_events_are_archived_under_a_signed_checkpoint_and_all_still_verifies);

async fn a_forged_checkpoint_or_a_broken_chain_is_caught(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    users(&t, &admin, "u", 3).await;
    let org = t
        .scalar_text("SELECT id FROM orgs WHERE slug = 'acme'")
        .await;
    let op = Caller::operator("test");
    t.app.seal_all().await.unwrap();
    // An attacker with database access writes a checkpoint to be allowed to
    // delete: the triggers let the rows go, but verify names the checkpoint.
    let hash = t
        .scalar_text(&format!(
            "SELECT hash FROM audit_chain WHERE org_id = '{org}' AND seq = 3"
        ))
        .await;
    t.raw(&format!(
        "INSERT INTO audit_checkpoints (org_id, seq, hash, from_seq, prev_hash, events, archive_name, archive_sha256, created_at, signature)
         VALUES ('{org}', 3, '{hash}', 1, 'x', 3, 'none', 'x', 1, 'abcd')"
    ))
    .await;
    t.raw(&format!(
        "DELETE FROM audit_events WHERE id IN (SELECT event_id FROM audit_chain WHERE org_id = '{org}' AND seq <= 3)"
    ))
    .await;
    let v = muster_testkit::muster_app::audit::verify(&t.app, &org, "acme")
        .await
        .unwrap();
    assert!(
        v.findings
            .iter()
            .any(|f| f.contains("checkpoint at link 3") && f.contains("not signed")),
        "{:?}",
        v.findings
    );
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/audit-retention",
            Some(&admin),
            Some(json!({"keep_days": 30})),
        )
        .await;
    assert_eq!(s, 200);
    t.clock.advance(Duration::days(40));
    let before = events_in_db(&t).await;
    let e = archive(&t.app, &op, "acme", &t.data_dir.join("a"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not verify"), "{e}");
    assert_eq!(events_in_db(&t).await, before, "nothing archived or pruned");
    assert!(
        !t.data_dir.join("a").exists()
            || std::fs::read_dir(t.data_dir.join("a")).unwrap().count() == 0
    );
}
both!(a_forged_checkpoint_or_a_broken_chain_is_caught);
