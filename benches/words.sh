# The benchmark words and their data, shared by accuracy.sh and clips_needed.sh (sourced, with
# DATA and BG set): COMMON and BACKGROUND, and `word_data WORD`, which sets `positive` (the
# word's clip folder) and `negatives` (every other keyword's folder: hard negatives).
W=$DATA/wake-word-benchmark
P=$DATA/precise-community
COMMON="--negative $P/not-wake-words-en --negative $P/not-wake-words-es --negative $DATA/background --negative $BG"
BACKGROUND="--background $DATA/background --background $BG/music"
WORDS="computer jarvis athena"
word_data() {
    case $1 in
    computer) positive=$W/computer; negatives="--negative $W/jarvis --negative $W/smart_mirror --negative $W/snowboy --negative $P/athena --negative $P/hey_chatterbox" ;;
    jarvis) positive=$W/jarvis; negatives="--negative $W/computer --negative $W/smart_mirror --negative $W/snowboy --negative $P/athena --negative $P/hey_chatterbox --negative $P/computer" ;;
    athena) positive=$P/athena; negatives="--negative $W --negative $P/hey_chatterbox --negative $P/computer" ;;
    *) echo "unknown word $1 (computer, jarvis or athena)" >&2; exit 2 ;;
    esac
}
