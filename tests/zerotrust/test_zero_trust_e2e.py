"""Zero trust end to end, as a user runs it: `stockade up`, a service and a client in podman
containers learned in Discover, promoted with `stockade mode set`, then attacked through the
service's foothold (tools/stk_svc.c: /x/exec, /x/read, /x/write-exec, /x/connect).

* Protect: the exec of /bin/sh and of a freshly written binary, the read of /etc/shadow and a
  connection to a port the service never used fail with EPERM, each one an alert naming the policy
  rule, while the learned requests and processes go on working;
* Monitor: the same operations succeed and each one is an alert;
* restart: `stockade up` stops and starts again while the service is in Protect: the denials hold;
* rollout: a new image digest with one extra binary reports that binary only, the mode is kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from containers import _run
from helpers import wait_until
from stockade.model import apipaths
from stockade.model.timeutil import format_time_ns

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

EPERM = 1
SVC_PORT = 8080


def _podman_run(image: str, name: str, network: str, *cmd: str) -> dict[str, Any]:
    r = _run(["podman", "run", "-d", "--name", name, "--network", network, image, *cmd], timeout=120)
    assert r.returncode == 0, r.stderr
    inspect = _run(["podman", "container", "inspect", "--format", "json", name])
    data: dict[str, Any] = json.loads(inspect.stdout)[0]
    return data


def _ip(c: dict[str, Any]) -> str:
    nets = c["NetworkSettings"]["Networks"]
    return str(next(iter(nets.values()))["IPAddress"])


def _ask(ip: str, path: str) -> str:
    r = httpx.get(f"http://{ip}:{SVC_PORT}{path}", timeout=10)
    return r.text.strip()


class Scene:
    """The service, its client, and the instance watching them."""

    def __init__(self, up: Any, svc: dict[str, Any], cli: dict[str, Any], svc_id: str, cli_id: str) -> None:
        self.up, self.svc, self.cli = up, svc, cli
        self.svc_ip, self.cli_ip = _ip(svc), _ip(cli)
        self.svc_id, self.cli_id = svc_id, cli_id

    def workloads(self) -> dict[str, dict[str, Any]]:
        r = self.up.cli("workloads", "list", "--output", "json")
        assert r.returncode == 0, r.stderr
        return {w["id"]: w for w in map(json.loads, r.stdout.splitlines())}

    def profile(self, wid: str) -> dict[str, Any]:
        r = self.up.cli("profiles", "show", wid, "--output", "json")
        assert r.returncode == 0, r.stderr
        out: dict[str, Any] = json.loads(r.stdout)
        return out

    def polled_workloads(self) -> dict[str, dict[str, Any]]:
        """What `workloads()` gives, through the API (for waits: a request per look, not a process)."""
        return {w["id"]: w for w in self.up.get(apipaths.WORKLOADS)["items"]}

    def polled_profile(self, wid: str) -> dict[str, Any]:
        """What `profile()` gives, through the API (for waits)."""
        out: dict[str, Any] = self.up.get(apipaths.PROFILE, workload_id=wid)
        return out

    def mode(self, wid: str, mode: str, *extra: str) -> Any:
        r = self.up.cli("mode", "set", wid, mode, *extra)
        if r.returncode != 0:
            r.stderr += "\n--- stockade up:\n" + self.up.log()[-4000:]
        return r

    def explain(self, wid: str) -> str:
        """The workload, its policy and the instance's log: for failure messages."""
        show = self.up.cli("workloads", "show", wid, "-o", "json").stdout
        policy = self.up.cli("policy", "show", wid).stdout
        status = self.up.cli("status", "-o", "json").stdout
        return f"\n--- workload:\n{show}\n--- policy:\n{policy}\n--- status:\n{status[-3000:]}\n--- log:\n{self.up.log()[-3000:]}"

    def attack(self) -> dict[str, str]:
        try:
            return self._attack()
        except httpx.TimeoutException as e:
            raise AssertionError(f"the service did not answer: {e}{self.explain(self.svc_id)}") from e

    def _attack(self) -> dict[str, str]:
        return {
            "sh": _ask(self.svc_ip, "/x/exec?/bin/sh"),
            "fresh": _ask(self.svc_ip, "/x/write-exec?/tmp/tmp.fresh1"),
            "shadow": _ask(self.svc_ip, "/x/read?/etc/shadow"),
            "connect": _ask(self.svc_ip, f"/x/connect?{self.cli_ip}:9"),
        }

    def normal(self) -> dict[str, str]:
        return {"index": _ask(self.svc_ip, "/"), "report": _ask(self.svc_ip, "/report")}


