//! The dispatch macros: the same query text and bindings, typed once per backend.

/// Runs `$body` with `$c` bound to a pool executor (reads outside a transaction).
macro_rules! on_db {
    ($db:expr, $c:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite { read: $c, .. } => $body,
            $crate::db::Db::Postgres($c, ..) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::db::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

/// The columns a new row of each hot table is written with, and the binding of
/// a row's values in that order: shared by the single-row inserts and by the
/// multi-statement user creation, so the two cannot drift apart.
macro_rules! user_columns {
    () => {
        "id, org_id, user_name, user_name_key, email, email_key, email_verified, display_name, given_name, \
         family_name, external_id, state, source, managed_by, profile, password_hash, created_at, updated_at, version, ou_id"
    };
}

macro_rules! bind_user {
    ($q:expr, $u:expr) => {
        $q.bind(&$u.id)
            .bind(&$u.org_id)
            .bind(&$u.user_name)
            .bind($u.user_name.to_lowercase())
            .bind(&$u.email)
            .bind($u.email.to_lowercase())
            .bind($u.email_verified)
            .bind(&$u.display_name)
            .bind(&$u.given_name)
            .bind(&$u.family_name)
            .bind(&$u.external_id)
            .bind(&$u.state)
            .bind(&$u.source)
            .bind(&$u.managed_by)
            .bind(&$u.profile)
            .bind(&$u.password_hash)
            .bind($u.created_at)
            .bind($u.updated_at)
            .bind($u.version)
            .bind(&$u.ou_id)
    };
}

macro_rules! assignment_columns {
    () => {
        "id, org_id, role_id, user_id, group_id, principal, scope_kind, scope_id, scope_key, created_at"
    };
}

macro_rules! bind_assignment {
    ($q:expr, $a:expr) => {{
        let (principal, scope_key) = $crate::roles::assignment_keys($a);
        $q.bind(&$a.id)
            .bind(&$a.org_id)
            .bind(&$a.role_id)
            .bind(&$a.user_id)
            .bind(&$a.group_id)
            .bind(principal)
            .bind(&$a.scope_kind)
            .bind(&$a.scope_id)
            .bind(scope_key)
            .bind($a.created_at)
    }};
}

macro_rules! event_columns {
    () => {
        "id, org_id, occurred_at, actor_kind, actor_id, actor_label, action, target_kind, target_id, severity, changes, context"
    };
}

macro_rules! bind_event {
    ($q:expr, $e:expr) => {
        $q.bind(&$e.id)
            .bind(&$e.org_id)
            .bind($e.occurred_at)
            .bind(&$e.actor_kind)
            .bind(&$e.actor_id)
            .bind(&$e.actor_label)
            .bind(&$e.action)
            .bind(&$e.target_kind)
            .bind(&$e.target_id)
            .bind(&$e.severity)
            .bind(&$e.changes)
            .bind(&$e.context)
    };
}
