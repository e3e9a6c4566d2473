-- `muster import` runs: where each stopped, so that running the same file
-- again continues after the last batch it wrote (issue 9). The file is known
-- by a fingerprint of its size and its first and last bytes.
CREATE TABLE import_runs (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    fingerprint TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    operator    TEXT NOT NULL,
    lines_done  BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX import_runs_resume ON import_runs (org_id, fingerprint);