def _learned(scene: Scene) -> bool:
    """The service's profile holds what its normal work does (polled through the API)."""
    try:
        p = scene.polled_profile(scene.svc_id)
    except httpx.HTTPStatusError:
        return False
    return _holds_normal_work(p)


def _holds_normal_work(p: dict[str, Any]) -> bool:
    exes = {e[0] for e in p.get("processes", [])}
    files = {e[0] for e in p.get("files", [])}
    listen = {e[2] for e in p.get("network", []) if e[0] == "listen"}
    return (
        "/usr/bin/stk-report" in exes
        and "/srv/index.html" in files
        and any(f.startswith("/tmp/tmp.") for f in files)
        and SVC_PORT in listen
    )


@pytest.fixture
def scene(stockade_up: Callable[..., Any], svc_images: dict[str, str], podman_network: str) -> Any:
    up = stockade_up()
    up.start()
    tag = str(int(time.time() * 1000) % 10**8)
    svc = _podman_run(svc_images["v1"], f"ztweb{tag}-1", podman_network)
    loop = (
        f"while :; do wget -q -O- http://{_ip(svc)}:{SVC_PORT}/ >/dev/null; "
        f"wget -q -O- http://{_ip(svc)}:{SVC_PORT}/report >/dev/null; sleep 0.3; done"
    )
    cli = _podman_run(svc_images["v1"], f"ztcli{tag}-1", podman_network, "sh", "-c", loop)
    s = Scene(
        up,
        svc,
        cli,
        f"container/localhost/stockade-test-svc/ztweb{tag}",
        f"container/localhost/stockade-test-svc/ztcli{tag}",
    )
    try:
        assert wait_until(lambda: _learned(s), timeout=60, step=0.5), (
            {k: v for k, v in s.profile(s.svc_id).items() if k in ("processes", "files", "network")}
            if s.svc_id in s.workloads()
            else s.workloads()
        )
        # what the waits saw through the API, the CLI shows
        assert _holds_normal_work(s.profile(s.svc_id))
        yield s
    finally:
        _run(["podman", "rm", "-f", "-t", "0", svc["Name"], cli["Name"]], timeout=120)


def _denials(up: Any, wid: str, since: str) -> list[dict[str, Any]]:
    return [
        a for a in up.alerts() if a["output_fields"].get("stockade.workload") == wid and a["time"] >= since
    ]


def _now_iso() -> str:
    return format_time_ns(time.time_ns())


def _peers(scene: Scene, wid: str, direction: str) -> set[tuple[str, int]]:
    return {(e[1], e[2]) for e in scene.polled_profile(wid).get("network", []) if e[0] == direction}


