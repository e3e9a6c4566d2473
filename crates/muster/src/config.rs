//! Configuration: flags override environment variables (clap reads both),
//! which override an optional `muster.toml`; then defaults. Every value is
//! checked here, so a bad one stops start-up with a message naming it.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Flags {
    /// Configuration file (TOML). Default: ./muster.toml when it exists.
    #[arg(long, global = true, env = "MUSTER_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8080]
    #[arg(long, global = true, env = "MUSTER_LISTEN")]
    pub listen: Option<String>,
    /// Base of links in emails and redirects [default: http://localhost:8080]
    #[arg(long, global = true, env = "MUSTER_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SQLite file, server key, email outbox [default: ./muster-data]
    #[arg(long, global = true, env = "MUSTER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://… [default: SQLite in the data dir]
    #[arg(
        long,
        global = true,
        env = "MUSTER_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Database connections (PostgreSQL) or readers (SQLite) [default: 16]
    #[arg(long, global = true, env = "MUSTER_DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,
    /// Log format: pretty or json [default: pretty]
    #[arg(long, global = true, env = "MUSTER_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// smtp://[user:pass@]host[:port] or smtps://… [default: .eml files in <data dir>/outbox]
    #[arg(long, global = true, env = "MUSTER_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of Muster's emails [default: Muster <no-reply@host of the public URL>]
    #[arg(long, global = true, env = "MUSTER_EMAIL_FROM")]
    pub email_from: Option<String>,
    /// Google sign-in: the OAuth client id [default: unset, Google off]
    #[arg(long, global = true, env = "MUSTER_GOOGLE_CLIENT_ID")]
    pub google_client_id: Option<String>,
    /// Google sign-in: the OAuth client secret
    #[arg(
        long,
        global = true,
        env = "MUSTER_GOOGLE_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub google_client_secret: Option<String>,
    /// Google sign-in: the issuer [default: https://accounts.google.com]
    #[arg(long, global = true, env = "MUSTER_GOOGLE_ISSUER")]
    pub google_issuer: Option<String>,
    /// Reverse proxies whose X-Forwarded-For is believed: CIDRs or addresses,
    /// comma-separated [default: none]
    #[arg(long, global = true, env = "MUSTER_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// A MaxMind-format country or city database (.mmdb) for country rules
    /// and the risk engine [default: unset, no GeoIP]
    #[arg(long, global = true, env = "MUSTER_GEOIP_DB")]
    pub geoip_db: Option<PathBuf>,
    /// The DNS resolver that checks domain verification records, `ip` or
    /// `ip:port` [default: the first nameserver of /etc/resolv.conf]
    #[arg(long, global = true, env = "MUSTER_DNS_SERVER")]
    pub dns_server: Option<String>,
    /// Let webhook endpoints be private, loopback or link-local addresses,
    /// and plain http (receivers inside your network) [default: false]
    #[arg(long, global = true, env = "MUSTER_WEBHOOKS_ALLOW_PRIVATE")]
    pub webhooks_allow_private: Option<bool>,
}

/// The file's keys are the variable names without `MUSTER_`, in lower case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_max_connections: Option<u32>,
    log_format: Option<String>,
    smtp_url: Option<String>,
    email_from: Option<String>,
    google_client_id: Option<String>,
    google_client_secret: Option<String>,
    google_issuer: Option<String>,
    trusted_proxies: Option<String>,
    geoip_db: Option<PathBuf>,
    dns_server: Option<String>,
    webhooks_allow_private: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub public_url: url::Url,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub max_connections: u32,
    pub log_format: LogFormat,
    pub smtp_url: Option<String>,
    pub email_from: String,
    pub google: Option<muster_app::federation::ClientConfig>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub geoip_db: Option<PathBuf>,
    pub dns_server: Option<String>,
    pub webhooks_allow_private: bool,
}

fn bad(var: &str, key: &str, why: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("invalid configuration: MUSTER_{var} (`{key}` in muster.toml): {why}")
}

