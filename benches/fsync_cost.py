#!/usr/bin/env python3
"""Cost of the two fsyncs per file of an atomic write, as the embedding cache used to make them.

Usage: python3 benches/fsync_cost.py [DIR]   (DIR: a folder on the disk to measure; default .)

Writes 2 130 files of 17 kB (a ~1 h training run's cache entries) by temporary file and rename,
twice with fsync of the file and of its folder and twice without, alternating, and prints the
seconds each round took.
"""
import os
import sys
import tempfile
import time

root = sys.argv[1] if len(sys.argv) > 1 else "."
data = os.urandom(17_000)
for sync in (True, False, True, False):
    d = tempfile.mkdtemp(dir=root)
    t = time.time()
    for i in range(2130):
        tmp = os.path.join(d, f"{i}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.rename(tmp, os.path.join(d, f"{i}.emb"))
        if sync:
            fd = os.open(d, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    print(f"{'fsync' if sync else 'no fsync'}: {time.time() - t:.2f} s")
    for name in os.listdir(d):
        os.remove(os.path.join(d, name))
    os.rmdir(d)
