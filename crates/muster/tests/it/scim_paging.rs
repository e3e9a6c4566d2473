//! SCIM at volume: `startIndex` pages (read backwards past the middle) agree
//! with cursor order at every position; `totalResults` (kept by trigger;
//! on PostgreSQL a folded base plus appended changes) follows creations, IdP
//! deletions, re-provisioning and hard deletes, before and after each fold and
//! with folds racing the writes; and
//! concurrent creations, written together (group commit), each get
//! the outcome they would have had alone.

use crate::scim::{new_user, scim, scim_token};
use crate::*;
use serde_json::Value;

fn ids(v: &Value) -> Vec<String> {
    v["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every user SCIM sees, in id order, by cursor.
async fn all_by_cursor(t: &TestApp, tok: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, _, v) = scim(
            t,
            "GET",
            &format!("/Users?count=3&cursor={cursor}"),
            tok,
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert!(v["totalResults"].as_u64().unwrap() as usize >= out.len());
        out.extend(ids(&v));
        match v["nextCursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => return out,
        }
    }
}

/// Checks every (startIndex, count) window against the cursor order.
async fn assert_pages_agree(t: &TestApp, tok: &str, order: &[String]) {
    let n = order.len();
    for start in 1..=n + 2 {
        for count in 1..=4 {
            let (s, _, v) = scim(
                t,
                "GET",
                &format!("/Users?startIndex={start}&count={count}"),
                tok,
                None,
                &[],
            )
            .await;
            assert_eq!(s, 200, "{v}");
            let from = (start - 1).min(n);
            let to = (from + count).min(n);
            assert_eq!(
                ids(&v),
                order[from..to].to_vec(),
                "startIndex={start} count={count}"
            );
            assert_eq!(v["totalResults"], n, "startIndex={start} count={count}");
            assert_eq!(v["itemsPerPage"], to - from);
            assert_eq!(v["startIndex"], start);
        }
    }
}

/// Folds PostgreSQL's appended count changes (what the server does every few
/// seconds); answers whether anything was folded. SQLite has nothing to fold.
async fn fold(t: &TestApp) -> bool {
    let folded = muster_testkit::muster_app::scim::fold_counts(&t.app.db)
        .await
        .unwrap();
    if t.app.db.backend() == muster_testkit::muster_app::Backend::Sqlite {
        assert_eq!(folded, 0);
    }
    folded > 0
}

async fn total(t: &TestApp, tok: &str) -> Value {
    let (s, _, v) = scim(t, "GET", "/Users?count=0", tok, None, &[]).await;
    assert_eq!(s, 200, "{v}");
    v["totalResults"].clone()
}

async fn start_index_pages_match_cursor_order_and_totals_follow_the_lifecycle(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    // Another organization's users count nowhere here.
    let other = t.org_with_owner("globex").await;
    let other_tok = scim_token(&t, &other, "globex").await;
    new_user(&t, &other_tok, "stranger", json!({})).await;
    let mut made = Vec::new();
    for i in 0..7 {
        let v = new_user(
            &t,
            &tok,
            &format!("u{i}"),
            json!({"externalId": format!("X{i}")}),
        )
        .await;
        made.push(v["id"].as_str().unwrap().to_owned());
    }
    let order = all_by_cursor(&t, &tok).await;
    assert_eq!(order.len(), 8, "the owner and seven users");
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "cursor pages are in id order");
    assert_pages_agree(&t, &tok, &order).await;
    // Folded, the total is the same; a second fold finds nothing.
    let postgres = fold(&t).await;
    assert_eq!(
        postgres,
        t.app.db.backend() == muster_testkit::muster_app::Backend::Postgres
    );
    assert!(!fold(&t).await);
    assert_pages_agree(&t, &tok, &order).await;

    // The IdP deletes a user (the default policy keeps the account): it leaves
    // every page and the total; the same externalId brings it back.
    let gone = made[3].clone();
    let (s, _, _) = scim(&t, "DELETE", &format!("/Users/{gone}"), &tok, None, &[]).await;
    assert_eq!(s, 204);
    let order = all_by_cursor(&t, &tok).await;
    assert_eq!(order.len(), 7);
    assert!(!order.contains(&gone));
    assert_pages_agree(&t, &tok, &order).await;
    let back = new_user(&t, &tok, "u3", json!({"externalId": "X3"})).await;
    assert_eq!(back["id"], gone.as_str());
    assert_eq!(total(&t, &tok).await, 8);
    assert_eq!(fold(&t).await, postgres, "the hide and show were appended");
    assert_eq!(total(&t, &tok).await, 8);

    // Deleted for good under the "delete" policy: the total follows too.
    let (s, _) = t
        .call(
            "PUT",
            "/api/v1/orgs/acme/scim-policy",
            Some(&admin),
            Some(json!({"delete": "delete"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _, _) = scim(
        &t,
        "DELETE",
        &format!("/Users/{}", made[0]),
        &tok,
        None,
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let order = all_by_cursor(&t, &tok).await;
    assert_eq!(order.len(), 7);
    assert_pages_agree(&t, &tok, &order).await;
    fold(&t).await;
    assert_eq!(total(&t, &tok).await, 7);
    assert_eq!(
        total(&t, &other_tok).await,
        2,
        "the other organization: its owner and one user"
    );
}
both!(start_index_pages_match_cursor_order_and_totals_follow_the_lifecycle);

async fn concurrent_creations_each_get_their_own_outcome(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let tok = scim_token(&t, &admin, "acme").await;
    // 24 at once; "dup-0".."dup-3" are each sent three times.
    let names: Vec<String> = (0..12)
        .map(|i| format!("solo-{i}"))
        .chain((0..12).map(|i| format!("dup-{}", i % 4)))
        .collect();
    let calls = names.iter().map(|n| {
        let body = json!({"userName": n, "emails": [{"value": format!("{n}@example.com")}]});
        let (t, tok) = (&t, &tok);
        async move { scim(t, "POST", "/Users", tok, Some(body), &[]).await }
    });
    // Folds race the creations (two instances may fold at once): no change
    // is lost or counted twice.
    let folds = async {
        for _ in 0..6 {
            futures::future::join(fold(&t), fold(&t)).await;
            tokio::task::yield_now().await;
        }
    };
    let (results, ()) = futures::future::join(futures::future::join_all(calls), folds).await;
    let mut created = 0;
    for (n, (s, _, v)) in names.iter().zip(&results) {
        match s.as_u16() {
            201 => created += 1,
            409 => {
                assert!(n.starts_with("dup-"), "{n}: {v}");
                assert_eq!(v["scimType"], "uniqueness");
            }
            other => panic!("{n}: {other} {v}"),
        }
    }
    assert_eq!(created, 12 + 4, "every distinct user exactly once");
    assert_eq!(total(&t, &tok).await, 1 + 16);
    fold(&t).await;
    assert_eq!(total(&t, &tok).await, 1 + 16);
    for i in 0..4 {
        let q = format!("/Users?filter=userName%20eq%20%22dup-{i}%22");
        let (_, _, v) = scim(&t, "GET", &q, &tok, None, &[]).await;
        assert_eq!(v["totalResults"], 1, "{v}");
        let id = v["Resources"][0]["id"].as_str().unwrap();
        let (_, ev) = t
            .call(
                "GET",
                &format!("/api/v1/orgs/acme/audit-events?target={id}&action=user.created"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(ev["items"].as_array().map(Vec::len), Some(1), "{ev}");
    }
}
both!(concurrent_creations_each_get_their_own_outcome);
