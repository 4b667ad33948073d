#!/usr/bin/env bash
# Runs `hark listen --wav` over a long file at full speed and samples its resident memory once a
# minute, to show that memory stays flat over hours of audio.
#
#   benches/long_run.sh /tmp/24h.wav [extra listen args…]
#
# Prints the detections count, /usr/bin/time's CPU and peak RSS, and the RSS samples
# (minute, kB). Needs a release build (cargo build --release).
set -euo pipefail
wav=$1; shift
bin=${HARK_BIN:-target/release/hark}
log=$(mktemp)
/usr/bin/time -v "$bin" listen --wav "$wav" "$@" >"$log.out" 2>"$log.err" &
timer=$!
sleep 1
pid=$(pgrep -P "$timer" -n || true)
minute=0
echo "minute rss_kB"
while kill -0 "$timer" 2>/dev/null; do
  if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
    echo "$minute $(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")"
  fi
  sleep 60 || true
  minute=$((minute + 1))
done
wait "$timer" || true
echo "detections: $(wc -l <"$log.out")"
grep -E "User time|System time|Elapsed|Maximum resident" "$log.err"
tail -n 3 "$log.err" | grep -v -E "Exit status|Page size" || true
rm -f "$log" "$log.out" "$log.err"
