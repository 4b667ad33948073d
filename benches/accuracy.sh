#!/bin/sh
# Reproduces the README's held-out accuracy table.
# Usage: [SEED=N] [TRAIN_BACKGROUND=0] benches/accuracy.sh DATA BG
#   DATA = output of ../shared/data/unpack.sh, BG = output of ../shared/data/get-background.sh
# Each head is trained on the train half of every folder and evaluated on the test half; the
# same background folders are mixed into the training copies (their train half) and into the
# 10 dB evaluation streams (their test half). TRAIN_BACKGROUND=0 trains without --background
# (copies mixed with the negatives instead, hark's default); SEED sets train's --seed (1).
set -eu
DATA=$1
BG=$2
HARK=${HARK:-target/release/hark}
. "$(dirname "$0")/words.sh"
TRAIN_ARGS="--seed ${SEED:-1}"
if [ "${TRAIN_BACKGROUND:-1}" != 0 ]; then TRAIN_ARGS="$TRAIN_ARGS $BACKGROUND"; fi
cargo build --release
run() {
    word=$1 positive=$2
    shift 2
    $HARK train --word "$word" --positive "$positive" "$@" $COMMON $TRAIN_ARGS --split train --out "$word.head" -q
    $HARK eval --head "$word.head" --positive "$positive" "$@" $COMMON $BACKGROUND --split test -q > "$word.eval"
    head -2 "$word.eval"
    echo "  first threshold at <= 0.25 FA/h: $(awk '/^[0-9.]+\t/ && $3<=0.25 {print; exit}' "$word.eval")"
    echo "  first threshold at <= 0.8 FA/h:  $(awk '/^[0-9.]+\t/ && $3<=0.8 {print; exit}' "$word.eval")"
}
for word in $WORDS; do
    word_data "$word"
    run "$word" "$positive" $negatives
done
