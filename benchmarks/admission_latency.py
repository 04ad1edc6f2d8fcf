"""The admission webhook's latency at a steady request rate, over TLS keep-alive connections.

One command::

    .venv/bin/python benchmarks/admission_latency.py [--rate 200] [--duration 15]
                                                     [--connections 4] [--json]

What it does: writes an AdmissionPolicy (the pss-baseline checks, a registry allow-list, a
vulnerability threshold over a cached scan result), starts the real server process
(``stockade k8s admission serve``, a certificate made for 127.0.0.1, the audit log to a file), and
sends requests at ``--rate`` per second, open loop (each at its scheduled time, whatever the
previous ones did), from ``--connections`` kept-alive HTTPS connections verifying the CA, as
kube-apiserver does:

1. the baseline: ``GET /healthz`` (TLS, HTTP and the server's threads, no evaluation);
2. ``POST /validate?timeout=10s`` with AdmissionReview v1 bodies in turn: a Pod allowed, a
   privileged Pod denied, a Deployment UPDATE with its oldObject, a dry-run Pod, a CronJob.

Latency is from the scheduled send time to the response read (a request waiting for a free
connection counts its wait). Printed for each phase: requests, errors, achieved rate, p50, p90,
p99, p99.9 and max in milliseconds, and the server process's CPU time per request (from
``/proc/PID/stat``: what the machine's load does not change much). ``--url`` and ``--ca`` measure a server already running
(the policy then is its own; ``--pid`` its process, for the CPU figure).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import harness

POLICY = """\
apiVersion: stockade.dev/v1alpha1
kind: AdmissionPolicy
metadata: {name: bench}
spec:
  checks: {standard: pss-baseline}
  images:
    allowedRegistries: [docker.io/library, registry.example.com/team]
  vulnerabilities:
    maxSeverity: HIGH
    unknownImages: warn
"""


def _pod(name: str, image: str, privileged: bool = False) -> dict[str, Any]:
    sc = {"privileged": True} if privileged else {"runAsNonRoot": True, "allowPrivilegeEscalation": False}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "prod", "labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image, "securityContext": sc}]},
    }


def _review(
    uid: str, kind: tuple[str, str, str], op: str, obj: Any, old: Any = None, dry: bool = False
) -> bytes:
    group, version, k = kind
    req = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": k},
        "resource": {"group": group, "version": version, "resource": k.lower() + "s"},
        "requestKind": {"group": group, "version": version, "kind": k},
        "namespace": "prod",
        "name": obj["metadata"]["name"],
        "operation": op,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": obj,
        "oldObject": old,
        "dryRun": dry,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{op.title()}Options"},
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}
    ).encode()


def bodies() -> list[bytes]:
    """The request mix."""
    ok = _pod("web", "registry.example.com/team/web:1.2")
    bad = _pod("root", "nginx:1.25", privileged=True)
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "prod"},
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "api"}}, "spec": ok["spec"]}},
    }
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "prod"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": ok["spec"]}}}},
    }
    return [
        _review("a1", ("", "v1", "Pod"), "CREATE", ok),
        _review("a2", ("", "v1", "Pod"), "CREATE", bad),
        _review("a3", ("apps", "v1", "Deployment"), "UPDATE", dep, dep),
        _review("a4", ("", "v1", "Pod"), "CREATE", ok, dry=True),
        _review("a5", ("batch", "v1", "CronJob"), "CREATE", cron),
    ]


def percentile(sorted_ms: list[float], p: float) -> float:
    """The nearest-rank percentile `p` (0-100) of sorted values."""
    if not sorted_ms:
        return math.nan
    return sorted_ms[max(0, math.ceil(p / 100 * len(sorted_ms)) - 1)]


def _send(conn: http.client.HTTPSConnection, method: str, path: str, body: bytes) -> tuple[bool, bytes]:
    """One request on a kept-alive connection: (answered well, the body or the error)."""
    headers = {"Accept": "application/json"}
    if method == "POST":
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=body if method == "POST" else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as e:
        return False, str(e).encode()
    return resp.status == 200 and (method == "GET" or b'"response"' in data), data


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process `pid` so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(
    host: str, port: int, ctx: ssl.SSLContext, method: str, path: str, payloads: list[bytes],
    rate: float, duration: float, connections: int, server_pid: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Send `rate` requests/s for `duration` s; the latency distribution."""
    n = int(rate * duration)
    work: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
        while (item := work.get()) is not None:
            scheduled, body = item
            ok, data = _send(conn, method, path, body)
            if not ok:
                conn.close()
            done = time.perf_counter()
            with lock:
                if ok:
                    lat.append((done - scheduled) * 1000)
                else:
                    errors.append(data[:200].decode("utf-8", "replace"))
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    # warm the connections (handshakes are not what kube-apiserver pays per request)
    for i in range(connections * 2):
        work.put((time.perf_counter(), payloads[i % len(payloads)]))
    while work.qsize():
        time.sleep(0.01)
    time.sleep(0.2)
    with lock:
        lat.clear()
        errors.clear()
    start = time.perf_counter()
    cpu0 = cpu_seconds(server_pid)
    for i in range(n):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        work.put((at, payloads[i % len(payloads)]))
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(server_pid) - cpu0
    lat.sort()
    return {
        "phase": f"{method} {path}",
        "requests": len(lat),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "rate": round(len(lat) / elapsed, 1),
        **{f"p{p:g}": round(percentile(lat, p), 3) for p in (50, 90, 99, 99.9)},
        "max": round(lat[-1], 3) if lat else math.nan,
        "server_cpu_ms_per_request": round(cpu * 1000 / max(1, len(lat)), 3) if server_pid else None,
    }


