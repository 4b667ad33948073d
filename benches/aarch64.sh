#!/usr/bin/env bash
# Builds hark for 64-bit ARM (Raspberry Pi OS 64-bit, aarch64), runs it under qemu's user-mode
# emulation and compares what it computes from the demo with this machine's build: tract's ARM
# (NEON) kernels and hark's choice among them, on the same audio and head.
#
#   benches/aarch64.sh            (as root on Debian: installs what it needs)
#
# Needs the rustup target aarch64-unknown-linux-gnu (added here), Debian's aarch64 cross gcc,
# ALSA's arm64 headers and qemu-user. Emulation is slow (minutes for the 20 s demo): this checks
# that the ARM build is right, not how fast a Pi is.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && ! command -v qemu-aarch64 >/dev/null; then
  dpkg --add-architecture arm64
  apt-get update -qq
  apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
    libasound2-dev:arm64 >/dev/null
fi
rustup target add aarch64-unknown-linux-gnu
cargo build --release
# The cross build's own linker, C compiler and pkg-config folder (ALSA's arm64 .pc).
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
  PKG_CONFIG_ALLOW_CROSS=1 PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig \
  cargo build --release --target aarch64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-target}
arm=$target_dir/aarch64-unknown-linux-gnu/release/hark
native=$target_dir/release/hark
run_arm() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$arm" "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
wav=audio/computer-demo.wav
echo "== detections (aarch64, emulated)"
start=$(date +%s)
run_arm listen --wav "$wav"
echo "($(($(date +%s) - start)) s under emulation)"
echo "== aarch64 against $(uname -m): embeddings and scores of the demo"
run_arm embed --wav "$wav" --out "$work/arm.npy"
"$native" embed --wav "$wav" --out "$work/native.npy"
run_arm score --head models/computer.head --wav "$wav" >"$work/arm.txt"
"$native" score --head models/computer.head --wav "$wav" >"$work/native.txt"
python3 - "$work" <<'PY'
import array, ast, sys
w = sys.argv[1]


def npy(path):
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[8:10], "little")
    header = ast.literal_eval(raw[10:10 + n].decode())
    assert header["descr"] == "<f4", header
    x = array.array("f")
    x.frombytes(raw[10 + n:])
    return header["shape"], x


(sa, a), (sb, b) = npy(f"{w}/native.npy"), npy(f"{w}/arm.npy")
assert sa == sb, (sa, sb)
d = max(abs(x - y) for x, y in zip(a, b))
print(f"embeddings {sa}: largest difference {d:.2e} (values up to {max(map(abs, a)):.1f})")
a = [l.split("\t") for l in open(f"{w}/native.txt")]
b = [l.split("\t") for l in open(f"{w}/arm.txt")]
assert len(a) == len(b) and all(x[0] == y[0] for x, y in zip(a, b)), "frame times differ"
d = max(abs(float(x[1]) - float(y[1])) for x, y in zip(a, b))
same = sum(x[1] == y[1] for x, y in zip(a, b))
print(f"scores: {len(a)} frames, {same} printed alike (6 decimals), largest difference {d:.2e}")
PY
