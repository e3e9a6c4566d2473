-- Risk-based authentication and devices (issue 5 §4, §6).

-- A browser or app a user signed in from, known by its long-lived device
-- cookie (only the hash of its secret is stored). Forgetting a device
-- deletes its row: its next sign-in is from an unknown device again.
CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash  TEXT NOT NULL,
    name         TEXT NOT NULL,
    os           TEXT,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    last_ip      TEXT,
    last_country TEXT
);
CREATE UNIQUE INDEX devices_user_secret ON devices (user_id, secret_hash);

-- Successful sign-ins: the baseline of countries and places the risk
-- engine compares a new attempt with.
CREATE TABLE sign_ins (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    ip         TEXT,
    country    TEXT,
    latitude   DOUBLE PRECISION,
    longitude  DOUBLE PRECISION,
    device_id  TEXT
);
CREATE INDEX sign_ins_user ON sign_ins (user_id, at);

-- A challenge carries its sign-in's risk evaluation and device to the
-- session it opens.
ALTER TABLE mfa_challenges ADD COLUMN risk TEXT;
ALTER TABLE mfa_challenges ADD COLUMN device_hash TEXT;

-- The address a session was last used from, and how often it changed
-- within the current ten-minute window (rapid changes are a risk signal).
ALTER TABLE sessions ADD COLUMN last_ip TEXT;
ALTER TABLE sessions ADD COLUMN ip_changes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN ip_window_at BIGINT NOT NULL DEFAULT 0;
