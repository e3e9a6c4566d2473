//! Several `muster serve` processes on one PostgreSQL database behave as one
//! (issue 6 §2): a token revoked through one is refused by the other on its
//! very next request; a role removed through one is enforced by the other;
//! a session the other answers from its cache follows changes made through
//! the first once PostgreSQL's announcement arrives; lockout counts are shared. The test prints how long revocation took to be
//! seen by the other instance (BENCHMARKS.md quotes it); it asserts only
//! behaviour, never a timing.

use crate::*;
use serde_json::Value;
use std::process::{Child, Command, Stdio};

pub(crate) struct Instance {
    pub(crate) child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `muster serve` on the test's database and data directory (its
/// server key), without waiting for it to answer.
pub(crate) fn spawn(t: &TestApp) -> Instance {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_muster"))
        .arg("serve")
        .env("MUSTER_DATABASE_URL", &t.url)
        .env("MUSTER_DATA_DIR", &t.data_dir)
        .env("MUSTER_LISTEN", format!("127.0.0.1:{port}"))
        .env("MUSTER_LOG", "warn")
        .env_remove("MUSTER_CONFIG")
        .env_remove("MUSTER_SMTP_URL")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Instance {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// `spawn`, then waits until it answers `/readyz`.
async fn start(t: &TestApp) -> Instance {
    let inst = spawn(t);
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{}/readyz", inst.base))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return inst;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("instance at {} never became ready", inst.base);
}

async fn call(
    c: &reqwest::Client,
    i: &Instance,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c
        .request(method.parse().unwrap(), format!("{}{path}", i.base))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn two_instances_on_one_postgres_behave_as_one(t: TestApp) {
    let admin = t.org_with_owner("acme").await;
    let (a, b) = (start(&t).await, start(&t).await);
    let c = reqwest::Client::new();

    // Revocation: a token revoked through A is refused by B at once.
    const ROUNDS: usize = 200;
    let mut seen_ms = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let (s, tok) = call(
            &c,
            &a,
            "POST",
            "/api/v1/orgs/acme/api-tokens",
            &admin,
            Some(json!({"name": format!("t{i}")})),
        )
        .await;
        assert_eq!(s, 201, "{tok}");
        let secret = tok["secret"].as_str().unwrap();
        assert_eq!(call(&c, &b, "GET", "/api/v1/me", secret, None).await.0, 200);
        let (s, _) = call(
            &c,
            &a,
            "DELETE",
            &format!(
                "/api/v1/orgs/acme/api-tokens/{}",
                tok["id"].as_str().unwrap()
            ),
            &admin,
            None,
        )
        .await;
        assert_eq!(s, 204);
        let revoked = std::time::Instant::now();
        // The very next request through B is refused.
        assert_eq!(
            call(&c, &b, "GET", "/api/v1/me", secret, None).await.0,
            401,
            "round {i}"
        );
        seen_ms.push(revoked.elapsed().as_secs_f64() * 1000.0);
    }
    report("API token revocation", &mut seen_ms);

    // A role removed through A is enforced by B on the next request.
    let (uid, user_tok) = t
        .user_with_token("acme", "rae@acme.example", &["member"])
        .await;
    let (s, grant) = call(
        &c,
        &a,
        "POST",
        "/api/v1/orgs/acme/role-assignments",
        &admin,
        Some(json!({"role": "admin", "user_id": uid})),
    )
    .await;
    assert_eq!(s, 201, "{grant}");
    assert_eq!(
        call(&c, &b, "GET", "/api/v1/orgs/acme/users", &user_tok, None)
            .await
            .0,
        200
    );
    let (s, _) = call(
        &c,
        &a,
        "DELETE",
        &format!(
            "/api/v1/orgs/acme/role-assignments/{}",
            grant["id"].as_str().unwrap()
        ),
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        call(&c, &b, "GET", "/api/v1/orgs/acme/users", &user_tok, None)
            .await
            .0,
        403
    );

    // A creation through B, which read the token before, is checked by its
    // own write (`muster_app::caller::Unconfirmed`): a role removed through
    // A refuses it all the same, and nothing is written.
    let users = "/api/v1/orgs/acme/users";
    let (s, grant) = call(
        &c,
        &a,
        "POST",
        "/api/v1/orgs/acme/role-assignments",
        &admin,
        Some(json!({"role": "admin", "user_id": uid})),
    )
    .await;
    assert_eq!(s, 201, "{grant}");
    for i in 0..3 {
        let body = json!({ "email": format!("made{i}@acme.example") });
        let (s, v) = call(&c, &b, "POST", users, &user_tok, Some(body)).await;
        assert_eq!(s, 201, "{v}");
    }
    let refused = "muster_api_token_unconfirmed_refused_total";
    let before = counter(&c, &b, refused).await;
    let grant = format!(
        "/api/v1/orgs/acme/role-assignments/{}",
        grant["id"].as_str().unwrap()
    );
    assert_eq!(call(&c, &a, "DELETE", &grant, &admin, None).await.0, 204);
    let body = json!({"email": "late@acme.example"});
    let (s, v) = call(&c, &b, "POST", users, &user_tok, Some(body)).await;
    assert_eq!(s, 403, "{v}");
    let late = "SELECT COUNT(*) FROM users WHERE email = 'late@acme.example'";
    assert_eq!(t.scalar(late).await, 0);
    assert_eq!(counter(&c, &b, refused).await, before + 1.0);

    // Sessions: B answers a busy session from its cache, and hears A's
    // changes through PostgreSQL. Each round grants and removes a role through
    // A, then asks B until its answer follows; the times are printed.
    let (sam, _) = t
        .user_with_token("acme", "sam@acme.example", &["member"])
        .await;
    let creds = json!({"email": "sam@acme.example", "password": "Str0ng!pass", "org": "acme"});
    let (s, v) = call(&c, &a, "POST", "/api/v1/auth/login", "", Some(creds)).await;
    assert_eq!(s, 200, "{v}");
    let session = v["session_token"].as_str().unwrap().to_owned();
    let mut heard_ms = Vec::with_capacity(2 * SESSION_ROUNDS);
    for i in 0..SESSION_ROUNDS {
        // Warm: B answers the session from its cache between changes.
        for _ in 0..3 {
            assert_eq!(call(&c, &b, "GET", users, &session, None).await.0, 403);
        }
        let grant = json!({"role": "admin", "user_id": sam});
        let (s, g) = call(
            &c,
            &a,
            "POST",
            "/api/v1/orgs/acme/role-assignments",
            &admin,
            Some(grant),
        )
        .await;
        assert_eq!(s, 201, "{g}");
        heard_ms.push(until(&c, &b, &session, 200, i).await);
        let path = format!(
            "/api/v1/orgs/acme/role-assignments/{}",
            g["id"].as_str().unwrap()
        );
        assert_eq!(call(&c, &a, "DELETE", &path, &admin, None).await.0, 204);
        heard_ms.push(until(&c, &b, &session, 403, i).await);
    }
    // Signed out through A: B refuses the session.
    let (s, _) = call(&c, &a, "POST", "/api/v1/auth/logout", &session, None).await;
    assert_eq!(s, 204);
    heard_ms.push(until(&c, &b, &session, 401, SESSION_ROUNDS).await);
    // B did answer from its cache (so the times above are a cache following
    // A's changes, not a database read per request).
    let hits = counter(&c, &b, "muster_session_cache_hits_total").await;
    assert!(
        hits >= SESSION_ROUNDS as f64,
        "B answered {hits} requests from its cache"
    );
    report("session change", &mut heard_ms);

    // SCIM tokens: B answers a busy IdP's token from its cache, and hears
    // A's revocation through PostgreSQL (within a second, like a session).
    let mut scim_ms = Vec::with_capacity(SCIM_ROUNDS);
    for i in 0..SCIM_ROUNDS {
        let (s, tok) = call(
            &c,
            &a,
            "POST",
            "/api/v1/orgs/acme/scim-tokens",
            &admin,
            Some(json!({"name": format!("IdP {i}")})),
        )
        .await;
        assert_eq!(s, 201, "{tok}");
        let secret = tok["secret"].as_str().unwrap();
        for _ in 0..3 {
            assert_eq!(
                call(&c, &b, "GET", "/scim/v2/Users", secret, None).await.0,
                200
            );
        }
        let path = format!(
            "/api/v1/orgs/acme/scim-tokens/{}",
            tok["id"].as_str().unwrap()
        );
        assert_eq!(call(&c, &a, "DELETE", &path, &admin, None).await.0, 204);
        let revoked = std::time::Instant::now();
        loop {
            let (s, _) = call(&c, &b, "GET", "/scim/v2/Users", secret, None).await;
            if s == 401 {
                break;
            }
            assert_eq!(s, 200, "round {i}");
            assert!(
                revoked.elapsed() < std::time::Duration::from_secs(10),
                "round {i}: the other instance still accepts a revoked SCIM token"
            );
        }
        scim_ms.push(revoked.elapsed().as_secs_f64() * 1000.0);
    }
    let hits = counter(&c, &b, "muster_scim_token_cache_hits_total").await;
    assert!(
        hits >= SCIM_ROUNDS as f64,
        "B answered {hits} SCIM requests from its cache"
    );
    report("SCIM token revocation", &mut scim_ms);

    // Lockout counts are shared: failures spread over both lock the account.
    let policy = json!({"delay_after": 4, "lock_after": 4, "cooldown_minutes": 15});
    let (s, v) = call(
        &c,
        &a,
        "PUT",
        "/api/v1/orgs/acme/lockout-policy",
        &admin,
        Some(policy),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for i in 0..4 {
        let inst = if i % 2 == 0 { &a } else { &b };
        let wrong = json!({"email": "rae@acme.example", "password": "wrong-Pass1!", "org": "acme"});
        let (s, v) = call(&c, inst, "POST", "/api/v1/auth/login", "", Some(wrong)).await;
        assert_eq!(s, 401, "failure {i}: {v}");
    }
    let (_, u) = call(
        &c,
        &b,
        "GET",
        &format!("/api/v1/orgs/acme/users/{uid}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        u["state"], "locked",
        "four failures across two instances lock the account"
    );
}

const SESSION_ROUNDS: usize = 100;

/// A counter of `instance`'s `/metrics` (0 when absent).
async fn counter(c: &reqwest::Client, instance: &Instance, name: &str) -> f64 {
    let metrics = c
        .get(format!("{}/metrics", instance.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Prints the median, p99 and maximum of `ms` (never a timing assertion).
fn report(what: &str, ms: &mut [f64]) {
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    eprintln!(
        "{what} seen by the other instance ({} changes): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
const SCIM_ROUNDS: usize = 100;

/// Asks B for the users list with `session` until it answers `want` (at most
/// ten seconds; never a timing assertion): milliseconds until it did.
async fn until(c: &reqwest::Client, b: &Instance, session: &str, want: u16, round: usize) -> f64 {
    let start = std::time::Instant::now();
    loop {
        let (s, _) = call(c, b, "GET", "/api/v1/orgs/acme/users", session, None).await;
        if s == want {
            return start.elapsed().as_secs_f64() * 1000.0;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "round {round}: the other instance still answers {s}, not {want}"
        );
    }
}

/// PostgreSQL only: several instances are what it is for.
mod two_instances_on_one_postgres_behave_as_one {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(t) = muster_testkit::TestApp::postgres(module_path!()).await {
            super::two_instances_on_one_postgres_behave_as_one(t).await
        }
    }
}
