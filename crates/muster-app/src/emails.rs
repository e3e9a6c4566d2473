//! The texts of the emails Muster sends, plain text: what a person reads.

use crate::mail::Email;

/// A verification, reset or email-change email: the code and the link.
pub fn code_email(
    kind: &str,
    to: &str,
    org: &str,
    public_url: &str,
    token: &str,
    code: &str,
) -> Email {
    let base = public_url.trim_end_matches('/');
    if kind == "mfa_code" {
        // A second factor has no link: a link would let whoever reads the
        // mailbox skip typing the code on the device that is signing in.
        return Email {
            to: to.to_owned(),
            subject: format!("Your {org} sign-in code"),
            text: format!(
                "Hello,\n\n\
                 Someone (we hope you) signed in to your account with its password.\n\n\
                 Your code: {code}\n\n\
                 The code works once, for 5 minutes.\n\
                 If this was not you, change your password now: {base}/forgot-password\n"
            ),
        };
    }
    let (subject, why, path) = match kind {
        "reset_password" => (
            format!("Reset your {org} password"),
            "Someone (we hope you) asked to reset the password of your account.",
            "reset-password",
        ),
        "change_email" => (
            format!("Confirm your new {org} email address"),
            "You asked to use this address for your account.",
            "verify-email",
        ),
        _ => (
            format!("Verify your email for {org}"),
            "Welcome! Confirm that this address is yours to finish signing up.",
            "verify-email",
        ),
    };
    Email {
        to: to.to_owned(),
        subject,
        text: format!(
            "Hello,\n\n\
             {why}\n\n\
             Your code: {code}\n\n\
             Or open this link:\n\
             {base}/{path}?token={token}\n\n\
             The code and the link work once, for 5 minutes.\n\
             If this was not you, ignore this email: nothing changes.\n"
        ),
    }
}

/// Sent when the account is signed in from a device it was not used on before.
pub fn new_device(to: &str, org: &str, public_url: &str, what: &str) -> Email {
    let base = public_url.trim_end_matches('/');
    Email {
        to: to.to_owned(),
        subject: format!("New sign-in to your {org} account"),
        text: format!(
            "Hello,\n\n\
             Your account was just signed in on a device it had not been used on before:\n\
             {what}\n\n\
             If this was you, there is nothing to do.\n\
             If not, change your password now ({base}/forgot-password) and sign out the sessions you do not know ({base}/account).\n"
        ),
    }
}

/// Sent when someone signs up with an address that already has an account:
/// the sign-up answer itself must not tell them so.
pub fn account_exists(to: &str, org: &str, public_url: &str) -> Email {
    let base = public_url.trim_end_matches('/');
    Email {
        to: to.to_owned(),
        subject: format!("You already have a {org} account"),
        text: format!(
            "Hello,\n\n\
             Someone (we hope you) tried to sign up with this address, but it already has an account.\n\n\
             Sign in here: {base}/login\n\
             Forgot your password? Reset it here: {base}/forgot-password\n\n\
             If this was not you, ignore this email: nothing changes.\n"
        ),
    }
}

/// Sent to an organization's owners when Muster turned a webhook endpoint
/// off after persistent failure.
pub fn webhook_disabled(to: &str, org: &str, public_url: &str, url: &str, reason: &str) -> Email {
    let base = public_url.trim_end_matches('/');
    Email {
        to: to.to_owned(),
        subject: format!("A {org} webhook endpoint was turned off"),
        text: format!(
            "Hello,\n\n\
             Muster stopped sending events to this webhook endpoint:\n{url}\n\n\
             Why: {reason}\n\n\
             Events since then are not queued for it. Once the receiver works again, turn the endpoint back on \
             (PATCH {base}/api/v1/orgs/<org>/webhooks/<id> with {{\"enabled\": true}}): the messages that were \
             waiting resume in order, and the one given up on can be redelivered from its delivery log.\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_email_carries_the_code_the_link_and_its_lifetime() {
        let e = code_email(
            "verify_email",
            "a@b.example",
            "Acme",
            "https://id.example/",
            "mse_x_y",
            "012345",
        );
        assert_eq!(e.subject, "Verify your email for Acme");
        assert!(e.text.contains("Your code: 012345\n"));
        assert!(
            e.text
                .contains("https://id.example/verify-email?token=mse_x_y\n")
        );
        assert!(e.text.contains("for 5 minutes"));
        let r = code_email(
            "reset_password",
            "a@b.example",
            "Acme",
            "https://id.example",
            "t",
            "1",
        );
        assert!(
            r.text
                .contains("https://id.example/reset-password?token=t\n"),
            "{}",
            r.text
        );
    }
}
