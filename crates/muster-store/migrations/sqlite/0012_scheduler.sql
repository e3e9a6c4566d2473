-- Scheduled lifecycle (issue 6 §4).

-- When the user last signed in, and since when it has been in its state:
-- the inputs of automatic suspension after inactivity and of the grace
-- period after which deactivated users are deleted.
ALTER TABLE users ADD COLUMN last_sign_in_at BIGINT;
ALTER TABLE users ADD COLUMN state_since BIGINT;
UPDATE users SET state_since = updated_at;

-- Future-dated transitions an admin set (start and end dates). A row is
-- claimed by setting `done_at` in the transaction that carries out the
-- transition, so each runs exactly once whichever instance gets there.
CREATE TABLE scheduled_transitions (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    action     TEXT NOT NULL,
    due_at     BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    done_at    BIGINT,
    outcome    TEXT
);
CREATE INDEX scheduled_transitions_due ON scheduled_transitions (due_at) WHERE done_at IS NULL;
CREATE UNIQUE INDEX scheduled_transitions_pending ON scheduled_transitions (user_id, action) WHERE done_at IS NULL;

-- One holder at a time per job, across instances: a lease that expires,
-- so a crashed holder does not block the job for ever.
CREATE TABLE job_leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_at BIGINT NOT NULL
);
