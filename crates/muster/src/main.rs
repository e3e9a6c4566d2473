//! `muster`: the server and its operator commands (DESIGN.md §2 "CLI").

mod audit_cmd;
mod config;
mod progress;
mod transfer;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use clap::{Parser, Subcommand};
use config::{Flags, LogFormat, Settings};
use muster_app::tokens::TokenInput;
use muster_app::users::NewUser;
use muster_app::{App, Caller, DbOptions};
use muster_core::{LifecycleEvent, SystemClock};
use std::io::{Read, Write};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "muster", version, about = "Identity lifecycle server")]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default)
    Serve,
    /// Apply schema migrations and exit
    Migrate,
    /// Business organizations
    #[command(subcommand)]
    Org(OrgCmd),
    /// Users
    #[command(subcommand)]
    User(UserCmd),
    /// API tokens
    #[command(subcommand, name = "api-token")]
    ApiToken(TokenCmd),
    /// SCIM tokens, for an IdP to provision users and groups
    #[command(subcommand, name = "scim-token")]
    ScimToken(ScimTokenCmd),
    /// The audit log
    #[command(subcommand)]
    Audit(audit_cmd::AuditCmd),
    /// Create or update users from a CSV or JSON Lines file
    Import(transfer::ImportArgs),
    /// Write the organization's users as CSV or JSON Lines (no secrets)
    Export(transfer::ExportArgs),
}

