//! Domain verification (issue 7 §6). An organization claims a domain, puts
//! `muster-verification=<token>` in the domain's DNS as a TXT record, and
//! asks Muster to check it; once verified the domain is the organization's
//! alone, and — when its sign-up policy says so — people with an address
//! at it may join the organization by signing up.

use crate::audit::{self, Event};
use crate::caller::org_with;
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;
use muster_store::domains::DomainRow;
use serde::{Deserialize, Serialize};

/// Mail providers anyone can have an address at: proving one says nothing
/// about who works for an organization, so none can be claimed.
const CONSUMER: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "126.com",
    "zoho.com",
    "fastmail.com",
    "tutanota.com",
    "hey.com",
    "orange.fr",
    "free.fr",
    "t-online.de",
];

const PREFIX: &str = "muster-verification=";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DomainView {
    pub domain: String,
    pub verified: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub verified_at: Option<String>,
    /// The TXT record to publish at the domain itself.
    pub txt_record: String,
}

impl From<DomainRow> for DomainView {
    fn from(d: DomainRow) -> Self {
        Self {
            txt_record: format!("{PREFIX}{}", d.token),
            verified: d.verified_at.is_some(),
            verified_at: d.verified_at.map(crate::paging::rfc3339),
            domain: d.domain,
        }
    }
}

/// A domain name as DNS spells it: lower case, letters, digits and hyphens,
/// at least two labels, internationalized names in their `xn--` form.
fn normalize(domain: &str) -> Result<String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let ok = d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(AppError::invalid(
            "domain",
            "give a domain name such as example.com (internationalized names in their xn-- form)",
        ));
    }
    if CONSUMER.contains(&d.as_str()) {
        return Err(AppError::invalid(
            "domain",
            format!(
                "{d} is a public mail provider: anyone can have an address there, so it cannot be claimed"
            ),
        ));
    }
    Ok(d)
}

fn taken() -> AppError {
    AppError::Conflict {
        field: "domain",
        message: "another organization has verified this domain".into(),
    }
}

pub async fn list(app: &App, caller: &Caller, slug: &str) -> Result<Vec<DomainView>> {
    let org = org_with(app, caller, slug, Permission::UsersRead).await?;
    Ok(muster_store::domains::list(&app.db, &org.id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainInput {
    pub domain: String,
}

/// Claims a domain (`org.manage`): the answer names the TXT record to publish.
pub async fn claim(
    app: &App,
    caller: &Caller,
    slug: &str,
    input: DomainInput,
) -> Result<DomainView> {
    let org = org_with(app, caller, slug, Permission::OrgManage).await?;
    let domain = normalize(&input.domain)?;
    let mut tx = app.db.begin().await?;
    if muster_store::domains::verified_elsewhere(&mut tx, &org.id, &domain).await? {
        return Err(taken());
    }
    let row = DomainRow {
        org_id: org.id.clone(),
        domain,
        token: crate::secrets::random_secret(),
        verified_at: None,
        created_at: app.now_ms(),
    };
    muster_store::domains::insert(&mut tx, &row)
        .await
        .map_err(|e| {
            crate::error::conflict(
                e,
                &[(
                    "org_domains",
                    "domain",
                    "this organization has already claimed this domain",
                )],
            )
        })?;
    let ev = Event::new(&org.id, "domain.claimed")
        .target("domain", &row.domain)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Looks the domain's TXT records up and, when one carries the claim's
/// token, marks the domain verified.
pub async fn verify(app: &App, caller: &Caller, slug: &str, domain: &str) -> Result<DomainView> {
    let org = org_with(app, caller, slug, Permission::OrgManage).await?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let row = muster_store::domains::get(&app.db, &org.id, &domain)
        .await?
        .ok_or(AppError::NotFound("domain"))?;
    if row.verified_at.is_some() {
        return Ok(row.into());
    }
    let resolver = app
        .resolver()
        .map_err(|e| AppError::Refused(e.to_string()))?;
    let records = resolver.txt(&domain).await.map_err(|e| {
        AppError::Refused(format!(
            "could not look {domain} up: {e}; try again shortly"
        ))
    })?;
    let wanted = format!("{PREFIX}{}", row.token);
    if !records.iter().any(|r| r.trim() == wanted) {
        let ev = Event::new(&org.id, "domain.verification_failed")
            .target("domain", &domain)
            .detail("txt_records_found", records.len())
            .security();
        let mut tx = app.db.begin().await?;
        audit::record(app, &mut tx, caller, ev).await?;
        tx.commit().await?;
        return Err(AppError::invalid(
            "domain",
            format!(
                "{domain} has no TXT record \"{wanted}\" yet ({} other TXT record(s) found); DNS changes can take a while to be seen",
                records.len()
            ),
        ));
    }
    let mut tx = app.db.begin().await?;
    if muster_store::domains::verified_elsewhere(&mut tx, &org.id, &domain).await? {
        return Err(taken());
    }
    let now = app.now_ms();
    muster_store::domains::mark_verified(&mut tx, &org.id, &domain, now)
        .await
        .map_err(|e| {
            crate::error::conflict(
                e,
                &[(
                    "org_domains",
                    "domain",
                    "another organization has verified this domain",
                )],
            )
        })?;
    let ev = Event::new(&org.id, "domain.verified")
        .target("domain", &domain)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(DomainRow {
        verified_at: Some(now),
        ..row
    }
    .into())
}

/// Gives a claim up; a verified domain is then free for others.
pub async fn remove(app: &App, caller: &Caller, slug: &str, domain: &str) -> Result<()> {
    let org = org_with(app, caller, slug, Permission::OrgManage).await?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let mut tx = app.db.begin().await?;
    if muster_store::domains::delete(&mut tx, &org.id, &domain).await? == 0 {
        return Err(AppError::NotFound("domain"));
    }
    let ev = Event::new(&org.id, "domain.removed")
        .target("domain", &domain)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// Whether someone with this address may sign up into the organization
/// because its domain is one the organization verified and lets join.
pub(crate) async fn joins_by_domain(
    app: &App,
    org: &muster_store::orgs::OrgRow,
    email: &str,
) -> Result<bool> {
    let policy: crate::signin::SignupPolicy = crate::signin::setting_in(&org.settings, "signup");
    if !policy.join_verified_domains {
        return Ok(false);
    }
    let Some((_, domain)) = email.rsplit_once('@') else {
        return Ok(false);
    };
    Ok(muster_store::domains::is_verified(&app.db, &org.id, &domain.to_ascii_lowercase()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalized_and_bad_ones_refused() {
        assert_eq!(normalize(" Example.COM. ").unwrap(), "example.com");
        assert_eq!(
            normalize("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "localhost",
            "exa mple.com",
            "-a.com",
            "a-.com",
            "a..com",
            "1.2.3.4",
            "bücher.de",
            "gmail.com",
            "GMail.com",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