def test_protect_denies_and_monitor_alerts(scene: Scene) -> None:
    # the client's server and the service's client are learned as workloads, not addresses
    svc_peer, cli_peer = f"workload:{scene.svc_id}", f"workload:{scene.cli_id}"
    assert wait_until(
        lambda: (svc_peer, SVC_PORT) in _peers(scene, scene.cli_id, "egress"), timeout=20, step=0.3
    ), _peers(scene, scene.cli_id, "egress")
    assert wait_until(
        lambda: (cli_peer, SVC_PORT) in _peers(scene, scene.svc_id, "ingress"), timeout=20, step=0.3
    ), _peers(scene, scene.svc_id, "ingress")
    since = _now_iso()
    r = scene.mode(scene.svc_id, "protect", "--why", "learned")
    assert r.returncode == 0, r.stdout + r.stderr
    r = scene.mode(scene.cli_id, "protect", "--why", "learned")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"workload: {scene.svc_id}" in scene.up.cli("policy", "show", scene.cli_id).stdout
    time.sleep(1)
    got = scene.attack()
    assert got["sh"] == f"exec errno={EPERM}", f"{got}{scene.explain(scene.svc_id)}"
    assert got["fresh"] == f"write errno=0; exec errno={EPERM}", got
    assert got["shadow"] == f"read errno={EPERM}", got
    assert got["connect"] == f"connect errno={EPERM}", got
    ok = scene.normal()
    assert ok == {"index": "hello from stk-svc", "report": "exec ran status=0"}, ok
    # an exec into the protected container (a health probe) runs what the policy allows, only that
    probe = _run(["podman", "exec", scene.svc["Name"], "/usr/bin/stk-report", "-c", "true"])
    assert probe.returncode == 0 and probe.stdout.strip() == "report", probe.stdout + probe.stderr
    shell = _run(["podman", "exec", scene.svc["Name"], "/bin/sh", "-c", "id"])
    assert shell.returncode != 0 and "uid=" not in shell.stdout, shell.stdout
    assert wait_until(lambda: len(_denials(scene.up, scene.svc_id, since)) >= 4, timeout=20, step=0.5)
    denials = _denials(scene.up, scene.svc_id, since)
    targets = {
        (a["output_fields"]["stockade.operation"], a["output_fields"]["stockade.target"]) for a in denials
    }
    assert all(a["rule"] == "Workload policy denial" for a in denials), denials
    assert all(a["output_fields"]["stockade.policy_rule"] for a in denials)
    assert ("open", "/etc/shadow") in {(o, t.split(" ")[0]) for o, t in targets}, targets
    assert any(o == "exec" and t.startswith("/tmp/tmp.fresh1") for o, t in targets), targets
    assert any(o == "connect" and t.startswith(f"{scene.cli_ip}:9") for o, t in targets), targets
    # the client's learned requests keep working in Protect
    logs_before = _run(["podman", "logs", scene.cli["Name"]]).stdout
    assert "errno" not in logs_before
    # Monitor: the same operations succeed, and each is an alert
    since = _now_iso()
    r = scene.mode(scene.svc_id, "monitor", "--why", "test monitor")
    assert r.returncode == 0, r.stderr
    time.sleep(1)
    got = scene.attack()
    assert got["sh"] == "exec ran status=0" and got["shadow"] == "read errno=0", got
    assert got["connect"] != f"connect errno={EPERM}", got
    assert wait_until(lambda: len(_denials(scene.up, scene.svc_id, since)) >= 3, timeout=20, step=0.5)
    seen = _denials(scene.up, scene.svc_id, since)
    assert all(a["rule"] == "Workload policy deviation" for a in seen), seen
    # what Monitor saw would now be denied: Protect is refused, saying why, until forced
    refused = scene.up.cli("mode", "set", scene.svc_id, "protect")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "recent operations would be denied" in refused.stderr and "/etc/shadow" in refused.stderr, (
        refused.stderr
    )
    assert "http://" not in refused.stderr and "Traceback" not in refused.stderr
    assert scene.workloads()[scene.svc_id]["mode"] == "monitor"


def test_denials_hold_across_an_agent_restart(scene: Scene) -> None:
    r = scene.mode(scene.svc_id, "protect", "--why", "learned")
    assert r.returncode == 0, r.stdout + r.stderr
    assert scene.attack()["shadow"] == f"read errno={EPERM}"
    scene.up.stop()
    # while the agent is down the network programs stay pinned (fail closed); exec and open fail open
    down = _ask(scene.svc_ip, f"/x/connect?{scene.cli_ip}:9")
    assert down == f"connect errno={EPERM}", down
    scene.up.start()

    def enforced() -> bool:
        w = scene.polled_workloads().get(scene.svc_id, {})
        return w.get("mode") == "protect" and bool((w.get("enforcement") or {}).get("files"))

    assert wait_until(enforced, timeout=30, step=0.3), scene.explain(scene.svc_id)
    assert scene.workloads()[scene.svc_id]["mode"] == "protect"
    status = scene.up.cli("status")
    assert status.returncode == 0 and "zero trust: " in status.stdout, status.stdout + status.stderr
    assert "enforcement on this node: exec block, open block, connect block" in status.stdout, status.stdout
    got = scene.attack()
    assert got["sh"] == f"exec errno={EPERM}", f"{got}{scene.explain(scene.svc_id)}"
    assert got["shadow"] == f"read errno={EPERM}" and got["connect"] == f"connect errno={EPERM}", got
    assert got["fresh"] == f"write errno=0; exec errno={EPERM}", got
    assert scene.normal() == {"index": "hello from stk-svc", "report": "exec ran status=0"}


