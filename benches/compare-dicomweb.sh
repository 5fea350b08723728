#!/usr/bin/env bash
# Slides from a PACS over DICOMweb (issue 15): wsiview against wsidicom's DICOMweb client, in one
# run, reading the same level-0 tiles of the same series from the same private Orthanc (Debian's
# `orthanc` with `orthanc-dicomweb`) on 127.0.0.1, behind ../shared/peers/delay-proxy.py, which adds
# DELAY_MS to every request (default 20).
#   benches/compare-dicomweb.sh [SLIDE]     (default: the 20000x15000 JPEG Q85 pyramid, generated once)
# The series is SLIDE converted by OrthancWSIDicomizer (Debian `orthanc-wsi`; tiles copied, one
# instance per level: with its default 10 MB concatenations wsidicom 0.x reads only the first
# part of each level and returns blank tiles for the rest, which would time nothing). When
# `wsiview dicomize` exists, its time to convert SLIDE is printed against `cp`'s.
# Env: DELAY_MS (20); CARGO_ARGS, extra arguments of the release build (word-split); WSIVIEW_THREADS,
# thread counts of `wsiview bench URL` ("2 default"; default is 16 for a URL); PEER_THREADS ("2 8").
set -euo pipefail
cd "$(dirname "$0")/.."
DELAY_MS=${DELAY_MS:-20}
WSIVIEW_THREADS=${WSIVIEW_THREADS:-2 default}
PEER_THREADS=${PEER_THREADS:-2 8}
PEERS=../shared/peers
ORTHANC=$(command -v Orthanc || echo /usr/sbin/Orthanc)
PLUGIN=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
[ -x "$ORTHANC" ] || { echo "compare-dicomweb: Orthanc is not installed (apt-get install orthanc)" >&2; exit 1; }
[ -f "$PLUGIN" ] || { echo "compare-dicomweb: $PLUGIN is missing (apt-get install orthanc-dicomweb)" >&2; exit 1; }
command -v OrthancWSIDicomizer >/dev/null || { echo "compare-dicomweb: apt-get install orthanc-wsi" >&2; exit 1; }
[ -d "$PEERS" ] || { echo "compare-dicomweb: $PEERS is missing" >&2; exit 1; }

# shellcheck disable=SC2086
cargo build --release --quiet ${CARGO_ARGS:-}
BIN=${CARGO_TARGET_DIR:-target}/release/wsiview
SLIDE=${1:-${TMPDIR:-/tmp}/wsiview-bench-20000x15000.tif}
if [ ! -f "$SLIDE" ]; then
  "$BIN" generate "$SLIDE" --width 20000 --height 15000 --tile 256 --compression jpeg --quality 85 >&2
fi
PY=$(bash "$PEERS/setup.sh")

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/wsiview-dicomweb.XXXXXX")
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
ms_of() { # run a command, print its wall time in ms
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "slide: $(basename "$SLIDE") ($(du -hL "$SLIDE" | cut -f1))"

# The series: OrthancWSIDicomizer copies the JPEG tiles; ImageType (which it leaves out) is given
# so that wsidicom, which needs it, reads the series too.
mkdir -p "$SCRATCH/series"
echo '{"ImageType": "ORIGINAL\\PRIMARY\\VOLUME\\NONE", "AccessionNumber": "BENCH-1"}' >"$SCRATCH/dataset.json"
OrthancWSIDicomizer --threads "$(nproc)" --max-size 0 --dataset "$SCRATCH/dataset.json" --folder "$SCRATCH/series" "$SLIDE" \
  >"$SCRATCH/dicomizer.log" 2>&1
echo "series: $(find "$SCRATCH/series" -name '*.dcm' | wc -l) instances by OrthancWSIDicomizer ($(du -sh "$SCRATCH/series" | cut -f1))"

# dicomize against cp (page cache warm for both: each runs 3 times, the median is kept).
if "$BIN" help dicomize >/dev/null 2>&1; then
  cp_times=() dz_times=()
  for _ in 1 2 3; do
    rm -rf "$SCRATCH/cp" "$SCRATCH/dz" && mkdir -p "$SCRATCH/cp"
    cp_times+=("$(ms_of cp "$SLIDE" "$SCRATCH/cp/")")
    dz_times+=("$(ms_of "$BIN" dicomize "$SLIDE" "$SCRATCH/dz")")
  done
  med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
  echo "dicomize: wsiview dicomize $(med "${dz_times[@]}") ms, cp $(med "${cp_times[@]}") ms (medians of 3; target <= 2x cp)"
  rm -rf "$SCRATCH/cp" "$SCRATCH/dz"
fi

# A private Orthanc: its own ports, storage and config; loopback only (RemoteAccessAllowed false).
HTTP_PORT=$(free_port)
DICOM_PORT=$(free_port)
cat >"$SCRATCH/orthanc.json" <<EOF
{"Name": "wsiview-bench", "HttpPort": $HTTP_PORT, "DicomPort": $DICOM_PORT,
 "StorageDirectory": "$SCRATCH/storage", "IndexDirectory": "$SCRATCH/storage",
 "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
 "Plugins": ["$PLUGIN"], "DicomWeb": {"Enable": true, "Root": "/dicom-web/"}}
EOF
(cd "$SCRATCH" && exec "$ORTHANC" "$SCRATCH/orthanc.json" </dev/null >"$SCRATCH/orthanc.log" 2>&1) &
PIDS+=($!)
wait_port "$HTTP_PORT"
python3 - "http://127.0.0.1:$HTTP_PORT" "$SCRATCH/series" <<'PY'
import os, sys, urllib.request
base, folder = sys.argv[1:3]
for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name), "rb") as f:
        request = urllib.request.Request(base + "/instances", data=f.read(), headers={"Content-Type": "application/dicom"})
    urllib.request.urlopen(request).read()
