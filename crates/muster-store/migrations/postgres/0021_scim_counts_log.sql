-- How many users SCIM sees per organization (its `totalResults`), without
-- counting them: COUNT(*) over the users_scim index took ~300 ms at a
-- million users, on every page. A counter row updated by each creation was
-- tried and halved concurrent creations (every creation of an organization
-- queued on one row lock), so changes are *appended* instead: each statement
-- that adds, removes, hides or shows users writes one ±n row to
-- scim_user_count_deltas, which no other writer touches. The server folds
-- the deltas into scim_user_counts every few seconds
-- (`scim::fold_counts`, one statement, so a reader sees the rows either
-- before or after the fold, never both); the count is the base plus the
-- deltas not yet folded, read in one snapshot.
CREATE TABLE scim_user_counts (
    org_id  TEXT PRIMARY KEY REFERENCES orgs(id),
    n       BIGINT NOT NULL
);
-- No index and no foreign key: an append costs one heap row; the table holds
-- a few seconds of changes between folds.
CREATE TABLE scim_user_count_deltas (
    org_id  TEXT NOT NULL,
    delta   BIGINT NOT NULL
);
INSERT INTO scim_user_counts (org_id, n)
SELECT org_id, COUNT(*) FROM users WHERE scim_hidden = FALSE GROUP BY org_id;

-- Statement-level with transition tables: a batch of Bulk or an import that
-- inserts 200 users appends one row, not 200.
CREATE FUNCTION scim_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO scim_user_count_deltas (org_id, delta)
    SELECT org_id, COUNT(*) FROM new_users WHERE scim_hidden = FALSE GROUP BY org_id;
    RETURN NULL;
END $$;

CREATE FUNCTION scim_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO scim_user_count_deltas (org_id, delta)
    SELECT org_id, -COUNT(*) FROM old_users WHERE scim_hidden = FALSE GROUP BY org_id;
    RETURN NULL;
END $$;

-- Hiding and showing are rare (the IdP's DELETE under the keep policy, a
-- re-provisioning): a row trigger whose WHEN keeps every other update of
-- users free (an UPDATE trigger with transition tables cannot name columns,
-- and would capture every sign-in's row).
CREATE FUNCTION scim_count_hidden() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO scim_user_count_deltas (org_id, delta)
    VALUES (NEW.org_id, CASE WHEN NEW.scim_hidden THEN -1 ELSE 1 END);
    RETURN NULL;
END $$;

CREATE TRIGGER users_scim_count_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_users
    FOR EACH STATEMENT EXECUTE FUNCTION scim_count_inserted();
CREATE TRIGGER users_scim_count_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_users
    FOR EACH STATEMENT EXECUTE FUNCTION scim_count_deleted();
CREATE TRIGGER users_scim_count_hide AFTER UPDATE OF scim_hidden ON users
    FOR EACH ROW WHEN (OLD.scim_hidden IS DISTINCT FROM NEW.scim_hidden)
    EXECUTE FUNCTION scim_count_hidden();
