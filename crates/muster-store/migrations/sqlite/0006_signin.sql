-- Sign-in (issue 4). Email tokens gain what verification, reset and email
-- change need: the address being verified, and when the email left (a code
-- may be re-sent only 60 s later). Like invitations, a token's secret and
-- code are minted when its email is sent, so neither ever rests in clear.
ALTER TABLE email_tokens ADD COLUMN new_email TEXT;
ALTER TABLE email_tokens ADD COLUMN sent_at BIGINT;
CREATE INDEX email_tokens_pending ON email_tokens (user_id, purpose, created_at);

-- Failed sign-ins, counted per account (organization + normalized email,
-- whether or not such an account exists, so the counter itself reveals
-- nothing) and per client IP. In the database so that every instance sees
-- the same counts.
CREATE TABLE auth_failures (
    key              TEXT PRIMARY KEY,
    failures         BIGINT NOT NULL,
    first_failure_at BIGINT NOT NULL,
    last_failure_at  BIGINT NOT NULL
);

CREATE INDEX sessions_live ON sessions (user_id, revoked_at, expires_at);

-- Accepting an invitation finds it by the hash of its link's secret.
CREATE INDEX invitations_secret ON invitations (secret_hash);
