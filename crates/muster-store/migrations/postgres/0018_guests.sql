-- Guests (issue 7 §5): who invited an external collaborator. A guest is a
-- user whose `source` is `guest`; its access is a role in one workspace
-- and ends at a scheduled deactivation.
ALTER TABLE users ADD COLUMN invited_by TEXT;
