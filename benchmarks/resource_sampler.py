"""What sampling containers' resources costs, per container per sample, against baselines measured
in the same run (issue 14). Root and podman.

    .venv/bin/python benchmarks/resource_sampler.py [--containers N] [--samples S] [--rounds R]
                                                    [--cpu C | --no-pin] [--json]

``--containers`` podman containers (20; network ``none``, so each has a network namespace of its
own, as a real container does) run ``sleep`` from an image imported from busybox-static. In each of
``--rounds`` rounds (5) the settings take turns, each ``--samples`` times (50) over all the
containers, and the CPU time of this process (user + system) is divided by samples x containers:

* **floor**: one read of ``/proc/<pid>/stat`` per container (open, read, close): the least a
  per-container sampler can do, the unit the others are counted in;
* **sampler**: :meth:`stockade.resources.sampler.Sampler.sample` of the containers (their cgroup
  files, v1 and v2, ``/proc/<pid>/fd``, ``/proc/<pid>/net/dev``);
* **discovery + sampler**: the same after finding the containers in the cgroup2 hierarchy
  (:func:`~stockade.sensor.containers.discover.running_containers`, which walks every cgroup of the
  node: its cost depends on the node, not only on the containers);
* **monitor round**: :meth:`stockade.runtime.resources.ResourceMonitor.tick`, what the agent runs
  every ``resources.interval_s``: discovery, sampling, storing the samples (SQLite in a temporary
  directory), the baselines and the detector (every container's workload resolved once, before);
* **podman stats** (for context: what users run today): ``podman stats --no-stream --format json``
  of the same containers, the CPU of the command and its children (``RUSAGE_CHILDREN``), ``--rounds``
  times.

The figures: the best and the median round of each, in microseconds of CPU per container per sample,
and their ratio to the floor of the same run; then what that costs the agent at the default
interval (10 s): CPU share of one core for 100 containers. This process is pinned to one CPU
(``--cpu``, default the last one) unless ``--no-pin``. A default run takes about a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness

from stockade.config import load_config
from stockade.resources.sampler import Sampler
from stockade.runtime.resources import ResourceMonitor
from stockade.sensor.containers.discover import RunningContainer, running_containers
from stockade.storage.resources import ResourceStore
from stockade.storage.store import Store

BUSYBOX = ("/bin/busybox", "/usr/bin/busybox")
DEFAULT_INTERVAL_S = 10.0


@dataclass
class Figure:
    """One setting: CPU microseconds per container per sample, one value per round."""

    name: str
    us: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        """The lowest round."""
        return min(self.us) if self.us else 0.0

    @property
    def median(self) -> float:
        """The median round."""
        return statistics.median(self.us) if self.us else 0.0


@dataclass
class Result:
    """Every figure, the run's settings and the machine."""

    containers: int
    samples: int
    rounds: int
    pinned_cpu: int | None
    figures: list[Figure]
    machine: dict[str, Any]
    #: per setting: the share of one core for 100 containers sampled every 10 s (best round)
    core_share_100_at_10s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _busybox() -> str:
    found = next((p for p in BUSYBOX if os.path.exists(p)), None)
    if found is None:
        raise SystemExit("resource_sampler: needs busybox-static (apt-get install busybox-static)")
    return found


def make_image(work: Path, tag: str) -> None:
    """An image with busybox (``sleep``, ``sh``) and nothing else."""
    root = work / "rootfs"
    for d in ("bin", "tmp", "proc", "sys", "dev", "etc"):
        (root / d).mkdir(parents=True)
    shutil.copy2(_busybox(), root / "bin" / "busybox")
    for applet in ("sh", "sleep"):
        (root / "bin" / applet).symlink_to("busybox")
    with tarfile.open(work / "rootfs.tar", "w") as tf:
        tf.add(root, arcname=".")
    r = subprocess.run(["podman", "import", str(work / "rootfs.tar"), tag], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"resource_sampler: podman import failed: {r.stderr}")


@contextlib.contextmanager
def containers(work: Path, n: int) -> Iterator[list[str]]:
    """`n` running containers of a busybox image (their full ids); removed, with the image, after."""
    sys.path.insert(0, str(harness.REPO / "tests"))
    from containers import CONTAINERS_CONF  # what podman needs on this machine kind (one home)

    conf = work / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    os.environ.setdefault("CONTAINERS_CONF", str(conf))
    tag = f"localhost/stockade-bench-resources:{os.getpid()}"
    names = [f"stockade-bench-res-{os.getpid()}-{i}" for i in range(n)]
    make_image(work, tag)
    ids: list[str] = []
    try:
        for name in names:
            r = subprocess.run(
                ["podman", "run", "-d", "--name", name, "--network", "none", tag, "sleep", "3600"],
                capture_output=True,
                text=True,
            )
            if r.returncode != 0:
                raise SystemExit(f"resource_sampler: podman run failed: {r.stderr}")
            ids.append(r.stdout.strip())
        yield ids
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *names], capture_output=True, check=False)
        subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, check=False)


