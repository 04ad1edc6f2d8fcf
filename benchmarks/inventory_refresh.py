"""What keeping the live inventory current costs: a refresh of N running containers, against what
asking podman for the same costs in the same run (issue 16). Root and podman.

    .venv/bin/python benchmarks/inventory_refresh.py [--containers N] [--rounds R] [--json]

``--containers`` podman containers (50; network ``none``: each has a network namespace of its own
to scan) run ``sleep`` from an image imported from busybox-static (made as
benchmarks/resource_sampler.py makes them). The inventory service is built over a SQLite store in a
temporary directory, its discovery limited to these containers, and every container described once
(``podman inspect``: the resolver's cache, as a running agent has it). Then, best and median of
``--rounds`` rounds (10), in milliseconds of CPU of this process:

* **watch tick**: the check every ``inventory.watch_s``: the running containers from the cgroup2
  hierarchy (:func:`~stockade.sensor.containers.discover.running_containers`; it walks every cgroup
  of the node);
* **refresh**: what a container starting or stopping triggers: records, listening ports of every
  namespace, the store written where something changed;
* **full refresh**: every ``inventory.interval_s``: the same plus addresses, start times, the host's
  facts and the images (containers-storage, cached by its index);
* **podman ps + inspect** (the peer: what an inventory asking the engine pays): ``podman ps
  --format json`` and ``podman container inspect`` of the same containers, the CPU of the commands
  (``RUSAGE_CHILDREN``), and their wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import harness
from resource_sampler import containers

from stockade.config import load_config
from stockade.inventory.service import InventoryService
from stockade.sensor.containers.discover import running_containers
from stockade.storage.inventory import InventoryStore
from stockade.storage.store import Store


def _cpu_ms(run: Callable[[], object]) -> float:
    t0 = time.process_time()
    run()
    return (time.process_time() - t0) * 1e3


def _podman_ms(ids: Sequence[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    for cmd in (["podman", "ps", "--format", "json"], ["podman", "container", "inspect", *ids]):
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise SystemExit(f"inventory_refresh: {' '.join(cmd[:3])} failed: {r.stderr}")
    wall = (time.monotonic() - t0) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1e3, wall


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start the containers, measure each setting in turn, remove them."""
    with tempfile.TemporaryDirectory() as tmp, containers(Path(tmp), args.containers) as ids:
        work = Path(tmp)
        want = set(ids)
        cfg = load_config(None, {"data_dir": str(work / "data"), "hostname": "bench"}, environ={})
        store = Store(f"sqlite:///{work / 'bench.db'}")

        def discover() -> list[Any]:
            return [c for c in running_containers() if c.full_id in want]

        svc = InventoryService(cfg, InventoryStore(store), discover=discover)
        svc.refresh_now()  # every container described once (podman inspect), as a running agent has
        if len(svc.containers) != len(want):
            raise SystemExit(f"inventory_refresh: {len(svc.containers)} of {len(want)} containers found")
        found = discover()
        figs: dict[str, list[float]] = {
            k: [] for k in ("watch tick", "refresh", "full refresh", "podman ps + inspect")
        }
        walls: list[float] = []
        for _ in range(args.rounds):
            figs["watch tick"].append(_cpu_ms(running_containers))
            figs["refresh"].append(_cpu_ms(lambda: svc.refresh(found, full=False)))
            figs["full refresh"].append(_cpu_ms(lambda: svc.refresh(found, full=True)))
            cpu, wall = _podman_ms(ids)
            figs["podman ps + inspect"].append(cpu)
            walls.append(wall)
        store.close()
    return {
        "containers": args.containers,
        "rounds": args.rounds,
        "ms_cpu": {k: {"best": min(v), "median": statistics.median(v)} for k, v in figs.items()},
        "podman_wall_ms_median": statistics.median(walls),
        "machine": harness.machine_info(),
    }


def print_table(res: dict[str, Any]) -> None:
    """The figures, one line each, and the ratio to the peer."""
    print(f"inventory refresh, {res['containers']} containers, {res['rounds']} rounds (ms of CPU)")
    peer = res["ms_cpu"]["podman ps + inspect"]["median"]
    print(f"{'':<22} {'best':>9} {'median':>9} {'peer/this':>10}")
    for name, f in res["ms_cpu"].items():
        ratio = peer / f["median"] if f["median"] else float("inf")
        print(f"{name:<22} {f['best']:>9.1f} {f['median']:>9.1f} {ratio:>10.1f}")
    print(f"podman ps + inspect wall time (median): {res['podman_wall_ms_median']:.0f} ms")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--containers", type=int, default=50, help="podman containers (50)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds (10)")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    args = ap.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("podman") is None:
        raise SystemExit("inventory_refresh: needs root and podman")
    return args


if __name__ == "__main__":
    sys.exit(harness.main(None, _parse, measure, print_table))
