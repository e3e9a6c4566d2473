-- Organizational units (issue 7 §1): a tree per organization. The root OU
-- has the organization's own id, so a user whose `ou_id` is NULL is in the
-- root and nothing has to be filled in when users are created.
-- `path` is the chain of ids from the root, `/root/child/…/`, so that "in
-- this subtree" is a prefix test and a move rewrites the subtree's paths.
-- `policies` holds the OU's own overrides (settings keys); `effective` is
-- the organization's settings with every override down to this OU applied,
-- kept up to date in the transaction of each change, so that
-- authentication reads a user's policies with one join.
CREATE TABLE org_units (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    parent_id   TEXT REFERENCES org_units(id),
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,
    path        TEXT NOT NULL,
    policies    TEXT NOT NULL DEFAULT '{}',
    effective   TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
-- Sibling names are unique; one root per organization.
CREATE UNIQUE INDEX org_units_sibling ON org_units (org_id, parent_id, name_key);
CREATE UNIQUE INDEX org_units_root ON org_units (org_id) WHERE parent_id IS NULL;
CREATE INDEX org_units_parent ON org_units (parent_id);
CREATE INDEX org_units_org ON org_units (org_id, path);

INSERT INTO org_units (id, org_id, parent_id, name, name_key, path, policies, effective, created_at, updated_at)
    SELECT id, id, NULL, name, lower(name), '/' || id || '/', '{}', settings, created_at, updated_at FROM orgs;

ALTER TABLE users ADD COLUMN ou_id TEXT REFERENCES org_units(id);
CREATE INDEX users_ou ON users (ou_id) WHERE ou_id IS NOT NULL;
