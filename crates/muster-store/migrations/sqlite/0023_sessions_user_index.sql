-- `sessions_live (user_id, revoked_at, expires_at)` (0006) serves every
-- lookup by user that `sessions_user (user_id)` (0001) did, so the older
-- index only cost one more index entry per sign-in.
DROP INDEX IF EXISTS sessions_user;
