#!/bin/sh
# Runs the same commands with two hark binaries and compares every output byte for byte:
# a change that should not change behaviour (a refactoring) must print "same" on every line.
# Usage: benches/same_bits.sh OLD_HARK NEW_HARK [DATA]
#   DATA (optional) = output of ../shared/data/unpack.sh: adds a training on 150 Picovoice
#   "computer" clips against every Precise-Community not-wake-words clip, and its eval.
# Heads are written with SOURCE_DATE_EPOCH=0, so the same data and seed give identical files
# (creation time included). Exits 1 if anything differs.
set -eu
OLD=$1
NEW=$2
DATA=${3:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FX=$ROOT/tests/fixtures
DEMO=$ROOT/audio/computer-demo.wav
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH=0
status=0

# run NAME ARGS…: runs both binaries with ARGS in $WORK/{old,new}/ (ARGS may name @ for that
# folder), keeping stdout as NAME.out; the folders' files are compared after each step.
run() {
    name=$1
    shift
    for side in old new; do
        bin=$OLD
        [ "$side" = new ] && bin=$NEW
        dir=$WORK/$side
        mkdir -p "$dir"
        args=$(printf '%s\n' "$@" | sed "s#@#$dir#g")
        # shellcheck disable=SC2086
        (cd "$dir" && printf '%s\n' "$args" | tr '\n' '\0' | xargs -0 "$bin" > "$dir/$name.out" 2> "$dir/$name.err") ||
            echo "$side: $name failed: $(tail -1 "$dir/$name.err")"
        # Paths into the side's own folder (as `info` prints them) are the same path.
        # …and eval's first line says how long it took.
        sed -i -e "s#$dir#@#g" -e 's/ negatives, [0-9.]* s; / negatives, (time) s; /' "$dir/$name.out"
    done
    if diff -r -q -x '*.err' "$WORK/old" "$WORK/new" > /dev/null; then
        echo "same      $name"
    else
        echo "DIFFERENT $name"
        diff -r -q -x '*.err' "$WORK/old" "$WORK/new" | head -5
        status=1
    fi
}

run listen listen --wav "$DEMO"
run listen-json listen --wav "$DEMO" --json
run listen-saved listen --wav "$DEMO" --save-detections @/saved
run score score --wav "$DEMO"
run embed embed --wav "$FX/speech.wav"
run info info --json
run train train --word computer --positive "$FX/train/computer" --negative "$FX/train/other" \
    --negative "$FX/speech.wav" --copies 2 --cache @/cache --out @/fixture.head -q
run train-seed train --word computer --positive "$FX/train/computer" --negative "$FX/train/other" \
    --negative "$FX/speech.wav" --copies 2 --seed 7 --hidden 16 --cache @/cache --out @/seed7.head -q
run train-background train --word computer --positive "$FX/train/computer" --negative "$FX/speech.wav" \
    --background "$FX/train/other" --copies 3 --cache @/cache --out @/background.head -q
run eval eval --head @/fixture.head --positive "$FX/train/computer" --negative "$FX/train/other" \
    --negative "$FX/speech.wav" --cache @/cache -q
run eval-builtin eval --positive "$FX/train/computer" --negative "$FX/train/other" --negative "$FX/speech.wav" \
    --highest 3 --no-template-check --cache @/cache -q
run listen-trained listen --head @/fixture.head --head @/seed7.head --wav "$DEMO" --json
run update update --head @/fixture.head --positive "$FX/train/unsorted" --cache @/cache
run info-updated info --head @/fixture.head --json
run set-threshold set-threshold --head @/seed7.head 0.9
run rollback update --head @/fixture.head --rollback

if [ -n "$DATA" ]; then
    POS=$WORK/pos
    mkdir -p "$POS"
    find "$DATA/wake-word-benchmark/computer" -name '*.wav' | sort | head -150 | while read -r f; do
        ln -s "$f" "$POS/"
    done
    NEG="$DATA/precise-community/not-wake-words-en"
    run train-data train --word computer --positive "$POS" --negative "$NEG" \
        --negative "$DATA/background" --cache @/cache --out @/computer.head -q
    run eval-data eval --head @/computer.head --positive "$DATA/wake-word-benchmark/computer" \
        --negative "$DATA/precise-community/not-wake-words-es" --split test --cache @/cache -q
fi
exit $status
