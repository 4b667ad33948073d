#!/usr/bin/env python3
"""Builds audio/computer-demo.wav: held-out utterances in real background noise.

Usage: python3 audio/make_demo.py DATA_WAV_DIR   (the output of ../shared/data/unpack.sh)

Takes the first three "computer" clips and two "jarvis" clips of the Picovoice
wake-word-benchmark (Apache-2.0) whose file names fall in hark's *test* half (sha256 of the file
name, first byte odd: `hark train --split train` never sees them), lays them out with pauses
(word, word, other word, word, other word), and mixes in the speech-commands "running_tap"
noise (CC BY 4.0) 20 dB below the speech (a tap running nearby). 16 kHz mono 16-bit.
"""
import hashlib
import sys
import wave
from pathlib import Path

import numpy as np


def test_half(p):
    return hashlib.sha256(p.name.encode()).digest()[0] & 1 == 1


def read(p):
    with wave.open(str(p)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768


def main():
    data = Path(sys.argv[1])
    pick = lambda kw, n: [p for p in sorted((data / "wake-word-benchmark" / kw).glob("*.wav")) if test_half(p)][:n]
    computer, jarvis = pick("computer", 3), pick("jarvis", 2)
    order = [computer[0], computer[1], jarvis[0], computer[2], jarvis[1]]
    gap = np.zeros(16000)
    parts = [gap]
    for p in order:
        print(p.relative_to(data))
        parts += [read(p), gap]
    speech = np.concatenate(parts)
    noise = read(data / "background" / "speech-commands-noise" / "running_tap.wav")
    noise = np.resize(noise, len(speech))
    loud = np.abs(speech) > 0.01
    ps = np.mean(speech[loud] ** 2)
    pn = np.mean(noise ** 2)
    mixed = speech + noise * np.sqrt(ps / pn / 10 ** (20 / 10))
    out = Path(__file__).resolve().parent / "computer-demo.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((np.clip(mixed, -1, 32767 / 32768) * 32768).astype(np.int16).tobytes())
    print(f"{out}: {len(mixed) / 16000:.2f} s")


if __name__ == "__main__":
    main()
