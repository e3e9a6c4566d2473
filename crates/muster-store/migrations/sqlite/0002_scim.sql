-- SCIM bearer tokens: one organization each, stored hashed, optionally
-- expiring and IP-restricted. Rotation creates a new token and gives the old
-- one an expiry (the overlap window) instead of revoking it at once.
CREATE TABLE scim_tokens (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    name          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    ip_allow      TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    rotated_to    TEXT,
    last_used_at  BIGINT,
    last_used_ip  TEXT
);
CREATE INDEX scim_tokens_org ON scim_tokens (org_id, id);

-- What the IdP last wrote for a user, attribute by attribute, as SCIM JSON:
-- the attributes it manages, and the values a local edit would drift from.
-- removed_at: the IdP deleted the user and the policy kept the account
-- (deactivated, with its history): SCIM no longer shows it, and a later
-- POST with the same externalId brings it back.
CREATE TABLE scim_user_values (
    user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    idp_values  TEXT NOT NULL,
    removed_at  BIGINT
);
