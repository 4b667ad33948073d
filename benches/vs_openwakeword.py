#!/usr/bin/env python3
"""CPU per hour of audio: hark's whole pipeline against openWakeWord's, same audio, same run.

Usage (after `cargo build --release`):
    python3 -m venv /tmp/oww && /tmp/oww/bin/pip install pyopen-wakeword==1.1.0 numpy
    /tmp/oww/bin/python benches/vs_openwakeword.py DATA/wake-word-benchmark [MINUTES]

DATA is the output of ../shared/data/unpack.sh. The script tiles MINUTES (default 10) of real
clips into one 16 kHz WAV, then times, one after the other on that file:
  * openWakeWord (pyopen-wakeword 1.1.0, TFLite): mel + embedding model + the builtin `alexa`
    model, streamed in 80 ms chunks as its own CLI does;
  * hark: `target/release/hark listen --wav FILE` (resampler, front end, streaming backbone,
    the built-in head, detector), as a child process;
  * hark with the windowed backbone: the same command with `--windowed-backbone` (the network
    run on every whole 76-frame window, as openWakeWord runs it; same detections).
CPU time is user + system of each (process_time for openWakeWord in-process, rusage of the
child for hark), so thread pools are counted.
"""
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

ROOT = Path(__file__).resolve().parent.parent


def tile(data: Path, minutes: float) -> np.ndarray:
    files = sorted(data.rglob("*.wav"))
    need = int(minutes * 60 * 16000)
    parts, total = [], 0
    while total < need:
        for f in files:
            with wave.open(str(f)) as w:
                if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
                    continue
                x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
            parts.append(x)
            total += len(x)
            if total >= need:
                break
    return np.concatenate(parts)[:need]


def main():
    data = Path(sys.argv[1])
    minutes = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    audio = tile(data, minutes)
    hours = len(audio) / 16000 / 3600
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "tiled.wav"
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
            w.writeframes(audio.tobytes())
        print(f"audio: {len(audio) / 16000 / 60:.1f} min tiled from {data}")

        feats = OpenWakeWordFeatures.from_builtin()
        oww = OpenWakeWord.from_builtin(Model.ALEXA)
        raw = audio.tobytes()
        chunk = 1280 * 2
        c0, t0 = time.process_time(), time.perf_counter()
        scores = 0
        for i in range(0, len(raw), chunk):
            for f in feats.process_streaming(raw[i:i + chunk]):
                for _ in oww.process_streaming(f):
                    scores += 1
        oww_cpu, oww_wall = time.process_time() - c0, time.perf_counter() - t0

        hark = ROOT / "target" / "release" / "hark"

        def run_hark(*extra):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            out = subprocess.run([str(hark), "listen", "--wav", str(wav), *extra],
                                 capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            return cpu, wall, len(out.stdout.splitlines())

        hark_cpu, hark_wall, hark_det = run_hark()
        win_cpu, win_wall, win_det = run_hark("--windowed-backbone")

    print(f"openWakeWord 1.1.0 (alexa)     : {oww_cpu / hours:7.1f} CPU-s per audio hour "
          f"({oww_cpu / (hours * 3600):.4f} CPU-s per audio second, {oww_wall:.1f} s wall, {scores} scores)")
    print(f"hark listen, windowed backbone : {win_cpu / hours:7.1f} CPU-s per audio hour "
          f"({win_cpu / (hours * 3600):.4f} CPU-s per audio second, {win_wall:.1f} s wall, "
          f"{win_det} detections)")
    print(f"hark listen (computer)         : {hark_cpu / hours:7.1f} CPU-s per audio hour "
          f"({hark_cpu / (hours * 3600):.4f} CPU-s per audio second, {hark_wall:.1f} s wall, "
          f"{hark_det} detections)")
    print(f"ratios: hark uses {oww_cpu / hark_cpu:.2f}x less CPU than openWakeWord; "
          f"streaming uses {win_cpu / hark_cpu:.2f}x less than hark's windowed backbone; "
          f"windowed hark uses {oww_cpu / win_cpu:.2f}x less than openWakeWord")


if __name__ == "__main__":
    main()
