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

-- SQLite keeps a per-organization count of these users by trigger (its
-- `totalResults`); PostgreSQL counts them on the users_scim index instead:
-- a counter row updated by every creation was measured to halve concurrent
-- creations here (row locks held until commit, and version chains).
