//! SCIM `/Groups` (RFC 7644 §3.3–§3.6). Members may be users or groups.
//! Membership PATCHes — what IdPs send most — are applied as deltas and never
//! load the member list; `excludedAttributes=members` never loads it either.

use super::users::scim_org;
use super::{ListParams, Plan, Preconditions};
use crate::audit::{self, Event};
use crate::groups::{MemberKind, member_change_in};
use crate::paging::rfc3339;
use crate::{App, AppError, Caller, Result};
use muster_core::users::ManagedBy;
use muster_core::{GroupId, Permission};
use muster_scim::filter::{CompValue, CompareOp, Filter};
use muster_scim::patch::{self, OpKind, Operation};
use muster_scim::project::Projection;
use muster_scim::resources::{GroupDoc, MemberDoc, canonical, parse_group, render_group};
use muster_scim::schema::Resource;
use muster_scim::{ScimError, normalize};
use muster_store::Tx;
use muster_store::groups::GroupRow;
use serde_json::Value;

async fn render(app: &App, base: &str, g: &GroupRow, with_members: bool) -> Result<Value> {
    let members = if with_members {
        Some(muster_store::groups::members(&app.db, &g.id).await?)
    } else {
        None
    };
    let docs: Option<Vec<MemberDoc>> = members.as_ref().map(|ms| {
        ms.iter()
            .map(|m| MemberDoc {
                id: &m.id,
                is_group: m.kind == "group",
            })
            .collect()
    });
    Ok(render_group(&GroupDoc {
        base,
        id: &g.id,
        display_name: &g.name,
        external_id: g.external_id.as_deref(),
        created: &rfc3339(g.created_at),
        last_modified: &rfc3339(g.updated_at),
        version: g.version,
        members: docs.as_deref(),
    }))
}

pub async fn get(
    app: &App,
    caller: &Caller,
    base: &str,
    id: &str,
    p: &Projection,
) -> Result<Value> {
    let org = scim_org(app, caller, Permission::UsersRead).await?;
    let g = muster_store::groups::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("group"))?;
    let doc = render(app, base, &g, p.wants(Resource::Group, "members")).await?;
    Ok(p.apply(Resource::Group, doc))
}

fn mentions_members(f: &Filter) -> bool {
    match f {
        Filter::And(a, b) | Filter::Or(a, b) => mentions_members(a) || mentions_members(b),
        Filter::Not(a) => mentions_members(a),
        Filter::Present(p) | Filter::Compare(p, ..) | Filter::ValuePath(p, _) => {
            p.name.eq_ignore_ascii_case("members")
        }
    }
}

/// `(displayName, externalId, id)` from an indexed equality, if any.
fn narrowing(f: &Filter) -> Option<(Option<String>, Option<String>, Option<String>)> {
    match f {
        Filter::And(a, b) => narrowing(a).or_else(|| narrowing(b)),
        Filter::Compare(p, CompareOp::Eq, CompValue::Str(v)) if p.sub.is_none() => {
            match p.name.to_ascii_lowercase().as_str() {
                "displayname" => Some((Some(v.clone()), None, None)),
                "externalid" => Some((None, Some(v.clone()), None)),
                "id" => Some((None, None, Some(v.clone()))),
                _ => None,
            }
        }
        _ => None,
    }
}

pub async fn list(app: &App, caller: &Caller, base: &str, params: &ListParams) -> Result<Value> {
    let org = scim_org(app, caller, Permission::UsersRead).await?;
    let plan = Plan::new(Resource::Group, params)?;
    let with_members = plan.projection.wants(Resource::Group, "members")
        || plan.filter.as_ref().is_some_and(mentions_members);
    let rows = match plan.filter.as_ref().and_then(narrowing) {
        Some((_, _, Some(id))) => muster_store::groups::get(&app.db, &org.id, &id)
            .await?
            .into_iter()
            .collect(),
        Some((name, ext, None)) => {
            muster_store::groups::lookup(&app.db, &org.id, name.as_deref(), ext.as_deref()).await?
        }
        None => {
            if plan.filter.is_none() && plan.count == 0 {
                let total = muster_store::groups::count(&app.db, &org.id).await?;
                return Ok(plan.response(Resource::Group, total as usize, vec![], None));
            }
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page =
                    muster_store::groups::list(&app.db, &org.id, after.as_deref(), 1000).await?;
                let done = page.len() < 1000;
                after = page.last().map(|g| g.id.clone());
                all.extend(page);
                if done || all.len() as i64 > super::MAX_SCAN {
                    break;
                }
            }
            all
        }
    };
    let mut docs = Vec::with_capacity(rows.len());
    for g in &rows {
        docs.push(render(app, base, g, with_members).await?);
    }
    plan.finish(Resource::Group, docs)
}

/// A member's id and the type the client gave (`User`/`Group`), if any.
type MemberRef = (String, Option<String>);

