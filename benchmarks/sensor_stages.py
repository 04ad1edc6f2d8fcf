"""Where the agent's microseconds per event go: the eBPF sensor's records captured once, then each
stage of the agent's path timed apart on them, pinned to one CPU (root; the eBPF program built).

    .venv/bin/python benchmarks/sensor_stages.py [--capture FILE] [--records FILE] [--repeat R]
                                                 [--profile N] [--json]

1. **capture** (unless ``--records`` names a capture made before): the eBPF backend follows what
   the agent follows (the default rules' event types plus the process events) while a separate
   process performs a mix: read-only opens of files in a private directory (what in-kernel interest
   filters will drop: the *plain opens*), opens of the loader's and the application's files, execs
   of ``/bin/true`` and ``/bin/sh -c /bin/true`` (clone, execve, the loader's opens, exit), and TCP
   connects to a listener on loopback. Every record the ring buffer hands over is copied as it was
   (``--capture FILE`` keeps them for later runs).
2. **stages**, each on every record, best of ``--repeat`` rounds (fresh state each round), CPU time
   of this process:

   * **ring + decode**: the records laid out as in the ring buffer, walked by
     :meth:`RingBuffer.consume` with the backend's :class:`Decoder`;
   * **enrich**: :meth:`Enricher.enrich` on each decoded event (process table, containers, users);
   * **Event**: wrapping each enriched event;
   * **pipeline + engine + store**: :meth:`Pipeline.handle` of the agent as ``stockade up`` builds it
     (default rules, SQLite store under a temporary directory);
   * **consumer**: the sensor runner's whole per-event step (enrich, the container paths, Event,
     pipeline), i.e. what its consumer thread pays per event after decoding.

   Each is reported in us per event, overall and per event type (the filtered case is the rows other
   than the plain opens). ``--profile N``: the cProfile table of decode + consumer (top N).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness

from stockade.config import load_config
from stockade.model.event import Event
from stockade.runtime.service import Runtime
from stockade.sensor.ebpf.backend import EbpfBackend
from stockade.sensor.ebpf.events import Decoder
from stockade.sensor.ebpf.ringbuf import MemoryRing
from stockade.sensor.enrich import Enricher

NAME = "sensor_stages"
_MAGIC = b"STKREC1\0"
_U32 = struct.Struct("<I")
_Q = struct.Struct("<q")

#: the mix the capture performs (run as its own process; argv: directory, port, rounds)
_MIX = r"""
import os, socket, subprocess, sys
d, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = [os.path.join(d, f) for f in sorted(os.listdir(d))]
app = ["/etc/ld.so.cache", "/etc/hosts", "/etc/nsswitch.conf", "/usr/lib/os-release", "/proc/self/status"]
for r in range(rounds):
    for n in names:
        os.close(os.open(n, os.O_RDONLY))
    for n in app:
        try:
            os.close(os.open(n, os.O_RDONLY))
        except OSError:
            pass
    if r % 4 == 0:
        subprocess.run(["/bin/true", "stockade-stages"], check=True)
    if r % 8 == 0:
        subprocess.run(["/bin/sh", "-c", "/bin/true stockade-stages"], check=True)
    s = socket.create_connection(("127.0.0.1", port))
    s.close()
