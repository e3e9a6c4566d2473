-- Announcements for the session cache exist on PostgreSQL only (see the
-- PostgreSQL migration of the same number). SQLite cannot send anything to
-- another process; the session cache watches the file's data version
-- instead (`muster_store::notify`). This migration only keeps the two
-- dialects' numbering in step.
SELECT 1;
