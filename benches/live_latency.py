#!/usr/bin/env python3
"""How long after the audio a live detection is printed: the capture path's own delay.

    python3 benches/live_latency.py [HARK_COMMAND] [WAV]

HARK_COMMAND defaults to target/release/hark and may carry a wrapper, e.g.
"/usr/bin/time -f '%U %S %M' target/release/hark" for CPU and peak RSS; WAV defaults to
audio/computer-demo.wav (16 kHz mono 16-bit). hark runs with --stats; its closing stats are
printed at the end.

Starts a private PulseAudio daemon whose default source is a FIFO (module-pipe-source, the
virtual microphone of tests/live.rs), runs `hark listen --json` on it, writes the WAV into the
FIFO paced at real time (20 ms every 20 ms) and timestamps every detection line as it arrives.
A detection's `time` is the seconds of audio hark had consumed when it fired; the audio up to
that point was written by `start + time`, so `arrival - start - time` is the delay the capture
path adds (PulseAudio's buffering, cpal's period, hark's ring and processing). The delay after
the end of the word is this plus the algorithmic part `hark eval` reports.

Needs `pulseaudio` and `pactl` (pulseaudio-utils). Standard library only.
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import wave


def main():
    hark = shlex.split(sys.argv[1] if len(sys.argv) > 1 else "target/release/hark")
    wav = sys.argv[2] if len(sys.argv) > 2 else "audio/computer-demo.wav"
    with wave.open(wav, "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2), \
            "needs 16 kHz mono 16-bit"
        pcm = w.readframes(w.getnframes())
    seconds = len(pcm) / 32000
    tmp = tempfile.mkdtemp()
    env = dict(os.environ, XDG_RUNTIME_DIR=f"{tmp}/run", HOME=f"{tmp}/home")
    for d in ("run", "home"):
        os.makedirs(f"{tmp}/{d}")
    fifo = f"{tmp}/src.fifo"
    daemon = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
         "-L", "module-native-protocol-unix",
         "-L", f"module-pipe-source file={fifo} format=s16le rate=16000 channels=1 source_name=p",
         "-L", "module-null-sink"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if subprocess.run(["pactl", "set-default-source", "p"], env=env,
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        proc = subprocess.Popen(
            [*hark, "listen", "--json", "--stats", "--duration", f"{seconds - 0.3:.2f}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while not subprocess.run(["pactl", "list", "short", "source-outputs"], env=env,
                                 capture_output=True).stdout.strip():
            time.sleep(0.05)
        start = [None]

        def play():
            with open(fifo, "wb", buffering=0) as f:
                t0 = time.monotonic()
                start[0] = t0
                # As a microphone would: the 20 ms ending at T is delivered at start + T.
                for i in range(0, len(pcm), 640):
                    due = t0 + (i // 640 + 1) * 0.02
                    time.sleep(max(0.0, due - time.monotonic()))
                    f.write(pcm[i:i + 640])

        player = threading.Thread(target=play)
        player.start()
        delays = []
        for line in proc.stdout:
            arrived = time.monotonic()
            d = json.loads(line)
            delay = arrived - start[0] - d["time"]
            delays.append(delay)
            print(f"{d['word']} at {d['time']:.2f} s of audio: printed {delay * 1000:.0f} ms later")
        player.join()
        proc.wait()
        for line in proc.stderr.read().splitlines()[-3:]:
            print(line)
        if delays:
            delays.sort()
            print(f"{len(delays)} detections: capture-path delay median "
                  f"{delays[len(delays) // 2] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms")
    finally:
        daemon.kill()


if __name__ == "__main__":
    main()
