//! Dev-only test kit: a `TestApp` on a fresh SQLite file or a fresh PostgreSQL
//! database cloned from a migrated template, and helpers to drive its router.
//!
//! PostgreSQL is found through `MUSTER_TEST_PG_URL` (an admin connection such
//! as `postgres://postgres@127.0.0.1:5432/postgres`). Without it, PostgreSQL
//! tests print that they were skipped, by name — except under CI (`CI` set),
//! where a missing or unreachable PostgreSQL fails the test.

// A test kit fails loudly: panicking on a broken fixture is its job.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use muster_app::{App, Backend, Caller, DbOptions};
use muster_core::clock::ManualClock;
use serde_json::Value;
use sqlx::Connection;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

pub mod browser;
pub mod dns;
pub mod geoip;
pub mod oidc;
pub mod smtp;
pub mod webhooks;

pub use muster_app;
pub use muster_core;
pub use muster_store;

pub struct TestApp {
    pub app: App,
    pub router: axum::Router,
    pub clock: Arc<ManualClock>,
    /// The database URL, for tests that tamper with it directly or run the CLI.
    pub url: String,
    /// `MUSTER_PUBLIC_URL` of this app: `http://muster.test` in process, or
    /// the loopback address after `serve_public`.
    pub public_url: String,
    /// `MUSTER_TRUSTED_PROXIES` of this app (none unless a test sets them).
    pub trusted_proxies: Vec<String>,
    /// `MUSTER_DATA_DIR` of this app: its server key (and SQLite file).
    pub data_dir: PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn router_for(app: &App, public_url: &str, proxies: &[String]) -> axum::Router {
    muster_web::router(muster_web::AppState {
        app: app.clone(),
        metrics: muster_web::metrics_handle(),
        public_url: public_url.to_owned(),
        limiter: Arc::default(),
        trusted_proxies: Arc::new(proxies.iter().map(|p| p.parse().expect("a CIDR")).collect()),
    })
}

fn start_time() -> time::OffsetDateTime {
    time::macros::datetime!(2026-11-25 12:00 UTC)
}

impl TestApp {
    async fn build(url: String, dir: Option<PathBuf>) -> Self {
        let clock = Arc::new(ManualClock::new(start_time()));
        // Every test has a data directory of its own, whose server key the
        // app and any CLI run against it share (as instances in production do).
        let dir = dir.unwrap_or_else(|| {
            let d =
                std::env::temp_dir().join(format!("muster-test-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&d).expect("temp dir");
            d
        });
        let key = muster_app::sealing::ServerKey::load_or_create(&dir.join("server.key"))
            .expect("the test's server key");
        let app = App::open(&url, &DbOptions { max_connections: 4 }, clock.clone())
            .await
            .expect("open the test database")
            .with_server_key(key);
        // As `muster serve` does: the session cache works (and is tested)
        // once its watch on the database is connected.
        drop(app.spawn_session_listener());
        wait_for(|| app.sessions.active()).await;
        let public_url = "http://muster.test".to_owned();
        // Tests run their webhook receivers on loopback.
        let app = app
            .with_public_url(&public_url)
            .with_private_webhook_targets(true);
        Self {
            router: router_for(&app, &public_url, &[]),
            app,
            clock,
            url,
            public_url,
            trusted_proxies: Vec::new(),
            data_dir: dir,
        }
    }

    /// Puts this test's server key into `dir`, for a CLI run that uses a
    /// data directory of its own.
    pub fn share_server_key(&self, dir: &std::path::Path) {
        std::fs::create_dir_all(dir).expect("data dir");
        std::fs::copy(self.data_dir.join("server.key"), dir.join("server.key"))
            .expect("copy the server key");
    }

    /// Turns Google sign-in on, pointed at `issuer` (a test's OIDC provider).
    pub fn with_google(&mut self, issuer: &str, client_id: &str, client_secret: &str) {
        self.app = self
            .app
            .clone()
            .with_google(muster_app::federation::ClientConfig {
                issuer: issuer.to_owned(),
                client_id: client_id.to_owned(),
                client_secret: client_secret.to_owned().into(),
            });
        self.router = router_for(&self.app, &self.public_url, &self.trusted_proxies);
    }

    /// Serves as if at `url` (`MUSTER_PUBLIC_URL`): links, cookies and the
    /// WebAuthn relying party follow it. Passkeys need https (or localhost).
    pub fn with_public_url(&mut self, url: &str) {
        self.public_url = url.to_owned();
        self.app = self.app.clone().with_public_url(url);
        self.router = router_for(&self.app, &self.public_url, &self.trusted_proxies);
    }

    /// Refuses private and loopback webhook targets, as production does by default.
    pub fn forbid_private_webhooks(&mut self) {
        self.app = self.app.clone().with_private_webhook_targets(false);
        self.router = router_for(&self.app, &self.public_url, &self.trusted_proxies);
    }

    /// Reads countries from this MaxMind-format database (`MUSTER_GEOIP_DB`),
    /// through the production reader.
    /// Sends Muster's DNS questions to this server (`dns::DnsServer`).
    pub fn with_dns(&mut self, server: std::net::SocketAddr) {
        self.app = self.app.clone().with_dns_server(Some(server.to_string()));
        self.router = router_for(&self.app, &self.public_url, &self.trusted_proxies);
    }

    pub fn with_geoip(&mut self, mmdb: Vec<u8>) {
        let geo = muster_app::geo::Geo::from_bytes(mmdb).expect("a MaxMind database");
        self.app = self.app.clone().with_geoip(geo);
        self.router = router_for(&self.app, &self.public_url, &self.trusted_proxies);
    }

    /// A JSON request as it arrives from the client at `ip` with this
    /// `User-Agent`: (status, body).
    pub async fn call_from(
        &self,
        (ip, user_agent): (&str, &str),
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let addr: std::net::SocketAddr = format!("{ip}:40000")
            .parse()
            .or_else(|_| format!("[{ip}]:40000").parse())
            .expect("an address");
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("user-agent", user_agent)
            .extension(axum::extract::ConnectInfo(addr));
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("a request");
        let (s, _, v) = self.send_full(req).await;
        (s, v)
    }

    /// Believes `X-Forwarded-For` from these networks (`MUSTER_TRUSTED_PROXIES`).
    pub fn with_trusted_proxies(&mut self, cidrs: &[&str]) {
        self.trusted_proxies = cidrs.iter().map(|c| (*c).to_owned()).collect();
        self.router = router_for(&self.app, &self.public_url, &self.trusted_proxies);
    }

    /// Serves the app on a loopback port that is also its public URL (links,
    /// cookies and OIDC redirects then point at it, as a browser needs).
    /// Serves the app on a loopback port as `http://localhost:<port>`, its
    /// public URL: WebAuthn accepts `localhost` over plain http (never a bare
    /// IP address), so browser tests of passkeys use this.
    pub async fn serve_at_localhost(&mut self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let base = format!("http://localhost:{port}");
        self.with_public_url(&base);
        let router = self.router.clone();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await;
        });
        base
    }

