#!/usr/bin/env bash
# Side by side (BENCHMARKS.md, "SCIM against other servers"): Muster on SQLite
# as `muster serve` runs by default, canaille (SQL-backed, on SQLite),
# scim2-server and scimmy (in memory), each driven by the same load tool
# (`scim_load --external`) with the same user document: POST /Users per second
# at concurrency 10, then `userName eq` filter latency at 10,000 users.
#
# Installs the three from PyPI and npm into target/bench-competitors. Not run
# in CI; run it on an otherwise idle machine:
#   crates/muster/benches/competitors/run.sh [users] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../../../.."
users=${1:-10000}
seconds=${2:-5}
dir=$PWD/target/bench-competitors
mkdir -p "$dir"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

[ -x "$dir/scim2/bin/scim2-server" ] || {
  python3 -m venv "$dir/scim2"
  "$dir/scim2/bin/pip" install -q "scim2-server==0.8.3"
}
[ -x "$dir/canaille/bin/canaille" ] || {
  python3 -m venv "$dir/canaille"
  # canaille 0.3.6 needs the scim2 libraries of its own time.
  "$dir/canaille/bin/pip" install -q "canaille[scim,sqlite,server]==0.3.6" \
    "scim2-models==0.6.12" "scim2-client==0.7.5"
}
[ -d "$dir/scimmy/node_modules/scimmy-routers" ] || {
  mkdir -p "$dir/scimmy"
  (cd "$dir/scimmy" && npm init -y >/dev/null &&
    npm install --silent scimmy@1.3.5 scimmy-routers@1.3.2 express@5.3.0)
}
cp crates/muster/benches/competitors/scimmy-server.mjs "$dir/scimmy/"
cargo build --release -p muster --quiet
cargo bench -p muster --bench scim_load --no-run --quiet

# Muster: a fresh SQLite database, an organization and a SCIM token.
rm -rf "$dir/muster-data" && mkdir -p "$dir/muster-data"
export MUSTER_DATABASE_URL="sqlite://$dir/muster-data/muster.db"
muster=target/release/muster
$muster org create --slug bench --name Bench --json >/dev/null
mtoken=$($muster scim-token create --org bench --name bench --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
MUSTER_LISTEN=127.0.0.1:8093 MUSTER_LOG=warn $muster serve >/dev/null 2>&1 &
pids+=($!)
unset MUSTER_DATABASE_URL

# canaille: SQLite database, a client and a long-lived bearer token.
rm -rf "$dir/canaille-data" && mkdir -p "$dir/canaille-data"
cat >"$dir/canaille-data/config.toml" <<TOML
SECRET_KEY = "bench-only"
SERVER_NAME = "127.0.0.1:8094"
PREFERRED_URL_SCHEME = "http"
[CANAILLE]
NAME = "bench"
[CANAILLE_SQL]
DATABASE_URI = "sqlite:///$dir/canaille-data/canaille.sqlite"
[CANAILLE_SCIM]
ENABLE_SERVER = true
TOML
# canaille 0.3 reads its configuration file from CANAILLE_CONFIG (a file it
# does not find leaves it on defaults: ./canaille.sqlite in the working
# directory, which is why it also runs from its data directory).
export CANAILLE_CONFIG="$dir/canaille-data/config.toml"
cd "$dir/canaille-data"
"$dir/canaille/bin/canaille" install >/dev/null 2>&1
client=$("$dir/canaille/bin/canaille" create client --client-id bench --client-secret bench \
  --client-name bench --grant-types client_credentials --scope openid 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# A bearer token of this run's own, distinct from the client secret.
ctoken=bench-$RANDOM$RANDOM
"$dir/canaille/bin/canaille" create token --token-id bench --access-token "$ctoken" --client "$client" \
  --type access_token --scope openid --lifetime 100000000 \
  --issue-date "$(date -u +%Y-%m-%dT%H:%M:%S)" >/dev/null 2>&1
"$dir/canaille/bin/hypercorn" -b 127.0.0.1:8094 'canaille:create_app()' >"$dir/canaille-data/log" 2>&1 &
pids+=($!)
cd - >/dev/null

"$dir/scim2/bin/scim2-server" --bearer-token bench --port 8091 >/dev/null 2>&1 &
pids+=($!)
(cd "$dir/scimmy" && exec node scimmy-server.mjs 8092 bench) >/dev/null 2>&1 &
pids+=($!)

# Every server up and idle before the first measurement (a Python server
# still importing would take CPU from the one being measured).
for url in http://127.0.0.1:8093/healthz http://127.0.0.1:8094/scim/v2/ServiceProviderConfig \
  http://127.0.0.1:8091/ServiceProviderConfig http://127.0.0.1:8092/scim/v2/ServiceProviderConfig; do
  until curl -s -o /dev/null "$url"; do sleep 0.5; done
done
sleep 3

run() {
  cargo bench -p muster --bench scim_load --quiet -- --external "$1" --url "$2" --token "$3" \
    --users "$users" --seconds "$seconds"
}
run muster http://127.0.0.1:8093/scim/v2 "$mtoken"
run canaille http://127.0.0.1:8094/scim/v2 "$ctoken"
run scim2-server http://127.0.0.1:8091 bench
run scimmy http://127.0.0.1:8092/scim/v2 bench
