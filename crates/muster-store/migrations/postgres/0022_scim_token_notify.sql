-- SCIM tokens join the session cache (0019): an instance may keep, for up to
-- a second, what authenticating a SCIM token read — the token and its
-- organization's slug. A change to a token announces itself on `muster_auth`
-- from its own transaction, so every listening instance forgets what it
-- holds; organizations already announce theirs.
--
-- Recording a token's last use (time and address, at most once a minute)
-- stays silent: it changes nothing authentication checks.
CREATE TRIGGER scim_tokens_auth_update AFTER UPDATE ON scim_tokens FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_used_at' - 'last_used_ip')
          IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at' - 'last_used_ip'))
    EXECUTE FUNCTION muster_auth_announce();
CREATE TRIGGER scim_tokens_auth_delete AFTER DELETE ON scim_tokens FOR EACH STATEMENT
    EXECUTE FUNCTION muster_auth_announce();
