-- PostgreSQL's 0022 makes changes to SCIM tokens announce themselves to the
-- session cache. SQLite cannot send anything to another process; the cache
-- watches the file's data version instead (`muster_store::notify`). This
-- migration only keeps the two dialects' numbering in step.
SELECT 1;
