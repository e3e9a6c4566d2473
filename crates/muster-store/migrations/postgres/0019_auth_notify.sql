-- Announcements for the session cache (issues 4 and 6 §2). An instance may
-- keep, for up to a second, what authenticating a session read: the
-- session, its user, the user's organization and unit, and the roles and
-- groups behind its permissions. Every change to those rows announces
-- itself on the channel `muster_auth` from its own transaction — so it is
-- heard at commit, whichever instance, CLI run or hand-written SQL made it —
-- and every listening instance forgets what it holds.
--
-- Writes that cannot change an authentication stay silent, so that busy
-- instances do not flush each other's caches: a session's activity clock
-- (`last_seen_at`, written at most once a minute), a user's last sign-in,
-- rows of users without an open session (bulk provisioning), and a group's
-- own row (deleting a group deletes its memberships and role assignments,
-- which announce themselves).

CREATE FUNCTION muster_auth_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('muster_auth', '');
    RETURN NULL;
END $$;

-- A row that belongs to one user (`user_id`; NULL for a group's role
-- assignment, which may reach anyone): announced when the user has an open
-- session. A user's deletion removes the sessions first (the foreign key's
-- cascade), and that removal is announced by the sessions trigger.
-- `plan_cache_mode = auto` for these functions: the server's connections
-- force custom plans (see `db.rs`), and planning the session lookup afresh on
-- every user creation cost 8 % of SCIM creations (BENCHMARKS.md); a
-- primary-key-prefix probe cannot get a bad generic plan.
CREATE FUNCTION muster_auth_announce_for_user() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = 'auto' AS $$
DECLARE
    uid TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        uid := OLD.user_id;
    ELSE
        uid := NEW.user_id;
    END IF;
    IF uid IS NULL OR EXISTS (SELECT 1 FROM sessions WHERE user_id = uid AND revoked_at IS NULL) THEN
        PERFORM pg_notify('muster_auth', '');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION muster_auth_announce_user() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = 'auto' AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM sessions WHERE user_id = NEW.id AND revoked_at IS NULL) THEN
        PERFORM pg_notify('muster_auth', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_auth_update AFTER UPDATE ON sessions FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_seen_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_seen_at'))
    EXECUTE FUNCTION muster_auth_announce();
CREATE TRIGGER sessions_auth_delete AFTER DELETE ON sessions FOR EACH STATEMENT
    EXECUTE FUNCTION muster_auth_announce();

CREATE TRIGGER users_auth_update AFTER UPDATE ON users FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_sign_in_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_sign_in_at'))
    EXECUTE FUNCTION muster_auth_announce_user();

CREATE TRIGGER role_assignments_auth AFTER INSERT OR UPDATE OR DELETE ON role_assignments
    FOR EACH ROW EXECUTE FUNCTION muster_auth_announce_for_user();
CREATE TRIGGER group_user_members_auth AFTER INSERT OR UPDATE OR DELETE ON group_user_members
    FOR EACH ROW EXECUTE FUNCTION muster_auth_announce_for_user();

CREATE TRIGGER group_group_members_auth AFTER INSERT OR UPDATE OR DELETE ON group_group_members
    FOR EACH STATEMENT EXECUTE FUNCTION muster_auth_announce();
CREATE TRIGGER roles_auth AFTER UPDATE OR DELETE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION muster_auth_announce();
CREATE TRIGGER orgs_auth AFTER UPDATE OR DELETE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION muster_auth_announce();
CREATE TRIGGER org_units_auth AFTER UPDATE OR DELETE ON org_units
    FOR EACH STATEMENT EXECUTE FUNCTION muster_auth_announce();
