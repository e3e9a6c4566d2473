//! Server-rendered pages for people (issue 4): sign-up, verification,
//! sign-in, password reset and the account page. They call the same use
//! cases as the JSON sign-in API, work without JavaScript, and carry no
//! asset from another host. Every form is CSRF-protected (double submit,
//! `csrf`), every page is sent with a strict Content-Security-Policy.

mod account;
mod admin;
mod federated;
mod invitation;
mod mfa;
mod signin;

use crate::{AppState, cookies};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(signin::home))
        .route("/login", get(signin::login_page).post(signin::login))
        .route("/o/{slug}/login", get(signin::org_login_page))
        .route("/o/{slug}/sso", get(federated::sso))
        .route("/auth/google", get(federated::google))
        .route("/auth/oidc/callback", get(federated::callback))
        .route("/auth/link", post(federated::link))
        .route("/logout", post(account::logout))
        .route("/signup", get(signin::signup_page).post(signin::signup))
        .route(
            "/signup/business",
            get(signin::business_page).post(signin::business_signup),
        )
        .route(
            "/verify-email",
            get(signin::verify_page).post(signin::verify),
        )
        .route("/verify-email/resend", post(signin::resend))
        .route(
            "/forgot-password",
            get(signin::forgot_page).post(signin::forgot),
        )
        .route(
            "/reset-password",
            get(signin::reset_page).post(signin::reset),
        )
        .route(
            "/invitations/accept",
            get(invitation::page).post(invitation::accept),
        )
        .route("/account", get(account::page))
        .route("/account/password", post(account::password))
        .route("/account/email", post(account::email))
        .route("/account/email/confirm", post(account::confirm_email))
        .route("/account/sessions/{id}/revoke", post(account::revoke))
        .route("/mfa", get(mfa::page).post(mfa::answer))
        .route("/mfa/email", post(mfa::email))
        .route("/mfa/passkey", post(mfa::passkey_options))
        .route("/mfa/enrol", post(mfa::enrol))
        .route("/account/mfa/totp", post(mfa::add_totp))
        .route("/account/mfa/totp/confirm", post(mfa::confirm_totp))
        .route("/account/mfa/email", post(mfa::add_email))
        .route("/account/mfa/recovery", post(mfa::recovery))
        .route("/account/mfa/{id}/remove", post(mfa::remove))
        .route("/account/step-up", post(mfa::step_up))
        .route("/account/step-up/email", post(mfa::step_up_email))
        .route("/account/devices/{id}/rename", post(mfa::rename_device))
        .route("/account/devices/{id}/forget", post(mfa::forget_device))
        .merge(admin::router())
        .layer(axum::middleware::from_fn(page_headers))
        .route("/assets/muster.css", get(css))
        .route("/assets/passkeys.js", get(passkeys_js))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/muster.css"),
    )
        .into_response()
}

async fn passkeys_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/passkeys.js"),
    )
        .into_response()
}

/// Pages are never framed, cached, or allowed to load anything from elsewhere;
/// links in them (which may carry a token) send no referrer.
async fn page_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    page_safety(res.headers_mut());
    res
}

