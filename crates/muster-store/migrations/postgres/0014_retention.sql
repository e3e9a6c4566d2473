-- Audit retention (issue 6 §5). Events older than an organization's
-- retention are written to an archive file, then a checkpoint signed with
-- the server's key records where the archive ends (the link's seq and hash)
-- and the remaining chain starts; only then are the archived rows deleted.
-- `muster audit verify` starts from the newest checkpoint and proves the
-- archive files separately.
CREATE TABLE audit_checkpoints (
    org_id         TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    hash           TEXT NOT NULL,
    from_seq       BIGINT NOT NULL,
    prev_hash      TEXT NOT NULL,
    events         BIGINT NOT NULL,
    archive_name   TEXT NOT NULL,
    archive_sha256 TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    signature      TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION muster_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION muster_append_only();

-- Deleting stays refused, except for what a checkpoint covers: an event
-- whose link is at or below one, then (with its event gone) the link.
CREATE FUNCTION muster_prune_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_chain c JOIN audit_checkpoints k ON k.org_id = c.org_id AND c.seq <= k.seq
               WHERE c.event_id = OLD.id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE FUNCTION muster_prune_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_checkpoints k WHERE k.org_id = OLD.org_id AND OLD.seq <= k.seq)
       AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.id = OLD.event_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_chain is append-only';
END;
$$;
DROP TRIGGER audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION muster_append_only();
CREATE TRIGGER audit_events_prune_only BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION muster_prune_event();
DROP TRIGGER audit_chain_append_only ON audit_chain;
CREATE TRIGGER audit_chain_append_only BEFORE UPDATE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION muster_append_only();
CREATE TRIGGER audit_chain_prune_only BEFORE DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION muster_prune_link();
