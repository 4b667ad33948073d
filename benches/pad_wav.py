#!/usr/bin/env python3
"""Writes a WAV with silence added before and after, as `hark eval` streams each clip.

    python3 benches/pad_wav.py IN.wav OUT.wav [BEFORE_S [AFTER_S]]   (defaults 0.5 and 1.5)

16-bit PCM in, the same format out. Standard library only.
"""
import sys
import wave


def main():
    src, out = sys.argv[1], sys.argv[2]
    before = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    after = float(sys.argv[4]) if len(sys.argv) > 4 else 1.5
    with wave.open(src, "rb") as w:
        params = w.getparams()
        frames = w.readframes(w.getnframes())
    if params.sampwidth != 2:
        sys.exit(f"{src}: not 16-bit PCM")
    silence = b"\0" * (2 * params.nchannels)
    with wave.open(out, "wb") as o:
        o.setparams(params)
        o.writeframes(silence * int(before * params.framerate))
        o.writeframes(frames)
        o.writeframes(silence * int(after * params.framerate))


if __name__ == "__main__":
    main()
