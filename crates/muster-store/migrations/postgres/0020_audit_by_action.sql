-- The admin console's dashboard counts actions day by day (issue 8): one
-- index range per action instead of a walk through every event of the
-- organization.
CREATE INDEX audit_events_action ON audit_events (org_id, action, occurred_at);
