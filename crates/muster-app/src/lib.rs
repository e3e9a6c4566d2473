//! Muster's use cases. Each one that changes state is one transaction that
//! makes the change, writes its audit event and (later) enqueues its email or
//! webhook; every surface — REST, CLI, SCIM, pages, scheduler — calls these.

pub mod access;
pub mod audit;
pub mod caller;
pub mod dashboard;
pub mod devices;
pub mod dns;
pub mod domains;
pub mod emails;
pub mod erasure;
mod error;
pub mod federation;
pub mod geo;
mod group_commit;
pub mod groups;
pub mod guard;
pub mod guests;
pub mod imports;
pub mod invitations;
pub mod legal_holds;
pub mod mail;
pub mod mfa;
pub mod org_units;
pub mod orgs;
pub mod paging;
pub mod passwords;
pub mod policies;
pub mod retention;
pub mod risk;
pub mod roles;
pub mod scheduler;
pub mod scim;
pub mod sealing;
pub mod secrets;
pub mod sessions;
pub mod signin;
mod token_reads;
pub mod tokens;
pub mod users;
pub mod webhooks;
pub mod workspaces;

pub use caller::{Caller, Principal};
pub use error::AppError;
pub use muster_store::{Backend, Db, DbOptions, statistics};

use muster_core::Clock;
use std::sync::Arc;

pub type Result<T> = std::result::Result<T, AppError>;

/// Everything a use case needs, built once in `main` and passed down.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub hasher: passwords::Hasher,
    /// Seals the secrets Muster must read back (see `sealing`).
    pub key: Arc<sealing::ServerKey>,
    /// The OpenID Connect client, with its cache of provider keys.
    pub oidc: Arc<federation::Oidc>,
    /// Google sign-in, when configured (`MUSTER_GOOGLE_*`).
    pub google: Option<Arc<federation::ClientConfig>>,
    /// The GeoIP database, when configured (`MUSTER_GEOIP_DB`).
    pub geo: Option<Arc<geo::Geo>>,
    /// The DNS resolver for domain verification (`MUSTER_DNS_SERVER`);
    /// `None` asks the system's.
    pub dns_server: Option<String>,
    /// The WebAuthn relying party for passkeys, once the public URL is known
    /// (`with_public_url`).
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Organizations' policies, compiled once per settings text (`guard`).
    pub policies: Arc<guard::PolicyCache>,
    /// Recently authenticated sessions (`signin::cache`).
    pub sessions: Arc<signin::cache::SessionCache>,
    /// People's audit keys, opened, for sealing new events (`erasure`).
    pub(crate) audit_keys: Arc<erasure::KeyCache>,
    /// Which webhook URLs are allowed (`MUSTER_WEBHOOKS_ALLOW_PRIVATE`).
    pub webhook_targets: webhooks::targets::Targets,
    /// The client that delivers webhooks, built on first use.
    webhook_http: Arc<std::sync::OnceLock<std::result::Result<reqwest::Client, String>>>,
    /// Woken when an endpoint may have work (re-enabled), so the
    /// dispatcher runs now.
    webhooks_wake: Arc<tokio::sync::Notify>,
    /// This process, as the holder of shared job leases (`scheduler`).
    pub(crate) instance: Arc<str>,
    sealer: Arc<tokio::sync::Notify>,
    /// Woken when an email is queued, so the outbox worker sends it now.
    outbox: Arc<tokio::sync::Notify>,
    sealed_since_vacuum: Arc<std::sync::atomic::AtomicUsize>,
    /// New users on their way to the writer (see `group_commit`).
    creations: group_commit::GroupCommit,
    /// API-token authentication reads on their way to the reader (see
    /// `token_reads`).
    token_reads: token_reads::TokenReads,
    /// Built-in roles never change after their organization is created, so
    /// resolving `member` or `admin` need not cost a query per request.
    builtin_roles: Arc<
        std::sync::RwLock<
            std::collections::HashMap<(String, String), muster_store::roles::RoleRow>,
        >,
    >,
}

