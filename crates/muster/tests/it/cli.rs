//! The binary itself: configuration errors, `--json` output, audit verify and
//! export, run as a separate process on the test's database.

use crate::*;
use std::io::Write;
use std::process::{Command, Output, Stdio};

pub fn muster(t: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_muster"));
    cmd.args(args)
        .env("MUSTER_DATABASE_URL", &t.url)
        .env("MUSTER_DATA_DIR", &t.data_dir)
        .env_remove("MUSTER_CONFIG")
        .current_dir(std::env::temp_dir());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run muster");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[test]
fn an_invalid_setting_stops_start_up_and_is_named() {
    for (var, value, needle) in [
        ("MUSTER_LISTEN", "not-an-address", "MUSTER_LISTEN"),
        ("MUSTER_PUBLIC_URL", "ftp://x", "MUSTER_PUBLIC_URL"),
        ("MUSTER_DATABASE_URL", "mysql://x", "MUSTER_DATABASE_URL"),
        ("MUSTER_LOG_FORMAT", "xml", "MUSTER_LOG_FORMAT"),
        // A client id without its secret, or an issuer Muster would not call.
        ("MUSTER_GOOGLE_CLIENT_ID", "abc", "MUSTER_GOOGLE_CLIENT_ID"),
        (
            "MUSTER_GOOGLE_ISSUER",
            "http://idp.example.com",
            "MUSTER_GOOGLE_ISSUER",
        ),
        (
            "MUSTER_TRUSTED_PROXIES",
            "10.0.0.0/8, proxy.internal",
            "MUSTER_TRUSTED_PROXIES",
        ),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_muster"));
        if var == "MUSTER_GOOGLE_ISSUER" {
            cmd.env("MUSTER_GOOGLE_CLIENT_ID", "abc")
                .env("MUSTER_GOOGLE_CLIENT_SECRET", "shh");
        }
        let out = cmd
            .arg("migrate")
            .env(var, value)
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle) && err.contains("invalid configuration"),
            "{var}: {err}"
        );
    }
}

#[test]
fn flags_override_the_environment_which_overrides_the_file() {
    let dir = std::env::temp_dir().join(format!("muster-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("muster.toml"), "listen = \"bogus-from-file\"\n").unwrap();
    let run = |env: Option<&str>, flag: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_muster"));
        c.current_dir(&dir)
            .env_remove("MUSTER_LISTEN")
            .env("MUSTER_DATABASE_URL", "sqlite://cfg.db")
            .arg("migrate");
        if let Some(e) = env {
            c.env("MUSTER_LISTEN", e);
        }
        if let Some(f) = flag {
            c.args(["--listen", f]);
        }
        c.output().unwrap()
    };
    let out = run(None, None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bogus-from-file"),
        "the file is read"
    );
    assert!(
        run(Some("127.0.0.1:9"), None).status.success(),
        "the environment overrides the file"
    );
    let out = run(Some("127.0.0.1:9"), Some("bad-flag"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad-flag"),
        "the flag overrides the environment"
    );
    std::fs::write(dir.join("muster.toml"), "lisen = \"typo\"\n").unwrap();
    let out = run(Some("127.0.0.1:9"), None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("lisen"),
        "unknown keys are named"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn the_cli_provisions_and_verifies(t: TestApp) {
    let out = muster(
        &t,
        &[
            "org", "create", "--slug", "acme", "--name", "Acme", "--json",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let org: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(org["slug"], "acme");
    let out = muster(
        &t,
        &[
            "user",
            "create",
            "--org",
            "acme",
            "--email",
            "o@acme.example",
            "--role",
            "owner",
            "--password-stdin",
            "--json",
        ],
        Some("Str0ng!pass\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (user["state"].as_str(), user["has_password"].as_bool()),
        (Some("active"), Some(true))
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Str0ng"));
    let out = muster(
        &t,
        &[
            "api-token",
            "create",
            "--org",
            "acme",
            "--email",
            "o@acme.example",
            "--name",
            "ops",
            "--json",
        ],
        None,
    );
    let tok: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = tok["secret"].as_str().unwrap();
    assert_eq!(
        t.call("GET", "/api/v1/orgs/acme/users", Some(secret), None)
            .await
            .0,
        200
    );
    // A second organization with the same slug is refused, clearly.
    let out = muster(
        &t,
        &["org", "create", "--slug", "acme", "--name", "Again"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));

    let out = muster(&t, &["audit", "verify", "--org", "acme"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = muster(&t, &["audit", "export", "--org", "acme"], None);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["org.created", "user.created", "api_token.created"]
    );
    assert!(lines.iter().all(|e| e["seq"].is_i64()));
    let out = muster(
        &t,
        &["audit", "export", "--org", "acme", "--format", "csv"],
        None,
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("seq,id,occurred_at,occurred_at_local"));
    assert_eq!(csv.lines().count(), 4);
    // The filters select exactly what the API would show.
    let out = muster(
        &t,
        &[
            "audit", "export", "--org", "acme", "--action", "user.", "--format", "csv",
        ],
        None,
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(
        csv.lines().nth(1).unwrap().contains(",user.created,"),
        "{csv}"
    );
    let out = muster(
        &t,
        &[
            "audit",
            "export",
            "--org",
            "acme",
            "--until",
            "2000-01-01T00:00:00Z",
        ],
        None,
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 0);
    let out = muster(
        &t,
        &["audit", "export", "--org", "acme", "--since", "yesterday"],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));

    // Tamper, and the CLI says so with a non-zero exit.
    match t.backend() {
        muster_testkit::muster_app::Backend::Sqlite => {
            t.raw("DROP TRIGGER audit_events_no_update").await
        }
        muster_testkit::muster_app::Backend::Postgres => {
            t.raw("ALTER TABLE audit_events DISABLE TRIGGER USER").await
        }
    }
    let victim = lines[1]["id"].as_str().unwrap();
    t.raw(&format!(
        "UPDATE audit_events SET actor_label = 'someone else' WHERE id = '{victim}'"
    ))
    .await;
    let out = muster(&t, &["audit", "verify", "--org", "acme"], None);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CHAIN BROKEN") && text.contains(victim),
        "{text}"
    );
}
both!(the_cli_provisions_and_verifies);

/// The real server on a real socket: it says where it listens, answers, and on
/// SIGTERM finishes cleanly with status 0.
async fn serve_starts_answers_and_stops_on_sigterm(t: TestApp) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_muster"))
        .arg("serve")
        .env("MUSTER_DATABASE_URL", &t.url)
        .env("MUSTER_DATA_DIR", &t.data_dir)
        .env("MUSTER_LISTEN", format!("127.0.0.1:{port}"))
        .env("MUSTER_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "the server never became ready");
    let r = client
        .get(format!("{base}/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Two creations, the second (on PostgreSQL) from the token read for the
    // first, checked by its write: the writer then holds a connection of its
    // own, which must not hold up closing the pool.
    let owner = t.org_with_owner("acme").await;
    for i in 0..2 {
        let r = client
            .post(format!("{base}/api/v1/orgs/acme/users"))
            .bearer_auth(&owner)
            .json(&json!({ "email": format!("u{i}@acme.example") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut waited = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            waited < 100,
            "the server did not stop within 10 s of SIGTERM"
        );
        waited += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(
        out.contains(&format!("Muster listening on http://127.0.0.1:{port}")),
        "{out}"
    );
    assert!(
        out.contains("muster org create"),
        "start-up says how to begin: {out}"
    );
}
both!(serve_starts_answers_and_stops_on_sigterm);