/// The headers every page is sent with (also the rate limit's page).
pub(crate) fn page_safety(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The CSRF token of this browser: the cookie's value, or a new one that the
/// response sets.
pub(crate) struct Csrf {
    pub token: String,
    fresh: bool,
}

impl Csrf {
    pub fn of(headers: &HeaderMap) -> Self {
        match cookies::csrf(headers) {
            Some(token) => Self {
                token,
                fresh: false,
            },
            None => Self {
                token: muster_app::secrets::random_secret(),
                fresh: true,
            },
        }
    }

    /// Whether a submitted form repeats this browser's token. A browser that
    /// had no token cannot have submitted one of our forms.
    pub fn accepts(&self, submitted: Option<&String>) -> bool {
        !self.fresh
            && submitted.is_some_and(|s| bool::from(s.as_bytes().ct_eq(self.token.as_bytes())))
    }

    /// Adds the cookie to a response when the token is new.
    pub fn send(&self, public_url: &str, mut res: Response) -> Response {
        if self.fresh
            && let Some(c) = cookies::set_csrf(public_url, &self.token)
        {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
        res
    }
}

/// The page answered when a form's CSRF token is missing or wrong.
pub(crate) fn csrf_refused(s: &AppState, csrf: &Csrf) -> Response {
    let page = Message {
        heading: "This form has expired".into(),
        text: "For your safety the form could not be accepted. Go back, reload the page and try again.".into(),
        link: "/".into(),
        link_text: "Start again".into(),
    };
    csrf.send(&s.public_url, render(StatusCode::FORBIDDEN, &page))
}

#[derive(askama::Template)]
#[template(path = "message.html")]
pub(crate) struct Message {
    pub heading: String,
    pub text: String,
    pub link: String,
    pub link_text: String,
}

/// A page that only says something (errors outside a form).
pub(crate) fn message(status: StatusCode, heading: &str, text: &str) -> Response {
    let page = Message {
        heading: heading.into(),
        text: text.into(),
        link: "/".into(),
        link_text: "Back".into(),
    };
    let mut res = render(status, &page);
    page_safety(res.headers_mut());
    res
}

pub(crate) fn render(status: StatusCode, t: &impl askama::Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
                .into_response()
        }
    }
}

/// `2026-11-25T12:00:00.000Z` as a person reads it: `2026-11-25 12:00 UTC`.
pub(crate) fn readable(rfc3339: &str) -> String {
    match rfc3339.get(..16) {
        Some(t) => format!("{} UTC", t.replacen('T', " ", 1)),
        None => rfc3339.to_owned(),
    }
}

/// A return path inside this site, or `fallback`: never another host
/// (`//evil.example`, `/\evil.example`, `https://…`), so that a link to our
/// sign-in page cannot send someone elsewhere afterwards.
pub(crate) fn safe_next(next: Option<&str>, fallback: &str) -> String {
    next.filter(|n| muster_app::federation::local_path(n))
        .unwrap_or(fallback)
        .to_owned()
}

/// Where a good first factor leads in a browser: a session and `next`, or
/// the MFA challenge page with the challenge in its cookie.
pub(crate) fn entered(s: &AppState, entry: muster_app::signin::Entry, next: &str) -> Response {
    match entry {
        muster_app::signin::Entry::SignedIn(signed) => {
            cookies::with_session(&s.public_url, &signed, see_other(next))
        }
        muster_app::signin::Entry::Mfa(c) => {
            let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            let mut res = see_other(&format!("/mfa?next={enc}"));
            if let Some(v) = cookies::set_mfa(&s.public_url, &c.challenge_id) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
    }
}

/// A `303 See Other` to a path of this site. (axum's `Redirect` panics on a
/// value that cannot be a header; here such a value falls back to `/`.)
pub(crate) fn see_other(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// Fixed notices a page may show after a redirect (`?done=`): never text from
/// the URL itself.
pub(crate) fn notice(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "verified" => "Your email is verified. You can sign in now.",
            "signed_out" => "You are signed out.",
            "password_reset" => "Your password is changed. Sign in with the new one.",
            "session_ended" => "That session is signed out.",
            "create_password" => "Welcome! Create a password for your account below.",
            "google_linked" => "Google is connected: you can sign in with it from now on.",
            "mfa_on" => "Two-step verification is on.",
            "passkey_added" => {
                "Your passkey is added: you can sign in with it, without a password."
            }
            _ => return None,
        }
        .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(safe_next(Some("/account?x=1"), "/f"), "/account?x=1");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil.example",
            "/\u{0}x",
            "/caf\u{e9}",
            "/a b",
            "",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(bad), "/f"), "/f", "{bad:?}");
        }
        assert_eq!(safe_next(None, "/f"), "/f");
    }
}
