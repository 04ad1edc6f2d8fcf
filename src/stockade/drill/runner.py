"""``stockade drill run``: each scenario in its own disposable container, then what the running
instance reported (alerts, incidents), then the containers removed, whatever happened.

1. preflight: the instance answers and runs a sensor (``GET /api/v1/status``), podman is there, the
   drill image exists (built once);
2. the scenarios run a few at a time: container started (setup done), attack steps by
   ``podman exec``;
3. the instance is asked until every scenario's expected rules fired and its alerts sit in an
   incident, or `timeout_s` passed: one shared wait, so an undetected scenario costs no more than
   the others;
4. the results (:mod:`stockade.drill.results`);
5. cleanup, also on Ctrl-C or an error: a container the incidents' timelines show isolated or
   frozen (or that a freezer holds) is released through the instance's
   ``POST /api/v1/respond/{unisolate,thaw}``; where the instance cannot thaw it, podman unpause
   and stockade.enforce.freeze do; then ``podman rm -f``. Containers of this run left by an
   interrupted start are found by their label.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stockade.drill.podman import DrillContainer, Podman, StepResult
from stockade.drill.results import DrillResult, find_incident, held, result_of
from stockade.drill.scenarios import Scenario
from stockade.errors import StockadeError
from stockade.model import apipaths
from stockade.model.timeutil import format_time_ns, now_ns, parse_time_ns

if TYPE_CHECKING:
    import httpx

__all__ = ["Drill", "sensor_backend"]

log = logging.getLogger("stockade.drill")

#: scenarios run at once (podman is mostly waiting on the kernel and the disk)
PARALLEL = 3
_POLL_S = 0.5
_LIMIT = 1000
#: after an aggregation window closes, the time its repeat alert takes to be stored
_SETTLE_MARGIN_S = 1.5


def sensor_backend(status: Mapping[str, Any]) -> str:
    """The running instance's sensor backend from its ``/status`` answer; an instance without a
    runtime or a sensor cannot run a drill (StockadeError saying so)."""
    runtime = status.get("runtime")
    if not isinstance(runtime, Mapping):
        raise StockadeError(
            "the Stockade found serves a store only (no runtime, no sensor): a drill needs `stockade up`"
        )
    sensor = runtime.get("sensor")
    backend = sensor.get("backend") if isinstance(sensor, Mapping) else None
    if not backend or backend == "none":
        raise StockadeError(
            "the running Stockade has no sensor (sensor backend: none): it cannot see the drill; "
            "start it with a sensor (`stockade up`, sensor.backend auto)"
        )
    return str(backend)


def _generic_404(resp: httpx.Response) -> bool:
    """The framework's 404 for a path it has no route for (not a problem naming the container)."""
    try:
        body = resp.json()
    except ValueError:
        return True
    return not isinstance(body, dict) or body.get("detail") == "Not Found"


@dataclass
class _Run:
    scenario: Scenario
    container: DrillContainer | None = None
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    start_ns: int = 0


