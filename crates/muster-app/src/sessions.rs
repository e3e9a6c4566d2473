//! An administrator's view of a user's sessions (the console's "where is
//! this user signed in"), and signing the user out everywhere.

use crate::audit::{self, Event};
use crate::caller::{org_reach, user_in_reach};
use crate::signin::login::{SessionView, view};
use crate::{App, AppError, Caller, Result};
use muster_core::Permission;

/// The user's live sessions, newest first (`users.read` reaching the user).
pub async fn of_user(
    app: &App,
    caller: &Caller,
    slug: &str,
    user_id: &str,
) -> Result<Vec<SessionView>> {
    let (org, reach) = org_reach(app, caller, slug, Permission::UsersRead).await?;
    user_in_reach(app, &org.id, user_id, &reach).await?;
    let rows =
        muster_store::sessions::live_for_user(&app.db, &org.id, user_id, app.now_ms()).await?;
    Ok(rows.into_iter().map(|s| view(s, None)).collect())
}

/// Ends every session of the user at once (`sessions.revoke`): each is
/// refused from its very next request. API tokens are credentials of their
/// own and stay (revoke them, or deactivate the user, to end those too).
/// Returns how many sessions ended.
pub async fn end_all(app: &App, caller: &Caller, slug: &str, user_id: &str) -> Result<usize> {
    let (org, reach) = org_reach(app, caller, slug, Permission::SessionsRevoke).await?;
    user_in_reach(app, &org.id, user_id, &reach).await?;
    if !muster_store::users::exists_in(&app.db, &org.id, user_id).await? {
        return Err(AppError::NotFound("user"));
    }
    let mut tx = app.db.begin().await?;
    let ended =
        muster_store::sessions::revoke_others(&mut tx, &org.id, user_id, None, app.now_ms())
            .await?;
    let ev = Event::new(&org.id, "session.revoked_all")
        .target("user", user_id)
        .detail("sessions_ended", ended.len())
        .security();
    audit::record(app, &mut tx, caller, ev).await?;
    tx.commit().await?;
    Ok(ended.len())
}
