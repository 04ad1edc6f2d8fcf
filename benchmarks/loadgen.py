"""A rate-limited load generator for the sensor benchmarks, run as its own process so that the
sensor's CPU can be measured apart from the load's.

    python benchmarks/loadgen.py open --dir D [--rate R] [--seconds S | --count N] [--progress F]
    python benchmarks/loadgen.py exec --marker M [--rate R] [--seconds S | --count N] [--progress F]

``open``: open(2) + close(2) of the files of directory D in turn (create D's files first);
``exec``: spawn ``/bin/true M`` (posix_spawn: clone + execve) and reap it, one at a time.
``--rate 0`` (the default) runs at full speed: the machine's own rate. Otherwise the operations are
paced in 1 ms slices, so that after t seconds about R x t of them were done (when the machine can).

It prints ``go`` when its loop starts, then one JSON line at the end: operations done, the loop's
wall seconds and the process's CPU seconds (user + sys). With ``--progress F`` it keeps the
operation count in the first 8 bytes of file F (little-endian u64, updated after every slice), so
the sensor side can follow how far it got without a syscall per operation.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import resource
import struct
import sys
import time
from collections.abc import Callable

_TRUE = "/bin/true"
_SLICE_S = 0.001


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _opener(directory: str) -> Callable[[int], None]:
    paths = sorted(os.path.join(directory, f) for f in os.listdir(directory))
    if not paths:
        raise SystemExit(f"loadgen: no files in {directory}")
    k = len(paths)
    op, cl, rd = os.open, os.close, os.O_RDONLY

    def run(n: int) -> None:
        for i in range(n):
            cl(op(paths[i % k], rd))

    return run


def _spawner(marker: str) -> Callable[[int], None]:
    argv = [_TRUE, marker]
    env = {"PATH": "/usr/bin:/bin"}
    spawn, wait = os.posix_spawn, os.waitpid

    def run(n: int) -> None:
        for _ in range(n):
            wait(spawn(_TRUE, argv, env), 0)

    return run


def generate(
    op: Callable[[int], None], rate: float, seconds: float, count: int | None, progress: mmap.mmap | None
) -> tuple[int, float]:
    """Run `op` paced at `rate`/s (0: full speed) for `seconds` or `count` operations."""
    u64 = struct.Struct("<Q")
    limit = count if count is not None else 1 << 62
    # a slice: 1 ms of operations at the rate; at full speed a batch between clock reads
    chunk = max(1, round(rate * _SLICE_S)) if rate else 64
    n = 0
    t0 = time.perf_counter()
    end = t0 + (seconds if count is None else 1e9)
    now = t0
    while n < limit and now < end:
        todo = chunk
        if rate:
            due = int((now - t0) * rate)
            if due - n < chunk:  # ahead of the pace: wait until a whole slice is due
                time.sleep(min((n + chunk) / rate - (now - t0), end - now))
                now = time.perf_counter()
                continue
            todo = min(due - n, 4 * chunk)
        todo = min(todo, limit - n)
        op(todo)
        n += todo
        if progress is not None:
            u64.pack_into(progress, 0, n)
        now = time.perf_counter()
    return n, now - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["open", "exec"])
    ap.add_argument("--dir", help="open: the directory whose files are opened")
    ap.add_argument("--marker", default="stockade-loadgen", help="exec: /bin/true's argument")
    ap.add_argument("--rate", type=float, default=0.0, help="operations per second (0: full speed)")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--count", type=int, default=None, help="stop after this many operations instead")
    ap.add_argument("--progress", help="file whose first 8 bytes get the running operation count")
    args = ap.parse_args(argv)
    if args.kind == "open":
        if not args.dir:
            ap.error("open needs --dir")
        op = _opener(args.dir)
    else:
        op = _spawner(args.marker)
    mm = None
    if args.progress:
        fd = os.open(args.progress, os.O_RDWR)
        try:
            mm = mmap.mmap(fd, 8)
        finally:
            os.close(fd)
    print("go", flush=True)
    c0 = _cpu()
    n, wall = generate(op, args.rate, args.seconds, args.count, mm)
    print(json.dumps({"ops": n, "wall_s": wall, "cpu_s": _cpu() - c0}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