def test_a_rollout_reports_only_its_new_binary_and_keeps_the_mode(
    scene: Scene, svc_images: dict[str, str], podman_network: str
) -> None:
    r = scene.mode(scene.svc_id, "monitor", "--why", "learned")
    assert r.returncode == 0, r.stdout + r.stderr
    name = scene.svc["Name"]
    _run(["podman", "rm", "-f", "-t", "0", name], timeout=120)
    since = _now_iso()
    v2 = _podman_run(svc_images["v2"], name, podman_network)
    scene.svc, scene.svc_ip = v2, _ip(v2)
    assert wait_until(
        lambda: scene.polled_workloads()[scene.svc_id]["containers"] == [v2["Id"]], timeout=30, step=0.3
    )
    assert scene.normal() == {"index": "hello from stk-svc", "report": "exec ran status=0"}
    assert _ask(scene.svc_ip, "/x/exec?/usr/bin/stk-extra") == "exec ran status=0"
    assert _ask(scene.svc_ip, "/report") == "exec ran status=0"

    def extra_reported() -> bool:
        return any("/usr/bin/stk-extra" in a["output"] for a in _denials(scene.up, scene.svc_id, since))

    assert wait_until(extra_reported, timeout=20, step=0.5), scene.explain(scene.svc_id)
    time.sleep(2)  # anything else the new version did would be reported by now
    reported = [a["output_fields"]["stockade.target"] for a in _denials(scene.up, scene.svc_id, since)]
    assert reported == ["/usr/bin/stk-extra"], f"{reported}{scene.explain(scene.svc_id)}"
    w = scene.workloads()[scene.svc_id]
    assert w["mode"] == "monitor"
    assert w["image_digest"] != scene.svc_id and w["image_digest"] == v2["ImageDigest"], w
    shown = json.loads(scene.up.cli("workloads", "show", scene.svc_id, "-o", "json").stdout)
    assert shown["new_by_digest"] == {v2["ImageDigest"]: ["exec /usr/bin/stk-extra"]}, shown["new_by_digest"]


def test_new_behaviour_raises_an_anomaly_alert_and_normal_work_does_not(
    scene: Scene, svc_images: dict[str, str], podman_network: str
) -> None:
    # two more replicas while learning: the workload's model learns each one's start and work
    base = scene.svc["Name"].rsplit("-", 1)[0]
    replicas = [_podman_run(svc_images["v1"], f"{base}-{n}", podman_network) for n in (2, 3)]
    try:
        _anomaly_scene(scene, replicas)
    finally:
        _run(["podman", "rm", "-f", "-t", "0", *(r["Name"] for r in replicas)], timeout=120)


def _model(scene: Scene, *, polled: bool = False) -> dict[str, Any]:
    """The service's anomaly model as `workloads show` gives it (`polled`: through the API)."""
    if polled:
        show = scene.up.get(apipaths.WORKLOAD, workload_id=scene.svc_id)
    else:
        show = json.loads(scene.up.cli("workloads", "show", scene.svc_id, "-o", "json").stdout)
    return dict(show.get("anomaly_model") or {})


def _anomaly_scene(scene: Scene, replicas: list[dict[str, Any]]) -> None:
    for r in replicas:
        assert _ask(_ip(r), "/") == "hello from stk-svc" and _ask(_ip(r), "/report") == "exec ran status=0"
    assert wait_until(
        # one window in five is held out to learn the threshold from: 25 learned trains on 20
        lambda: _model(scene, polled=True).get("tokens_learned", 0) >= 25,
        timeout=30,
        step=0.5,
    ), _model(scene)
    r = scene.mode(scene.svc_id, "monitor", "--why", "learned")
    assert r.returncode == 0, r.stdout + r.stderr
    model = _model(scene)
    assert model["threshold_bits"] is not None and model["ready"], model
    text = scene.up.cli("workloads", "show", scene.svc_id).stdout
    assert "anomaly:    kneser-ney order 3, window 4: " in text and "bits per token" in text, text
    since = _now_iso()
    # normal work: nothing anomalous
    for _ in range(5):
        assert scene.normal() == {"index": "hello from stk-svc", "report": "exec ran status=0"}
        assert _ask(_ip(replicas[0]), "/") == "hello from stk-svc"
    time.sleep(2)
    assert scene.up.alerts("Anomalous") == [], scene.up.alerts("Anomalous")
    # the foothold runs a shell, then probes ports: never seen for this workload
    _ask(scene.svc_ip, "/x/exec?/bin/sh")
    for port in (22, 23, 25, 3306):
        _ask(scene.svc_ip, f"/x/connect?{scene.cli_ip}:{port}")

    def anomalies() -> list[dict[str, Any]]:
        return [
            a
            for a in scene.up.alerts("Anomalous")
            if a["time"] >= since and a["output_fields"].get("stockade.workload") == scene.svc_id
        ]

    assert wait_until(lambda: len(anomalies()) >= 1, timeout=20, step=0.5), scene.explain(scene.svc_id)
    got = anomalies()
    seqs = [a["output_fields"]["stockade.anomaly.sequence"] for a in got]
    # /bin/sh is busybox: the executable is what runs
    shell = "exec /bin/busybox < /usr/bin/stk-svc"
    assert any(shell in s for s in seqs), seqs
    assert all(a["rule"] == "Anomalous workload behaviour" and a["priority"] == "Warning" for a in got)
    assert any("T1059" in a["tags"] for a in got), [a["tags"] for a in got]
