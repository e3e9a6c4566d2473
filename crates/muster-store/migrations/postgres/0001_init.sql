CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    settings    TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    user_name       TEXT NOT NULL,
    user_name_key   TEXT NOT NULL,
    email           TEXT NOT NULL,
    email_key       TEXT NOT NULL,
    email_verified  BOOLEAN NOT NULL DEFAULT FALSE,
    display_name    TEXT,
    given_name      TEXT,
    family_name     TEXT,
    external_id     TEXT,
    state           TEXT NOT NULL,
    source          TEXT NOT NULL,
    managed_by      TEXT NOT NULL,
    profile         TEXT NOT NULL,
    password_hash   TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    version         BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (org_id, email_key);
CREATE UNIQUE INDEX users_user_name_key ON users (org_id, user_name_key);
CREATE UNIQUE INDEX users_external_id ON users (org_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX users_org ON users (org_id, id);
CREATE INDEX users_org_state ON users (org_id, state, id);

CREATE TABLE groups (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    description  TEXT,
    external_id  TEXT,
    managed_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    version      BIGINT NOT NULL
);
CREATE UNIQUE INDEX groups_name_key ON groups (org_id, name_key);
CREATE UNIQUE INDEX groups_external_id ON groups (org_id, external_id) WHERE external_id IS NOT NULL;

CREATE TABLE group_user_members (
    group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_user_members_user ON group_user_members (user_id);

CREATE TABLE group_group_members (
    group_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    child_id  TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, child_id)
);
CREATE INDEX group_group_members_child ON group_group_members (child_id);

CREATE TABLE roles (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    role_key     TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT,
    permissions  TEXT NOT NULL,
    builtin      BOOLEAN NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX roles_key ON roles (org_id, role_key);

-- A role given to a user or a group, within a scope. `principal` and
-- `scope_key` are derived text keys so that one unique index forbids duplicates
-- without tripping over NULLs.
CREATE TABLE role_assignments (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    role_id     TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    group_id    TEXT REFERENCES groups(id) ON DELETE CASCADE,
    principal   TEXT NOT NULL,
    scope_kind  TEXT NOT NULL,
    scope_id    TEXT,
    scope_key   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE UNIQUE INDEX role_assignments_unique ON role_assignments (role_id, principal, scope_key);
CREATE INDEX role_assignments_user ON role_assignments (user_id, org_id);
CREATE INDEX role_assignments_group ON role_assignments (group_id);
CREATE INDEX role_assignments_org ON role_assignments (org_id, id);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
-- (user_id, org_id) so revocation, which names both, never walks the org index.
CREATE INDEX api_tokens_user ON api_tokens (user_id, org_id);
CREATE INDEX api_tokens_org ON api_tokens (org_id, id);

-- Sign-in sessions, invitations and email (verification / reset) tokens are
-- issued by the onboarding work; they live here already so that the one
-- revocation primitive covers them from the start.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    ip            TEXT,
    user_agent    TEXT,
    mfa_level     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    accepted_at  BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX invitations_user ON invitations (user_id);

CREATE TABLE email_tokens (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose      TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    code_hash    TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX email_tokens_user ON email_tokens (user_id);

-- The audit log. `audit_events` is written in the transaction of the change;
-- `audit_pending` queues it for the sealer, which appends `audit_chain` links.
-- Neither events nor links are ever updated or deleted (triggers below).
CREATE TABLE audit_events (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_id     TEXT,
    actor_label  TEXT,
    action       TEXT NOT NULL,
    target_kind  TEXT,
    target_id    TEXT,
    severity     TEXT NOT NULL,
    changes      TEXT NOT NULL,
    context      TEXT NOT NULL
);
CREATE INDEX audit_events_org ON audit_events (org_id, id);
CREATE INDEX audit_events_target ON audit_events (org_id, target_id, id);
CREATE INDEX audit_events_actor ON audit_events (org_id, actor_id, id);

CREATE TABLE audit_pending (
    event_id  TEXT PRIMARY KEY,
    org_id    TEXT NOT NULL
);
CREATE INDEX audit_pending_org ON audit_pending (org_id, event_id);

CREATE TABLE audit_chain (
    org_id    TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    event_id  TEXT NOT NULL UNIQUE,
    hash      TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);

CREATE TABLE audit_heads (
    org_id  TEXT PRIMARY KEY,
    seq     BIGINT NOT NULL,
    hash    TEXT NOT NULL
);

CREATE FUNCTION muster_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION muster_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION muster_append_only();
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION muster_append_only();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION muster_append_only();