#[derive(Subcommand)]
enum OrgCmd {
    Create {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        /// Role key (repeatable); default: member
        #[arg(long)]
        role: Vec<String>,
        /// Read an initial password from standard input
        #[arg(long)]
        password_stdin: bool,
        /// The organizational unit (id) to create the user in; default: the root
        #[arg(long)]
        org_unit: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Suspend (lock for now); ends every session and token
    Suspend(Target),
    Unsuspend(Target),
    /// Offboard; ends every session and token, keeps data and audit history
    Deactivate(Target),
    Reactivate(Target),
    Unlock(Target),
    /// Irreversibly delete a deactivated user
    Delete(Target),
}

#[derive(clap::Args)]
struct Target {
    #[arg(long)]
    org: String,
    #[arg(long)]
    email: String,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Prints the token once
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        expires_in_days: Option<i64>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ScimTokenCmd {
    /// Prints the token once
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        expires_in_days: Option<i64>,
        /// An address or CIDR range the IdP calls from (repeatable)
        #[arg(long)]
        ip_allow: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("muster: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logs(
        settings.log_format,
        matches!(cli.command, None | Some(Command::Serve)),
    );
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("muster: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command.unwrap_or(Command::Serve), settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("muster: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logs(format: LogFormat, server: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if server { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env("MUSTER_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Pretty => b.init(),
    }
}

pub(crate) async fn open(s: &Settings) -> anyhow::Result<App> {
    let key = s.prepare_data_dir()?;
    let opts = DbOptions {
        max_connections: s.max_connections,
    };
    let app = App::open(&s.database_url, &opts, Arc::new(SystemClock))
        .await
        .context("cannot open the database")?
        .with_server_key(key)
        .with_public_url(s.public_url.as_str())
        .with_private_webhook_targets(s.webhooks_allow_private)
        .with_dns_server(s.dns_server.clone());
    let app = match &s.google {
        Some(g) => app.with_google(g.clone()),
        None => app,
    };
    // A GeoIP file that cannot be read stops start-up: country rules must
    // not silently see no country.
    Ok(match &s.geoip_db {
        Some(path) => app.with_geoip(
            muster_app::geo::Geo::open(path)
                .map_err(|e| anyhow::anyhow!("invalid configuration: MUSTER_GEOIP_DB: {e}"))?,
        ),
        None => app,
    })
}

pub(crate) fn print(
    json: bool,
    value: &impl serde::Serialize,
    human: String,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{human}")?;
    }
    Ok(())
}

pub(crate) fn operator() -> Caller {
    let name = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    Caller::operator(&format!("cli:{name}"))
}

async fn run(cmd: Command, s: Settings) -> anyhow::Result<std::process::ExitCode> {
    let ok = std::process::ExitCode::SUCCESS;
    match cmd {
        Command::Serve => serve(s).await.map(|()| ok),
        Command::Migrate => {
            open(&s).await?;
            println!("migrations applied");
            Ok(ok)
        }
        Command::Org(OrgCmd::Create { slug, name, json }) => {
            let app = open(&s).await?;
            let org = muster_app::orgs::create(&app, &operator(), &slug, &name).await?;
            app.seal_all().await?;
            print(
                json,
                &org,
                format!("created organization {} ({})", org.slug, org.id),
            )?;
            Ok(ok)
        }
        Command::User(UserCmd::Create {
            org,
            email,
            role,
            password_stdin,
            org_unit,
            json,
        }) => {
            let password = if password_stdin {
                let mut pw = String::new();
                std::io::stdin().read_to_string(&mut pw)?;
                Some(pw.trim_end_matches(['\r', '\n']).to_owned().into())
            } else {
                None
            };
            let app = open(&s).await?;
            let input = NewUser {
                email,
                user_name: None,
                profile: Default::default(),
                roles: (!role.is_empty()).then_some(role),
                password,
                org_unit_id: org_unit,
            };
            let user = muster_app::users::create(&app, &operator(), &org, input).await?;
            app.seal_all().await?;
            print(
                json,
                &user,
                format!(
                    "created user {} ({}), {}",
                    user.email,
                    user.id,
                    user.state.as_str()
                ),
            )?;
            Ok(ok)
        }
        Command::User(cmd) => {
            let (event, t) = match cmd {
                UserCmd::Suspend(t) => (LifecycleEvent::Suspend, t),
                UserCmd::Unsuspend(t) => (LifecycleEvent::Unsuspend, t),
                UserCmd::Deactivate(t) => (LifecycleEvent::Deactivate, t),
                UserCmd::Reactivate(t) => (LifecycleEvent::Reactivate, t),
                UserCmd::Unlock(t) => (LifecycleEvent::Unlock, t),
                UserCmd::Delete(t) => (LifecycleEvent::Delete, t),
                UserCmd::Create { .. } => anyhow::bail!("user create is handled above"),
            };
            let app = open(&s).await?;
            let org = muster_app::orgs::get(&app, &operator(), &t.org).await?;
            let id = muster_app::users::id_by_email(&app, &org.id, &t.email).await?;
            let user = muster_app::users::transition(&app, &operator(), &t.org, &id, event).await?;
            app.seal_all().await?;
            let human = match &user {
                Some(u) => format!("{} is now {}", u.email, u.state.as_str()),
                None => format!("{} deleted", t.email),
            };
            print(t.json, &user, human)?;
            Ok(ok)
        }
        Command::ApiToken(TokenCmd::Create {
            org,
            email,
            name,
            expires_in_days,
            json,
        }) => {
            let app = open(&s).await?;
            let t = muster_app::tokens::create(
                &app,
                &operator(),
                &org,
                Some(&email),
                TokenInput {
                    name,
                    expires_in_days,
                },
            )
            .await?;
            app.seal_all().await?;
            print(
                json,
                &t,
                format!(
                    "{}\n(this token is shown once; it acts as {email})",
                    t.secret
                ),
            )?;
            Ok(ok)
        }
        Command::ScimToken(ScimTokenCmd::Create {
            org,
            name,
            expires_in_days,
            ip_allow,
            json,
        }) => {
            let app = open(&s).await?;
            let t = muster_app::scim::tokens::create(
                &app,
                &operator(),
                &org,
                muster_app::scim::tokens::ScimTokenInput {
                    name,
                    expires_in_days,
                    ip_allow,
                },
            )
            .await?;
            app.seal_all().await?;
            let base = format!("{}/scim/v2", s.public_url.as_str().trim_end_matches('/'));
            print(
                json,
                &t,
                format!(
                    "{}\n(this token is shown once; give the IdP the tenant URL {base} and this token)",
                    t.secret
                ),
            )?;
            Ok(ok)
        }
        Command::Import(a) => {
            let app = open(&s).await?;
            let mailer = s.mailer()?;
            transfer::import(&app, &operator(), a, &mailer, s.public_url.as_str()).await
        }
        Command::Export(a) => {
            let app = open(&s).await?;
            transfer::export_users(&app, &operator(), a).await
        }
        Command::Audit(cmd) => audit_cmd::run(&s, cmd).await,
    }
}

pub(crate) async fn muster_store_org(app: &App, slug: &str) -> anyhow::Result<(String, String)> {
    let org = muster_app::orgs::get(app, &operator(), slug).await?;
    Ok((org.id, org.slug))
}

async fn serve(s: Settings) -> anyhow::Result<()> {
    let app = open(&s).await?;
    let sealer = app.spawn_sealer();
    // Other processes' changes to sessions, users and roles are heard here;
    // until the watch is connected no session is cached.
    let session_listener = app.spawn_session_listener();
    // Dated transitions are due to the minute; one instance runs them at a
    // time (a shared lease), so every instance may start the loop.
    let scheduler = app.spawn_scheduler(std::time::Duration::from_secs(30));
    let outbound = s.mailer()?;
    let mailer = {
        let (app, mailer, url) = (app.clone(), outbound.clone(), s.public_url.to_string());
        tokio::spawn(async move {
            loop {
                if let Err(e) = muster_app::mail::deliver_due(&app, &mailer, &url, 100).await {
                    tracing::error!(error = %e, "delivering the email outbox failed");
                }
                // Every two seconds, or at once when a use case queued an email.
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                    () = app.email_queued() => {}
                }
            }
        })
    };
    let webhooks = {
        let app = app.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = muster_app::webhooks::delivery::deliver_due(&app).await {
                    tracing::error!(error = %e, "delivering webhooks failed");
                }
                // Every second (another instance may have written events, a
                // retry may have come due), or at once after an event here.
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    () = app.webhooks_due() => {
                        // Let a burst of events gather into one pass (a pass
                        // is a query even when no endpoint is due).
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
            }
        })
    };
    // PostgreSQL plans with statistics that autovacuum may never refresh
    // (it can be off); stale ones leave bad generic plans cached. The same
    // loop folds the SCIM user counts' appended changes (migration 0021).
    let statistics = {
        let db = app.db.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                if let Err(e) = muster_app::scim::fold_counts(&db).await {
                    tracing::error!(error = %e, "folding the SCIM user counts failed");
                }
                match muster_app::statistics::analyze_stale(&db).await {
                    Ok(t) if !t.is_empty() => tracing::debug!(tables = ?t, "analyzed"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "refreshing planner statistics failed"),
                }
            }
        })
    };
    let metrics = muster_web::metrics_handle();
    // Histograms buffer raw samples until upkeep folds them into buckets.
    let upkeep = {
        let m = metrics.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                m.run_upkeep();
            }
        })
    };
    let state = muster_web::AppState {
        app: app.clone(),
        metrics,
        public_url: s.public_url.to_string(),
        limiter: Arc::default(),
        trusted_proxies: Arc::new(s.trusted_proxies.clone()),
    };
    let listener = tokio::net::TcpListener::bind(s.listen)
        .await
        .with_context(|| format!("cannot listen on {}", s.listen))?;
    let addr = listener.local_addr()?;
    let backend = match app.db.backend() {
        muster_app::Backend::Sqlite => "SQLite",
        muster_app::Backend::Postgres => "PostgreSQL",
    };
    let google = match &s.google {
        Some(g) => format!("on ({})", g.issuer),
        None => "off".into(),
    };
    let geoip = match &s.geoip_db {
        Some(p) => format!("GeoIP {}", p.display()),
        None => "no GeoIP".into(),
    };
    println!(
        "Muster listening on http://{addr} ({backend}); public URL {}; email via {}; Google sign-in {google}; {geoip}",
        s.public_url,
        outbound.describe()
    );
    println!("Create your first organization and its owner:");
    println!("  muster org create --slug acme --name \"Acme\"");
    println!(
        "  muster user create --org acme --email you@example.com --role owner --password-stdin"
    );
    println!("  muster api-token create --org acme --email you@example.com --name admin");
    let router = muster_web::router(state);
    // Nagle's algorithm holds back the tail of a response larger than one
    // segment until the client acknowledges the rest, and clients delay
    // that acknowledgement (40 ms on Linux): a SCIM Bulk answer or a page
    // of users would wait for it. Responses are written whole, so nothing
    // is gained by coalescing them.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    sealer.abort();
    session_listener.abort();
    scheduler.abort();
    mailer.abort();
    webhooks.abort();
    upkeep.abort();
    statistics.abort();
    app.seal_all().await?;
    app.db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, finish requests in flight, then exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}
