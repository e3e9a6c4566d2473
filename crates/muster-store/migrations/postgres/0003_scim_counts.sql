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

-- How many users SCIM sees per organization (its `totalResults`), kept by a
-- trigger so that a page of a million users does not count a million rows.
-- Each organization is spread over 16 shard rows (by a hash of the user id)
-- so that concurrent creations do not queue on one row lock.
CREATE TABLE scim_user_counts (
    org_id  TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    shard   INTEGER NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (org_id, shard)
);
INSERT INTO scim_user_counts (org_id, shard, n)
SELECT org_id, 0, COUNT(*) FROM users WHERE scim_hidden = FALSE GROUP BY org_id;

CREATE FUNCTION users_scim_count() RETURNS trigger AS $$
DECLARE
    delta BIGINT := 0;
    r RECORD;
BEGIN
    IF TG_OP = 'INSERT' THEN
        r := NEW;
        IF NOT NEW.scim_hidden THEN delta := 1; END IF;
    ELSIF TG_OP = 'DELETE' THEN
        r := OLD;
        IF NOT OLD.scim_hidden THEN delta := -1; END IF;
    ELSE
        r := NEW;
        IF OLD.scim_hidden AND NOT NEW.scim_hidden THEN delta := 1; END IF;
        IF NEW.scim_hidden AND NOT OLD.scim_hidden THEN delta := -1; END IF;
    END IF;
    IF delta <> 0 THEN
        INSERT INTO scim_user_counts (org_id, shard, n)
        VALUES (r.org_id, hashtext(r.id) & 15, delta)
        ON CONFLICT (org_id, shard) DO UPDATE SET n = scim_user_counts.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_scim_count
AFTER INSERT OR DELETE OR UPDATE OF scim_hidden ON users
FOR EACH ROW EXECUTE FUNCTION users_scim_count();
