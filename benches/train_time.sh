#!/bin/sh
# Times training on about an hour of audio from scratch, then an update with 10 new clips.
# Usage: [HARK=path/to/hark] benches/train_time.sh DATA BG
#   DATA = output of ../shared/data/unpack.sh, BG = output of ../shared/data/get-background.sh
# Trains `computer` on the train half of its 207 Picovoice clips (10 min) against 46.4 min of
# negatives with an empty embedding cache (cold: every clip goes through the backbone), then
# updates copies of the head twice with 5 Precise-Community "computer" clips (missed wake
# words) and 5 "smart mirror" clips (false alarms): uncached, then cached. Prints
# /usr/bin/time's wall and CPU seconds and peak RSS for each.
set -eu
DATA=$1
BG=$2
HARK=${HARK:-target/release/hark}
W=$DATA/wake-word-benchmark
P=$DATA/precise-community
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/positive" "$work/negative"
for f in $(ls "$P/computer"/*.wav | head -5); do cp "$f" "$work/positive/"; done
for f in $(ls "$W/smart_mirror"/*.wav | head -5); do cp "$f" "$work/negative/"; done
export HARK_CACHE="$work/cache"
/usr/bin/time -f "train: %e s wall, %U s user, %S s sys, %M KB peak RSS" \
    "$HARK" train --word computer --positive "$W/computer" \
    --negative "$W/jarvis" --negative "$W/smart_mirror" --negative "$W/snowboy" \
    --negative "$P/not-wake-words-en" --negative "$P/not-wake-words-es" \
    --negative "$DATA/background" --negative "$BG/music" \
    --split train --seed 1 --out "$work/computer.head" -q
for run in uncached cached; do
    cp "$work/computer.head" "$work/updated.head"
    cp "$work/computer.head.replay" "$work/updated.head.replay"
    /usr/bin/time -f "update ($run): %e s wall, %U s user" \
        "$HARK" update --head "$work/updated.head" \
        --positive "$work/positive" --negative "$work/negative"
done