def _ours(ids: Sequence[str]) -> list[RunningContainer]:
    want = set(ids)
    found = [c for c in running_containers() if c.full_id in want]
    if len(found) != len(want):
        raise SystemExit(
            f"resource_sampler: found {len(found)} of the {len(want)} containers in the cgroup2 hierarchy"
        )
    return found


def _read_stat(cs: Sequence[RunningContainer]) -> None:
    for c in cs:
        fd = os.open(f"/proc/{c.pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.read(fd, 4096)
        finally:
            os.close(fd)


def _cpu_us_per(run: Callable[[], object], times: int, per: int) -> float:
    t0 = time.process_time()
    for _ in range(times):
        run()
    return (time.process_time() - t0) * 1e6 / (times * per)


def _podman_stats_us(names_or_ids: Sequence[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(
        ["podman", "stats", "--no-stream", "--format", "json", *names_or_ids], capture_output=True, text=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"resource_sampler: podman stats failed: {r.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu * 1e6 / len(names_or_ids)


def _monitor(work: Path, ids: Sequence[str]) -> tuple[ResourceMonitor, Store]:
    cfg = load_config(None, {"data_dir": str(work / "data"), "hostname": "bench"}, environ={})
    store = Store(f"sqlite:///{work / 'bench.db'}")
    want = set(ids)
    mon = ResourceMonitor(
        cfg,
        ResourceStore(store),
        lambda a: len(a),
        discover=lambda: [c for c in running_containers() if c.full_id in want],
    )
    mon.tick()  # every workload resolved (podman inspect) once, as a running agent has
    return mon, store


def measure(args: argparse.Namespace) -> Result:
    """Start the containers, take turns measuring every setting, remove them."""
    pinned = None if args.no_pin else harness.pin_cpu(args.cpu)
    n, s = args.containers, args.samples
    figures = {
        k: Figure(k) for k in ("floor", "sampler", "discovery + sampler", "monitor round", "podman stats")
    }
    with tempfile.TemporaryDirectory(prefix="stockade-bench-res-") as tmp, containers(Path(tmp), n) as ids:
        cs = _ours(ids)
        sampler = Sampler()
        sampler.sample(cs)  # where each container's counters are read: decided once, as in production
        mon, store = _monitor(Path(tmp), ids)
        try:
            for _ in range(args.rounds):
                figures["floor"].us.append(_cpu_us_per(lambda: _read_stat(cs), s, n))
                figures["sampler"].us.append(_cpu_us_per(lambda: sampler.sample(cs), s, n))
                figures["discovery + sampler"].us.append(
                    _cpu_us_per(lambda: sampler.sample(_ours(ids)), s, n)
                )
                figures["monitor round"].us.append(_cpu_us_per(mon.tick, s, n))
                figures["podman stats"].us.append(_podman_stats_us(ids))
        finally:
            store.close()
    res = Result(n, s, args.rounds, pinned, list(figures.values()), harness.machine_info())
    for f in res.figures:
        res.core_share_100_at_10s[f.name] = f.best * 100 / (DEFAULT_INTERVAL_S * 1e6)
    res.notes.append(
        "podman stats: CPU of the command and its children, per container, one run per round "
        "(it also starts a process and reads its configuration each time)"
    )
    return res


def print_table(res: Result) -> None:
    """The figures, ratios to the floor, and the agent's share of a core."""
    floor = next(f for f in res.figures if f.name == "floor")
    print(
        f"{res.containers} containers, {res.samples} samples x {res.rounds} rounds, pinned to CPU "
        f"{res.pinned_cpu}, load {res.machine.get('loadavg')}"
    )
    print(f"{'setting':<22} {'best us':>10} {'median us':>10} {'x floor':>8}  {'core share, 100 @ 10 s':>22}")
    for f in res.figures:
        ratio = f.best / floor.best if floor.best else 0.0
        share = res.core_share_100_at_10s[f.name]
        print(f"{f.name:<22} {f.best:>10.1f} {f.median:>10.1f} {ratio:>8.1f}  {share:>21.4%}")
    for note in res.notes:
        print(f"note: {note}")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--containers", type=int, default=20, help="podman containers sampled (20)")
    ap.add_argument(
        "--samples", type=int, default=50, help="samples of all of them per round and setting (50)"
    )
    ap.add_argument("--rounds", type=int, default=5, help="rounds, the settings taking turns (5)")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the last one)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    args = ap.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("podman") is None:
        raise SystemExit("resource_sampler: needs root and podman")
    return args


if __name__ == "__main__":
    sys.exit(harness.main(None, _parse, measure, print_table))
