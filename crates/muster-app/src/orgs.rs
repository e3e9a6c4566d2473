//! Organizations: the personal directory and business tenants, each created
//! with its built-in roles.

use crate::audit::{self, Event};
use crate::error::conflict;
use crate::{App, AppError, Caller, Result};
use muster_core::orgs::{OrgKind, PERSONAL_SLUG};
use muster_core::rbac::BuiltinRole;
use muster_core::{OrgId, OrgSlug, Permission, RoleId};
use muster_store::orgs::OrgRow;
use muster_store::roles::RoleRow;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrgView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub kind: OrgKind,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
}

impl From<OrgRow> for OrgView {
    fn from(o: OrgRow) -> Self {
        Self {
            id: o.id,
            slug: o.slug,
            name: o.name,
            kind: OrgKind::parse(&o.kind).unwrap_or(OrgKind::Business),
            created_at: crate::paging::rfc3339(o.created_at),
        }
    }
}

pub(crate) fn valid_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 128 || n.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "name",
            "give a name of 1 to 128 characters",
        ));
    }
    Ok(n.to_owned())
}

/// Creates a business organization (operators only: the CLI).
pub async fn create(app: &App, caller: &Caller, slug: &str, name: &str) -> Result<OrgView> {
    if !matches!(caller.principal, crate::Principal::Operator { .. }) {
        return Err(AppError::Forbidden("operator"));
    }
    let slug = OrgSlug::parse(slug).map_err(|e| AppError::invalid("slug", e.to_string()))?;
    if slug.as_str() == PERSONAL_SLUG {
        return Err(AppError::Conflict {
            field: "slug",
            message: "that slug is reserved".into(),
        });
    }
    let name = valid_name(name)?;
    insert(app, caller, slug.as_str(), &name, OrgKind::Business).await
}

pub(crate) async fn insert(
    app: &App,
    caller: &Caller,
    slug: &str,
    name: &str,
    kind: OrgKind,
) -> Result<OrgView> {
    let mut tx = app.db.begin().await?;
    let row = insert_in(app, &mut tx, caller, slug, name, kind, "{}").await?;
    tx.commit().await?;
    Ok(row.into())
}

/// An organization with its built-in roles and its `org.created` event, in
/// the caller's transaction (business sign-up writes its owner in the same one).
pub(crate) async fn insert_in(
    app: &App,
    tx: &mut muster_store::Tx,
    caller: &Caller,
    slug: &str,
    name: &str,
    kind: OrgKind,
    settings: &str,
) -> Result<OrgRow> {
    let now = app.now_ms();
    let row = OrgRow {
        id: OrgId::new().to_string(),
        slug: slug.to_owned(),
        name: name.to_owned(),
        kind: kind.as_str().to_owned(),
        settings: settings.to_owned(),
        created_at: now,
        updated_at: now,
    };
    muster_store::orgs::insert(tx, &row).await.map_err(|e| {
        conflict(
            e,
            &[("slug", "slug", "an organization with that slug exists")],
        )
    })?;
    for r in BuiltinRole::ALL {
        muster_store::roles::insert(
            tx,
            &RoleRow {
                id: RoleId::new().to_string(),
                org_id: row.id.clone(),
                role_key: r.key().into(),
                name: r.key().into(),
                description: Some(r.description().into()),
                permissions: r.permissions().to_stored(),
                builtin: true,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
    }
    audit::record(
        app,
        tx,
        caller,
        Event::new(&row.id, "org.created")
            .target("org", &row.id)
            .change("slug", (), slug)
            .change("name", (), name),
    )
    .await?;
    Ok(row)
}

/// The built-in personal directory exists in every deployment.
pub async fn ensure_personal(app: &App) -> Result<()> {
    if muster_store::orgs::by_slug(&app.db, PERSONAL_SLUG)
        .await?
        .is_some()
    {
        return Ok(());
    }
    match insert(
        app,
        &Caller::operator("system"),
        PERSONAL_SLUG,
        "Personal accounts",
        OrgKind::Personal,
    )
    .await
    {
        Ok(_) | Err(AppError::Conflict { .. }) => Ok(()), // another instance won the race
        Err(e) => Err(e),
    }
}

pub async fn get(app: &App, caller: &Caller, slug: &str) -> Result<OrgView> {
    let org = crate::caller::org(app, caller, slug).await?;
    Ok(muster_store::orgs::by_id(&app.db, &org.id)
        .await?
        .ok_or(AppError::NotFound("organization"))?
        .into())
}

pub async fn rename(app: &App, caller: &Caller, slug: &str, name: &str) -> Result<OrgView> {
    let org = crate::caller::org_with(app, caller, slug, Permission::OrgManage).await?;
    let org = muster_store::orgs::by_id(&app.db, &org.id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let name = valid_name(name)?;
    let mut tx = app.db.begin().await?;
    muster_store::orgs::update_name(&mut tx, &org.id, &name, app.now_ms()).await?;
    audit::record(
        app,
        &mut tx,
        caller,
        Event::new(&org.id, "org.updated")
            .target("org", &org.id)
            .change("name", &org.name, &name),
    )
    .await?;
    tx.commit().await?;
    Ok(OrgRow { name, ..org }.into())
}

/// One key of the organization's settings document (its policies): reads the
/// current value, lets `decide` produce the new one, stores it and writes the
/// audit event, in one transaction. Every policy change goes through here.
pub(crate) async fn update_setting<T>(
    app: &App,
    caller: &Caller,
    org_id: &str,
    key: &str,
    action: &str,
    new: &T,
) -> Result<()>
where
    T: Serialize + serde::de::DeserializeOwned + Default,
{
    let mut tx = app.db.begin().await?;
    let row = muster_store::orgs::get_in(&mut tx, org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    let mut settings: serde_json::Value =
        serde_json::from_str(&row.settings).unwrap_or_else(|_| serde_json::json!({}));
    let before: T = settings
        .get(key)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if let Some(o) = settings.as_object_mut() {
        o.insert(key.to_owned(), serde_json::json!(new));
    }
    muster_store::orgs::update_settings(&mut tx, org_id, &settings.to_string(), app.now_ms())
        .await?;
    let ev = Event::new(org_id, action)
        .target("organization", org_id)
        .change(key, &before, new)
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}

/// One key of the organization's settings, or its default.
pub(crate) async fn setting<T>(app: &App, org_id: &str, key: &str) -> Result<T>
where
    T: serde::de::DeserializeOwned + Default,
{
    let org = muster_store::orgs::by_id(&app.db, org_id)
        .await?
        .ok_or(AppError::NotFound("organization"))?;
    Ok(crate::signin::setting(&org, key))
}

/// An organization's display name by slug, for public pages (sign-in "to
/// Acme"); `None` for an unknown slug.
pub async fn public_name(app: &App, slug: &str) -> Option<String> {
    muster_store::orgs::by_slug(&app.db, slug)
        .await
        .ok()
        .flatten()
        .map(|o| o.name)
}