"""


def capture(seconds_rounds: int) -> tuple[int, list[bytes]]:
    """(the decoder's boot offset, the records) of the mix, as the agent's backend follows it."""
    root = tempfile.mkdtemp(prefix="stockade-stages-")
    try:
        for i in range(64):
            Path(root, f"f{i}").write_bytes(b"x")
        cfg = load_config(
            None, {"data_dir": str(Path(root, "cfgdata")), "sensor": {"backend": "ebpf"}}, environ={}
        )
        from stockade.engine.build import build_engine
        from stockade.runtime.sensing import PROCESS_EVTTYPES

        engine, _ = build_engine(cfg, None)
        need = engine.evttypes("syscall")
        want = None if need is None else set(need) | PROCESS_EVTTYPES
        b = EbpfBackend()
        b.start(want)
        dec = b._decoder
        assert dec is not None
        records: list[bytes] = []
        real = dec.decode

        def keep(buf: Any, off: int, size: int) -> dict[str, Any] | None:
            records.append(bytes(buf[off : off + size]))
            return real(buf, off, size)

        dec.decode = keep  # type: ignore[method-assign]
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(512)
        stop = threading.Event()

        def serve() -> None:
            lsock.settimeout(0.2)
            while not stop.is_set():
                try:
                    c, _ = lsock.accept()
                    c.close()
                except OSError:
                    pass

        th = threading.Thread(target=serve, daemon=True)
        th.start()
        try:
            p = subprocess.Popen(
                [sys.executable, "-c", _MIX, root, str(lsock.getsockname()[1]), str(seconds_rounds)]
            )
            while p.poll() is None:
                b.poll(0.05)
            for _ in range(5):
                b.poll(0.05)
            lost = sum(b.refresh_stats().lost.values())
        finally:
            stop.set()
            th.join(2)
            lsock.close()
            b.close()
        if lost:
            print(f"{NAME}: {lost} records lost during the capture (the load was too fast)", file=sys.stderr)
        return dec.boot_epoch_ns, records
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def save(path: Path, boot: int, records: list[bytes]) -> None:
    """Records to a file: magic, boot offset, then each record as u32 length + bytes."""
    with path.open("wb") as f:
        f.write(_MAGIC + _Q.pack(boot))
        for r in records:
            f.write(_U32.pack(len(r)) + r)


def load(path: Path) -> tuple[int, list[bytes]]:
    """What :func:`save` wrote."""
    raw = path.read_bytes()
    if raw[:8] != _MAGIC:
        raise SystemExit(f"{NAME}: {path} is not a capture")
    (boot,) = _Q.unpack_from(raw, 8)
    out, p = [], 16
    while p < len(raw):
        (n,) = _U32.unpack_from(raw, p)
        out.append(raw[p + 4 : p + 4 + n])
        p += 4 + n
    return boot, out


def _timed(fn: Callable[[Any], Any], arg: Any) -> tuple[float, Any]:
    t = time.process_time()
    r = fn(arg)
    return time.process_time() - t, r


def _enrich_all(enr_raws: tuple[Enricher, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    enr, raws = enr_raws
    return [enr.enrich(r) for r in raws]


def _wrap_all(datas: list[dict[str, Any]]) -> list[Event]:
    return [Event("syscall", d, "sensor") for d in datas]


class Stages:
    """The agent's parts, built as ``stockade up`` builds them, over a temporary data directory."""

    def __init__(self, boot: int, records: list[bytes], data_dir: str) -> None:
        cfg = load_config(None, {"data_dir": data_dir, "sensor": {"backend": "ebpf"}}, environ={})
        self.runtime = Runtime(cfg, role="up", sensor=True)
        runner = self.runtime.sensor
        assert runner is not None
        self.runner = runner
        from stockade.runtime.sensing import PROCESS_EVTTYPES

        need = self.runtime.engine.evttypes("syscall")
        self.want = None if need is None else frozenset(need) | PROCESS_EVTTYPES
        self.boot = boot
        self.ring = MemoryRing(records)
        self.records = len(records)

    def decode(self) -> list[dict[str, Any]]:
        self.ring.rewind()
        out: list[dict[str, Any]] = []
        self.ring.consume(Decoder(self.boot, self.want).decode, out)
        return out

    def fresh_enricher(self) -> Enricher:
        e = Enricher()
        e.start()
        return e

    def close(self) -> None:
        self.runtime.close()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.records is not None:
        boot, records = load(args.records)
    else:
        boot, records = capture(args.rounds)
        if args.capture is not None:
            save(args.capture, boot, records)
    cpu = harness.pin_cpu(args.cpu)
    tmp = tempfile.mkdtemp(prefix="stockade-stages-data-")
    st = Stages(boot, records, tmp)
    res: dict[str, Any] = {"records": len(records), "cpu": cpu, "machine": harness.machine_info()}
    best: dict[str, float] = {}
    per_type: dict[str, Counter[str]] = {}
    types: Counter[str] = Counter()
    try:
        for rnd in range(args.repeat):
            t, raws = _timed(lambda _: st.decode(), None)
            best["ring + decode"] = min(best.get("ring + decode", t), t)
            if rnd == 0:
                types = Counter(str(r.get("evt.type")) for r in raws)
                res["events"] = len(raws)
            t, datas = _timed(_enrich_all, (st.fresh_enricher(), raws))
            best["enrich"] = min(best.get("enrich", t), t)
            t, evs = _timed(_wrap_all, datas)
            best["Event"] = min(best.get("Event", t), t)
            t, _ = _timed(lambda e: [st.runtime.pipeline.handle(x) for x in e], evs)
            best["pipeline + engine + store"] = min(best.get("pipeline + engine + store", t), t)
            # the consumer's whole step, per event type (fresh enricher: the same work as above)
            st.runner.enricher = enr2 = st.fresh_enricher()
            st.runner._enrich = enr2.enrich
            one = st.runner._one
            pt: Counter[str] = Counter()
            clock = time.process_time
            t0 = clock()
            for r in raws:
                a = clock()
                one(r)
                pt[str(r.get("evt.type"))] += clock() - a
            t = clock() - t0
            best["consumer (enrich .. pipeline)"] = min(best.get("consumer (enrich .. pipeline)", t), t)
            per_type[str(rnd)] = pt
        n = res["events"]
        res["us_per_event"] = {k: round(v / n * 1e6, 3) for k, v in best.items()}
        res["us_per_record_decode"] = round(best["ring + decode"] / len(records) * 1e6, 3)
        res["types"] = dict(types.most_common())
        # per type: the round with the least total
        pt_best = min(per_type.values(), key=lambda c: sum(c.values()))
        res["consumer_us_by_type"] = {
            k: round(pt_best[k] / types[k] * 1e6, 2) for k, _ in types.most_common()
        }
        if args.profile:
            prof = cProfile.Profile()
            enr3 = st.fresh_enricher()
            st.runner.enricher = enr3
            st.runner._enrich = enr3.enrich
            prof.enable()
            raws = st.decode()
            for r in raws:
                st.runner._one(r)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)
    finally:
        st.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return res


def _print(res: dict[str, Any]) -> None:
    print(f"{res['records']:,} records -> {res['events']:,} events (pinned to CPU {res['cpu']})")
    for k, v in res["us_per_event"].items():
        print(f"  {k:32} {v:8.2f} us/event")
    print("consumer us/event by type (count):")
    for k, v in res["consumer_us_by_type"].items():
        print(f"  {k:12} {v:8.2f}  ({res['types'][k]:,})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capture", type=Path, default=None, help="keep the captured records in this file")
    ap.add_argument("--records", type=Path, default=None, help="use the records captured in this file")
    ap.add_argument("--rounds", type=int, default=600, help="rounds of the mix to capture")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best is reported")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last)")
    ap.add_argument("--profile", type=int, default=0, help="print the cProfile table (top N)")
    got = harness.sensor_args(ap, NAME, ebpf=True)
    if got is None:
        return 2
    args = got[0]
    res = measure(args)
    if args.json:
        harness.print_json(res)
    else:
        _print(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
