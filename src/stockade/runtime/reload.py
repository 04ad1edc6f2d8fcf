"""Reloading the rules of a running pipeline (`stockade rules reload`, SIGHUP) without a restart.

The new rules are loaded and compiled off to the side, from the same rules files (the configured
ones, or those given with --rules at start) and the ``engine`` section of the configuration read
again. If that fails, the running engine is kept and the error (``file:line:col: ...``) is
reported and remembered for status. Otherwise the pipeline swaps engines between two events: no
event is evaluated partly by the old rules and partly by the new ones. Sequence rules start over:
steps seen before the swap do not count towards a sequence completed after it. The sensor keeps
the event types and the kernel prefilter of failed calls it started with; what the new rules need
beyond them is said in the result's notes (it takes a restart). The kernel's interest filter follows
the new rules: it is off while the engines are swapped, then derived from the new rules.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from stockade.config import StockadeConfig
from stockade.engine import Engine
from stockade.engine.build import build_engine
from stockade.engine.cache import node_cache_dir
from stockade.errors import StockadeError
from stockade.model.errorlog import ErrorLog
from stockade.model.timeutil import format_time_ns
from stockade.rules.interest import InterestPlan
from stockade.rules.prefilter import failed_droppable
from stockade.runtime.pipeline import Pipeline
from stockade.sinks.interface import Sink


class RunningSensor(Protocol):
    """What a reload needs to know of the running sensor (:class:`stockade.runtime.sensing.SensorRunner`)."""

    #: the event types it follows (None: all)
    needed: set[str] | None
    #: the syscalls whose failed calls its kernel prefilter drops
    drop_failed: frozenset[str]

    def set_interest(self, plan: InterestPlan) -> None:
        """Replace the kernel's interest filter."""

    def refilter(self) -> None:
        """Derive the kernel's interest filter from the pipeline's rules again, and apply it."""


class ReloadError(StockadeError):
    """The new rules (or configuration) failed: the running rules are kept. `errors` lists every
    error (``file:line:col: error: ...``)."""

    title = "Rules reload failed"

    def __init__(self, message: str, errors: list[str]) -> None:
        super().__init__(message)
        self.errors = errors


class RulesReloader:
    """Owns the pipeline's engine over reloads; `counters()` adds up those of the retired engines."""

    def __init__(
        self,
        cfg: StockadeConfig,
        pipeline: Pipeline,
        rules: list[str] | None,
        *,
        config_loader: Callable[[], StockadeConfig] | None = None,
        sensor: RunningSensor | None = None,
        on_reload: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        """`on_reload` is told the result of every reload, failed ones included (the audit log)."""
        self.cfg = cfg
        self.on_reload = on_reload
        self.pipeline = pipeline
        self.rules = rules
        self.config_loader = config_loader
        self.sensor = sensor
        self._lock = threading.Lock()
        self.reloads = Counter({"ok": 0, "failed": 0})
        #: the last reload: ok, time, rules_active, error (when it failed), notes
        self.last: dict[str, Any] | None = None
        self._retired_events: Counter[str] = Counter()
        self._retired_eval_errors = 0
        self._retired_fallbacks = 0

    @property
    def engine(self) -> Engine:
        """The engine the pipeline runs now."""
        return self.pipeline.engine

    def reload(self) -> dict[str, Any]:
        """Load, compile and swap in the rules; the result (also kept in `last`). ReloadError on
        failure, with the running rules kept."""
        with self._lock:
            started = time.time_ns()
            before = self.engine.active_rules
            try:
                cfg = self.cfg
                if self.config_loader is not None:
                    cfg = cfg.model_copy(update={"engine": self.config_loader().engine})
                engine, notes = build_engine(cfg, self.rules, cache_dir=node_cache_dir(cfg))
            except StockadeError as e:
                self.reloads["failed"] += 1
                errors = [str(p) for p in getattr(e, "problems", ()) if p.level == "error"] or [str(e)]
                kept = ErrorLog("rules reload", policy="first")
                for msg in errors:
                    kept.report(msg)
                self.last = {
                    "ok": False,
                    "time": format_time_ns(started),
                    "error": str(e),
                    "errors": kept.errors,
                    "rules_active": before,
                }
                self._told(self.last)
                raise ReloadError(f"the running rules are kept: {e}", errors) from e
            notes += self._sensor_notes(engine)
            if self.sensor is not None:
                self.sensor.set_interest(InterestPlan())  # nothing dropped by path while swapping
            old = self.pipeline.swap_engine(engine)
            if self.sensor is not None:
                self.sensor.refilter()
            self.cfg = cfg
            st = old.stats
            self._retired_events.update(st.events)
            self._retired_eval_errors += st.eval_errors
            self._retired_fallbacks += st.fallbacks
            self.reloads["ok"] += 1
            self.last = {
                "ok": True,
                "time": format_time_ns(started),
                "rules_active": engine.active_rules,
                "rules_active_before": before,
                "rules_loaded": len(engine.ruleset.rules),
                "notes": notes,
            }
            self._told(self.last)
            return self.last

    def _told(self, result: dict[str, Any]) -> None:
        if self.on_reload is not None:
            self.on_reload(result)

    def _sensor_notes(self, engine: Engine) -> list[str]:
        s = self.sensor
        if s is None:
            return []
        from stockade.runtime.sensing import PROCESS_EVTTYPES

        notes = []
        following = s.needed
        need = engine.evttypes("syscall")
        if following is not None and (need is None or not need <= following | PROCESS_EVTTYPES):
            more = "all event types" if need is None else ", ".join(sorted(need - following))
            notes.append(
                f"the sensor follows the event types it started with; not followed until a restart: {more}"
            )
        dropping = s.drop_failed
        if dropping:
            kept = dropping - failed_droppable(engine.conditions("syscall"), dropping)
            if kept:
                notes.append(
                    "the kernel prefilter drops failed calls the new rules may match until a restart: "
                    + ", ".join(sorted(kept))
                )
        return notes

    def counters(self) -> dict[str, Any]:
        """Engine counters since start, over every engine this pipeline ran."""
        st = self.engine.stats
        return {
            "events": self._retired_events + Counter(st.events),
            "eval_errors": self._retired_eval_errors + st.eval_errors,
            "fallbacks": self._retired_fallbacks + st.fallbacks,
        }

    def status(self) -> dict[str, Any]:
        """Reload counts and the last reload's result, for status."""
        return {"reloads": dict(self.reloads), "last_reload": self.last}


def hangup(who: str, sinks: Sequence[Sink], reloader: RulesReloader, say: Callable[[str], None]) -> None:
    """What SIGHUP does: reopen the file sinks (after logrotate moved their files), then reload the
    rules; each step said in one line (a failed reload is said, not raised: the old rules run on)."""
    from stockade.sinks.build import reopen_all

    reopen_all(sinks)
    reopened = sum(1 for s in sinks if callable(getattr(s, "reopen", None)))
    say(f"{who}: SIGHUP: reopened {reopened} file sinks; reloading the rules")
    try:
        r = reloader.reload()
    except ReloadError as e:
        say(f"{who}: SIGHUP: rules reload failed, {e}")
        return
    line = f"rules reloaded: {r['rules_active']} rules active (before: {r['rules_active_before']})"
    say(f"{who}: SIGHUP: " + "; ".join([line, *r["notes"]]))
