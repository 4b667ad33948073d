#!/usr/bin/env python3
"""Writes a long 16-bit WAV by repeating a clip: the input of the long-run memory benchmark.

    python3 benches/tile_wav.py audio/computer-demo.wav 24 /tmp/24h.wav

Streams to disk (constant memory); the result holds whole repetitions only, so the expected
number of detections is (repetitions × detections in the clip). Standard library only.
"""
import sys
import wave


def main():
    src, hours, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    with wave.open(src, "rb") as w:
        params = w.getparams()
        frames = w.readframes(w.getnframes())
    per_clip = params.nframes / params.framerate
    reps = max(1, int(hours * 3600 / per_clip))
    with wave.open(out, "wb") as o:
        o.setparams(params)
        for _ in range(reps):
            o.writeframes(frames)
    print(f"{out}: {reps} × {per_clip:.3f} s = {reps * per_clip / 3600:.3f} h")


if __name__ == "__main__":
    main()
