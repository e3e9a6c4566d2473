//! The console's invitations: invite one or many (a pasted list, or rows
//! pasted from a CSV file), with roles and a lifetime; the invitations with
//! their state, and resend or revoke for the pending ones.

use super::{Chrome, Console, readable};
use crate::AppState;
use crate::extract::Ctx;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use muster_app::AppError;
use muster_app::invitations::{InvitationView, InviteInput, Skipped};
use muster_core::Permission;

#[derive(askama::Template)]
#[template(path = "admin/invitations.html")]
struct Page<'a> {
    chrome: &'a Chrome,
    invitations: Vec<InvitationView>,
    /// `(key, name, checked)` for each role the invitees may be given.
    roles: Vec<(String, String, bool)>,
    may_invite: bool,
    emails: String,
    expires: u32,
    expiries: [u32; 5],
    skipped: Vec<Skipped>,
    notice: Option<String>,
    error: Option<String>,
}

/// The addresses in pasted text: one per line or separated by commas,
/// semicolons or spaces, so a column copied from a spreadsheet or a CSV
/// file's rows work as they are. Fields without `@` (a header, a name) are
/// left out; `Name <a@b>` gives `a@b`; repeats count once.
pub(crate) fn addresses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for field in text.split(['\n', '\r', ',', ';', '\t', ' ']) {
        let f = field.trim_matches(|c: char| matches!(c, '"' | '\'' | '<' | '>' | ' '));
        if f.contains('@') && !out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
            out.push(f.to_owned());
        }
    }
    out
}

#[derive(Default)]
struct Form {
    emails: String,
    roles: Vec<String>,
    expires: u32,
}

async fn show(
    s: &AppState,
    c: &Console,
    status: StatusCode,
    form: Form,
    skipped: Vec<Skipped>,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let built = async {
        let mut invitations = muster_app::invitations::list(&s.app, &c.caller, &c.slug).await?;
        for i in &mut invitations {
            i.created_at = readable(&i.created_at);
            i.expires_at = readable(&i.expires_at);
        }
        let roles = muster_app::roles::list(&s.app, &c.caller, &c.slug)
            .await?
            .into_iter()
            .map(|r| {
                let checked = if form.roles.is_empty() {
                    r.key == "member"
                } else {
                    form.roles.contains(&r.key)
                };
                (r.key, r.name, checked)
            })
            .collect();
        Ok::<_, AppError>(Page {
            chrome: c.chrome(),
            invitations,
            roles,
            may_invite: c.may(Permission::UsersWrite),
            emails: form.emails,
            expires: if form.expires == 0 { 7 } else { form.expires },
            expiries: [1, 3, 7, 14, 30],
            skipped,
            notice,
            error,
        })
    };
    match built.await {
        Ok(page) => c.send(s, super::render(status, &page)),
        Err(e) => c.error_page(s, e),
    }
}

pub async fn page(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap) -> Response {
    let c = console!(s, headers, ctx, "/admin/invitations");
    show(
        &s,
        &c,
        StatusCode::OK,
        Form::default(),
        Vec::new(),
        None,
        None,
    )
    .await
}

/// The form's fields; `roles` repeats, so it is read from the raw body.
fn parse_form(body: &str) -> (Form, Option<String>) {
    let mut f = Form::default();
    let mut csrf = None;
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        match k.as_ref() {
            "emails" => f.emails = v.into_owned(),
            "roles" => f.roles.push(v.into_owned()),
            "expires_in_days" => f.expires = v.parse().unwrap_or(0),
            "csrf" => csrf = Some(v.into_owned()),
            _ => {}
        }
    }
    (f, csrf)
}

pub async fn invite(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: String,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/invitations");
    let (form, csrf) = parse_form(&body);
    if let Some(res) = c.csrf_refusal(&s, csrf.as_ref()) {
        return res;
    }
    let emails = addresses(&form.emails);
    if emails.is_empty() {
        let msg = "Paste at least one email address.".to_owned();
        return show(
            &s,
            &c,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            Vec::new(),
            None,
            Some(msg),
        )
        .await;
    }
    let input = InviteInput {
        emails,
        roles: (!form.roles.is_empty()).then(|| form.roles.clone()),
        groups: Vec::new(),
        expires_in_days: Some(form.expires).filter(|d| *d > 0),
    };
    match muster_app::invitations::invite(&s.app, &c.caller, &c.slug, input).await {
        Ok(report) => {
            let n = report.invited.len();
            let notice = format!(
                "{n} invitation{} sent.{}",
                if n == 1 { "" } else { "s" },
                if report.skipped.is_empty() {
                    ""
                } else {
                    " Some addresses were skipped:"
                }
            );
            show(
                &s,
                &c,
                StatusCode::OK,
                Form::default(),
                report.skipped,
                Some(notice),
                None,
            )
            .await
        }
        Err(
            e @ (AppError::Invalid { .. }
            | AppError::Forbidden(_)
            | AppError::NotFound(_)
            | AppError::StepUpRequired(_)),
        ) => {
            let (status, text) = crate::error::page_message(e);
            show(&s, &c, status, form, Vec::new(), None, Some(text)).await
        }
        Err(e) => c.error_page(&s, e),
    }
}

/// Resend or revoke one invitation.
pub async fn act(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: String,
) -> Response {
    let c = console!(s, headers, ctx, "/admin/invitations");
    let (_, csrf) = parse_form(&body);
    if let Some(res) = c.csrf_refusal(&s, csrf.as_ref()) {
        return res;
    }
    let done = match action.as_str() {
        "resend" => muster_app::invitations::resend(&s.app, &c.caller, &c.slug, &id)
            .await
            .map(|i| {
                format!(
                    "The invitation to {} is sent again; the earlier link no longer works.",
                    i.email
                )
            }),
        "revoke" => muster_app::invitations::revoke(&s.app, &c.caller, &c.slug, &id)
            .await
            .map(|()| "The invitation is revoked; its link no longer works.".to_owned()),
        _ => Err(AppError::NotFound("action")),
    };
    match done {
        Ok(notice) => {
            show(
                &s,
                &c,
                StatusCode::OK,
                Form::default(),
                Vec::new(),
                Some(notice),
                None,
            )
            .await
        }
        Err(e @ AppError::Internal(_)) => c.error_page(&s, e),
        Err(e) => {
            let (status, text) = crate::error::page_message(e);
            show(
                &s,
                &c,
                status,
                Form::default(),
                Vec::new(),
                None,
                Some(text),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::addresses;

    #[test]
    fn pasted_lists_and_csv_rows_give_their_addresses() {
        assert_eq!(
            addresses("a@x.example\nb@x.example"),
            ["a@x.example", "b@x.example"]
        );
        assert_eq!(
            addresses("email,name\r\n\"c@x.example\",Carol\r\nD@x.example,Dan\r\n"),
            ["c@x.example", "D@x.example"]
        );
        assert_eq!(addresses("Eve <e@x.example>; e@X.example"), ["e@x.example"]);
        assert!(addresses("no addresses here").is_empty());
    }
}
