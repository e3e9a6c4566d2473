-- Announcements for the session cache exist on PostgreSQL only (see the
-- PostgreSQL migration of the same number). SQLite cannot tell another
-- process about a change, so on SQLite no session is cached and this
-- migration only keeps the two dialects' numbering in step.
SELECT 1;
