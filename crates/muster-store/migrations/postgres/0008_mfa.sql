-- Multi-factor authentication (issue 5 §1–§3).

-- A user's second factors. `kind` is `totp` or `email`. A TOTP seed is
-- sealed with the server key (never stored in clear); `last_step` is the
-- newest RFC 6238 time step accepted, so a code cannot be used twice. A
-- factor counts only once confirmed (a TOTP app proved it holds the seed).
CREATE TABLE mfa_factors (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    secret_sealed TEXT,
    last_step     BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX mfa_factors_user ON mfa_factors (user_id);

-- One-time recovery codes, stored hashed; a used code stays, marked.
CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- The step between a good first factor and a session: the holder of the
-- challenge token (stored hashed) may prove a second factor, or, when
-- `enrol` is set, must first enrol one. Spent once a session opens.
CREATE TABLE mfa_challenges (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash  TEXT NOT NULL,
    first_method TEXT NOT NULL,
    enrol        INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    spent_at     BIGINT
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);

-- When the session's assurance level was last proved (sign-in or step-up):
-- admin and sensitive actions need it to be recent.
ALTER TABLE sessions ADD COLUMN level_at BIGINT NOT NULL DEFAULT 0;