PY
PROXY_PORT=$(free_port)
python3 "$PEERS/delay-proxy.py" "$PROXY_PORT" "$HTTP_PORT" "$DELAY_MS" 3600 </dev/null >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$PROXY_PORT"
ROOT=http://127.0.0.1:$PROXY_PORT/dicom-web
read -r STUDY SERIES < <("$BIN" dicomweb list "$ROOT" --accession BENCH-1 --json 2>/dev/null |
  python3 -c 'import json,sys; s = json.load(sys.stdin)[0]; print(s["StudyInstanceUID"], s["SeriesInstanceUID"])')
URL=$ROOT/studies/$STUDY/series/$SERIES
echo "Orthanc $("$ORTHANC" --version 2>/dev/null | head -n 1 | awk '{print $NF}') with its DICOMweb plugin on 127.0.0.1, behind delay-proxy.py, $DELAY_MS ms a request"

RESULTS=$SCRATCH/results.jsonl
for t in $WSIVIEW_THREADS; do
  if [ "$t" = default ]; then args=(); else args=(--threads "$t"); fi
  out=$("$BIN" bench "$URL" "${args[@]}" --json 2>/dev/null)
  echo "wsiview bench, $(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["threads"])') threads: $out"
  echo "{\"who\": \"wsiview\", \"r\": $out}" >>"$RESULTS"
done
for t in $PEER_THREADS; do
  out=$("$PY" "$PEERS/wsidicom-web-baseline.py" "$ROOT" "$STUDY" "$SERIES" "$t" 2>/dev/null)
  echo "wsidicom DICOMweb client, $t threads: $out"
  echo "{\"who\": \"wsidicom\", \"r\": $out}" >>"$RESULTS"
done

timed_views "$URL"

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
ws = [r["r"] for r in rows if r["who"] == "wsiview"]
peers = [r["r"] for r in rows if r["who"] == "wsidicom"]
views = [r for r in rows if r["who"] == "view"]
best = max(peers, key=lambda r: r["tiles_per_s"]) if peers else None
print("ratios:")
for w in ws:
    same = [p for p in peers if p["threads"] == w["threads"]]
    if same:
        print(f"  tiles/s, wsiview {w['threads']} threads / wsidicom {w['threads']} threads: "
              f"{w['tiles_per_s'] / same[0]['tiles_per_s']:.1f}x (target >= 3x)")
    if best:
        print(f"  tiles/s, wsiview {w['threads']} threads / wsidicom's best ({best['threads']} threads): "
              f"{w['tiles_per_s'] / best['tiles_per_s']:.1f}x (target >= 3x)")
    if best:
        print(f"  open, wsiview {w['threads']} threads / wsidicom's ({best['threads']} threads): "
              f"{w['open_ms']:.0f} / {best['open_ms']:.0f} ms")
if views:
    complete = statistics.median(v["r"]["complete_ms"] for v in views)
    wall = statistics.median(v["wall_ms"] for v in views)
    print(f"  complete 1600x1000 level-0 view from process start, median of {len(views)}: {complete:.0f} ms "
          f"(process wall time {wall:.0f} ms; target <= 1000 ms)")
PY
