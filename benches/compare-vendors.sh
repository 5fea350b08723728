#!/usr/bin/env bash
# wsiview against OpenSlide 4 on vendor formats, in one run (issue 12's figures):
#   benches/compare-vendors.sh
# Makes (once, in $TMPDIR) an 8192x8192 Aperio SVS with JPEG 2000 (33005) tiles from a generated
# slide, re-encoded with OpenJPEG through imagecodecs, then runs `wsiview bench` (1 and all threads)
# and ../shared/peers/openslide-baseline.py (1 thread) on it and on the NDPI fixture, plus OpenSlide's
# get_thumbnail((1024, 1024)) from a cold handle. Needs the peers' venv (../shared/peers/setup.sh)
# or PEERPY pointing at a python with openslide-python, openslide-bin, tifffile and imagecodecs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=target/release/wsiview
PEERS=../shared/peers
PY=${PEERPY:-$PEERS/.venv/bin/python}
TMP=${TMPDIR:-/tmp}
J2K=$TMP/wsiview-bench-j2k-8192.svs
if [ ! -f "$J2K" ]; then
  "$BIN" generate "$TMP/wsiview-bench-j2k-src.tif" --width 8192 --height 8192 --compression none >&2
  "$PY" - "$TMP/wsiview-bench-j2k-src.tif" "$J2K" <<'PY'
import sys, numpy as np, tifffile, imagecodecs
src, out = sys.argv[1], sys.argv[2]
img = tifffile.TiffFile(src).pages[0].asarray()[..., :3]
def tiles(a, t=256):
    for y in range(0, a.shape[0], t):
        for x in range(0, a.shape[1], t):
            tile = np.zeros((t, t, 3), np.uint8)
            part = a[y:y + t, x:x + t]
            tile[:part.shape[0], :part.shape[1]] = part
            yield imagecodecs.jpeg2k_encode(tile, level=45, codecformat='j2k', mct=True)
head = 'Aperio Image Library v12.0.15 \r\n'
with tifffile.TiffWriter(out) as w:
    w.write(tiles(img), shape=img.shape, dtype='uint8', tile=(256, 256), compression=33005, photometric='rgb',
            description=head + '8192x8192 [0,0 8192x8192] (256x256) J2K/KDU Q=70|AppMag = 40|MPP = 0.25', metadata=None)
    w.write(img[::16, ::16].copy(), photometric='rgb', compression='jpeg', description=head + 'thumbnail', metadata=None)
    l1 = img[::4, ::4].copy()
    w.write(tiles(l1), shape=l1.shape, dtype='uint8', tile=(256, 256), compression=33005, photometric='rgb',
            description=head + '2048x2048', metadata=None)
PY
  rm -f "$TMP/wsiview-bench-j2k-src.tif"
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for SLIDE in "$J2K" ../shared/fixtures/vendors/hamamatsu.ndpi; do
  echo "slide: $SLIDE ($(du -h "$SLIDE" | cut -f1))"
  echo "wsiview, 1 thread:  $("$BIN" bench "$SLIDE" --threads 1 --json)"
  echo "wsiview, $(nproc) threads: $("$BIN" bench "$SLIDE" --threads "$(nproc)" --json)"
  echo "openslide, 1 thread: $("$PY" "$PEERS/openslide-baseline.py" "$SLIDE")"
  "$PY" - "$SLIDE" <<'PY'
import sys, time, statistics, openslide
runs = []
for _ in range(3):
    t = time.perf_counter(); s = openslide.OpenSlide(sys.argv[1]); s.get_thumbnail((1024, 1024)); s.close()
    runs.append(time.perf_counter() - t)
print('openslide get_thumbnail((1024, 1024)) from a fresh handle: %.1f ms (median of 3)' % (statistics.median(runs) * 1e3))
PY
done
