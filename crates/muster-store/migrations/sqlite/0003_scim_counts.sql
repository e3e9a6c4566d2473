-- SCIM's view of a user lives on the users row, so that SCIM lists, pages
-- and cursors walk one index instead of probing scim_user_values per row,
-- and a creation writes one table fewer.
-- scim_hidden: the IdP deleted the user and the policy kept the account
-- (deactivated, with its history): SCIM no longer shows it, and a later
-- POST with the same externalId brings it back.
-- scim_values: what the IdP last wrote, attribute by attribute, as SCIM JSON
-- (the attributes it manages, and the values a local edit drifts from).
ALTER TABLE users ADD COLUMN scim_hidden BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN scim_values TEXT;
UPDATE users SET scim_hidden = TRUE
 WHERE id IN (SELECT user_id FROM scim_user_values WHERE removed_at IS NOT NULL);
UPDATE users SET scim_values = (SELECT s.idp_values FROM scim_user_values s WHERE s.user_id = users.id);
DROP TABLE scim_user_values;
CREATE INDEX users_scim ON users (org_id, scim_hidden, id);

-- How many users SCIM sees per organization (its `totalResults`), kept by
-- triggers so that a page of a million users does not count a million rows.
-- PostgreSQL spreads each organization over 16 shard rows so that
-- concurrent creations do not queue on one row; SQLite has one writer and
-- uses shard 0 only.
CREATE TABLE scim_user_counts (
    org_id  TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    shard   INTEGER NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (org_id, shard)
) WITHOUT ROWID;
INSERT INTO scim_user_counts (org_id, shard, n)
SELECT org_id, 0, COUNT(*) FROM users WHERE scim_hidden = FALSE GROUP BY org_id;

CREATE TRIGGER users_scim_count_insert AFTER INSERT ON users
WHEN NEW.scim_hidden = FALSE
BEGIN
    INSERT INTO scim_user_counts (org_id, shard, n) VALUES (NEW.org_id, 0, 1)
    ON CONFLICT (org_id, shard) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER users_scim_count_delete AFTER DELETE ON users
WHEN OLD.scim_hidden = FALSE
BEGIN
    UPDATE scim_user_counts SET n = n - 1 WHERE org_id = OLD.org_id AND shard = 0;
END;

CREATE TRIGGER users_scim_count_hide AFTER UPDATE OF scim_hidden ON users
WHEN NEW.scim_hidden <> OLD.scim_hidden
BEGIN
    INSERT INTO scim_user_counts (org_id, shard, n)
    VALUES (NEW.org_id, 0, CASE WHEN NEW.scim_hidden THEN -1 ELSE 1 END)
    ON CONFLICT (org_id, shard) DO UPDATE SET n = n + excluded.n;
END;
