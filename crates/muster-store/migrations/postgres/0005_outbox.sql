-- Emails to send (CONVENTIONS rule 13): written in the transaction of the
-- change that causes them, delivered by a worker with retry and back-off.
-- No secret rests here: an invitation's link is minted when it is sent, and
-- only its hash is kept (in `invitations`).
CREATE TABLE email_outbox (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    to_address      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    last_error      TEXT
);
CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE sent_at IS NULL;
CREATE INDEX email_outbox_user ON email_outbox (user_id);
