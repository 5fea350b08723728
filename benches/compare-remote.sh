#!/usr/bin/env bash
# Remote slides over HTTP (issue 14): wsiview against tiffslide over fsspec HTTP, in one run, on the
# same slide served by nginx on 127.0.0.1 behind ../shared/peers/delay-proxy.py, which adds DELAY_MS
# to every request (default 20).
#   benches/compare-remote.sh [SLIDE]     (default: the 20000x15000 JPEG Q85 pyramid, generated once)
# Env: DELAY_MS (20); CARGO_ARGS, extra arguments of the release build (word-split); WSIVIEW_THREADS, thread counts of `wsiview bench URL` ("2 default": default is
# the remote default, src/bench.rs REMOTE_THREADS); PEER_THREADS, tiffslide's ("2 8").
# Prints one labelled line per figure, then the ratios. Every `wsiview bench` is a new process, and
# each of its passes reads through a freshly opened source (cold block cache). The timed
# `view URL --screenshot` (a complete 1600x1000 level-0 view, from process start) runs when Xvfb is
# installed. Needs nginx (Debian's package) and ../shared/peers (its setup.sh makes the venv).
set -euo pipefail
cd "$(dirname "$0")/.."
DELAY_MS=${DELAY_MS:-20}
WSIVIEW_THREADS=${WSIVIEW_THREADS:-2 default}
PEER_THREADS=${PEER_THREADS:-2 8}
PEERS=../shared/peers
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "compare-remote: nginx is not installed (Debian: apt-get install nginx)" >&2; exit 1; }
[ -d "$PEERS" ] || { echo "compare-remote: $PEERS is missing" >&2; exit 1; }

# shellcheck disable=SC2086
cargo build --release --quiet ${CARGO_ARGS:-}
BIN=${CARGO_TARGET_DIR:-target}/release/wsiview
SLIDE=${1:-${TMPDIR:-/tmp}/wsiview-bench-20000x15000.tif}
if [ ! -f "$SLIDE" ]; then
  "$BIN" generate "$SLIDE" --width 20000 --height 15000 --tile 256 --compression jpeg --quality 85 >&2
fi
PY=$(bash "$PEERS/setup.sh")

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/wsiview-remote.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=benches/remote-common.sh
source benches/remote-common.sh

# nginx in the foreground with its own prefix, configuration, root and pid; the access log
# records each request's status and body bytes, so the peer's requests are counted too.
mkdir -p "$SCRATCH/www"
NAME=$(basename "$SLIDE")
ln -s "$(realpath "$SLIDE")" "$SCRATCH/www/$NAME"
NGINX_PORT=$(free_port)
cat >"$SCRATCH/nginx.conf" <<EOF
daemon off;
master_process off;
pid $SCRATCH/nginx.pid;
error_log $SCRATCH/error.log;
events { worker_connections 512; }
http {
  log_format bytes '\$status \$body_bytes_sent';
  access_log $SCRATCH/access.log bytes;
  default_type application/octet-stream;
  client_body_temp_path $SCRATCH/body; proxy_temp_path $SCRATCH/proxy; fastcgi_temp_path $SCRATCH/fastcgi;
  uwsgi_temp_path $SCRATCH/uwsgi; scgi_temp_path $SCRATCH/scgi;
  server { listen 127.0.0.1:$NGINX_PORT; root $SCRATCH/www; }
}
EOF
"$NGINX" -p "$SCRATCH" -e "$SCRATCH/error.log" -c "$SCRATCH/nginx.conf" </dev/null >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$NGINX_PORT"
PROXY_PORT=$(free_port)
python3 "$PEERS/delay-proxy.py" "$PROXY_PORT" "$NGINX_PORT" "$DELAY_MS" 3600 </dev/null >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$PROXY_PORT"
URL=http://127.0.0.1:$PROXY_PORT/$NAME
touch "$SCRATCH/access.log"

# Requests and body bytes nginx logged since line $1 of its access log.
served_since() {
  tail -n "+$(($1 + 1))" "$SCRATCH/access.log" | awk '{n++; b += $2} END {printf "{\"requests\": %d, \"bytes_fetched\": %d}", n, b}'
}
log_lines() { wc -l <"$SCRATCH/access.log"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "slide: $NAME ($(du -hL "$SLIDE" | cut -f1)); nginx on 127.0.0.1 behind delay-proxy.py, $DELAY_MS ms a request"

RESULTS=$SCRATCH/results.jsonl
for t in $WSIVIEW_THREADS; do
  if [ "$t" = default ]; then args=(); else args=(--threads "$t"); fi
  out=$("$BIN" bench "$URL" "${args[@]}" --json 2>/dev/null)
  echo "wsiview bench, $(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["threads"])') threads: $out"
  echo "{\"who\": \"wsiview\", \"r\": $out}" >>"$RESULTS"
done
for t in $PEER_THREADS; do
  before=$(log_lines)
  out=$("$PY" "$PEERS/tiffslide-http-baseline.py" "$URL" "$t")
  served=$(served_since "$before")
  echo "tiffslide + fsspec HTTP, $t threads: $out (nginx log, whole process: $served)"
  echo "{\"who\": \"tiffslide\", \"r\": $out, \"served\": $served}" >>"$RESULTS"
done

timed_views "$URL"

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
ws = [r["r"] for r in rows if r["who"] == "wsiview"]
ts = [r["r"] for r in rows if r["who"] == "tiffslide"]
views = [r for r in rows if r["who"] == "view"]
best_peer = max(ts, key=lambda r: r["tiles_per_s"]) if ts else None
print("ratios:")
for w in ws:
    same = [t for t in ts if t["threads"] == w["threads"]]
    if same:
        print(f"  tiles/s, wsiview {w['threads']} threads / tiffslide {w['threads']} threads: "
              f"{w['tiles_per_s'] / same[0]['tiles_per_s']:.1f}x (target >= 3x)")
    if best_peer:
        print(f"  tiles/s, wsiview {w['threads']} threads / tiffslide's best ({best_peer['threads']} threads): "
              f"{w['tiles_per_s'] / best_peer['tiles_per_s']:.1f}x (target >= 3x)")
for w in ws[-1:]:
    if w.get("tile_bytes"):
        print(f"  bytes fetched / bytes of the tiles read, one cold pass over the 256-tile window: "
              f"{w['window_bytes_fetched']:,} / {w['tile_bytes']:,} = {w['window_bytes_fetched'] / w['tile_bytes']:.2f} "
              f"({w['window_requests']} requests; target <= 1.5)")
    if w.get("viewport_tile_bytes"):
        print(f"  bytes fetched / bytes of the tiles read, one cold 1920x1080 level-0 read: "
              f"{w['viewport_bytes_fetched']:,} / {w['viewport_tile_bytes']:,} = "
              f"{w['viewport_bytes_fetched'] / w['viewport_tile_bytes']:.2f} ({w['viewport_requests']} requests; target <= 1.5)")
if views:
    complete = statistics.median(v["r"]["complete_ms"] for v in views)
    wall = statistics.median(v["wall_ms"] for v in views)
    print(f"  complete 1600x1000 level-0 view from process start, median of {len(views)}: {complete:.0f} ms "
          f"(process wall time {wall:.0f} ms; target <= 1000 ms)")
PY