class Drill:
    """One drill run against the instance `client` talks to (module docstring); `check` turns an
    answer into its JSON body or a StockadeError (the CLI's ``locate.check``)."""

    def __init__(
        self,
        client: httpx.Client,
        scenarios: Sequence[Scenario],
        *,
        check: Callable[[httpx.Response], Any],
        podman: Podman | None = None,
        timeout_s: float = 20.0,
        settle_s: float = 0.0,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.check = check
        self.scenarios = list(scenarios)
        self.podman = podman
        self.timeout_s = timeout_s
        #: the instance's alert aggregation window (engine.aggregate_window_s)
        self.settle_s = settle_s
        self.progress = progress or (lambda _msg: None)
        self.run_id = secrets.token_hex(4)
        self.backend = ""
        self._runs: list[_Run] = []
        #: incident timelines read, by incident id
        self._timelines: dict[str, list[dict[str, Any]]] = {}
        self.cleanup_problems: list[str] = []

    # -- the API ---------------------------------------------------------------------------------

    def _get(self, route: str, params: Mapping[str, Any] | None = None, **ids: str) -> Any:
        return self.check(self.client.get(apipaths.api_path(route, **ids), params=dict(params or {})))

    def preflight(self) -> None:
        """The instance answers with a sensor, and podman is there (StockadeError otherwise)."""
        self.backend = sensor_backend(self._get(apipaths.STATUS))
        if self.podman is None:
            self.podman = Podman()

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> list[DrillResult]:
        """Every scenario's result; the containers are removed before it returns (or raises)."""
        self.preflight()
        assert self.podman is not None
        try:
            image = self.podman.ensure_image()
            self._runs = [_Run(s) for s in self.scenarios]
            pool = ThreadPoolExecutor(max_workers=PARALLEL)
            try:
                list(pool.map(lambda r: self._attack(r, image), self._runs))
            finally:  # interrupted: the scenarios not started yet are not
                pool.shutdown(wait=True, cancel_futures=True)
            alerts = self._wait()
            return self._results(alerts)
        finally:
            self.cleanup()

    def _attack(self, run: _Run, image: str) -> None:
        assert self.podman is not None
        run.start_ns = now_ns()
        try:
            run.container = self.podman.start(run.scenario, image, labels={"stockade.drill.run": self.run_id})
        except StockadeError as e:
            run.error = str(e)
            self.progress(f"{run.scenario.name}: {e}")
            return
        for argv in run.scenario.steps:
            run.steps.append(run.container.exec(argv))
        self.progress(f"{run.scenario.name}: ran in {run.container.name}")

    def _alerts_of(self, run: _Run) -> list[dict[str, Any]]:
        assert run.container is not None
        params = {"container": run.container.id, "since": format_time_ns(run.start_ns), "limit": _LIMIT}
        items: list[dict[str, Any]] = self._get(apipaths.ALERTS, params)["items"]
        return items

    def _incidents(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._get(apipaths.INCIDENTS, {"limit": _LIMIT})["items"]
        return items

    def _wait(self) -> dict[str, list[dict[str, Any]]]:
        """The alerts of each scenario's container (by scenario), once every expected rule fired,
        the aggregation windows the alerts opened have closed (their repeats arrive then: module
        docstring of stockade.runtime.stages.aggregate) and every alert is in an incident; or when
        the time is up."""
        deadline = time.monotonic() + self.timeout_s
        alerts: dict[str, list[dict[str, Any]]] = {}
        while True:
            pending = False
            latest = 0
            for run in self._runs:
                if run.container is None:
                    continue
                got = alerts[run.scenario.name] = self._alerts_of(run)
                pending = pending or bool(run.scenario.missing({str(a.get("rule")) for a in got}))
                latest = max([latest, *(parse_time_ns(str(a.get("time"))) or 0 for a in got)])
            if latest and now_ns() < latest + int((self.settle_s + _SETTLE_MARGIN_S) * 1e9):
                pending = True
            if not pending:
                grouped = {i for inc in self._incidents() for i in inc.get("alerts") or ()}
                ids = {(a.get("stockade") or {}).get("id") for got in alerts.values() for a in got}
                pending = bool(ids - grouped)
            if not pending or time.monotonic() >= deadline:
                return alerts
            time.sleep(_POLL_S)

    def _timeline(self, incident_id: str) -> list[dict[str, Any]]:
        """The incident's timeline (read once per run)."""
        if incident_id not in self._timelines:
            got = self._get(apipaths.INCIDENT, incident_id=incident_id).get("timeline") or []
            self._timelines[incident_id] = got
        return self._timelines[incident_id]

    def _results(self, alerts: Mapping[str, list[dict[str, Any]]]) -> list[DrillResult]:
        incidents = self._incidents()
        out: list[DrillResult] = []
        for run in self._runs:
            c = run.container
            if c is None:
                out.append(DrillResult(run.scenario.name, "", error=run.error, detail=run.error or ""))
                continue
            mine = alerts.get(run.scenario.name, [])
            inc = find_incident(c.id, [str((a.get("stockade") or {}).get("id")) for a in mine], incidents)
            if inc is not None:
                self._timeline(str(inc["id"]))
            out.append(result_of(run.scenario, c.id, run.steps, mine, incidents, self._timelines, c.name))
        return out

    # -- cleanup -----------------------------------------------------------------------------------

    def _respond(self, action: str, container: DrillContainer) -> bool | None:
        """Ask the instance to `action` the container: True done, False refused or failed, None
        when it has no such route (or cannot be reached)."""
        try:
            resp = self.client.post(
                apipaths.api_path(apipaths.RESPOND, action=action),
                json={"container": container.full_id, "who": "stockade drill", "reason": "drill cleanup"},
                timeout=30,
            )
        except Exception as e:  # the instance went away: the local fallback follows
            log.debug("drill: %s %s: %s", action, container.name, e)
            return None
        if resp.status_code == 405 or (resp.status_code == 404 and _generic_404(resp)):
            return None
        return resp.status_code < 400

    def _held(self) -> dict[str, tuple[bool, bool]]:
        """(isolated, frozen) of each container of the run, by container name, as the incidents'
        timelines leave them; best effort (nothing when the instance does not answer)."""
        out: dict[str, tuple[bool, bool]] = {}
        try:
            incidents = self._incidents()
            for run in self._runs:
                c = run.container
                if c is None:
                    continue
                inc = find_incident(c.id, [], incidents)
                if inc is None:
                    continue
                out[c.name] = held(c.id, self._timeline(str(inc["id"])), c.name)
        except Exception as e:  # cleanup goes on: the local checks follow
            log.debug("drill: incidents not read for the cleanup: %s", e)
        return out

    def _release(self, c: DrillContainer, isolated: bool, frozen: bool) -> None:
        """Un-isolate and thaw what a playbook holds (by the instance, else by hand for the freezer),
        then remove."""
        if isolated and not self._respond("unisolate", c):
            log.info("drill: %s was not un-isolated by the instance; removing it ends its isolation", c.name)
        if (frozen or c.frozen()) and not self._respond("thaw", c):
            done = c.thaw_locally()
            if done:
                log.info("drill: %s thawed by hand (%s)", c.name, ", ".join(done))
        if not c.remove():
            self.cleanup_problems.append(f"could not remove the drill container {c.name}")

    def cleanup(self) -> None:
        """Remove every container of this run (module docstring, step 5)."""
        if self.podman is None:
            return
        made = [r.container for r in self._runs if r.container is not None]
        holds = self._held() if made else {}

        def release(c: DrillContainer) -> None:
            self._release(c, *holds.get(c.name, (False, False)))

        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            list(pool.map(release, made))
        left = self.podman.run("ps", "-a", "-q", "--filter", f"label=stockade.drill.run={self.run_id}")
        for cid in left.stdout.split():
            self.podman.run("rm", "-f", "-t", "0", cid, timeout=120)
