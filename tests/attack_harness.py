"""Attack procedures performed for real, each in a fresh podman container, with the eBPF sensor and
Stockade's whole pack (tests/attacks).

A test module lists its :class:`Procedure` objects in ``PROCEDURES`` and checks each with the
``attacks`` fixture (tests/attacks/conftest.py)::

    PROCEDURES = [Procedure("rm-history", rule="Shell History Cleared in Container",
                            script="rm -f /root/.bash_history", proc="rm",
                            files={"/root/.bash_history": "ls\\n"})]

    @pytest.mark.parametrize("p", PROCEDURES, ids=lambda p: p.id)
    def test_procedure_raises_its_alert(p: Procedure, attacks: Attacks) -> None:
        attacks.check(p)

The first check of a module performs all of the module's procedures (:meth:`Attacks.perform`):
every container is made first (``podman create`` from the attack image, ``--network none``, the
procedure's files copied in by podman from the host, so making them raises nothing), then, with a
busy loop on every core (users' nodes are busy), each procedure runs a few at a time and its alert
is waited for. A procedure runs as an operator would run it:

* ``how="exec"``: ``podman exec <c> <shell> -c <script>`` in the fresh container (which sleeps);
  repeated every 10 s until the alert comes (a burst elsewhere on this shared machine can make the
  kernel drop a message: counted and tested elsewhere);
* ``how="run"``: the container's own command is ``<shell> -c <script>`` (the shell is the
  container's pid 1), followed by a sleep so the container is still there to be described.

The alert must be the procedure's rule, for that container (``container.id``), by the procedure's
process (``proc.name``) when one is given. The sensor runs with ``rule_matching: first``, the
default users run: a specific rule must win over the generic ones.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from containers import podman
from helpers import busy_cores, in_parallel
from stockade.model.alert import Alert

__all__ = ["ATTACK_IMAGE", "Attacks", "Outcome", "Procedure"]

ATTACK_IMAGE = "localhost/stockade-test-attack"
#: how long a procedure's alert is waited for (every core busy)
WAIT_S = 60.0
#: how long the shell of a "run" procedure stays after its script (the container must still be
#: there when the sensor's resolver describes it)
RUN_LINGER_S = 60
#: procedures performed at once
AT_ONCE = 3


@dataclass(frozen=True)
class Procedure:
    """One way of performing a technique (module docstring)."""

    id: str
    #: the rule that must fire
    rule: str
    #: the procedure's shell text, run as ``<shell> -c script``
    script: str
    #: proc.name of the process the alert must be about (None: any)
    proc: str | None = None
    shell: Literal["sh", "bash"] = "sh"
    how: Literal["exec", "run"] = "exec"
    #: files put in place before the container starts (path -> content), without an alert
    files: Mapping[str, str] = field(default_factory=dict)
    #: ``how="exec"`` only: a command run first (its alerts, if any, do not count)
    setup: str = ""
    #: ``podman --user`` for the container (None: the image's, root)
    user: str | None = None
    #: the ATT&CK techniques it performs, for docs/rule-pack.md's coverage table (empty: every
    #: technique its rule is tagged with)
    techniques: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What performing a procedure gave."""

    container: str = ""
    alert: Alert | None = None
    #: the alerts raised for the procedure's container (for a failure's message)
    seen: list[tuple[str, str]] = field(default_factory=list)
    output: str = ""
    error: str = ""


