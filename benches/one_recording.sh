#!/bin/sh
# Negatives as one long recording: what a user gets who records an hour of their room instead
# of collecting files. Builds one 1-hour WAV from the train halves of the background audio
# (get-background.sh's prompts, spoken words and music, the noise recordings and the
# not-wake-words clips, in a fixed pseudo-random order), trains each word on its train-half
# clips with that recording as the only --negative, and evaluates as benches/accuracy.sh does
# (test halves; other keywords among the negatives, which this head never heard), then on the
# test halves of the recording's kinds of audio alone.
# Usage: [SEED=N] benches/one_recording.sh DATA BG [WORD...]
#   DATA = output of ../shared/data/unpack.sh, BG = output of ../shared/data/get-background.sh
set -eu
DATA=$1
BG=$2
shift 2
HARK=${HARK:-target/release/hark}
. "$(dirname "$0")/words.sh"
WORDS=${*:-$WORDS}
cargo build --release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/room"
# The name hashes to the train half, so --split train keeps it.
python3 "$(dirname "$0")/concat_wav.py" 3600 "$work/room/living-room1.wav" \
    "$BG" "$DATA/background" "$P/not-wake-words-en" "$P/not-wake-words-es"
for word in $WORDS; do
    word_data "$word"
    $HARK train --word "$word" --positive "$positive" --negative "$work/room" \
        --seed "${SEED:-1}" --split train --out "$work/$word.head" -q 2>&1 | grep validation
    $HARK eval --head "$work/$word.head" --positive "$positive" $negatives $COMMON $BACKGROUND \
        --split test -q > "$work/$word.eval"
    echo "$word: $(sed -n 2p "$work/$word.eval")"
    # The same kinds of audio as the recording (test halves), without the other keywords: how
    # far the held-out blocks' calibration holds on audio like the one it was made on.
    $HARK eval --head "$work/$word.head" --positive "$positive" $COMMON $BACKGROUND \
        --split test -q > "$work/$word.room.eval"
    echo "  on the recording's kinds of audio alone: $(sed -n 2p "$work/$word.room.eval")"
    echo "  first threshold at <= 0.25 FA/h: $(awk '/^[0-9.]+\t/ && $3<=0.25 {print; exit}' "$work/$word.eval")"
    echo "  first threshold at <= 0.8 FA/h:  $(awk '/^[0-9.]+\t/ && $3<=0.8 {print; exit}' "$work/$word.eval")"
done
