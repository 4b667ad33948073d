#!/usr/bin/env python3
"""Writes one long 16 kHz mono WAV from the train half of the WAV files under some folders.

    python3 benches/concat_wav.py SECONDS OUT.wav DIR...

The train half is hark's (`--split train`: the first byte of the sha256 of the file name is
even); the files are taken in the order of the sha256 of b"onerec" + name until SECONDS are
written. The input of benches/one_recording.sh. Standard library only.
"""
import hashlib
import os
import sys
import wave


def main():
    seconds, out, dirs = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
    files = []
    for d in dirs:
        for root, _, names in os.walk(d):
            for n in names:
                if n.endswith(".wav") and hashlib.sha256(n.encode()).digest()[0] % 2 == 0:
                    files.append(os.path.join(root, n))
    files.sort(key=lambda p: hashlib.sha256(b"onerec" + os.path.basename(p).encode()).digest())
    need = int(seconds * 16000)
    written = 0
    with wave.open(out, "wb") as o:
        o.setnchannels(1)
        o.setsampwidth(2)
        o.setframerate(16000)
        for p in files:
            if written >= need:
                break
            with wave.open(p, "rb") as w:
                if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (16000, 1, 2):
                    sys.exit(f"{p}: not 16 kHz mono 16-bit")
                o.writeframes(w.readframes(w.getnframes()))
                written += w.getnframes()
    print(f"{out}: {len(files)} files available, {written / 16000 / 3600:.3f} h written")


if __name__ == "__main__":
    main()
