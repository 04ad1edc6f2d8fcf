"""The eBPF sensor's kernel prefilter: records reaching user space and records filtered in the kernel,
prefilter on vs off, under a mix of failed and successful opens (root; the eBPF program must be built:
scripts/build-bpf.sh).

    .venv/bin/python benchmarks/sensor_prefilter.py [--ops N] [--failed-share F] [--rounds R] [--json]

The load is a separate process opening files in a fresh directory at full speed: `--ops` opens
(200,000), of which `--failed-share` (0.75) fail (ENOENT: a missing file, as a search through
$PATH or optional config files does) and the rest succeed. The sensor is the bare EbpfBackend,
polled and decoded in a thread of this process, following the event types the rules need
(`--rules`; default: Falco's stable rules with "Directory traversal monitored file read" disabled,
which leaves only rules on successful opens) plus the process events. For each round, in turn:

* **alone**: the load with no sensor: the machine's own opens/s;
* **off**: the sensor without the prefilter: every failed open is a record;
* **on**: the sensor with the failed calls the rules cannot match dropped in the kernel
  (``stockade.rules.prefilter.failed_droppable``), counted as filtered.

Reported per mode (median of the rounds): the load's opens/s and its CPU per open (the in-kernel
probe's cost lands there), records reaching user space (all of them, and the load's own), their
rate over the load's wall time, records filtered in the kernel and lost, and the sensor's CPU (this
process, all threads) per second of load. Ratios are against `off` measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import harness

from stockade.engine import Engine
from stockade.rules.defaults import builtin_rule_files
from stockade.rules.prefilter import failed_droppable
from stockade.runtime.sensing import PROCESS_EVTTYPES
from stockade.sensor.ebpf.backend import EbpfBackend
from stockade.sensor.ebpf.syscalls import SYSCALLS

NAME = "sensor_prefilter"

REPO = Path(__file__).resolve().parents[1]
FALCO_RULES = REPO.parent / "shared" / "data" / "falco-rules"
TRAVERSAL = "Directory traversal monitored file read"
OPEN_TYPES = frozenset({"open", "openat", "openat2"})
#: the load: `ops` opens, a share of them of missing files, in a fixed interleaving
LOAD = """\
import json, os, resource, sys, time
d, n, share = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ok = [os.path.join(d, f"f{i}") for i in range(100)]
missing = [os.path.join(d, f"m{i}") for i in range(100)]
op, cl, rd = os.open, os.close, os.O_RDONLY
print("go", flush=True)
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
failed = 0
for i in range(n):
    if int((i + 1) * share) > int(i * share):
        failed += 1
        try:
            op(missing[i % 100], rd)
        except FileNotFoundError:
            pass
    else:
        cl(op(ok[i % 100], rd))
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
print(json.dumps({"ops": n, "failed": failed, "wall_s": wall, "cpu_s": cpu}), flush=True)
"""


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Reader:
    """The bare backend, decoded in a thread; counts the load's records (opens below `prefix`)."""

    def __init__(self, evttypes: set[str], drop_failed: frozenset[str]) -> None:
        self.backend = EbpfBackend(drop_failed=drop_failed)
        self.backend.start(evttypes)
        self.prefix = "\0"
        self.failed = self.ok = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._read, name="bench-reader", daemon=True)
        self._t.start()

    def _read(self) -> None:
        b = self.backend
        while not self._stop.is_set():
            for e in b.poll(0.1):
                name = e.get("fd.name")
                if name.__class__ is str and name.startswith(self.prefix) and e["evt.type"] in OPEN_TYPES:
                    if e["evt.rawres"] < 0:
                        self.failed += 1
                    else:
                        self.ok += 1

    def counters(self) -> tuple[int, int, int, int, int]:
        """(records, filtered, lost, load's failed, load's successful) so far."""
        st = self.backend.refresh_stats()
        return st.events, sum(st.filtered.values()), sum(st.lost.values()), self.failed, self.ok

    def close(self) -> None:
        self._stop.set()
        self._t.join(5)
        self.backend.close()


