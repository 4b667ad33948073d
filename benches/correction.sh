#!/bin/sh
# One correction: a head fires on audio it never heard; what marking its first false alarm does.
# Usage: [SEED=N] benches/correction.sh DATA BG [WORD [TRACK]]
#   DATA = output of ../shared/data/unpack.sh, BG = output of ../shared/data/get-background.sh,
#   WORD = computer, jarvis or athena (default athena), TRACK = a 16-bit WAV of the test half
#   (default BG/music/macroform-robot_dity.wav, whose repeated phrase sets athena's strict point)
# Trains WORD as benches/accuracy.sh does and evaluates it; saves its detections in TRACK
# (followed by 1.5 s of silence, as `hark eval` streams a clip, so a short clip is heard to its
# end) as `hark listen --save-detections` does: 2 s before and 0.5 s after, what a false-alarm
# mark of `listen --learn` keeps. Runs `hark update --negative` with
# the first one alone, counts the detections in TRACK again and evaluates again. The rest of
# TRACK stays among the evaluation's negatives: this measures a correction from the user, not
# accuracy on unseen audio.
set -eu
DATA=$1
BG=$2
WORD=${3:-athena}
TRACK=${4:-$BG/music/macroform-robot_dity.wav}
HARK=${HARK:-target/release/hark}
. "$(dirname "$0")/words.sh"
cargo build --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
word_data "$WORD"
head=$work/$WORD.head
$HARK train --word "$WORD" --positive "$positive" $negatives $COMMON $BACKGROUND \
    --seed "${SEED:-1}" --split train --out "$head" -q 2> "$work/train.log" ||
    { cat "$work/train.log" >&2; exit 1; }
report() {
    $HARK eval --head "$head" --positive "$positive" $negatives $COMMON $BACKGROUND \
        --split test -q > "$work/eval"
    echo "  $(sed -n 2p "$work/eval")"
    echo "  miss at <= 0.25 FA/h: $(awk '/^[0-9.]+\t/ && $3<=0.25 {print $2; exit}' "$work/eval"), at <= 0.8 FA/h: $(awk '/^[0-9.]+\t/ && $3<=0.8 {print $2; exit}' "$work/eval")"
}
echo "$WORD, seed ${SEED:-1}, as trained:"
report
python3 "$(dirname "$0")/pad_wav.py" "$TRACK" "$work/track.wav" 0 1.5
$HARK listen --head "$head" --wav "$work/track.wav" --save-detections "$work/detections" 2>&1 | tail -1
first=$(ls "$work/detections" | sort | head -1)
if [ -z "$first" ]; then
    echo "no detection in $TRACK: nothing to correct"
    exit 0
fi
mkdir "$work/false-alarm"
mv "$work/detections/$first" "$work/false-alarm/"
echo "marking $first as a false alarm:"
$HARK update --head "$head" --negative "$work/false-alarm" 2>&1 | head -1
$HARK listen --head "$head" --wav "$work/track.wav" 2>&1 | tail -1
report
