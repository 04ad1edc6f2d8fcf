"""A rate-limited load generator for the sensor benchmarks, run as its own process so that the
sensor's CPU can be measured apart from the load's.

    python benchmarks/loadgen.py open --dir D [--absent] [--rate R] [--seconds S | --count N] [--progress F] [--wait]
    python benchmarks/loadgen.py exec --marker M [--rate R] [--seconds S | --count N] [--progress F] [--wait]
    python benchmarks/loadgen.py mix --dir D --marker M [--rate R] [--exec-max E] [--threads N] [--seconds S] [--progress F] [--wait]

``open``: open(2) + close(2) of the files of directory D in turn (create D's files first; with
``--absent``: opens of files of D that do not exist, which fail);
``exec``: spawn ``/bin/true M`` (posix_spawn: clone + execve) and reap it, one at a time;
``mix``: the engine benchmark's event mix (benchmarks/gen_events.py: ``MIX`` and ``other``) made of
real syscalls by a small C library (``loadgen_mix.c``, built with gcc on first use; Python's own
cost per call would otherwise be the ceiling) called through ctypes: read-only opens of the shared
libraries, ``/etc`` basics and ``/proc`` files gen_events.py names and of application files in D
(30/20/12/38 %, as gen_events.py draws them), write opens of log files in D, ``socket`` +
``connect`` + ``accept`` on a loopback listener, ``renameat2`` and ``unlinkat`` of temporary files
in D, ``dup2``, a ``socket`` alone (in ``--threads`` threads, 1 by default, sharing the rate), and
execs of ``/bin/true M`` (vfork + execve, reaped by the kernel) from a thread of their own. Shares
of the operations (:func:`mix_shares`): open 77 %, exec 10 %, socket 3.6 %, connect 3.1 %, accept
3.1 %, unlinkat 1 %, renameat2 0.8 %, dup2 0.5 % (gen_events.py's
shares without ``setuid``, ``clone`` (threads) and ``close``, and without its 0.7 % of attack-like
events; a connect needs its socket). Each open and socket is closed: close is counted apart, not
as an operation. Execs are bounded by the machine (about 1,400/s here, a whole core): they run at
10 % of the rate up to ``--exec-max`` per second (200 by default), the rest of the rate keeps its
proportions; the real count of each kind is reported.

``--rate 0`` (the default) runs at full speed: the machine's own rate (the mix's execs at
``--exec-max``). Otherwise the operations are paced in 1 ms slices, so that after t seconds about
R x t of them were done (when the machine can).

It prints ``go`` when its loop starts (with ``--wait``: ``ready`` first, then it waits for a line on
standard input), then one JSON line at the end: operations done, the loop's wall seconds, the
process's CPU seconds (user + sys) and the count of each kind (``kinds``: :data:`KINDS`; ``failed``:
calls that failed). With ``--progress F`` it keeps the count of each kind in file F (one
little-endian u64 per kind, in :data:`KINDS` order, :data:`PROGRESS_BYTES` bytes, updated at least
every slice), so the sensor side can follow how far it got without a syscall per operation.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import mmap
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_TRUE = "/bin/true"
_SLICE_S = 0.001
_HERE = Path(__file__).resolve().parent
MIX_SOURCE = _HERE / "loadgen_mix.c"

#: what the generator counts, in the progress file's order (loadgen_mix.c's enum)
KINDS = ("open", "exec", "socket", "connect", "accept", "dup2", "unlinkat", "renameat2", "close", "failed")
#: the kinds that are operations (paced, in the rate); close accompanies each open and socket
OP_KINDS = KINDS[:8]
PROGRESS_BYTES = 8 * len(KINDS)
#: mix units (loadgen_mix.c) per 100 events of gen_events.py's mix, and the operations of each: R
#: read open (open_read), W write open, T create + renameat2 + unlinkat, U create + unlinkat (the
#: mix's renameat2 and unlinkat, 0.8 and 1 %: gen_events.other's 8 % and 10 % of 9.3 %, their
#: creations counted in open_write), N socket + connect + accept (net), S socket, D dup2 (5 % each)
MIX_UNITS = {"R": 70.0, "W": 3.07, "T": 0.744, "U": 0.186, "N": 3.0, "S": 0.465, "D": 0.465}
UNIT_OPS = {
    "R": {"open": 1},
    "W": {"open": 1},
    "T": {"open": 1, "renameat2": 1, "unlinkat": 1},
    "U": {"open": 1, "unlinkat": 1},
    "N": {"socket": 1, "connect": 1, "accept": 1},
    "S": {"socket": 1},
    "D": {"dup2": 1},
}
#: execs per 100 events of the mix (gen_events.MIX["execve"])
MIX_EXECS = 10.0
#: the read-only opens by family, as gen_events.open_read draws them: libraries, /etc, /proc, the app's
READ_FAMILIES = {"lib": 30, "etc": 20, "proc": 12, "app": 38}
APP_FILES = 38
DEFAULT_EXEC_MAX = 200.0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def smooth_order(weights: dict[str, float], n: int) -> list[str]:
    """`n` picks among the keys of `weights`, each about in proportion to its weight and spread
    evenly (smooth weighted round robin, deterministic)."""
    total = sum(weights.values())
    cur = dict.fromkeys(weights, 0.0)
    out = []
    for _ in range(n):
        for k, w in weights.items():
            cur[k] += w
        best = max(cur, key=lambda k: cur[k])
        cur[best] -= total
        out.append(best)
    return out


def mix_shares() -> dict[str, float]:
    """Each operation kind's share of the mix, before execs are capped."""
    ops = dict.fromkeys(OP_KINDS, 0.0)
    ops["exec"] = MIX_EXECS
    for u, w in MIX_UNITS.items():
        for k, n in UNIT_OPS[u].items():
            ops[k] += w * n
    total = sum(ops.values())
    return {k: v / total for k, v in ops.items()}