class Attacks:
    """A test module's procedures, performed once (module docstring); ``node`` is a
    :class:`sensornode.Node` and ``image`` the attack image."""

    def __init__(self, node: Any, image: str, procedures: Sequence[Procedure]) -> None:
        self.node = node
        self.image = image
        self.procedures = list(procedures)
        ids = [p.id for p in self.procedures]
        assert len(set(ids)) == len(ids), f"procedure ids repeat: {ids}"
        self.outcomes: dict[str, Outcome] = {}
        self.containers: list[str] = []
        #: held while the module's procedures are performed (the first check performs them)
        self._performing = threading.Lock()
        self._made = threading.Lock()
        self._done = False

    # -- the module's fixture calls these -----------------------------------------------------
    def check(self, p: Procedure) -> Alert:
        """Assert that performing `p` raised its alert (performing the module's procedures first)."""
        self.perform()
        o = self.outcomes[p.id]
        assert o.alert is not None, (
            f"{p.id}: no {p.rule!r} alert by {p.proc or 'any process'} for container {o.container}"
            f"{' (' + o.error + ')' if o.error else ''}; alerts for it: {o.seen}; output: {o.output[-800:]}"
        )
        f = o.alert.output_fields
        assert f.get("container.id") == o.container[:12], f
        if p.proc is not None:
            assert f.get("proc.name") == p.proc, f
        return o.alert

    def perform(self) -> None:
        """Make every container, then perform every procedure on busy cores (once)."""
        with self._performing:
            if self._done:
                return
            self._done = True
            made = in_parallel([partial(self._make, p) for p in self.procedures])
            with busy_cores():
                in_parallel(
                    [partial(self._perform, p, c) for p, c in zip(self.procedures, made, strict=True)],
                    AT_ONCE,
                )

    def cleanup(self) -> None:
        """Remove every container made."""
        if self.containers:
            podman(["rm", "-f", "-i", "-t", "0", *self.containers], timeout=180)
            self.containers.clear()

    # -- one procedure ------------------------------------------------------------------------
    def _make(self, p: Procedure) -> str:
        name = f"stk-atk-{p.id[:30]}-{secrets.token_hex(3)}"
        cmd = ["create", "--name", name, "--network", "none"]
        if p.user is not None:
            cmd += ["--user", p.user]
        args = [p.shell, "-c", f"{p.script}\nsleep {RUN_LINGER_S}"] if p.how == "run" else ["sleep", "600"]
        r = podman([*cmd, self.image, *args])
        assert r.returncode == 0, r.stderr
        with self._made:
            self.containers.append(name)
        if p.files:
            self._put(name, p.files)
        return name

    def _put(self, name: str, files: Mapping[str, str]) -> None:
        """The files, their directories made as needed (a tree copied onto the container's /)."""
        with tempfile.TemporaryDirectory() as tmp:
            for path, content in files.items():
                dest = Path(tmp, path.lstrip("/"))
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(content)
            r = podman(["cp", f"{tmp}/.", f"{name}:/"])
            assert r.returncode == 0, f"podman cp of {sorted(files)}: {r.stderr}"

    def _perform(self, p: Procedure, name: str) -> None:
        o = self.outcomes[p.id] = Outcome()
        mark = self.node.mark()
        r = podman(["start", name])
        if r.returncode != 0:
            o.error = f"podman start: {r.stderr.strip()}"
            return
        o.container = podman(["inspect", "--format", "{{.Id}}", name]).stdout.strip()
        again: Callable[[], object] | None = None
        if p.how == "exec":
            if p.setup:
                podman(["exec", name, p.shell, "-c", p.setup], timeout=60)
                mark = self.node.mark()

            def run() -> object:
                got = podman(["exec", name, p.shell, "-c", p.script], timeout=60)
                o.output = f"rc={got.returncode} stdout={got.stdout[-400:]!r} stderr={got.stderr[-400:]!r}"
                return got

            run()
            again = run
        cid = o.container[:12]

        def mine(a: Alert) -> bool:
            f = a.output_fields
            return (
                a.rule == p.rule
                and f.get("container.id") == cid
                and (p.proc is None or f.get("proc.name") == p.proc)
            )

        try:
            o.alert = self.node.wait_for(mine, timeout=WAIT_S, since=mark, again=again)
        except AssertionError as e:
            o.error = str(e)[:300]
        o.seen = sorted(
            {
                (a.rule, str(a.output_fields.get("proc.name")))
                for a in self.node.alerts[mark:]
                if a.output_fields.get("container.id") == cid
            }
        )
