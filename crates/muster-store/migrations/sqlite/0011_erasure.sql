-- Erasure (issue 6 §3, DESIGN.md §5). Personal data inside audit events is
-- sealed with a key of the person it describes; the key lives in the
-- person's own row (sealed with the server key), so deleting the user
-- destroys it and what the log holds about them can no longer be read,
-- while the chain, which covers the stored form, still verifies.
ALTER TABLE users ADD COLUMN audit_key TEXT;

-- A legal hold blocks deletion (by an admin, the IdP or the scheduler)
-- until it is lifted; deactivation is still allowed.
ALTER TABLE users ADD COLUMN legal_hold_at BIGINT;
ALTER TABLE users ADD COLUMN legal_hold_reason TEXT;