def mix_exec_rate(rate: float, exec_max: float) -> float:
    """Execs per second in a mix offered at `rate` operations per second (0: full speed)."""
    return min(rate * mix_shares()["exec"], exec_max) if rate else exec_max


def _cycle(items: list[str]) -> Iterator[str]:
    while True:
        yield from items


def mix_paths(directory: Path) -> list[str]:
    """The read-only opens of one cycle of the mix (100 paths): the libraries, /etc and /proc files
    gen_events.py names, and application files below `directory` (created here)."""
    import gen_events

    app = directory / "app"
    for sub in ("static", "templates", "lib"):
        (app / sub).mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(APP_FILES):
        f = app / ("static", "templates", "lib")[i % 3] / f"f{i}{('.js', '.html', '.py')[i % 3]}"
        f.write_bytes(b"x")
        files.append(str(f))
    (directory / "log").mkdir(exist_ok=True)
    (directory / "tmp").mkdir(exist_ok=True)
    lib = [f"/usr/lib/x86_64-linux-gnu/{name}" for name in gen_events.LIBS]
    families = {
        "lib": _cycle(lib),
        "etc": _cycle(gen_events.COMMON_ETC),
        "proc": _cycle(gen_events.PROC_FILES),
        "app": _cycle(files),
    }
    weights = {k: float(v) for k, v in READ_FAMILIES.items()}
    return [next(families[f]) for f in smooth_order(weights, sum(READ_FAMILIES.values()))]


def mix_schedule(n: int = 10_000) -> str:
    """One cycle of the mix's units (loadgen_mix.c's letters), spread evenly."""
    return "".join(smooth_order(MIX_UNITS, n))


def build_mix_library(source: Path = MIX_SOURCE) -> Path:
    """loadgen_mix.c compiled to a shared library in the temporary directory (once per source)."""
    text = source.read_bytes()
    out = Path(tempfile.gettempdir()) / f"stockade-loadgen-{hashlib.sha256(text).hexdigest()[:12]}.so"
    if not out.exists():
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise SystemExit("loadgen: mix needs gcc (or cc) to build loadgen_mix.c")
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(source)], check=True)
        tmp.replace(out)
    return out


class Counters:
    """The count of each kind: in the progress file when there is one (the C library writes there)."""

    def __init__(self, progress: str | None) -> None:
        self._mm: mmap.mmap | None = None
        if progress:
            fd = os.open(progress, os.O_RDWR)
            try:
                self._mm = mmap.mmap(fd, PROGRESS_BYTES)
            finally:
                os.close(fd)
            self.array = (ctypes.c_uint64 * len(KINDS)).from_buffer(self._mm)
        else:
            self.array = (ctypes.c_uint64 * len(KINDS))()
        for i in range(len(KINDS)):
            self.array[i] = 0

    def as_dict(self) -> dict[str, int]:
        """The count of each kind now."""
        return {k: int(self.array[i]) for i, k in enumerate(KINDS)}

    def setter(self, *kinds: str) -> Callable[[int], None]:
        """A function that sets the count of `kinds` (for the loops written in Python)."""
        idx = [KINDS.index(k) for k in kinds]
        arr = self.array

        def put(n: int) -> None:
            for i in idx:
                arr[i] = n

        return put


def _opener(directory: str) -> Callable[[int], int]:
    paths = sorted(os.path.join(directory, f) for f in os.listdir(directory))
    if not paths:
        raise SystemExit(f"loadgen: no files in {directory}")
    k = len(paths)
    op, cl, rd = os.open, os.close, os.O_RDONLY

    def run(n: int) -> int:
        for i in range(n):
            cl(op(paths[i % k], rd))
        return n

    return run


def _absent_opener(directory: str) -> Callable[[int], int]:
    """Opens of files that do not exist (they fail: ENOENT)."""
    paths = [os.path.join(directory, f"absent-{i}") for i in range(100)]
    op, rd = os.open, os.O_RDONLY

    def run(n: int) -> int:
        for i in range(n):
            try:
                op(paths[i % 100], rd)
            except FileNotFoundError:
                pass
        return n

    return run


def _spawner(marker: str) -> Callable[[int], int]:
    argv = [_TRUE, marker]
    env = {"PATH": "/usr/bin:/bin"}
    spawn, wait = os.posix_spawn, os.waitpid

    def run(n: int) -> int:
        for _ in range(n):
            wait(spawn(_TRUE, argv, env), 0)
        return n

    return run


