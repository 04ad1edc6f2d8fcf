"""An ordinary container workload that must raise no alert from the pack (tests/attacks): it runs
beside the attack procedures, from the directory's first test to its last (at least
:data:`MIN_SECONDS`), under the same sensor.

* ``web``: the entrypoint shell writes the site and execs a web server (``python3 -m http.server``,
  the container's pid 1) whose log goes to ``/var/log/app/access.log``;
* ``client``: the entrypoint loops over requests to the web server (``wget``, ``curl``) and appends a
  line to its own log after each;
* the driver (a thread here) does what operators and orchestrators do: health-check execs every few
  seconds (``podman exec web sh -c 'wget -qO- http://127.0.0.1:8080/ >/dev/null'``, a Python probe, a
  plain ``test``), package-free log rotation every :data:`ROTATE_S` (``mv`` the log to ``.1``,
  ``gzip`` it, shift and remove old rotated files, ``find -delete`` of old ones) and a /tmp clean-up.

At the end, :meth:`OrdinaryWorkload.finish` performs one canary (``cat /etc/shadow`` in ``web``)
whose alert proves the sensor watched these containers all along, and returns the pack's alerts for
them raised before it.
"""

from __future__ import annotations

import secrets
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from containers import podman

__all__ = ["MIN_SECONDS", "OrdinaryWorkload"]

#: how long the workload runs at least
MIN_SECONDS = 300.0
#: seconds between health checks, and between log rotations
HEALTH_S = 5.0
ROTATE_S = 45.0

WEB_SCRIPT = """\
mkdir -p /srv/site /var/log/app
echo 'hello from an ordinary web server' > /srv/site/index.html
cd /srv/site
exec python3 -m http.server 8080 2>>/var/log/app/access.log
"""
CLIENT_SCRIPT = """\
while true; do
  wget -q -O /dev/null "http://$WEB:8080/" && echo "$(date +%s) wget ok" >> /var/log/client.log
  curl -fsS -o /dev/null "http://$WEB:8080/index.html" && echo "$(date +%s) curl ok" >> /var/log/client.log
  sleep 1
done
"""
ROTATE_WEB = """\
cd /var/log/app || exit 1
rm -f access.log.4.gz
for i in 3 2 1; do [ -f access.log.$i.gz ] && mv -f access.log.$i.gz access.log.$((i + 1)).gz; done
[ -f access.log ] && mv access.log access.log.1 && gzip -f access.log.1
find /var/log/app -name '*.gz' -mmin +30 -delete
true
"""
ROTATE_CLIENT = """\
[ -f /var/log/client.log ] && mv /var/log/client.log /var/log/client.log.1 && gzip -f /var/log/client.log.1
rm -f /var/log/client.log.2.gz
true
"""
HEALTH_WEB = ("sh", "-c", "wget -qO- http://127.0.0.1:8080/ >/dev/null")
HEALTH_PY = (
    "python3",
    "-c",
    "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/', timeout=5).read()",
)
HEALTH_CLIENT = ("test", "-s", "/var/log/client.log")
CLEAN_TMP = ("sh", "-c", "find /tmp -type f -mmin +60 -delete; true")
CANARY = ("cat", "/etc/shadow")
CANARY_RULE = "Password Database Read in Container"


@dataclass
class OrdinaryWorkload:
    """The workload (module docstring), watched by `node` (a :class:`sensornode.Node`)."""

    node: Any
    image: str
    started: float = 0.0
    network: str = ""
    names: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    #: what the driver did: checks passed and failed, rotations
    counts: dict[str, int] = field(
        default_factory=lambda: {"health_ok": 0, "health_failed": 0, "rotations": 0}
    )
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        tag = secrets.token_hex(3)
        self.network = f"stk-ordinary-{tag}"
        r = podman(["network", "create", self.network])
        assert r.returncode == 0, r.stderr
        self.names = {"web": f"stk-ordinary-web-{tag}", "client": f"stk-ordinary-client-{tag}"}
        self._run("web", WEB_SCRIPT)
        self._run("client", CLIENT_SCRIPT, env={"WEB": self._ip("web")})
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._drive, name="ordinary-workload", daemon=True)
        self._thread.start()

    def _run(self, role: str, script: str, env: dict[str, str] | None = None) -> None:
        """The container of `role`, whose own command (pid 1) is `sh -c script`."""
        cmd = ["run", "-d", "--name", self.names[role], "--network", self.network]
        cmd += [f"--env={k}={v}" for k, v in (env or {}).items()]
        r = podman([*cmd, self.image, "sh", "-c", script], timeout=120)
        assert r.returncode == 0, r.stderr
        self.ids[role] = r.stdout.strip()

    def _ip(self, role: str) -> str:
        r = podman(
            [
                "inspect",
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                self.names[role],
            ]
        )
        assert r.returncode == 0 and r.stdout.strip(), r.stderr
        return r.stdout.strip()

    def _exec(self, role: str, argv: Sequence[str], what: str) -> None:
        try:
            r = podman(["exec", self.names[role], *argv], timeout=60)
        except subprocess.TimeoutExpired:
            self.counts["health_failed"] += 1
            self.errors.append(f"{what}: timed out")
            return
        if r.returncode == 0:
            self.counts["health_ok" if what != "rotate" else "rotations"] += 1
        else:
            self.counts["health_failed"] += 1
            self.errors.append(f"{what}: rc={r.returncode} {r.stderr.strip()[:200]}")

    def _drive(self) -> None:
        last_rotate = time.monotonic()
        n = 0
        while not self._stop.wait(HEALTH_S):
            n += 1
            self._exec("web", HEALTH_WEB, "web health")
            if n % 3 == 0:
                self._exec("web", HEALTH_PY, "python probe")
                self._exec("client", HEALTH_CLIENT, "client health")
            if time.monotonic() - last_rotate >= ROTATE_S:
                last_rotate = time.monotonic()
                self._exec("web", ("sh", "-c", ROTATE_WEB), "rotate")
                self._exec("client", ("sh", "-c", ROTATE_CLIENT), "rotate")
                self._exec("web", CLEAN_TMP, "clean tmp")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def alerts(self) -> list[Any]:
        """The alerts raised for the workload's containers so far."""
        mine = {cid[:12] for cid in self.ids.values()}
        return [a for a in self.node.alerts if a.output_fields.get("container.id") in mine]

    def finish(self) -> list[Any]:
        """Keep going until :data:`MIN_SECONDS` have passed, stop the driver, perform the canary
        (its alert must come: the sensor watched these containers), and return the alerts raised
        for the workload before the canary."""
        remaining = MIN_SECONDS - self.elapsed()
        if remaining > 0:
            time.sleep(remaining)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=90)
        before = list(self.alerts())
        mark = self.node.mark()
        web = self.ids["web"][:12]
        self.node.wait_for(
            lambda a: a.rule == CANARY_RULE and a.output_fields.get("container.id") == web,
            timeout=60,
            since=mark,
            again=lambda: podman(["exec", self.names["web"], *CANARY]),
        )
        return before

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=90)
        if self.names:
            podman(["rm", "-f", "-i", "-t", "0", *self.names.values()], timeout=180)
        if self.network:
            podman(["network", "rm", "-f", "-t", "0", self.network], timeout=120)
