#!/bin/sh
# What PostgreSQL alone makes of a SCIM creation's one write statement, beside
# the raw insert transaction the benchmarks compare with (BENCHMARKS.md, "What
# bounds PostgreSQL creations here"). No Muster server, no HTTP, no reads: the
# statement `muster-store/src/creations.rs` sends, with the same tables,
# indexes, triggers and foreign keys, driven by pgbench.
#
#   crates/muster/benches/pg_ceiling/run.sh [ROUNDS] [SECONDS]
#
# Needs psql and pgbench on PATH and a PostgreSQL reachable as
# `postgres@127.0.0.1` (PGHOST/PGUSER override). Uses and drops the database
# muster_pg_ceiling.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
migrations="$here/../../../muster-store/migrations/postgres"
rounds=${1:-3}
seconds=${2:-5}
export PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres}
db=muster_pg_ceiling
PGOPTIONS="-c client_min_messages=warning" psql -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
for f in "$migrations"/*.sql; do
    psql -q -v ON_ERROR_STOP=1 -d $db -f "$f" >/dev/null
done
psql -q -d $db \
    -c "INSERT INTO orgs (id, slug, name, kind, settings, created_at, updated_at) VALUES ('org_1', 'bench', 'Bench', 'business', '{}', 1, 1)" \
    -c "INSERT INTO roles (id, org_id, role_key, name, permissions, builtin, created_at, updated_at) VALUES ('role_1', 'org_1', 'member', 'Member', '[]', TRUE, 1, 1)" \
    -c "CREATE TABLE raw_rows (k TEXT PRIMARY KEY, v TEXT NOT NULL)"
# script, clients, extra server options; each run starts from empty tables
# (the audit tables refuse TRUNCATE unless their triggers are off).
run() {
    PGOPTIONS="-c session_replication_role=replica -c client_min_messages=warning" psql -q -d $db -c "TRUNCATE users, role_assignments, audit_events, audit_pending, scim_user_count_deltas, raw_rows CASCADE"
    tps=$(PGOPTIONS="$3" pgbench -n -M prepared -c "$2" -j 2 -T "$seconds" -f "$here/$1.sql" $db 2>&1 |
        sed -n 's/^tps = \([0-9]*\).*/\1/p')
    [ -n "$tps" ] || { echo "pgbench could not run $1.sql" >&2; exit 1; }
    echo "{\"script\":\"$1\",\"clients\":$2,\"options\":\"$3\",\"tx_per_s\":$tps}"
}
i=0
while [ $i -lt "$rounds" ]; do
    run raw 10 ""
    run create 10 ""
    # The same without triggers and foreign-key checks: what the schema's
    # own rules cost.
    run create 10 "-c session_replication_role=replica"
    # Ten creations per statement (rows per second = 10 x tx_per_s).
    run create10 2 ""
    i=$((i + 1))
done
psql -q -d postgres -c "DROP DATABASE $db"
