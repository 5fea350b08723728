# Shell functions shared by benches/compare-remote.sh and benches/compare-dicomweb.sh (sourced).
# They use the caller's PIDS (processes to stop at exit), SCRATCH, BIN and RESULTS.

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait up to 30 s for something to listen on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$(basename "$0"): nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# Three timed `wsiview view URL --level 0 --size 1600x1000 --screenshot` under a private Xvfb,
# each from process start; one "view" line each in $RESULTS. Skipped without Xvfb.
timed_views() {
  local URL=$1
  if command -v Xvfb >/dev/null 2>&1; then
    display=
    for n in $(seq 90 199); do
      if [ ! -e "/tmp/.X$n-lock" ] && [ ! -e "/tmp/.X11-unix/X$n" ]; then display=$n; break; fi
    done
    if [ -n "$display" ]; then
      Xvfb ":$display" -screen 0 1600x1000x24 -nolisten tcp </dev/null >/dev/null 2>&1 &
      PIDS+=($!)
      for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X$display" ] && break; sleep 0.1; done
      for run in 1 2 3; do
        start=$(date +%s%N)
        out=$(DISPLAY=:$display "$BIN" view "$URL" --level 0 --size 1600x1000 --screenshot "$SCRATCH/view.png" 2>/dev/null | tail -n 1)
        end=$(date +%s%N)
        wall=$(((end - start) / 1000000))
        echo "wsiview view URL --screenshot, run $run: $out; process wall time ${wall} ms (PNG written, exited)"
        echo "{\"who\": \"view\", \"r\": $out, \"wall_ms\": $wall}" >>"$RESULTS"
      done
    fi
  else
    echo "view: Xvfb is not installed; the timed screenshot was skipped"
  fi
}