class Mix:
    """The mix's C library, set up for directory `directory` (its app files, logs, temporary
    files) and exec marker `marker`, counting into `counters`."""

    def __init__(self, directory: str, marker: str, counters: Counters) -> None:
        lib = ctypes.CDLL(str(build_mix_library()))  # CDLL: calls release the GIL
        lib.mix_init.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_long,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
        ]
        lib.mix_init.restype = ctypes.c_int
        lib.mix_run.argtypes = [ctypes.c_long, ctypes.c_long]
        lib.mix_exec.argtypes = [ctypes.c_long]
        lib.mix_run.restype = lib.mix_exec.restype = ctypes.c_long
        blob = b"".join(p.encode() + b"\0" for p in mix_paths(Path(directory)))
        rc = lib.mix_init(
            ctypes.addressof(counters.array),
            blob,
            len(blob),
            directory.encode(),
            marker.encode(),
            mix_schedule().encode(),
        )
        if rc != 0:
            raise SystemExit(f"loadgen: mix set-up failed: {os.strerror(ctypes.get_errno()) or rc}")
        self._run = lib.mix_run
        self.execs: Callable[[int], int] = lib.mix_exec

    def runner(self, thread: int) -> Callable[[int], int]:
        """The operations of the mix's thread `thread` (its own temporary files and place in the cycle)."""
        run = self._run
        return lambda n: int(run(thread, n))


def generate(
    op: Callable[[int], int],
    rate: float,
    seconds: float,
    count: int | None,
    progress: Callable[[int], None] | None,
) -> tuple[int, float]:
    """Run `op` paced at `rate`/s (0: full speed) for `seconds` or `count` operations; `op(k)` does
    about k operations and returns how many it did; `progress(n)` after every slice."""
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
        n += op(todo)
        if progress is not None:
            progress(n)
        now = time.perf_counter()
    return n, now - t0


def run_mix(mix: Mix, rate: float, exec_max: float, seconds: float, threads: int = 1) -> float:
    """The mix for `seconds`: execs in a thread at their share of `rate` (at most `exec_max`/s),
    the rest in `threads` threads sharing the rest of the rate; the wall seconds until all ended."""
    x_rate = mix_exec_rate(rate, exec_max)
    each = max(rate - x_rate, 0.0) / threads if rate else 0.0
    jobs = [
        threading.Thread(target=generate, args=(mix.runner(i), each, seconds, None, None))
        for i in range(threads)
    ]
    if x_rate > 0:
        jobs.append(threading.Thread(target=generate, args=(mix.execs, x_rate, seconds, None, None)))
    t0 = time.perf_counter()
    for j in jobs:
        j.start()
    for j in jobs:
        j.join()
    return time.perf_counter() - t0


def _loop(args: argparse.Namespace, counters: Counters) -> Callable[[], float]:
    """The load's loop, set up (files listed, library loaded): run it, get its wall seconds."""
    if args.kind == "mix":
        mix = Mix(args.dir, args.marker, counters)
        return lambda: run_mix(mix, args.rate, args.exec_max, args.seconds, args.threads)
    if args.kind == "open" and args.absent:
        op, put = _absent_opener(args.dir), counters.setter("open", "failed")
    elif args.kind == "open":
        op, put = _opener(args.dir), counters.setter("open", "close")
    else:
        op, put = _spawner(args.marker), counters.setter("exec")
    return lambda: generate(op, args.rate, args.seconds, args.count, put)[1]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=["open", "exec", "mix"])
    ap.add_argument("--dir", help="open: the directory whose files are opened; mix: its work directory")
    ap.add_argument("--absent", action="store_true", help="open: files that do not exist (opens fail)")
    ap.add_argument("--marker", default="stockade-loadgen", help="exec, mix: /bin/true's argument")
    ap.add_argument("--rate", type=float, default=0.0, help="operations per second (0: full speed)")
    ap.add_argument("--exec-max", type=float, default=DEFAULT_EXEC_MAX, help="mix: execs per second at most")
    ap.add_argument(
        "--threads", type=int, default=1, help="mix: threads sharing the rate (besides the execs')"
    )
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--count", type=int, default=None, help="stop after this many operations instead")
    ap.add_argument("--progress", help=f"file whose first {PROGRESS_BYTES} bytes get the running counts")
    ap.add_argument("--wait", action="store_true", help="print 'ready', start on a line from stdin")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.kind in ("open", "mix") and not args.dir:
        ap.error(f"{args.kind} needs --dir")
    if args.kind == "mix" and args.count is not None:
        ap.error("mix runs for --seconds")
    counters = Counters(args.progress)
    run = _loop(args, counters)
    if args.wait:
        print("ready", flush=True)
        sys.stdin.readline()
    print("go", flush=True)
    c0 = _cpu()
    wall = run()
    cpu = _cpu() - c0
    kinds = counters.as_dict()
    ops = sum(kinds[k] for k in OP_KINDS)
    print(json.dumps({"ops": ops, "wall_s": wall, "cpu_s": cpu, "kinds": kinds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