/// Resolves a member id to a user or a group of this organization.
async fn member_kind(
    tx: &mut Tx,
    org_id: &str,
    id: &str,
    hint: Option<&str>,
) -> Result<MemberKind> {
    let hint = hint.map(str::to_ascii_lowercase);
    if hint.as_deref() != Some("group") && muster_store::users::exists(tx, org_id, id).await? {
        return Ok(MemberKind::User);
    }
    if hint.as_deref() != Some("user")
        && muster_store::groups::get_in(tx, org_id, id)
            .await?
            .is_some()
    {
        return Ok(MemberKind::Group);
    }
    Err(ScimError::value(format!(
        "member '{id}' is not a user or group of this organization"
    ))
    .into())
}

/// Brings the group's members to exactly `wanted`.
async fn set_members(
    app: &App,
    tx: &mut Tx,
    caller: &Caller,
    org_id: &str,
    group_id: &str,
    wanted: &[MemberRef],
) -> Result<()> {
    let current = muster_store::groups::member_ids_in(tx, group_id).await?;
    for (is_group, id) in &current {
        if !wanted.iter().any(|(w, _)| w == id) {
            let kind = if *is_group {
                MemberKind::Group
            } else {
                MemberKind::User
            };
            member_change_in(app, tx, caller, org_id, group_id, kind, id, false).await?;
        }
    }
    for (id, hint) in wanted {
        if !current.iter().any(|(_, c)| c == id) {
            let kind = member_kind(tx, org_id, id, hint.as_deref()).await?;
            member_change_in(app, tx, caller, org_id, group_id, kind, id, true).await?;
        }
    }
    Ok(())
}

fn group_conflict(e: muster_store::StoreError) -> AppError {
    match e {
        muster_store::StoreError::Conflict(what) if what.contains("external") => {
            ScimError::uniqueness("externalId: a group of this organization has this externalId")
                .into()
        }
        muster_store::StoreError::Conflict(_) => {
            ScimError::uniqueness("displayName: a group of this organization has this name").into()
        }
        other => other.into(),
    }
}

