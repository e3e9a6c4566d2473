-- Passkeys (issue 5 §1): a WebAuthn credential is a factor of kind
-- `passkey`; its public key and signature counter live in `secret_sealed`
-- (sealed like a TOTP seed, so a row copied elsewhere does not verify).
-- A credential id belongs to one account only (WebAuthn §7.1 step 22).
ALTER TABLE mfa_factors ADD COLUMN credential_id TEXT;
CREATE UNIQUE INDEX mfa_factors_credential ON mfa_factors (credential_id);

-- A WebAuthn ceremony in progress: the server's half (its challenge),
-- kept here so that an answer is checked against what was asked, once.
CREATE TABLE webauthn_states (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    user_id    TEXT,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at   BIGINT
);