impl App {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        // As many hashing threads as cores (at most 4): hashing is CPU-bound.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        Self {
            db,
            clock,
            hasher: passwords::Hasher::new(threads),
            key: Arc::new(sealing::ServerKey::ephemeral()),
            oidc: Arc::default(),
            google: None,
            geo: None,
            dns_server: None,
            webauthn: None,
            policies: Arc::default(),
            sessions: Arc::default(),
            audit_keys: Arc::default(),
            webhook_targets: webhooks::targets::Targets::default(),
            webhook_http: Arc::default(),
            webhooks_wake: Arc::new(tokio::sync::Notify::new()),
            instance: uuid::Uuid::now_v7().to_string().into(),
            sealer: Arc::new(tokio::sync::Notify::new()),
            outbox: Arc::new(tokio::sync::Notify::new()),
            builtin_roles: Arc::default(),
            sealed_since_vacuum: Arc::default(),
            creations: group_commit::GroupCommit::default(),
            token_reads: token_reads::TokenReads::default(),
        }
    }

    /// API-token reads run since start (for tests: requests read
    /// together count once).
    pub fn api_token_reads(&self) -> u64 {
        self.token_reads.reads()
    }

    /// Unconfirmed creations that were authorized afresh since start (for
    /// tests: `caller::Unconfirmed`).
    pub fn api_token_refusals(&self) -> u64 {
        self.token_reads.refusals()
    }

    /// Uses the server key read from the data directory (every instance on
    /// one database must share it); `new` makes a key that dies with the process.
    pub fn with_server_key(mut self, key: sealing::ServerKey) -> Self {
        self.key = Arc::new(key);
        self
    }

    /// Sends DNS questions to this resolver (`ip` or `ip:port`).
    pub fn with_dns_server(mut self, server: Option<String>) -> Self {
        self.dns_server = server;
        self
    }

    /// The resolver domain verification asks.
    pub fn resolver(&self) -> std::result::Result<dns::Resolver, dns::DnsError> {
        dns::Resolver::from_config(self.dns_server.as_deref())
    }

    /// Turns Google sign-in on.
    pub fn with_google(mut self, google: federation::ClientConfig) -> Self {
        self.google = Some(Arc::new(google));
        self
    }

    /// Passkeys for the site at `public_url`: its host is the WebAuthn
    /// relying party id, and it is the one origin accepted (W3C WebAuthn
    /// §5.1.3, §7.1 steps 9–10). A URL WebAuthn cannot use leaves passkeys off.
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        self.webauthn = url::Url::parse(public_url).ok().and_then(|origin| {
            let host = origin.host_str()?.to_owned();
            webauthn_rs::WebauthnBuilder::new(&host, &origin)
                .ok()?
                .rp_name("Muster")
                .build()
                .ok()
                .map(Arc::new)
        });
        self
    }

    /// Lets webhooks go to private and loopback addresses, and over plain
    /// http (internal receivers; tests).
    pub fn with_private_webhook_targets(mut self, allow: bool) -> Self {
        self.webhook_targets.allow_private = allow;
        self.webhook_http = Arc::default();
        self
    }

    pub(crate) fn webhook_client(&self) -> std::result::Result<&reqwest::Client, String> {
        self.webhook_http
            .get_or_init(|| webhooks::delivery::client(self.webhook_targets.allow_private))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Wakes the webhook dispatcher.
    pub(crate) fn webhook_queued(&self) {
        self.webhooks_wake.notify_one();
    }

    /// Resolves when an event was written or an endpoint changed since the
    /// last call (the webhook dispatcher's wake-up).
    pub async fn webhooks_due(&self) {
        self.webhooks_wake.notified().await;
    }

    /// Reads countries (and coordinates) from this GeoIP database.
    pub fn with_geoip(mut self, geo: geo::Geo) -> Self {
        self.geo = Some(Arc::new(geo));
        self
    }

    pub(crate) fn now_ms(&self) -> i64 {
        muster_core::clock::to_millis(self.clock.now())
    }

    /// Resolves when an email was queued since the last call (the worker's wake-up).
    pub async fn email_queued(&self) {
        self.outbox.notified().await;
    }

    /// Opens the database, applies migrations and makes sure the personal
    /// directory exists.
    pub async fn open(url: &str, opts: &DbOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        let db = Db::connect(url, opts).await?;
        db.migrate().await?;
        let app = Self::new(db, clock);
        orgs::ensure_personal(&app).await?;
        Ok(app)
    }
}