    pub async fn serve_public(&mut self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        self.public_url = base.clone();
        self.app = self.app.clone().with_public_url(&base);
        self.router = router_for(&self.app, &base, &self.trusted_proxies);
        let router = self.router.clone();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await;
        });
        base
    }

    pub async fn sqlite() -> Self {
        let dir =
            std::env::temp_dir().join(format!("muster-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("muster.db").display());
        Self::build(url, Some(dir)).await
    }

    /// A fresh PostgreSQL database, or `None` (after saying so) when the
    /// PostgreSQL suite is not configured outside CI.
    pub async fn postgres(test_name: &str) -> Option<Self> {
        let admin = pg_admin_url(test_name)?;
        let template = template(&admin).await;
        let name = format!(
            "muster_t_{}_{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to PostgreSQL");
        // Clones of one template may not overlap; retry while another is copying.
        let mut tries = 0;
        loop {
            let sql = format!("CREATE DATABASE {name} TEMPLATE {template}");
            match sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
            {
                Ok(_) => break,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(50 + tries * 10)).await;
                }
                Err(e) => panic!("cannot clone the template database: {e}"),
            }
        }
        let _ = conn.close().await;
        Some(Self::build(with_database(&admin, &name), None).await)
    }

    pub fn backend(&self) -> Backend {
        self.app.db.backend()
    }

    /// Sends a request through the router in process.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let (status, _, v) = self.send_full(req).await;
        (status, v)
    }

    /// `send`, keeping the response headers (ETag, Location, content type).
    pub async fn send_full(
        &self,
        req: Request<Body>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router answers");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, headers, v)
    }

    /// A business organization with an owner; returns the owner's token.
    pub async fn org_with_owner(&self, slug: &str) -> String {
        let op = Caller::operator("test");
        muster_app::orgs::create(&self.app, &op, slug, &format!("Org {slug}"))
            .await
            .expect("create org");
        self.user_with_token(slug, &format!("owner@{slug}.example"), &["owner"])
            .await
            .1
    }

    /// An active user with the given roles and an API token: (user id, token).
    pub async fn user_with_token(
        &self,
        slug: &str,
        email: &str,
        roles: &[&str],
    ) -> (String, String) {
        let op = Caller::operator("test");
        let input = muster_app::users::NewUser {
            email: email.into(),
            user_name: None,
            profile: Default::default(),
            roles: Some(roles.iter().map(|r| (*r).to_owned()).collect()),
            password: Some("Str0ng!pass".to_owned().into()),
            org_unit_id: None,
        };
        let user = muster_app::users::create(&self.app, &op, slug, input)
            .await
            .expect("create user");
        let t = muster_app::tokens::create(
            &self.app,
            &op,
            slug,
            Some(email),
            muster_app::tokens::TokenInput {
                name: "test".into(),
                expires_in_days: None,
            },
        )
        .await
        .expect("create token");
        (user.id, t.secret)
    }

    /// Serves the router on a loopback port (for a browser); returns its base URL.
    pub async fn listen(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let router = self.router.clone();
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await;
        });
        format!("http://{addr}")
    }

    /// Sends every queued email through a real SMTP conversation to `sink`.
    pub async fn deliver_mail(&self, sink: &smtp::SmtpSink) {
        let mailer = muster_app::mail::Mailer::smtp(&sink.url(), "Muster <muster@muster.test>")
            .expect("mailer");
        muster_app::mail::drain(&self.app, &mailer, &self.public_url)
            .await
            .expect("deliver the outbox");
    }

    /// A request with a JSON body and extra headers (cookies, client address).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        self.send_full(req).await
    }

    /// Runs one SQL statement directly against the database (for tampering).
    /// Counted as a commit of this process: the next request sees it, as
    /// with any change made here (`signin::cache`).
    pub async fn raw(&self, sql: &str) {
        let _counted = CountedWrite;
        match &self.app.db {
            muster_store::Db::Sqlite { write, .. } => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(write)
                    .await
                    .expect("raw sql");
            }
            muster_store::Db::Postgres(p, ..) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(p)
                    .await
                    .expect("raw sql");
            }
        }
    }

    /// Like `raw`, but returns the error text instead of panicking.
    pub async fn try_raw(&self, sql: &str) -> Result<(), String> {
        let _counted = CountedWrite;
        let r = match &self.app.db {
            muster_store::Db::Sqlite { write, .. } => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(write)
                    .await
                    .map(|_| ())
            }
            muster_store::Db::Postgres(p, ..) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(p)
                .await
                .map(|_| ()),
        };
        r.map_err(|e| e.to_string())
    }

    /// A single number from the database (row counts for "nothing changed").
    pub async fn scalar(&self, sql: &str) -> i64 {
        match &self.app.db {
            muster_store::Db::Sqlite { read, .. } => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(read)
                    .await
                    .expect("scalar")
            }
            muster_store::Db::Postgres(p, ..) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(p)
                    .await
                    .expect("scalar")
            }
        }
    }

    /// A single text value from the database (an id, a hash).
    pub async fn scalar_text(&self, sql: &str) -> String {
        match &self.app.db {
            muster_store::Db::Sqlite { read, .. } => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(read)
                    .await
                    .expect("scalar_text")
            }
            muster_store::Db::Postgres(p, ..) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(p)
                    .await
                    .expect("scalar_text")
            }
        }
    }

    /// How many audit events with `action` (any, when empty), in any organization, read (as
    /// the API and the export show them, personal data opened) with `needle`
    /// in their changes or context. At rest that data is sealed, so SQL
    /// cannot look into it.
    pub async fn audit_count(&self, action: &str, needle: &str) -> i64 {
        let op = Caller::operator("test");
        let mut n = 0;
        for (_, slug) in muster_store::orgs::all_ids(&self.app.db)
            .await
            .expect("orgs")
        {
            let q = muster_app::audit::AuditQuery {
                action: (!action.is_empty()).then(|| action.to_owned()),
                ..Default::default()
            };
            muster_app::audit::export(&self.app, &op, &slug, q, |e| {
                if e.changes.to_string().contains(needle) || e.context.to_string().contains(needle)
                {
                    n += 1;
                }
                Ok(())
            })
            .await
            .expect("read the audit log");
        }
        n
    }

    /// Every table's row count: equal before and after a refused request.
    pub async fn fingerprint(&self) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        for t in [
            "orgs",
            "users",
            "groups",
            "group_user_members",
            "group_group_members",
            "roles",
            "role_assignments",
            "api_tokens",
            "audit_events",
            "webhook_endpoints",
            "webhook_subscriptions",
            "webhook_deliveries",
            "org_units",
            "workspaces",
            "org_domains",
        ] {
            out.push((
                t.to_owned(),
                self.scalar(&format!("SELECT COUNT(*) FROM {t}")).await,
            ));
        }
        let versions = self
            .scalar("SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM users")
            .await;
        out.push(("users.version".into(), versions));
        // Where users and units are: a refused move leaves both alone.
        let placed = self
            .scalar("SELECT CAST(COUNT(ou_id) AS BIGINT) FROM users")
            .await;
        out.push(("users.ou_id".into(), placed));
        let paths = self
            .scalar("SELECT CAST(COALESCE(SUM(LENGTH(path) + LENGTH(policies)), 0) AS BIGINT) FROM org_units")
            .await;
        out.push(("org_units.paths".into(), paths));
        let verified = self
            .scalar("SELECT CAST(COUNT(verified_at) AS BIGINT) FROM org_domains")
            .await;
        out.push(("org_domains.verified".into(), verified));
        out
    }
}