pub async fn create(app: &App, caller: &Caller, base: &str, body: Value) -> Result<Value> {
    let org = scim_org(app, caller, Permission::GroupsWrite).await?;
    let input = parse_group(&canonical(Resource::Group, body)?)?;
    let now = app.now_ms();
    let row = GroupRow {
        id: GroupId::new().to_string(),
        org_id: org.id.clone(),
        name: input.display_name,
        description: None,
        external_id: input.external_id,
        managed_by: ManagedBy::Scim.as_str().into(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let mut tx = app.db.begin().await?;
    tx.lock_org(&org.id).await?;
    muster_store::groups::insert(&mut tx, &row)
        .await
        .map_err(group_conflict)?;
    let ev = Event::new(&org.id, "group.created")
        .target("group", &row.id)
        .change("name", (), &row.name)
        .detail("external_id", &row.external_id);
    audit::record(app, &mut tx, caller, ev).await?;
    set_members(app, &mut tx, caller, &org.id, &row.id, &input.members).await?;
    tx.commit().await?;
    let g = muster_store::groups::get(&app.db, &org.id, &row.id)
        .await?
        .ok_or(AppError::NotFound("group"))?;
    render(app, base, &g, true).await
}

/// Stores a whole new state of the group (PUT, and PATCHes that touch more
/// than membership).
async fn store(
    app: &App,
    caller: &Caller,
    org_id: &str,
    id: &str,
    pre: &Preconditions,
    edit: impl FnOnce(Value) -> Result<Value>,
    base: &str,
) -> Result<()> {
    let mut tx = app.db.begin().await?;
    tx.lock_org(org_id).await?;
    let mut row = muster_store::groups::get_in(&mut tx, org_id, id)
        .await?
        .ok_or(AppError::NotFound("group"))?;
    pre.check(row.version)?;
    let current = {
        let members = muster_store::groups::member_ids_in(&mut tx, id).await?;
        let mut doc = render_group(&GroupDoc {
            base,
            id: &row.id,
            display_name: &row.name,
            external_id: row.external_id.as_deref(),
            created: "",
            last_modified: "",
            version: row.version,
            members: None,
        });
        let list: Vec<Value> = members
            .iter()
            .map(
                |(g, m)| serde_json::json!({"value": m, "type": if *g { "Group" } else { "User" }}),
            )
            .collect();
        if let Some(o) = doc.as_object_mut()
            && !list.is_empty()
        {
            o.insert("members".into(), Value::Array(list));
        }
        doc
    };
    let input = parse_group(&edit(current)?)?;
    let mut ev = Event::new(org_id, "group.updated").target("group", id);
    if input.display_name != row.name {
        ev = ev.change("name", &row.name, &input.display_name);
    }
    if input.external_id != row.external_id {
        ev = ev.change("external_id", &row.external_id, &input.external_id);
    }
    row.name = input.display_name;
    row.external_id = input.external_id;
    row.managed_by = ManagedBy::Scim.as_str().into();
    row.updated_at = app.now_ms();
    muster_store::groups::update_scim(&mut tx, &row)
        .await
        .map_err(group_conflict)?;
    if !ev.changes.is_empty() {
        audit::record(app, &mut tx, caller, ev).await?;
    }
    set_members(app, &mut tx, caller, org_id, id, &input.members).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn replace(
    app: &App,
    caller: &Caller,
    base: &str,
    id: &str,
    body: Value,
    pre: &Preconditions,
) -> Result<Value> {
    let org = scim_org(app, caller, Permission::GroupsWrite).await?;
    let doc = canonical(Resource::Group, body)?;
    store(app, caller, &org.id, id, pre, |_| Ok(doc), base).await?;
    let g = muster_store::groups::get(&app.db, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("group"))?;
    render(app, base, &g, true).await
}

/// A membership-only operation: `add members`, `remove members` with a value
/// list, or `remove members[value eq "…"]`. Returns `(add, ids)`.
fn member_delta(op: &Operation) -> Option<(bool, Vec<MemberRef>)> {
    let path = op.path.as_ref()?;
    if !path.attr.name.eq_ignore_ascii_case("members")
        || path.attr.sub.is_some()
        || path.sub.is_some()
    {
        return None;
    }
    let attr = Resource::Group.attr(None, "members")?.1;
    match (op.kind, &path.filter) {
        (OpKind::Add, None) | (OpKind::Remove, None) => {
            let v = normalize::value(attr, op.value.clone()?).ok()?;
            let ids = v
                .as_array()?
                .iter()
                .map(|m| {
                    Some((
                        m.get("value")?.as_str()?.to_owned(),
                        m.get("type").and_then(Value::as_str).map(str::to_owned),
                    ))
                })
                .collect::<Option<Vec<_>>>()?;
            (!ids.is_empty()).then_some((op.kind == OpKind::Add, ids))
        }
        (OpKind::Remove, Some(Filter::Compare(p, CompareOp::Eq, CompValue::Str(v))))
            if p.name.eq_ignore_ascii_case("value") && p.sub.is_none() =>
        {
            Some((false, vec![(v.clone(), None)]))
        }
        _ => None,
    }
}

/// PATCH. Returns `None` (204 No Content, RFC 7644 §3.5.2) when only the
/// membership changed, so that the member list is never loaded for it.
pub async fn patch(
    app: &App,
    caller: &Caller,
    base: &str,
    id: &str,
    body: Value,
    pre: &Preconditions,
) -> Result<Option<(Value, i64)>> {
    let org = scim_org(app, caller, Permission::GroupsWrite).await?;
    let ops = patch::parse(&body)?;
    let deltas: Option<Vec<_>> = ops.iter().map(member_delta).collect();
    let Some(deltas) = deltas else {
        store(
            app,
            caller,
            &org.id,
            id,
            pre,
            |mut doc| {
                patch::apply(Resource::Group, &mut doc, &ops)?;
                Ok(doc)
            },
            base,
        )
        .await?;
        let g = muster_store::groups::get(&app.db, &org.id, id)
            .await?
            .ok_or(AppError::NotFound("group"))?;
        let v = g.version;
        return Ok(Some((render(app, base, &g, true).await?, v)));
    };
    let mut tx = app.db.begin().await?;
    tx.lock_org(&org.id).await?;
    let row = muster_store::groups::get_in(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("group"))?;
    pre.check(row.version)?;
    let mut changed = false;
    for (add, ids) in deltas {
        for (member, hint) in ids {
            let kind = if add {
                member_kind(&mut tx, &org.id, &member, hint.as_deref()).await?
            } else {
                // Removing someone who is not a member changes nothing (RFC
                // 7644 §3.5.2.2 lets the IdP repeat a removal).
                match member_kind(&mut tx, &org.id, &member, hint.as_deref()).await {
                    Ok(k) => k,
                    Err(_) => continue,
                }
            };
            changed |=
                member_change_in(app, &mut tx, caller, &org.id, id, kind, &member, add).await?;
        }
    }
    if changed {
        muster_store::groups::touch(&mut tx, &org.id, id, app.now_ms()).await?;
    }
    tx.commit().await?;
    Ok(None)
}

pub async fn delete(app: &App, caller: &Caller, id: &str, pre: &Preconditions) -> Result<()> {
    let org = scim_org(app, caller, Permission::GroupsWrite).await?;
    let mut tx = app.db.begin().await?;
    let row = muster_store::groups::get_in(&mut tx, &org.id, id)
        .await?
        .ok_or(AppError::NotFound("group"))?;
    pre.check(row.version)?;
    muster_store::groups::delete(&mut tx, &org.id, id).await?;
    let ev = Event::new(&org.id, "group.deleted")
        .target("group", id)
        .change("name", &row.name, ())
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(())
}
