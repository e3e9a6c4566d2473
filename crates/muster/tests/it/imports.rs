//! `muster import` and `muster export`, run as the binary on the test's
//! database: what is written, what is refused (and that a refusal writes
//! nothing), idempotence, resuming after a stop, and the lossless round trip.

use crate::cli::muster;
use crate::*;
use muster_testkit::muster_app::imports::{self, ImportOptions, Phase, Progress, RowError};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::AtomicBool;

both!(
    import_creates_then_a_second_run_changes_nothing,
    bad_rows_are_reported_by_number_and_never_written,
    faults_of_the_whole_file_are_refused_before_anything_is_written,
    export_then_import_is_lossless_in_both_formats,
    a_stopped_import_continues_after_its_last_batch,
    an_import_never_touches_another_organization_or_an_idp_managed_user,
    invited_users_get_their_invitation_over_a_real_smtp_conversation,
    without_smtp_invitations_land_in_the_outbox_folder_and_a_failed_send_waits,
    ctrl_c_stops_the_cli_after_its_batch_and_the_next_run_finishes,
);

#[test]
fn the_invitation_email_reads_as_reviewed() {
    // Rendered emails are contracts (CONVENTIONS rule 12): a change shows here.
    let e = muster_testkit::muster_app::mail::invitation_email(
        "ann@acme.example",
        "Acme Inc.",
        "https://id.acme.example/",
        "SECRET-FROM-THE-TEST",
        1_796_212_800_000,
    );
    insta::assert_snapshot!(
        "invitation_email",
        format!("To: {}\nSubject: {}\n\n{}", e.to, e.subject, e.text)
    );
}

fn file(name: &str, body: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("muster-imp-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn run(t: &TestApp, args: &[&str]) -> (Output, String, String) {
    let out = muster(t, args, None);
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, so, se)
}

async fn users(t: &TestApp, slug: &str) -> i64 {
    t.scalar(&format!(
        "SELECT COUNT(*) FROM users u JOIN orgs o ON o.id = u.org_id WHERE o.slug = '{slug}'"
    ))
    .await
}

const PEOPLE: &str = "\
Email,First Name,Last Name,Job Title,Department,Manager,Shoe Size,externalId,roles
ann@acme.example,Ann,Lee,CEO,Exec,,42,E1,admin
bob@acme.example,Bob,Ray,Engineer,R&D,dee@acme.example,44,E2,
dee@acme.example,Dee,Pine,CTO,R&D,ann@acme.example,38,E3,member;auditor
";