impl Settings {
    pub fn load(flags: &Flags) -> anyhow::Result<Self> {
        let file = match &flags.config {
            Some(p) => read_file(p)?,
            None if Path::new("muster.toml").exists() => read_file(Path::new("muster.toml"))?,
            None => FileConfig::default(),
        };
        let listen = flags
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen.parse().map_err(|e| {
            bad(
                "LISTEN",
                "listen",
                format!("'{listen}' is not an address:port ({e})"),
            )
        })?;
        let public_url = flags
            .public_url
            .clone()
            .or(file.public_url)
            .unwrap_or_else(|| "http://localhost:8080".into());
        let public_url = url::Url::parse(&public_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                bad(
                    "PUBLIC_URL",
                    "public_url",
                    format!("'{public_url}' is not an http(s) URL"),
                )
            })?;
        let data_dir = flags
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("muster-data"));
        let database_url = match flags.database_url.clone().or(file.database_url) {
            Some(u)
                if u.starts_with("sqlite:")
                    || u.starts_with("postgres:")
                    || u.starts_with("postgresql:") =>
            {
                u
            }
            Some(_) => {
                return Err(bad(
                    "DATABASE_URL",
                    "database_url",
                    "must start with sqlite:// or postgres://",
                ));
            }
            None => format!("sqlite://{}", data_dir.join("muster.db").display()),
        };
        let max_connections = flags
            .database_max_connections
            .or(file.database_max_connections)
            .unwrap_or(16);
        if !(1..=1000).contains(&max_connections) {
            return Err(bad(
                "DATABASE_MAX_CONNECTIONS",
                "database_max_connections",
                "must be 1 to 1000",
            ));
        }
        let log_format = match flags.log_format.clone().or(file.log_format).as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(bad(
                    "LOG_FORMAT",
                    "log_format",
                    format!("'{other}': use pretty or json"),
                ));
            }
        };
        let from = flags
            .email_from
            .clone()
            .or(file.email_from)
            .unwrap_or_else(|| {
                format!(
                    "Muster <no-reply@{}>",
                    public_url.host_str().unwrap_or("localhost")
                )
            });
        let smtp_url = flags.smtp_url.clone().or(file.smtp_url);
        if let Some(u) = &smtp_url {
            // The URL may hold a password: never echo it.
            muster_app::mail::check_smtp_url(u)
                .map_err(|e| bad("SMTP_URL", "smtp_url", e.replace(u.as_str(), "the URL")))?;
        }
        muster_app::mail::check_sender(&from).map_err(|e| bad("EMAIL_FROM", "email_from", e))?;
        let google = google(
            flags.google_client_id.clone().or(file.google_client_id),
            flags
                .google_client_secret
                .clone()
                .or(file.google_client_secret),
            flags.google_issuer.clone().or(file.google_issuer),
        )?;
        let trusted_proxies = proxies(flags.trusted_proxies.clone().or(file.trusted_proxies))?;
        let geoip_db = flags.geoip_db.clone().or(file.geoip_db);
        let dns_server = flags.dns_server.clone().or(file.dns_server);
        if let Some(d) = &dns_server {
            muster_app::dns::Resolver::from_config(Some(d)).map_err(|_| {
                bad(
                    "DNS_SERVER",
                    "dns_server",
                    "give an IP address, optionally with :port",
                )
            })?;
        }
        let webhooks_allow_private = flags
            .webhooks_allow_private
            .or(file.webhooks_allow_private)
            .unwrap_or(false);
        Ok(Self {
            listen,
            public_url,
            data_dir,
            database_url,
            max_connections,
            log_format,
            smtp_url,
            email_from: from,
            google,
            trusted_proxies,
            geoip_db,
            dns_server,
            webhooks_allow_private,
        })
    }

    /// How emails leave: SMTP when configured, else `.eml` files in the
    /// data directory's outbox folder. Call within the runtime.
    pub fn mailer(&self) -> anyhow::Result<muster_app::mail::Mailer> {
        let m = match &self.smtp_url {
            Some(u) => muster_app::mail::Mailer::smtp(u, &self.email_from),
            None => muster_app::mail::Mailer::files(self.data_dir.join("outbox"), &self.email_from),
        };
        m.map_err(|e| anyhow::anyhow!("invalid email configuration: {e}"))
    }

    /// Creates the data directory (the SQLite file, the server key and the
    /// outbox live there) and reads or makes the server key.
    pub fn prepare_data_dir(&self) -> anyhow::Result<muster_app::sealing::ServerKey> {
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            bad(
                "DATA_DIR",
                "data_dir",
                format!("cannot create {}: {e}", self.data_dir.display()),
            )
        })?;
        muster_app::sealing::ServerKey::load_or_create(&self.data_dir.join("server.key"))
            .map_err(|e| bad("DATA_DIR", "data_dir", e))
    }
}

/// Google is on when both the client id and secret are given; one without
/// the other is a mistake worth stopping for.
fn google(
    id: Option<String>,
    secret: Option<String>,
    issuer: Option<String>,
) -> anyhow::Result<Option<muster_app::federation::ClientConfig>> {
    let issuer = issuer.unwrap_or_else(|| "https://accounts.google.com".into());
    match (id, secret) {
        (None, None) => Ok(None),
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            muster_app::federation::oidc::check_url(&issuer, "issuer")
                .map_err(|r| bad("GOOGLE_ISSUER", "google_issuer", r.0))?;
            Ok(Some(muster_app::federation::ClientConfig {
                issuer,
                client_id: id,
                client_secret: secret.into(),
            }))
        }
        _ => Err(bad(
            "GOOGLE_CLIENT_ID",
            "google_client_id",
            "set both MUSTER_GOOGLE_CLIENT_ID and MUSTER_GOOGLE_CLIENT_SECRET, or neither",
        )),
    }
}

/// `10.0.0.0/8, 192.0.2.7` → networks (a bare address is its own /32 or /128).
fn proxies(raw: Option<String>) -> anyhow::Result<Vec<ipnet::IpNet>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    bad(
                        "TRUSTED_PROXIES",
                        "trusted_proxies",
                        format!("'{p}' is not an address or CIDR"),
                    )
                })
        })
        .collect()
}

fn read_file(p: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| anyhow::anyhow!("invalid configuration: cannot read {}: {e}", p.display()))?;
    let cfg = config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<FileConfig>())
        .map_err(|e| anyhow::anyhow!("invalid configuration in {}: {e}", p.display()))?;
    Ok(cfg)
}
