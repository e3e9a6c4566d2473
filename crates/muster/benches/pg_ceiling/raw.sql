-- The raw limit of the benchmarks: one single-row insert transaction.
\set a random(1, 4000000000000000)
BEGIN;
INSERT INTO raw_rows (k, v) VALUES ('r' || :a::text, 'x');
COMMIT;