async fn import_creates_then_a_second_run_changes_nothing(t: TestApp) {
    t.org_with_owner("acme").await;
    let f = file("people.csv", PEOPLE.as_bytes());
    let path = f.to_str().unwrap();
    let args = [
        "import",
        "--org",
        "acme",
        path,
        "--map",
        "shoe size=custom.shoe_size",
    ];
    let (out, so, se) = run(&t, &args);
    assert!(out.status.success(), "{so}{se}");
    assert!(
        so.contains("3 created, 0 updated, 0 unchanged, 0 failed"),
        "{so}"
    );
    assert!(
        se.contains("checking") && se.contains("writing"),
        "progress lines: {se}"
    );

    let (o, _, _) = run(&t, &["export", "--org", "acme", "--format", "jsonl"]);
    let docs: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by = |email: &str| {
        docs.iter()
            .find(|d| d[imports::MUSTER]["email"] == email)
            .unwrap_or_else(|| panic!("{email} exported"))
            .clone()
    };
    let bob = by("bob@acme.example");
    assert_eq!(bob["name"]["givenName"], "Bob");
    assert_eq!(bob["title"], "Engineer");
    assert_eq!(bob[imports::MUSTER]["customAttributes"]["shoe_size"], "44");
    assert_eq!(bob[imports::MUSTER]["state"], "provisioned");
    assert_eq!(bob[imports::MUSTER]["source"], "import");
    // Bob's manager comes later in the file than Bob: set once it exists.
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    assert_eq!(bob[ent]["manager"]["value"], "dee@acme.example");
    assert_eq!(
        bob[imports::MUSTER]["roles"],
        json!(["member"]),
        "the default role"
    );
    assert_eq!(
        by("dee@acme.example")[imports::MUSTER]["roles"],
        json!(["auditor", "member"])
    );
    assert_eq!(
        by("ann@acme.example")[imports::MUSTER]["roles"],
        json!(["admin"])
    );

    // One audit event per user, naming the import, its line and the operator.
    let (o, _, _) = run(&t, &["audit", "export", "--org", "acme"]);
    let created: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "user.created" && e["changes"]["source"] == "import")
        .collect();
    assert_eq!(created.len(), 3);
    for e in &created {
        assert_eq!(e["actor_kind"], "cli");
        assert!(e["actor_label"].as_str().unwrap().starts_with("cli:"));
        assert_eq!(e["changes"]["import"]["run"]["file"], "people.csv");
        assert!(e["changes"]["import"]["line"].as_i64().unwrap() >= 2);
    }

    // The same file again: nothing written, and it says so.
    let before = t.fingerprint().await;
    let (out, so, _) = run(&t, &args);
    assert!(out.status.success(), "{so}");
    assert!(
        so.contains("0 created, 0 updated, 3 unchanged, 0 failed"),
        "{so}"
    );
    assert!(so.contains("nothing to change"), "{so}");
    assert_eq!(t.fingerprint().await, before);

    // A changed cell updates that user only, and an added role is granted.
    let edited = PEOPLE
        .replace("Engineer,R&D", "Staff Engineer,R&D")
        .replace("E3,member;auditor", "E3,member;auditor;admin");
    let f2 = file("people.csv", edited.as_bytes());
    let args2 = [
        "import",
        "--org",
        "acme",
        f2.to_str().unwrap(),
        "--map",
        "Shoe Size=custom.shoe_size",
    ];
    let (out, so, _) = run(&t, &args2);
    assert!(out.status.success(), "{so}");
    assert!(so.contains("0 created, 2 updated, 1 unchanged"), "{so}");
    let n = t
        .scalar("SELECT COUNT(*) FROM users WHERE email = 'bob@acme.example' AND profile LIKE '%\"Staff Engineer\"%'")
        .await;
    assert_eq!(n, 1);
    let n = t
        .scalar(
            "SELECT COUNT(*) FROM role_assignments a JOIN users u ON u.id = a.user_id \
             WHERE u.email = 'dee@acme.example'",
        )
        .await;
    assert_eq!(n, 3);
    let (out, _, _) = run(&t, &["audit", "verify", "--org", "acme"]);
    assert!(out.status.success());
}

