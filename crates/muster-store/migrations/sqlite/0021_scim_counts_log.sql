-- PostgreSQL's 0021 replaces its COUNT(*) of the users SCIM sees with a
-- base count and an append-only log of changes. SQLite has kept its count by
-- trigger since 0003 (one writer: no row to queue on); the number is kept so
-- that both dialects' migrations stay in step.
SELECT 1;
