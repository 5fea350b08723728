#!/usr/bin/env bash
# wsiview bench against OpenSlide's read_region on the same generated slide, in one run.
#   benches/compare-openslide.sh [SLIDE]     (default: a 20000x15000 JPEG Q85 pyramid, generated once)
# Uses Debian's python3-openslide (installed if missing); when ../shared/peers exists it also runs
# the peer yardsticks there (OpenSlide 4, cuCIM, raw libjpeg-turbo decode) on the same slide.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=target/release/wsiview
SLIDE=${1:-${TMPDIR:-/tmp}/wsiview-bench-20000x15000.tif}
if [ ! -f "$SLIDE" ]; then
  "$BIN" generate "$SLIDE" --width 20000 --height 15000 --tile 256 --compression jpeg --quality 85 >&2
fi
# Debian's binding lives in Debian's own python, which may not be the first python3 on PATH.
DEBPY=/usr/bin/python3
if ! "$DEBPY" -c 'import openslide' 2>/dev/null; then
  if command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-openslide >/dev/null
  fi
fi

cores=$(nproc)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "slide: $SLIDE ($(du -h "$SLIDE" | cut -f1))"
echo "wsiview, 1 thread:     $("$BIN" bench "$SLIDE" --threads 1 --json)"
echo "wsiview, $cores threads:    $("$BIN" bench "$SLIDE" --threads "$cores" --json)"

# OpenSlide through Debian's binding: the same work as `wsiview bench` (tile-aligned 4096x4096 level-0
# window at the centre, one 256x256 read_region per tile, cache off where the API allows; a 1920x1080
# level-0 read at the centre).
if "$DEBPY" -c 'import openslide' 2>/dev/null; then
  "$DEBPY" - "$SLIDE" <<'PY'
import json, statistics, sys, time
import openslide
path = sys.argv[1]
def median_time(fn, n):
    runs = []
    for _ in range(n):
        t = time.perf_counter(); fn(); runs.append(time.perf_counter() - t)
    return statistics.median(runs)
open_s = median_time(lambda: openslide.OpenSlide(path).close(), 9)
s = openslide.OpenSlide(path)
try:  # OpenSlide >= 3.5 lets the cache be switched off; Debian 12 ships 3.4.1, which reads each tile anew
    s.set_cache(openslide.OpenSlideCache(0))
except Exception:
    pass
w, h = s.level_dimensions[0]
x0, y0 = max(0, w // 2 - 2048) // 256 * 256, max(0, h // 2 - 2048) // 256 * 256
tiles = [(x, y) for y in range(y0, min(h, y0 + 4096), 256) for x in range(x0, min(w, x0 + 4096), 256)]
tiles_s = median_time(lambda: [s.read_region(t, 0, (256, 256)) for t in tiles], 3)
vp = median_time(lambda: s.read_region((max(0, w // 2 - 960), max(0, h // 2 - 540)), 0, (1920, 1080)), 5)
print("openslide (Debian), 1 thread: " + json.dumps({
    "reader": "openslide " + getattr(openslide, "__library_version__", "?"), "threads": 1,
    "open_ms": round(open_s * 1e3, 3), "tiles": len(tiles), "tiles_per_s": round(len(tiles) / tiles_s, 1),
    "viewport_1080p_level0_ms": round(vp * 1e3, 1)}))
PY
else
  echo "openslide: python3-openslide unavailable; skipped"
fi

PEERS=../shared/peers
if [ -d "$PEERS" ]; then
  PY=$(bash "$PEERS/setup.sh")
  echo "peer openslide 4, 1 thread: $("$PY" "$PEERS/openslide-baseline.py" "$SLIDE")"
  echo "peer cucim, $cores threads:  $("$PY" "$PEERS/cucim-baseline.py" "$SLIDE" --threads "$cores")"
  echo "peer libjpeg-turbo raw:      $("$PY" "$PEERS/jpeg-limit.py" "$SLIDE")"
fi