async fn bad_rows_are_reported_by_number_and_never_written(t: TestApp) {
    t.org_with_owner("acme").await;
    let long = "x".repeat(300);
    let mut body = format!(
        "email,givenName,title,externalId\n\
         ok1@acme.example,Ok,One,K1\n\
         not-an-email,Bad,Address,K2\n\
         ok2@acme.example,Ok,{long},K3\n\
         OK1@acme.example,Dup,Licate,K4\n\
         ok3@acme.example,Ragged\n\
         ok4@acme.example,Ok,Four,K1\n"
    )
    .into_bytes();
    // A row in Windows-1252 ("é" as one byte), as a spreadsheet may save it.
    body.extend_from_slice(b"ok5@acme.example,Ren\xe9,Five,K5\n");
    body.extend_from_slice(b"ok6@acme.example,Ok,Six,K6\n");
    let f = file("bad.csv", &body);
    let path = f.to_str().unwrap();
    let want = [
        "row 3, email: 'not-an-email' is not a valid email address",
        "row 4, title: at most 256 characters",
        "row 5, email: the same address as row 2 of this file",
        "row 6, row: has 2 fields where the header has 4",
        "row 7, externalId: the same externalId as row 2 of this file",
        "row 8, givenName: not valid UTF-8",
    ];
    let before = t.fingerprint().await;
    let (out, so, _) = run(&t, &["import", "--org", "acme", path, "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{so}");
    for w in want {
        assert!(so.contains(w), "missing '{w}' in:\n{so}");
    }
    assert!(
        so.contains("2 would be created") && so.contains("6 failed"),
        "{so}"
    );
    assert_eq!(t.fingerprint().await, before, "a dry run writes nothing");
    assert_eq!(t.scalar("SELECT COUNT(*) FROM import_runs").await, 0);

    let (out, so, _) = run(&t, &["import", "--org", "acme", path, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{so}");
    let report: Value = serde_json::from_str(so.trim()).unwrap();
    assert_eq!(report["created"], 2);
    assert_eq!(report["failed"], 6);
    let lines: Vec<i64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4, 5, 6, 7, 8]);
    assert_eq!(
        users(&t, "acme").await,
        3,
        "the owner and the two good rows"
    );
    for bad in [
        "not-an-email",
        "ok2@acme.example",
        "ok3@acme.example",
        "ok4@acme.example",
        "ok5@acme.example",
    ] {
        let n = t
            .scalar(&format!("SELECT COUNT(*) FROM users WHERE email = '{bad}'"))
            .await;
        assert_eq!(n, 0, "{bad} must not be written");
    }

    // JSON Lines: the bad line is named by its line number.
    let jl = "{\"userName\":\"j1\",\"emails\":[{\"value\":\"j1@acme.example\"}]}\n\
              {\"userName\":\"j2\",\"emails\":[{\"value\":\"j2@acme.example\"}],\"shoeSize\":44}\n\
              \n\
              {\"userName\":\"j3\",\"password\":\"Secret1!\",\"emails\":[{\"value\":\"j3@acme.example\"}]}\n\
              {not json\n";
    let f = file("users.jsonl", jl.as_bytes());
    let (out, so, _) = run(&t, &["import", "--org", "acme", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{so}");
    assert!(
        so.contains("line 2, shoeSize: unknown attribute 'shoeSize'"),
        "{so}"
    );
    assert!(
        so.contains("line 4, password: an import never carries passwords"),
        "{so}"
    );
    assert!(so.contains("line 5, line: not valid JSON"), "{so}");
    assert!(so.contains("1 created"), "{so}");
}

async fn faults_of_the_whole_file_are_refused_before_anything_is_written(t: TestApp) {
    t.org_with_owner("acme").await;
    let before = t.fingerprint().await;
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("email\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let huge = format!(
        "email,title\na@acme.example,{}\n",
        "y".repeat(2 * 1024 * 1024)
    );
    let cases: Vec<(&str, Vec<u8>, Vec<&str>, &str)> = vec![
        ("u16.csv", utf16, vec![], "UTF-16"),
        ("empty.csv", Vec::new(), vec![], "the file is empty"),
        (
            "cols.csv",
            b"email,Shoe Size\na@acme.example,42\n".to_vec(),
            vec![],
            "unknown column 'Shoe Size'",
        ),
        (
            "map.csv",
            b"email,Desk\na@acme.example,42\n".to_vec(),
            vec!["--map", "Desk=desk_number"],
            "'desk_number' is not an attribute",
        ),
        (
            "noemail.csv",
            b"givenName\nAnn\n".to_vec(),
            vec![],
            "no email column",
        ),
        (
            "huge.csv",
            huge.into_bytes(),
            vec![],
            "longer than 1024 KiB",
        ),
        (
            "role.csv",
            b"email,roles\na@acme.example,wizard\n".to_vec(),
            vec![],
            "row 2, roles: no role 'wizard' in this organization",
        ),
    ];
    for (name, body, extra, needle) in cases {
        let f = file(name, &body);
        let mut args = vec!["import", "--org", "acme", f.to_str().unwrap()];
        args.extend(extra);
        let (out, so, se) = run(&t, &args);
        assert!(!out.status.success(), "{name}");
        assert!(
            se.contains(needle) || so.contains(needle),
            "{name}: '{needle}' not in {se}{so}"
        );
        assert!(!se.contains("panicked"), "{se}");
    }
    let (out, _, se) = run(&t, &["import", "--org", "nope", "/nonexistent.csv"]);
    assert!(!out.status.success());
    assert!(se.contains("not found"), "{se}");
    assert_eq!(t.fingerprint().await, before);
}

async fn export_then_import_is_lossless_in_both_formats(t: TestApp) {
    t.org_with_owner("acme").await;
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let m = imports::MUSTER;
    let lines = [
        json!({"userName": "ann", "externalId": "E1",
               "name": {"givenName": "Ann", "familyName": "Lee", "formatted": "Dr. Ann Lee", "honorificPrefix": "Dr."},
               "displayName": "Ann", "title": "=CEO", "locale": "en-GB", "timezone": "Europe/London",
               "emails": [{"value": "ann@acme.example", "type": "work", "primary": true},
                          {"value": "ann@home.example", "type": "home"}],
               "phoneNumbers": [{"value": "+44 20 7946 0000", "type": "work"}],
               ent: {"employeeNumber": "7", "costCenter": "CC1", "department": "Exec"},
               m: {"roles": ["admin", "member"], "customAttributes": {"desk": "4F-12", "badge": 991}}}),
        json!({"userName": "bob@acme.example", "emails": [{"value": "bob@acme.example"}],
               ent: {"manager": {"value": "E1"}}, m: {"roles": []}}),
        json!({"userName": "cid", "active": false,
               m: {"email": "cid@acme.example", "customAttributes": {"note": "a, \"quoted\"\nvalue"}}}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let f = file("seed.jsonl", body.as_bytes());
    let (out, so, _) = run(&t, &["import", "--org", "acme", f.to_str().unwrap()]);
    assert!(out.status.success(), "{so}");
    // `active: false` deactivates, through the lifecycle path and its event.
    let deactivated =
        "SELECT COUNT(*) FROM users WHERE email = 'cid@acme.example' AND state = 'deactivated'";
    assert_eq!(t.scalar(deactivated).await, 1);
    let ev = t
        .scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'user.deactivate'")
        .await;
    assert_eq!(ev, 1);
    let (out, so, _) = run(&t, &["import", "--org", "acme", f.to_str().unwrap()]);
    assert!(out.status.success(), "{so}");
    assert!(so.contains("0 created, 0 updated, 3 unchanged"), "{so}");
    let strip = |text: &str, fmt: &str| -> Vec<String> {
        let mut v: Vec<String> = match fmt {
            "jsonl" => text
                .lines()
                .map(|l| {
                    let mut d: Value = serde_json::from_str(l).unwrap();
                    d.as_object_mut().unwrap().remove("id");
                    d.to_string()
                })
                .collect(),
            _ => {
                let mut r = csv_rows(text);
                r.iter_mut().for_each(|row| {
                    row.remove(0); // id
                    row.pop(); // created
                });
                r.into_iter().map(|row| row.join("\u{1f}")).collect()
            }
        };
        v.sort();
        v
    };
    for (i, fmt) in ["csv", "jsonl"].into_iter().enumerate() {
        let (o, _, _) = run(&t, &["export", "--org", "acme", "--format", fmt]);
        let first = String::from_utf8_lossy(&o.stdout).into_owned();
        let slug = format!("copy{i}");
        t.org_with_owner(&slug).await;
        let f = file(&format!("out.{fmt}"), first.as_bytes());
        let (out, so, se) = run(&t, &["import", "--org", &slug, f.to_str().unwrap()]);
        assert!(out.status.success(), "{fmt}: {so}{se}");
        // Acme's owner comes along too: four users.
        assert!(
            so.contains("4 created, 0 updated, 0 unchanged"),
            "{fmt}: {so}"
        );
        let (o, _, _) = run(&t, &["export", "--org", &slug, "--format", fmt]);
        let second = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(
            t.scalar(deactivated).await,
            2 + i as i64,
            "the copy's cid is deactivated too"
        );
        // The copy's own owner is another person with the same address
        // shape; compare the three imported users.
        let keep = |v: Vec<String>| -> Vec<String> {
            v.into_iter().filter(|l| !l.contains("owner@")).collect()
        };
        assert_eq!(keep(strip(&first, fmt)), keep(strip(&second, fmt)), "{fmt}");
        let formula = if fmt == "csv" { "'=CEO" } else { "\"=CEO\"" };
        assert!(
            first.contains(formula),
            "CSV defuses a formula, JSON keeps it: {fmt}"
        );
    }
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    // A minimal RFC 4180 reader for the assertions (quotes, doubled quotes, newlines).
    let mut rows = Vec::new();
    let (mut row, mut cell, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut cell)),
            ('\n', false) => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => cell.push(c),
        }
    }
    rows.remove(0);
    rows
}

struct Quiet(Vec<RowError>);
impl Progress for Quiet {
    fn step(&mut self, _: Phase, _: u64, _: u64, _: u64) {}
    fn refused(&mut self, e: &RowError) {
        self.0.push(e.clone());
    }
}

async fn a_stopped_import_continues_after_its_last_batch(t: TestApp) {
    t.org_with_owner("acme").await;
    let mut body = String::from("email,givenName\n");
    for i in 0..1200 {
        body.push_str(&format!("u{i}@acme.example,U{i}\n"));
    }
    let f = file("many.csv", body.as_bytes());
    let opts = ImportOptions {
        path: f.clone(),
        maps: vec![],
        dry_run: false,
        invite: false,
    };
    let op = muster_testkit::muster_app::Caller::operator("cli:test");
    // Ctrl-C before the first batch is written: the run stops after it.
    let stop = AtomicBool::new(true);
    let r = imports::run(&t.app, &op, "acme", &opts, &mut Quiet(vec![]), &stop)
        .await
        .unwrap();
    assert_eq!(r.created, 500);
    assert_eq!(
        r.stopped_after,
        Some(501),
        "rows 2..=501 are the first batch"
    );
    assert_eq!(users(&t, "acme").await, 501);
    // Run again: it says where it continues, and writes only the rest.
    let (out, so, _) = run(&t, &["import", "--org", "acme", f.to_str().unwrap()]);
    assert!(out.status.success(), "{so}");
    assert!(so.contains("700 created"), "{so}");
    assert!(
        so.contains("continued an earlier run of this file after row 501"),
        "{so}"
    );
    assert_eq!(users(&t, "acme").await, 1201);
    // Finished: a third run starts afresh and finds nothing to do.
    let (out, so, _) = run(&t, &["import", "--org", "acme", f.to_str().unwrap()]);
    assert!(out.status.success(), "{so}");
    assert!(
        so.contains("1200 unchanged") && !so.contains("continued"),
        "{so}"
    );
}

async fn an_import_never_touches_another_organization_or_an_idp_managed_user(t: TestApp) {
    t.org_with_owner("acme").await;
    t.org_with_owner("other").await;
    let f = file(
        "o.csv",
        b"email,externalId,title\nsam@other.example,S1,Boss\n",
    );
    let (out, so, _) = run(&t, &["import", "--org", "other", f.to_str().unwrap()]);
    assert!(out.status.success(), "{so}");
    // The same externalId and email in acme: a new acme user, other's untouched.
    let f = file(
        "a.csv",
        b"email,externalId,title\nsam@other.example,S1,Intern\n",
    );
    let (out, so, _) = run(&t, &["import", "--org", "acme", f.to_str().unwrap()]);
    assert!(out.status.success(), "{so}");
    assert!(so.contains("1 created"), "{so}");
    let (o, _, _) = run(&t, &["export", "--org", "other", "--format", "csv"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Boss") && !text.contains("Intern"), "{text}");
    assert_eq!(text.lines().count(), 3, "header, owner, sam: {text}");

    // A user the IdP manages over SCIM is refused, not overwritten.
    t.raw(
        "UPDATE users SET managed_by = 'scim' WHERE email = 'sam@other.example' \
         AND org_id = (SELECT id FROM orgs WHERE slug = 'other')",
    )
    .await;
    let before = t.fingerprint().await;
    let f = file("b.csv", b"email,title\nsam@other.example,Changed\n");
    let (out, so, _) = run(&t, &["import", "--org", "other", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{so}");
    assert!(
        so.contains("row 2: this user is managed by the organization's IdP over SCIM"),
        "{so}"
    );
    assert_eq!(t.fingerprint().await, before);
}

fn muster_env(t: &TestApp, args: &[&str], env: &[(&str, &str)]) -> (Output, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_muster"));
    cmd.args(args)
        .env("MUSTER_DATABASE_URL", &t.url)
        .env("MUSTER_DATA_DIR", &t.data_dir)
        .env_remove("MUSTER_CONFIG")
        .env_remove("MUSTER_SMTP_URL")
        .env("MUSTER_PUBLIC_URL", "https://id.acme.example")
        .current_dir(std::env::temp_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, so, se)
}

const INVITEES: &str = "email,givenName\nann@acme.example,Ann\nbob@acme.example,Bob\n";

async fn invited_users_get_their_invitation_over_a_real_smtp_conversation(t: TestApp) {
    use muster_testkit::smtp::SmtpSink;
    t.org_with_owner("acme").await;
    let sink = SmtpSink::start().await;
    let f = file("invite.csv", INVITEES.as_bytes());
    let args = ["import", "--org", "acme", f.to_str().unwrap(), "--invite"];
    let smtp = sink.url();
    let env = [
        ("MUSTER_SMTP_URL", smtp.as_str()),
        ("MUSTER_EMAIL_FROM", "Acme IT <it@acme.example>"),
    ];
    let (out, so, se) = muster_env(&t, &args, &env);
    assert!(out.status.success(), "{so}{se}");
    assert!(
        so.contains("2 created") && so.contains("2 invitation email(s) sent"),
        "{so}"
    );
    let got = sink.messages();
    assert_eq!(got.len(), 2);
    for (m, who) in got.iter().zip(["ann@acme.example", "bob@acme.example"]) {
        assert_eq!(m.to, [who]);
        assert_eq!(m.from, "it@acme.example");
        assert_eq!(
            m.header("Subject").as_deref(),
            Some("You are invited to join Org acme")
        );
        let text = m.text();
        let token = text
            .split("https://id.acme.example/invitations/accept?token=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no link in {text}"));
        assert_eq!(token.len(), 43, "{text}");
        // Only the hash of the link's secret is stored, nowhere the secret.
        let hash = muster_testkit::muster_app::secrets::hash_secret(token);
        let n = t
            .scalar(&format!(
                "SELECT COUNT(*) FROM invitations i JOIN users u ON u.id = i.user_id \
                 WHERE u.email = '{who}' AND i.secret_hash = '{hash}' AND u.state = 'invited'"
            ))
            .await;
        assert_eq!(n, 1, "{who}");
        // Neither readable through the log nor in clear at rest.
        assert_eq!(t.audit_count("", token).await, 0);
        let at_rest = t
            .scalar(&format!(
                "SELECT COUNT(*) FROM audit_events WHERE changes LIKE '%{token}%' OR context LIKE '%{token}%'"
            ))
            .await;
        assert_eq!(at_rest, 0);
    }
    let sent = t
        .scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'invitation.sent'")
        .await;
    assert_eq!(sent, 2);
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NULL")
            .await,
        0
    );
    // Again: nobody new, nobody invited twice.
    let (out, so, _) = muster_env(&t, &args, &env);
    assert!(out.status.success(), "{so}");
    assert!(
        so.contains("0 created") && so.contains("0 invitation email(s) sent"),
        "{so}"
    );
    assert_eq!(sink.messages().len(), 2);
    // Deactivating an invited user revokes the invitation: the worker drops
    // its email instead of sending it.
    let (out, so, se) = muster_env(
        &t,
        &[
            "user",
            "deactivate",
            "--org",
            "acme",
            "--email",
            "ann@acme.example",
        ],
        &env,
    );
    assert!(out.status.success(), "{so}{se}");
    let pending = t
        .scalar("SELECT COUNT(*) FROM invitations i JOIN users u ON u.id = i.user_id WHERE u.email = 'ann@acme.example' AND i.revoked_at IS NULL")
        .await;
    assert_eq!(pending, 0);
}

async fn without_smtp_invitations_land_in_the_outbox_folder_and_a_failed_send_waits(t: TestApp) {
    t.org_with_owner("acme").await;
    let dir = std::env::temp_dir().join(format!("muster-data-{}", uuid::Uuid::now_v7().simple()));
    let data = dir.to_str().unwrap();
    t.share_server_key(&dir);
    let f = file("invite.csv", INVITEES.as_bytes());
    let args = ["import", "--org", "acme", f.to_str().unwrap(), "--invite"];
    let (out, so, se) = muster_env(&t, &args, &[("MUSTER_DATA_DIR", data)]);
    assert!(out.status.success(), "{so}{se}");
    assert!(so.contains("2 invitation email(s) sent via"), "{so}");
    let emls: Vec<String> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(emls.len(), 2);
    assert!(emls.iter().any(|e| e.contains("To: ann@acme.example")));
    assert!(emls.iter().all(|e| e.contains("invitations/accept?token=")));

    // An SMTP server that is not there: the users are imported, the emails
    // wait in the outbox with the error, for the server's worker to retry.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let f = file("more.csv", b"email\ncid@acme.example\n");
    let args = ["import", "--org", "acme", f.to_str().unwrap(), "--invite"];
    let url = format!("smtp://127.0.0.1:{port}");
    let (out, so, se) = muster_env(&t, &args, &[("MUSTER_SMTP_URL", url.as_str())]);
    assert!(out.status.success(), "{so}{se}");
    assert!(
        so.contains("1 created") && so.contains("1 email(s) could not be sent yet"),
        "{so}"
    );
    let waiting = t
        .scalar("SELECT COUNT(*) FROM email_outbox WHERE sent_at IS NULL AND attempts = 1 AND last_error IS NOT NULL")
        .await;
    assert_eq!(waiting, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn ctrl_c_stops_the_cli_after_its_batch_and_the_next_run_finishes(t: TestApp) {
    t.org_with_owner("acme").await;
    let mut body = String::from("email,givenName\n");
    for i in 0..20_000 {
        body.push_str(&format!("p{i}@acme.example,P{i}\n"));
    }
    let f = file("big.csv", body.as_bytes());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_muster"))
        .args(["import", "--org", "acme", f.to_str().unwrap()])
        .env("MUSTER_DATABASE_URL", &t.url)
        .env("MUSTER_DATA_DIR", &t.data_dir)
        .env_remove("MUSTER_CONFIG")
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first batch is written, press Ctrl-C (SIGINT).
    let started = std::time::Instant::now();
    while t
        .scalar("SELECT COUNT(*) FROM import_runs WHERE lines_done > 0")
        .await
        == 0
    {
        assert!(
            started.elapsed().as_secs() < 120,
            "the import never wrote a batch"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{so}{se}");
    assert!(se.contains("stopping after the current batch"), "{se}");
    let stopped: i64 = so
        .split("stopped after row ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stopping row in {so}"));
    assert!(stopped < 20_001, "it stopped before the end: {so}");
    // Every row up to the one named is written, none after it (the owner too).
    assert_eq!(users(&t, "acme").await, stopped);
    let (out, so, _) = run(&t, &["import", "--org", "acme", f.to_str().unwrap()]);
    assert!(out.status.success(), "{so}");
    assert!(
        so.contains(&format!(
            "continued an earlier run of this file after row {stopped}"
        )),
        "{so}"
    );
    assert_eq!(users(&t, "acme").await, 20_001);
}
