#!/usr/bin/env bash
# The report registry (issue 16) on a throwaway PostgreSQL cluster on 127.0.0.1, default settings
# (fsync on): push 100,000 reports as one site's role; fill the registry to 1,000,000 reports from
# 10 sites; consolidate network-wide and for one site as the reader role; the disk size per
# report. Baselines in the same run: psql's \copy of the same rows (what a bare COPY costs), and
# `wsiview consolidate` of the same reports as files.
#
#   bash benches/registry.sh [REPORTS]        # default 1000000; KEEP=1 leaves the cluster running
#
# Needs PostgreSQL (Debian: postgresql) and, as root, the postgres user. Scratch: $SCRATCH
# (default /var/tmp/wsiview-registry-bench, about 6 GB for a million reports).
set -euo pipefail
cd "$(dirname "$0")/.."
TOTAL=${1:-1000000}
SCRATCH=${SCRATCH:-/var/tmp/wsiview-registry-bench}
PIDS=()
RESULTS=/dev/null
. benches/remote-common.sh

cargo build --release -q
BIN=$PWD/target/release/wsiview
PG=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -f "$SCRATCH/pid" ]; then as_postgres "$PG/pg_ctl" -D "$SCRATCH/data" -m fast stop >/dev/null 2>&1 || true; fi
rm -rf "$SCRATCH"
mkdir -p "$SCRATCH"
[ "$(id -u)" = 0 ] && chown postgres "$SCRATCH"
as_postgres "$PG/initdb" -D "$SCRATCH/data" -U postgres -A trust --auth-host=scram-sha-256 >/dev/null
PORT=$(free_port)
as_postgres "$PG/pg_ctl" -D "$SCRATCH/data" -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SCRATCH" \
  -l "$SCRATCH/server.log" -w start >/dev/null
echo "$PORT" >"$SCRATCH/pid"
stop() { [ "${KEEP:-0}" = 1 ] || as_postgres "$PG/pg_ctl" -D "$SCRATCH/data" -m fast stop >/dev/null; }
trap stop EXIT

SITES=$(seq -f 'S%02g' 1 10 | paste -sd,)
sql() { psql -q -X -h "$SCRATCH" -p "$PORT" -U postgres "$@"; }
sql -c "CREATE ROLE owner LOGIN PASSWORD 'owner'" -c "CREATE ROLE manager LOGIN PASSWORD 'manager'"
for s in ${SITES//,/ }; do sql -c "CREATE ROLE site_${s,,} LOGIN PASSWORD 'site'"; done
sql -c "CREATE DATABASE reg OWNER owner"
DB="postgresql://127.0.0.1:$PORT/reg?sslmode=disable"
as() { PGUSER=$1 PGPASSWORD=$2 "${@:3}"; }
as owner owner "$BIN" registry init --db "$DB" >/dev/null
for s in ${SITES//,/ }; do as owner owner "$BIN" registry add-site "$s" --role "site_${s,,}" --db "$DB" >/dev/null; done
as owner owner "$BIN" registry add-reader --role manager --db "$DB" >/dev/null

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB; $("$PG/postgres" --version)"
t0=$(date +%s%N)
"$BIN" generate-reports "$SCRATCH/reports" --count "$TOTAL" --sites "$SITES" --seed 16 >/dev/null
echo "generate-reports: $TOTAL files in $((($(date +%s%N) - t0) / 1000000)) ms, $(du -sh "$SCRATCH/reports" | cut -f1)"
sync
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

# 1. One site's push (cold files: dropped from the page cache where allowed).
n=$(find "$SCRATCH/reports/S01" -name '*.report.json' | wc -l)
sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
t0=$(date +%s%N)
as site_s01 site "$BIN" registry push "$SCRATCH/reports/S01" --db "$DB" >/dev/null
t=$(ms "$t0")
echo "push S01: $n reports in $t ms = $((n * 1000 / t)) reports/s"
t0=$(date +%s%N)
as site_s01 site "$BIN" registry push "$SCRATCH/reports/S01" --db "$DB" >/dev/null
echo "push S01 again (all unchanged): $(ms "$t0") ms"

# Baseline: the same rows by psql's \copy into a table of the same shape without policies.
sql -d reg -c "COPY (SELECT * FROM wsiview.report_versions) TO '$SCRATCH/rows.copy'" 2>/dev/null \
  || sql -d reg -c "\\copy (SELECT * FROM wsiview.report_versions) TO '$SCRATCH/rows.copy'"
sql -d reg -c "CREATE TABLE public.baseline (LIKE wsiview.report_versions INCLUDING ALL)"
t0=$(date +%s%N)
sql -d reg -c "\\copy public.baseline FROM '$SCRATCH/rows.copy'"
echo "baseline psql \\copy of the same $n rows: $(ms "$t0") ms"
sql -d reg -c "DROP TABLE public.baseline"

# 2. The other sites: the registry reaches $TOTAL reports.
t0=$(date +%s%N)
for s in ${SITES//,/ }; do
  [ "$s" = S01 ] && continue
  as "site_${s,,}" site "$BIN" registry push "$SCRATCH/reports/$s" --db "$DB" >/dev/null
done
t=$(ms "$t0")
echo "push S02..S10: $((TOTAL - n)) reports in $t ms = $(((TOTAL - n) * 1000 / t)) reports/s"
sql -d reg -c "VACUUM ANALYZE wsiview.report_versions"
sql -d reg -At -c "SELECT 'registry: ' || count(*) || ' reports, ' || pg_size_pretty(pg_total_relation_size('wsiview.report_versions')) || ' (' || pg_total_relation_size('wsiview.report_versions') / count(*) || ' bytes per report with indexes and TOAST)' FROM wsiview.report_versions"

# 3. Consolidation, three runs each.
for run in 1 2 3; do
  t0=$(date +%s%N)
  as manager manager "$BIN" registry consolidate --db "$DB" --out "$SCRATCH/network" >/dev/null
  echo "registry consolidate, network, run $run: $(ms "$t0") ms"
done
for run in 1 2 3; do
  t0=$(date +%s%N)
  as manager manager "$BIN" registry consolidate --db "$DB" --site S05 --out "$SCRATCH/site" >/dev/null
  echo "registry consolidate --site S05, run $run: $(ms "$t0") ms"
done
t0=$(date +%s%N)
"$BIN" consolidate "$SCRATCH/reports" --out "$SCRATCH/folders" >/dev/null 2>&1
echo "baseline: wsiview consolidate of the same $TOTAL report files: $(ms "$t0") ms"
python3 - "$SCRATCH" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1] + "/network/summary.json"))
b = json.load(open(sys.argv[1] + "/folders/summary.json"))
same = all(a[k] == b[k] for k in ("reports", "by_site", "by_reviewer", "equity"))
print("registry figures equal folder figures:", same)
EOF
