//! `muster export`: an organization's users written out as CSV or JSON Lines,
//! in the form `muster import` reads back (issue 9: the round trip is
//! lossless). No secrets: no password hash, no token. Users are read in id
//! order a page at a time, so memory stays flat for any directory size.

use super::line::MUSTER;
use crate::caller::org_with;
use crate::paging::rfc3339;
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;
use muster_core::users::{MultiValue, Profile};
use muster_scim::schema::{ENTERPRISE, USER};
use muster_store::users::{ListQuery, UserRow};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::Write;

/// The CSV columns, in order; every one is a header `import` resolves.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "userName",
    "email",
    "externalId",
    "givenName",
    "familyName",
    "middleName",
    "formattedName",
    "honorificPrefix",
    "honorificSuffix",
    "displayName",
    "nickName",
    "title",
    "userType",
    "profileUrl",
    "locale",
    "timezone",
    "preferredLanguage",
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
    "emails",
    "phoneNumbers",
    "roles",
    "customAttributes",
    "active",
    "state",
    "source",
    "created",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "csv" => Ok(Self::Csv),
            "jsonl" => Ok(Self::Jsonl),
            other => Err(AppError::invalid(
                "format",
                format!("unknown format '{other}': use csv or jsonl"),
            )),
        }
    }
}

const PAGE: i64 = 1000;

/// Writes every user of the organization to `out`; returns how many.
pub async fn export(
    app: &App,
    caller: &Caller,
    org_slug: &str,
    format: ExportFormat,
    out: &mut (dyn Write + Send),
) -> Result<u64> {
    let org = org_with(app, caller, org_slug, Permission::UsersRead).await?;
    let io = |e: std::io::Error| AppError::invalid("output", e.to_string());
    let csv_err = |e: csv::Error| AppError::invalid("output", e.to_string());
    // A CSV writer per page, over a buffer: the page's rows go out in one write.
    let mut csv = csv::Writer::from_writer(Vec::new());
    if format == ExportFormat::Csv {
        csv.write_record(CSV_COLUMNS).map_err(csv_err)?;
    }
    let mut after = None;
    let mut n = 0u64;
    loop {
        let q = ListQuery {
            after: after.clone(),
            limit: PAGE,
            ..Default::default()
        };
        let rows = muster_store::users::list(&app.db, &org.id, &q).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id.clone());
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let mut roles: HashMap<String, Vec<String>> = HashMap::new();
        for (u, k) in muster_store::roles::org_role_keys(&app.db, &org.id, &ids).await? {
            roles.entry(u).or_default().push(k);
        }
        let profiles: Vec<Profile> = rows
            .iter()
            .map(|r| serde_json::from_str(&r.profile).unwrap_or_default())
            .collect();
        let manager_ids: Vec<&str> = profiles
            .iter()
            .filter_map(|p| p.enterprise.manager.as_deref())
            .collect();
        let managers: HashMap<String, String> =
            muster_store::users::emails_of(&app.db, &org.id, &manager_ids)
                .await?
                .into_iter()
                .collect();
        for (row, p) in rows.iter().zip(&profiles) {
            let u = Exported {
                row,
                profile: p,
                roles: roles.get(&row.id).map(Vec::as_slice).unwrap_or_default(),
                manager: p
                    .enterprise
                    .manager
                    .as_ref()
                    .map(|m| managers.get(m).cloned().unwrap_or_else(|| m.clone())),
            };
            match format {
                ExportFormat::Jsonl => {
                    serde_json::to_writer(&mut *out, &u.json()).map_err(|e| io(e.into()))?;
                    out.write_all(b"\n").map_err(io)?;
                }
                ExportFormat::Csv => csv.write_record(u.cells()).map_err(csv_err)?,
            }
            n += 1;
        }
        let page = std::mem::replace(&mut csv, csv::Writer::from_writer(Vec::new()));
        out.write_all(&page.into_inner().map_err(|e| io(e.into_error()))?)
            .map_err(io)?;
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    out.write_all(&csv.into_inner().map_err(|e| io(e.into_error()))?)
        .map_err(io)?;
    out.flush().map_err(io)?;
    Ok(n)
}

struct Exported<'a> {
    row: &'a UserRow,
    profile: &'a Profile,
    roles: &'a [String],
    /// The manager's email (or id, if that user is gone).
    manager: Option<String>,
}

fn values(v: &[MultiValue]) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

