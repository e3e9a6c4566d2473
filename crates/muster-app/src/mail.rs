//! Email out: the two ways a message leaves — SMTP (lettre over rustls) or an
//! `.eml` file in the data directory's outbox folder when no SMTP server is
//! configured (DESIGN.md §2) — and the worker that delivers the outbox
//! (CONVENTIONS rule 13), with retry and back-off.

use crate::audit::{self, Event};
use crate::paging::rfc3339;
use crate::{App, Caller, Result, secrets};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use muster_store::outbox::OutboxRow;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
}

#[derive(Clone)]
pub enum Mailer {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        url: String,
    },
    Files {
        dir: PathBuf,
        from: Mailbox,
    },
}

impl Mailer {
    /// `smtp://[user:pass@]host[:port]` (STARTTLS when the server offers it)
    /// or `smtps://…` (TLS from the first byte, port 465 by default). Call
    /// within the Tokio runtime: the connection pool starts a task.
    pub fn smtp(url: &str, from: &str) -> std::result::Result<Self, String> {
        check_smtp_url(url)?;
        let from = check_sender(from)?;
        let u = url::Url::parse(url).map_err(|e| e.to_string())?;
        let host = u.host_str().unwrap_or_default().to_owned();
        let tls = TlsParameters::new(host.clone()).map_err(|e| e.to_string())?;
        let implicit_tls = u.scheme() == "smtps";
        let port = u.port().unwrap_or(if implicit_tls { 465 } else { 25 });
        let tls = if implicit_tls {
            Tls::Wrapper(tls)
        } else {
            Tls::Opportunistic(tls)
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
            .port(port)
            .tls(tls);
        if !u.username().is_empty() {
            let user = percent(u.username());
            let pass = percent(u.password().unwrap_or_default());
            b = b.credentials(Credentials::new(user, pass));
        }
        Ok(Self::Smtp {
            transport: b.build(),
            from,
            url: format!("{}://{host}:{port}", u.scheme()),
        })
    }

    /// Messages written as `.eml` files into `dir`.
    pub fn files(dir: PathBuf, from: &str) -> std::result::Result<Self, String> {
        Ok(Self::Files {
            dir,
            from: check_sender(from)?,
        })
    }

    /// Where messages go, for people (no credentials).
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp { url, .. } => url.clone(),
            Self::Files { dir, .. } => format!("{}/*.eml", dir.display()),
        }
    }

    pub async fn send(&self, e: &Email) -> std::result::Result<(), String> {
        let from = match self {
            Self::Smtp { from, .. } | Self::Files { from, .. } => from.clone(),
        };
        let to: Mailbox = e.to.parse().map_err(|err| format!("recipient: {err}"))?;
        let msg = Message::builder()
            .from(from)
            .to(to)
            .subject(&e.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(e.text.clone())
            .map_err(|err| err.to_string())?;
        match self {
            Self::Smtp { transport, .. } => transport
                .send(msg)
                .await
                .map(|_| ())
                .map_err(|err| err.to_string()),
            Self::Files { dir, .. } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|err| err.to_string())?;
                let name = format!("{}.eml", uuid::Uuid::now_v7().simple());
                let path = dir.join(name);
                tokio::fs::write(&path, msg.formatted())
                    .await
                    .map_err(|err| err.to_string())?;
                tracing::info!(to = %e.to, subject = %e.subject, path = %path.display(), "email written to the outbox folder");
                Ok(())
            }
        }
    }
}