fn pg_admin_url(test_name: &str) -> Option<String> {
    match std::env::var("MUSTER_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var_os("CI").is_some() => {
            panic!("MUSTER_TEST_PG_URL is not set: the PostgreSQL suite must run in CI")
        }
        _ => {
            eprintln!("SKIPPED {test_name}: set MUSTER_TEST_PG_URL to run it on PostgreSQL");
            None
        }
    }
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Creates (once per test process) a database with every migration applied,
/// after dropping the databases earlier runs left behind.
async fn template(admin: &str) -> String {
    static TEMPLATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static INIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    if let Some(t) = TEMPLATE.get() {
        return t.clone();
    }
    let _guard = INIT.lock().await;
    if let Some(t) = TEMPLATE.get() {
        return t.clone();
    }
    let name = format!("muster_tpl_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect to PostgreSQL (MUSTER_TEST_PG_URL)");
    let stale: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'muster\\_t\\_%' OR datname LIKE 'muster\\_tpl\\_%'")
        .fetch_all(&mut conn)
        .await
        .expect("list databases");
    // Names carry the creating process's id: drop only what no running
    // process owns, so concurrent test runs on one server leave each other be.
    for db in stale {
        let pid = db
            .trim_start_matches("muster_tpl_")
            .trim_start_matches("muster_t_")
            .split('_')
            .next()
            .unwrap_or("");
        if pid
            .parse::<u32>()
            .is_ok_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        {
            continue;
        }
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create template");
    let url = with_database(admin, &name);
    let db = muster_store::Db::connect(&url, &DbOptions { max_connections: 2 })
        .await
        .expect("connect to template");
    db.migrate().await.expect("migrate template");
    db.close().await;
    let _ = conn.close().await;
    let _ = TEMPLATE.set(name.clone());
    name
}

/// Runs a test body on SQLite and on PostgreSQL: `both!(name);` for an
/// `async fn name(t: TestApp)` in scope gives `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::TestApp::sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(t) = $crate::TestApp::postgres(module_path!()).await {
                    super::$name(t).await
                }
            }
        }
    )*};
}

/// Counts a raw write as this process's commit when it ends (even by a panic).
struct CountedWrite;

impl Drop for CountedWrite {
    fn drop(&mut self) {
        muster_store::note_write();
    }
}

/// Polls `ready` every few milliseconds for up to ten seconds.
async fn wait_for(ready: impl Fn() -> bool) {
    for _ in 0..2000 {
        if ready() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("the session cache's watch did not connect within ten seconds");
}
