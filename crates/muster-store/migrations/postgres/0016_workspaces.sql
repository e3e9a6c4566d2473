-- Workspaces (issue 7 §2, §4): the boundaries in which access is granted.
-- Membership is not a table of its own: a user is a member of a workspace
-- when a role is assigned to them in it, directly or through a group (so a
-- SCIM group linked to a workspace with a role brings its members in, and
-- takes them out, with no copy to keep in step). The default workspace,
-- created with the organization and with the organization's id, holds
-- every member of the organization.
-- `code` is a short read-only handle, unique in the organization.
CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    is_default  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX workspaces_code ON workspaces (org_id, code);
CREATE UNIQUE INDEX workspaces_name ON workspaces (org_id, name_key);
CREATE UNIQUE INDEX workspaces_default ON workspaces (org_id) WHERE is_default;

INSERT INTO workspaces (id, org_id, code, name, name_key, is_default, created_at, updated_at)
    SELECT id, id, 'default', 'Default', 'default', TRUE, created_at, updated_at FROM orgs;

-- Who holds roles in a workspace: by scope.
CREATE INDEX role_assignments_scope ON role_assignments (org_id, scope_kind, scope_id);