def run_load(d: Path, ops: int, share: float, reader: Reader | None) -> dict[str, Any]:
    if reader is not None:
        reader.prefix = str(d) + "/"
        time.sleep(0.2)  # the directory's creation, the previous round
        before = reader.counters()
    p = subprocess.Popen(
        [sys.executable, "-c", LOAD, str(d), str(ops), str(share)], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None
    p.stdout.readline()  # "go"
    c0, t0 = _cpu(), time.perf_counter()
    out = p.stdout.read()
    p.wait()
    gen = json.loads(out.strip().splitlines()[-1])
    res: dict[str, Any] = {
        "load_ops_per_s": gen["ops"] / gen["wall_s"],
        "load_cpu_us_per_op": gen["cpu_s"] / gen["ops"] * 1e6,
        "failed_ops": gen["failed"],
    }
    if reader is None:
        return res
    # wait until the load's records stop coming (everything the kernel kept has been read)
    last, last_t = -1, time.perf_counter()
    while time.perf_counter() - last_t < 0.5 and time.perf_counter() - t0 < 120:
        n = reader.failed + reader.ok
        if n != last:
            last, last_t = n, time.perf_counter()
        time.sleep(0.02)
    wall, cpu = last_t - t0, _cpu() - c0
    after = reader.counters()
    records, filtered, lost, mine_failed, mine_ok = (a - b for a, b in zip(after, before, strict=True))
    res.update(
        {
            "records": records,
            "records_per_s": records / gen["wall_s"],
            "load_records_failed": mine_failed,
            "load_records_ok": mine_ok,
            "filtered": filtered,
            "lost": lost,
            "sensor_cpu_per_load_s": cpu / gen["wall_s"],
            "drain_s": max(wall - gen["wall_s"], 0.0),
        }
    )
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=200_000)
    ap.add_argument("--failed-share", type=float, default=0.75)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rules", nargs="*", default=None, help="rules files (default: see the module doc)")
    got = harness.sensor_args(ap, NAME, ebpf=True)
    if got is None or got[1] is None:
        return 2
    args, caps = got[0], got[1]
    if args.rules:
        engine = Engine.from_files(args.rules)
        rules_desc = ", ".join(args.rules)
    else:
        engine = Engine.from_files([FALCO_RULES / "falco_rules.yaml"], disabled_rules=[TRAVERSAL])
        rules_desc = f"Falco's stable rules without '{TRAVERSAL}'"
    need = engine.evttypes("syscall")
    evttypes = (set(caps.evttypes) if need is None else need | PROCESS_EVTTYPES) & set(caps.evttypes)
    drop = failed_droppable(engine.conditions("syscall"), evttypes & set(SYSCALLS))
    default = Engine.from_files([FALCO_RULES / "falco_rules.yaml", *builtin_rule_files()])
    default_types = (default.evttypes("syscall") or set(SYSCALLS)) & set(SYSCALLS)
    default_drop = failed_droppable(default.conditions("syscall"), default_types)
    root = Path(tempfile.mkdtemp(prefix="stockade-bench-prefilter-"))
    results: dict[str, list[dict[str, Any]]] = {"alone": [], "off": [], "on": []}
    t_start = time.monotonic()
    try:
        seq = 0
        for _ in range(args.rounds):
            for mode in results:
                seq += 1
                d = root / f"t{seq}"
                d.mkdir()
                for i in range(100):
                    (d / f"f{i}").write_bytes(b"x")
                reader = None if mode == "alone" else Reader(evttypes, drop if mode == "on" else frozenset())
                try:
                    r = run_load(d, args.ops, args.failed_share, reader)
                finally:
                    if reader is not None:
                        reader.close()
                results[mode].append(r)
                print(f"  {mode}: {json.dumps({k: round(v, 2) for k, v in r.items()})}", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in results.items()}
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "rules": rules_desc,
        "evttypes": sorted(evttypes),
        "drop_failed": sorted(drop),
        "default_rules_drop_failed": sorted(default_drop),
        "ops": args.ops,
        "failed_share": args.failed_share,
        "median": med,
        "runs": results,
        "seconds": round(time.monotonic() - t_start, 1),
    }
    if args.json:
        harness.print_json(out)
        return 0
    print(
        f"rules: {rules_desc}; failed calls dropped in the kernel: {', '.join(out['drop_failed']) or 'none'}"
    )
    print(
        f"(the default rules, Falco's stable rules + Stockade's pack: {', '.join(sorted(default_drop)) or 'none'})"
    )
    print(
        f"load: {args.ops:,} opens at full speed, {args.failed_share:.0%} of them failing; "
        f"median of {args.rounds} rounds; {out['cpus']} CPUs; {out['seconds']} s"
    )
    head = (
        f"{'mode':6} {'opens/s':>10} {'x alone':>8} {'us/open':>8} {'records':>9} {'records/s':>10} "
        f"{'load fail':>9} {'load ok':>8} {'filtered':>9} {'lost':>7} {'sensor cpu':>10} {'x off':>6}"
    )
    print(head)
    alone = med["alone"]["load_ops_per_s"]
    for mode, m in med.items():
        if mode == "alone":
            print(f"{mode:6} {m['load_ops_per_s']:10,.0f} {1:8.3f} {m['load_cpu_us_per_op']:8.2f}")
            continue
        print(
            f"{mode:6} {m['load_ops_per_s']:10,.0f} {m['load_ops_per_s'] / alone:8.3f} "
            f"{m['load_cpu_us_per_op']:8.2f} {m['records']:9,.0f} {m['records_per_s']:10,.0f} "
            f"{m['load_records_failed']:9,.0f} {m['load_records_ok']:8,.0f} {m['filtered']:9,.0f} "
            f"{m['lost']:7,.0f} {m['sensor_cpu_per_load_s']:10.3f} "
            f"{m['sensor_cpu_per_load_s'] / med['off']['sensor_cpu_per_load_s']:6.2f}"
        )
    print(
        "records = records the kernel wrote to the ring buffer and this process decoded (every process's);"
        " records/s = that over the load's wall time; load fail/ok = the load's own failed and successful"
        " opens among them; filtered = dropped in the kernel by the prefilter (not lost); sensor cpu ="
        " this process's CPU seconds per second of load (1.0 = one core); x off = that against `off`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