def _start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str, int, Path]:
    (tmp / "policy.yaml").write_text(POLICY)
    results = tmp / "results"
    results.mkdir()
    finding = {
        "package": "openssl",
        "version": "3.0.0",
        "id": "CVE-2099-1",
        "severity": "MEDIUM",
        "fixed": ["3.0.1"],
    }
    (results / "registry.example.com%2Fteam%2Fweb:1.2.json").write_text(json.dumps(finding) + "\n")
    port = _free_port()
    exe = Path(sys.executable).parent / "stockade"
    cmd = [
        str(exe), "k8s", "admission", "serve", "--policy", str(tmp / "policy.yaml"),
        "--listen", f"127.0.0.1:{port}", "--tls-dir", str(tmp / "tls"), "--san", "127.0.0.1",
        "--scan-results", str(results), "--audit-log", str(tmp / "audit.jsonl"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    ca = tmp / "tls" / "ca.crt"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        if ca.exists():
            try:
                c = http.client.HTTPSConnection(
                    "127.0.0.1", port, context=ssl.create_default_context(cafile=str(ca))
                )
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    return proc, "127.0.0.1", port, ca
            except OSError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not answer /healthz within 30 s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--url", help="a running server's base URL (https://HOST:PORT)")
    ap.add_argument("--ca", help="its CA certificate (PEM)")
    ap.add_argument("--pid", type=int, help="its process id (for its CPU time per request)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    proc = None
    with tempfile.TemporaryDirectory(prefix="admission-bench-") as t:
        if args.url:
            u = urlsplit(args.url)
            host, port, ca = u.hostname or "127.0.0.1", u.port or 443, Path(args.ca)
        else:
            proc, host, port, ca = _start_server(Path(t))
        ctx = ssl.create_default_context(cafile=str(ca))
        try:
            load = (args.rate, args.duration, args.connections, proc.pid if proc else args.pid)
            phases = [
                run_phase(host, port, ctx, "GET", "/healthz", [b""], *load),
                run_phase(host, port, ctx, "POST", "/validate?timeout=10s", bodies(), *load),
            ]
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)
    result = {"machine": harness.machine_info(), "rate": args.rate, "duration": args.duration,
              "connections": args.connections, "cpus": os.cpu_count(), "phases": phases}  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{args.rate:g} requests/s for {args.duration:g} s over {args.connections} TLS keep-alive connections"
    )
    print(
        f"{'phase':28} {'n':>6} {'err':>4} {'rate':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'p99.9':>7} {'max':>7}"
    )
    for p in phases:
        print(
            f"{p['phase']:28} {p['requests']:>6} {p['errors']:>4} {p['rate']:>7} {p['p50']:>7} {p['p90']:>7} "
            f"{p['p99']:>7} {p['p99.9']:>7} {p['max']:>7} {p['server_cpu_ms_per_request'] or '-':>7}"
        )
        if p["first_error"]:
            print(f"  first error: {p['first_error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