/// Checks an SMTP URL without connecting: what start-up validates.
pub fn check_smtp_url(url: &str) -> std::result::Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(u.scheme(), "smtp" | "smtps") {
        return Err(format!("'{}:' is not smtp: or smtps:", u.scheme()));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// Checks a sender address (`Name <addr>` or `addr`).
pub fn check_sender(from: &str) -> std::result::Result<Mailbox, String> {
    from.parse().map_err(|e| format!("sender '{from}': {e}"))
}

fn percent(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// What one pass of the worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub sent: u64,
    pub failed: u64,
    /// Rows with nothing left to send (an invitation revoked meanwhile).
    pub dropped: u64,
}

/// After this many failures an email is given up (and logged as an error).
const MAX_ATTEMPTS: i64 = 10;

/// Delivers the emails that are due, up to `limit`.
pub async fn deliver_due(
    app: &App,
    mailer: &Mailer,
    public_url: &str,
    limit: i64,
) -> Result<Delivered> {
    let now = app.now_ms();
    let mut done = Delivered::default();
    for row in muster_store::outbox::due(&app.db, now, limit).await? {
        // A lease of five minutes: another instance's worker skips it meanwhile.
        if !muster_store::outbox::claim(&app.db, &row, now + 300_000).await? {
            continue;
        }
        match deliver(app, mailer, public_url, &row).await {
            Ok(true) => done.sent += 1,
            Ok(false) => done.dropped += 1,
            Err(why) => {
                done.failed += 1;
                let attempts = row.attempts + 1;
                let next = if attempts >= MAX_ATTEMPTS {
                    tracing::error!(email = %row.id, error = %why, "giving up on an email");
                    i64::MAX
                } else {
                    // 30 s, 1 min, 2 min, … up to 6 h.
                    now + (30_000i64 << attempts.min(10)).min(6 * 3_600_000)
                };
                tracing::warn!(email = %row.id, attempts, error = %why, "email not delivered; will retry");
                muster_store::outbox::mark_failed(&app.db, &row.id, next, &why).await?;
            }
        }
    }
    Ok(done)
}

/// Renders and sends one row. A secret the email carries (an invitation's
/// link, a verification code) is minted here and only its hash stored before
/// the message leaves: the secret exists only in the email.
async fn deliver(
    app: &App,
    mailer: &Mailer,
    public_url: &str,
    row: &OutboxRow,
) -> std::result::Result<bool, String> {
    let internal = |e: muster_store::StoreError| e.to_string();
    let org = muster_store::orgs::by_id(&app.db, &row.org_id)
        .await
        .map_err(internal)?
        .map(|o| o.name)
        .unwrap_or_default();
    let email = match row.kind.as_str() {
        "invitation" => mint_invitation(app, row, &org, public_url).await?,
        "verify_email" | "reset_password" | "change_email" | "mfa_code" => {
            mint_code(app, row, &org, public_url).await?
        }
        "new_device" => new_device(app, row, &org, public_url).await?,
        "webhook_disabled" => {
            crate::webhooks::delivery::disabled_email(app, row, &org, public_url).await?
        }
        "account_exists" => Some(crate::emails::account_exists(
            &row.to_address,
            &org,
            public_url,
        )),
        other => {
            tracing::error!(kind = other, email = %row.id, "unknown email kind; dropped");
            None
        }
    };
    let Some(email) = email else {
        let mut tx = app.db.begin().await.map_err(internal)?;
        muster_store::outbox::mark_sent(&mut tx, &row.id, app.now_ms())
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(internal)?;
        return Ok(false);
    };
    mailer.send(&email).await?;
    let mut tx = app.db.begin().await.map_err(internal)?;
    muster_store::outbox::mark_sent(&mut tx, &row.id, app.now_ms())
        .await
        .map_err(internal)?;
    let action = format!("email.sent.{}", row.kind);
    let action = if row.kind == "invitation" {
        "invitation.sent"
    } else {
        action.as_str()
    };
    let ev = Event::new(&row.org_id, action)
        .target("user", &row.user_id)
        .detail(
            if row.kind == "invitation" {
                "invitation"
            } else {
                "subject"
            },
            &row.subject_id,
        )
        .detail("to", &row.to_address)
        .detail("via", mailer.describe());
    audit::record(app, &mut tx, &Caller::system("mailer"), ev)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(internal)?;
    Ok(true)
}

async fn mint_invitation(
    app: &App,
    row: &OutboxRow,
    org: &str,
    public_url: &str,
) -> std::result::Result<Option<Email>, String> {
    let internal = |e: muster_store::StoreError| e.to_string();
    let secret = secrets::random_secret();
    let mut tx = app.db.begin().await.map_err(internal)?;
    let expires = muster_store::invitations::rotate_secret(
        &mut tx,
        &row.subject_id,
        &secrets::hash_secret(&secret),
        app.now_ms(),
    )
    .await
    .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    Ok(expires.map(|e| invitation_email(&row.to_address, org, public_url, &secret, e)))
}

/// The new-device notice: where and on what the account was signed in.
async fn new_device(
    app: &App,
    row: &OutboxRow,
    org: &str,
    public_url: &str,
) -> std::result::Result<Option<Email>, String> {
    let internal = |e: muster_store::StoreError| e.to_string();
    let Some(s) = muster_store::devices::sign_in(&app.db, &row.subject_id)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let device = match &s.device_id {
        Some(d) => muster_store::devices::get(&app.db, d)
            .await
            .map_err(internal)?
            .map(|d| d.name),
        None => None,
    };
    let at = time::OffsetDateTime::from_unix_timestamp(s.at.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| rfc3339(s.at));
    let mut what = device.unwrap_or_else(|| "A new device".into());
    if let Some(ip) = &s.ip {
        what.push_str(&format!(", from {ip}"));
    }
    if let Some(c) = &s.country {
        what.push_str(&format!(" ({c})"));
    }
    what.push_str(&format!(", at {at}"));
    Ok(Some(crate::emails::new_device(
        &row.to_address,
        org,
        public_url,
        &what,
    )))
}

/// Mints the link secret and the 6-digit code of an email token; the five
/// minutes of validity start now, when the email leaves.
async fn mint_code(
    app: &App,
    row: &OutboxRow,
    org: &str,
    public_url: &str,
) -> std::result::Result<Option<Email>, String> {
    let internal = |e: muster_store::StoreError| e.to_string();
    let secret = secrets::random_secret();
    let code = crate::signin::six_digits();
    let now = app.now_ms();
    let mut tx = app.db.begin().await.map_err(internal)?;
    let minted = muster_store::email_tokens::mint(
        &mut tx,
        &row.subject_id,
        &secrets::hash_secret(&secret),
        &crate::signin::code_hash(&row.subject_id, &code),
        now,
        now + crate::signin::CODE_VALID_MS,
    )
    .await
    .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    let Some(t) = minted else { return Ok(None) };
    let id = uuid::Uuid::try_parse(&t.id).map_err(|e| e.to_string())?;
    let token = muster_core::tokens::format(crate::signin::EMAIL_TOKEN_PREFIX, id, &secret);
    Ok(Some(crate::emails::code_email(
        &row.kind,
        &row.to_address,
        org,
        public_url,
        &token,
        &code,
    )))
}

/// The invitation email: plain text, the link, when it stops working.
pub fn invitation_email(
    to: &str,
    org: &str,
    public_url: &str,
    secret: &str,
    expires: i64,
) -> Email {
    let base = public_url.trim_end_matches('/');
    // A date a person reads: minutes, no fractions of a second.
    let until = time::OffsetDateTime::from_unix_timestamp(expires.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| rfc3339(expires));
    Email {
        to: to.to_owned(),
        subject: format!("You are invited to join {org}"),
        text: format!(
            "Hello,\n\n\
             {org} has invited you to join them.\n\n\
             Accept the invitation and set up your account here:\n\
             {base}/invitations/accept?token={secret}\n\n\
             The link can be used once and works until {until}.\n\
             If you did not expect this invitation, you can ignore this email.\n"
        ),
    }
}

/// Delivers until nothing is due (or `rounds` passes found nothing to do
/// but failures): what a CLI command runs before it exits.
pub async fn drain(app: &App, mailer: &Mailer, public_url: &str) -> Result<Delivered> {
    let mut total = Delivered::default();
    loop {
        let d = deliver_due(app, mailer, public_url, 100).await?;
        total.sent += d.sent;
        total.failed += d.failed;
        total.dropped += d.dropped;
        if d.sent + d.dropped == 0 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invitation_email_carries_the_link_and_its_expiry() {
        let e = invitation_email(
            "ann@acme.example",
            "Acme",
            "https://id.acme.example/",
            "s3cret",
            0,
        );
        assert_eq!(e.subject, "You are invited to join Acme");
        assert!(
            e.text
                .contains("https://id.acme.example/invitations/accept?token=s3cret\n")
        );
        assert!(e.text.contains("works until 1970-01-01 00:00 UTC."));
    }
}
