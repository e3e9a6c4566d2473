-- Federated sign-in (issue 4 §5, §6): Google and an organization's own
-- OpenID Connect IdP.

-- A user's external identities. An account is found by its provider's
-- issuer and subject, never by email alone (OIDC Core §5.7).
CREATE TABLE identities (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    email        TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX identities_subject ON identities (org_id, issuer, subject);
CREATE INDEX identities_user ON identities (user_id);

-- An organization's OIDC connection. The client secret is sealed with the
-- server key; `jit` lets unknown people in, created on their first sign-in.
CREATE TABLE sso_connections (
    org_id        TEXT PRIMARY KEY REFERENCES orgs(id),
    issuer        TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    jit           BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Sign-in flows between the redirect to the provider and its callback. The
-- row is found by the hash of `state` and bound to the browser that started
-- it (the hash of a cookie's value); it is spent by the callback, so a
-- replayed state finds nothing. A flow that ends in "this email already has
-- an account" keeps a link ticket (its hash) for the password step.
CREATE TABLE oidc_flows (
    id            TEXT PRIMARY KEY,
    binding_hash  TEXT NOT NULL,
    provider      TEXT NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    nonce         TEXT NOT NULL,
    verifier      TEXT NOT NULL,
    return_to     TEXT,
    invitation_id TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    link_hash     TEXT,
    link_user_id  TEXT REFERENCES users(id) ON DELETE CASCADE,
    link_issuer   TEXT,
    link_subject  TEXT,
    link_email    TEXT,
    linked_at     BIGINT
);
CREATE INDEX oidc_flows_link ON oidc_flows (link_hash);
CREATE INDEX oidc_flows_expiry ON oidc_flows (expires_at);