impl Exported<'_> {
    /// SCIM's `active`: every state but `deactivated` (an import of `false`
    /// deactivates, so a deactivated user comes back deactivated).
    fn active(&self) -> bool {
        self.row.state != muster_core::UserState::Deactivated.as_str()
    }

    /// A SCIM user (RFC 7643 §4.1, §4.3) with Muster's extension.
    fn json(&self) -> Value {
        let p = self.profile;
        let mut m = Map::new();
        let put = |m: &mut Map<String, Value>, k: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        };
        m.insert("id".into(), json!(self.row.id));
        m.insert("userName".into(), json!(self.row.user_name));
        m.insert("active".into(), json!(self.active()));
        put(&mut m, "externalId", &p.external_id);
        let mut name = Map::new();
        put(&mut name, "formatted", &p.formatted_name);
        put(&mut name, "givenName", &p.given_name);
        put(&mut name, "familyName", &p.family_name);
        put(&mut name, "middleName", &p.middle_name);
        put(&mut name, "honorificPrefix", &p.honorific_prefix);
        put(&mut name, "honorificSuffix", &p.honorific_suffix);
        if !name.is_empty() {
            m.insert("name".into(), Value::Object(name));
        }
        put(&mut m, "displayName", &p.display_name);
        put(&mut m, "nickName", &p.nick_name);
        put(&mut m, "title", &p.title);
        put(&mut m, "userType", &p.user_type);
        put(&mut m, "profileUrl", &p.profile_url);
        put(&mut m, "locale", &p.locale);
        put(&mut m, "timezone", &p.timezone);
        put(&mut m, "preferredLanguage", &p.preferred_language);
        if !p.emails.is_empty() {
            m.insert("emails".into(), values(&p.emails));
        }
        if !p.phone_numbers.is_empty() {
            m.insert("phoneNumbers".into(), values(&p.phone_numbers));
        }
        let e = &p.enterprise;
        let mut ent = Map::new();
        put(&mut ent, "employeeNumber", &e.employee_number);
        put(&mut ent, "costCenter", &e.cost_center);
        put(&mut ent, "organization", &e.organization);
        put(&mut ent, "division", &e.division);
        put(&mut ent, "department", &e.department);
        if let Some(mgr) = &self.manager {
            ent.insert("manager".into(), json!({ "value": mgr }));
        }
        let mut schemas = vec![json!(USER)];
        if !ent.is_empty() {
            schemas.push(json!(ENTERPRISE));
            m.insert(ENTERPRISE.into(), Value::Object(ent));
        }
        let mut ext = Map::new();
        ext.insert("email".into(), json!(self.row.email));
        ext.insert("roles".into(), json!(self.roles));
        if !p.custom_attributes.is_empty() {
            ext.insert(
                "customAttributes".into(),
                Value::Object(p.custom_attributes.clone()),
            );
        }
        ext.insert("state".into(), json!(self.row.state));
        ext.insert("source".into(), json!(self.row.source));
        schemas.push(json!(MUSTER));
        m.insert(MUSTER.into(), Value::Object(ext));
        m.insert("schemas".into(), Value::Array(schemas));
        Value::Object(m)
    }

    /// The CSV row, in `CSV_COLUMNS` order.
    fn cells(&self) -> Vec<String> {
        let p = self.profile;
        let e = &p.enterprise;
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let list = |v: &[MultiValue]| {
            if v.is_empty() {
                String::new()
            } else {
                values(v).to_string()
            }
        };
        let custom = if p.custom_attributes.is_empty() {
            String::new()
        } else {
            Value::Object(p.custom_attributes.clone()).to_string()
        };
        [
            self.row.id.clone(),
            self.row.user_name.clone(),
            self.row.email.clone(),
            s(&p.external_id),
            s(&p.given_name),
            s(&p.family_name),
            s(&p.middle_name),
            s(&p.formatted_name),
            s(&p.honorific_prefix),
            s(&p.honorific_suffix),
            s(&p.display_name),
            s(&p.nick_name),
            s(&p.title),
            s(&p.user_type),
            s(&p.profile_url),
            s(&p.locale),
            s(&p.timezone),
            s(&p.preferred_language),
            s(&e.employee_number),
            s(&e.cost_center),
            s(&e.organization),
            s(&e.division),
            s(&e.department),
            self.manager.clone().unwrap_or_default(),
            list(&p.emails),
            list(&p.phone_numbers),
            if self.roles.is_empty() {
                "-".to_owned()
            } else {
                self.roles.join(";")
            },
            custom,
            self.active().to_string(),
            self.row.state.clone(),
            self.row.source.clone(),
            rfc3339(self.row.created_at),
        ]
        .into_iter()
        .map(|c| defuse(&c))
        .collect()
    }
}

/// A cell a spreadsheet would run as a formula gets a leading `'` (OWASP
/// "CSV injection"); `import` takes it off again, so the round trip holds.
pub fn defuse(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// `defuse` undone, for a cell read back.
pub fn undefuse(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => cell,
    }
}
