#!/bin/sh
# How many recordings does a word need? Trains on the first N train-half clips of a word (in a
# fixed pseudo-random order: by the sha256 of the file name) and evaluates on the whole test
# half, exactly as benches/accuracy.sh does for all of them.
# Usage: [SEED=N] [COUNTS="10 25 50 100"] benches/clips_needed.sh DATA BG [WORD...]
#   DATA = output of ../shared/data/unpack.sh, BG = output of ../shared/data/get-background.sh,
#   WORD = computer, jarvis or athena (default: all three)
# Prints one line per word and count: clips used, miss at <= 0.25 and <= 0.8 false alarms/hour,
# and the miss and false alarms/hour at the head's own threshold.
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
for word in $WORDS; do
    word_data "$word"
    # The train half (hark's split: the first byte of the name's sha256 is even), in the
    # order of that hash.
    for f in "$positive"/*.wav; do
        n=$(basename "$f")
        h=$(printf '%s' "$n" | sha256sum | cut -c1-64)
        [ $((0x$(echo "$h" | cut -c1-2) % 2)) -eq 0 ] && echo "$h $f"
    done | sort | cut -d' ' -f2- > "$work/$word.list"
    total=$(wc -l < "$work/$word.list")
    for count in ${COUNTS:-10 25 50 100} all; do
        [ "$count" = all ] && count=$total
        [ "$count" -gt "$total" ] && continue
        dir=$work/$word-$count
        mkdir -p "$dir"
        head -n "$count" "$work/$word.list" | while IFS= read -r f; do ln -s "$f" "$dir/"; done
        $HARK train --word "$word" --positive "$dir" $negatives $COMMON $BACKGROUND \
            --seed "${SEED:-1}" --split train --out "$work/$word.head" -q 2>/dev/null
        $HARK eval --head "$work/$word.head" --positive "$positive" $negatives $COMMON $BACKGROUND \
            --split test -q > "$work/$word.eval" 2>/dev/null
        strict=$(awk '/^[0-9.]+\t/ && $3<=0.25 {printf "%.1f %%", 100*$2; exit}' "$work/$word.eval")
        loose=$(awk '/^[0-9.]+\t/ && $3<=0.8 {printf "%.1f %%", 100*$2; exit}' "$work/$word.eval")
        own=$(sed -n 2p "$work/$word.eval")
        printf '%s\t%d clips\tmiss at <= 0.25 FA/h: %s\tat <= 0.8 FA/h: %s\t%s\n' \
            "$word" "$count" "${strict:-n/a}" "${loose:-n/a}" "$own"
    done
done
