"""The detection engine: compiled rules indexed by source and event type, producing alerts."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockade.behavior.workload import workload_of_event
from stockade.engine.append_output import AppendOutput, ExtraFields, extra_for
from stockade.engine.sequence import SequenceSpec, SequenceTracker
from stockade.errors import Location
from stockade.model.alert import Alert, priority_rank
from stockade.model.choices import check_rule_matching
from stockade.model.errorlog import ErrorLog
from stockade.model.event import Event
from stockade.model.timeutil import event_time_ns, format_time_ns
from stockade.rules import interp
from stockade.rules.ast import Node
from stockade.rules.compiler import CompiledSet, Entry, compile_entries, compiled_from_state
from stockade.rules.loader import load_rules
from stockade.rules.output import OutputFormat, OutputFormatError, compile_output
from stockade.rules.ruleset import Problem, RuleDef, RuleLoadError, Ruleset

_EMPTY: list[Alert] = []
#: one event's data (and its Event, when there is one) -> its alerts
_Run = Callable[[dict[str, Any], Event | None], list[Alert]]
#: many events' data -> (index, alerts) of those that alerted
_RunBatch = Callable[[list[dict[str, Any]]], list[tuple[int, list[Alert]]]]


@dataclass(slots=True)
class EngineStats:
    """What the engine counted: events per source, alerts per rule, fallbacks, evaluation errors."""

    events: Counter[str] = field(default_factory=Counter)  # per source
    alerts: Counter[str] = field(default_factory=Counter)  # per rule
    #: events on which compiled code raised and the reference interpreter was used instead
    fallbacks: int = 0
    #: sequences begun but not completed: their window passed (expired), or more were open at once
    #: than the engine keeps (evicted, the oldest first)
    sequences_expired: int = 0
    sequences_evicted: int = 0
    #: what the interpreter could not evaluate either (the rule or step is skipped for that event):
    #: every one counted, the first kept ("rule 'X': TypeError: ...")
    problems: ErrorLog = field(default_factory=lambda: ErrorLog("engine", policy="first"))

    @property
    def eval_errors(self) -> int:
        """Rules and sequence steps the interpreter could not evaluate on an event."""
        return self.problems.total

    @property
    def last_errors(self) -> list[str]:
        """The first evaluation errors, with the rule each was in."""
        return self.problems.errors

    def to_dict(self) -> dict[str, Any]:
        """The counters as status reports them."""
        return {
            "events": dict(self.events),
            "events_total": sum(self.events.values()),
            "alerts": dict(self.alerts),
            "alerts_total": sum(self.alerts.values()),
            "fallbacks": self.fallbacks,
            "sequences_expired": self.sequences_expired,
            "sequences_evicted": self.sequences_evicted,
            "eval_errors": self.eval_errors,
            "last_errors": list(self.last_errors),
        }


@dataclass(slots=True)
class _Rule:
    d: RuleDef
    fmt: OutputFormat
    tags: list[str]
    extra: ExtraFields | None = None


class _SourceRules:
    """The compiled rules and sequence steps of one source."""

    def __init__(
        self, source: str, rules: list[_Rule], mode: str, states: tuple[Any, Any] | None = None
    ) -> None:
        """`states`: the :meth:`CompiledSet.state` of the rules and of the sequence steps, from a
        cache (see :mod:`stockade.engine.cache`), instead of compiling them."""
        self.source = source
        self.rules = [r for r in rules if r.d.sequence is None]
        self.seqs = [r for r in rules if r.d.sequence is not None]
        self.mode = mode
        self.compiled: CompiledSet | None = None
        if states is not None and states[0] is not None:
            self.compiled = compiled_from_state(states[0])
        elif self.rules:
            entries = [Entry(r.d.ast, r.d.evttypes, r.d.evttypes_excluded) for r in self.rules]  # type: ignore[arg-type]
            self.compiled = compile_entries(entries, mode)
        # every step of every sequence is an entry; evaluated in "all" mode
        self.step_owner: list[tuple[int, int]] = []  # entry index -> (sequence position, step)
        step_entries: list[Entry] = []
        specs: list[SequenceSpec] = []
        from stockade.rules.evttypes import rule_evttypes

        for si, r in enumerate(self.seqs):
            seq = r.d.sequence
            assert seq is not None
            specs.append(SequenceSpec(seq.by, int(seq.within_s * 1e9), len(seq.steps), seq.ordered))
            for k, st in enumerate(seq.steps):
                assert st.ast is not None
                types, excluded = rule_evttypes(st.ast).as_sets()
                step_entries.append(Entry(st.ast, types, excluded))
                self.step_owner.append((si, k))
        self.steps: CompiledSet | None = None
        if states is not None and states[1] is not None:
            self.steps = compiled_from_state(states[1])
        elif step_entries:
            self.steps = compile_entries(step_entries, "all")
        #: evt.type -> step function, None where no step can match (the event skips sequences)
        self.step_table: dict[Any, Any] | None = None
        self.step_other: Any = None
        if self.steps is not None:
            sc = self.steps

            def live(fn: Any) -> Any:
                return None if fn in sc.empty else fn

            if source == "syscall":
                self.step_table = {t: live(f) for t, f in sc.by_type.items()} | {None: live(sc.untyped)}
                self.step_other = live(sc.other)
            else:
                self.step_table = {}
                self.step_other = live(sc.untyped)
        self.tracker = SequenceTracker(specs)
        self.typed = source == "syscall"
        self.first = mode == "first"
        #: events seen
        self.n = 0
        #: evt.type -> bucket function (None -> events without evt.type); `other` for the rest
        self.table: dict[Any, Any] | None = None
        self.other: Any = None
        if self.compiled is not None:
            if self.typed:
                self.table = {**self.compiled.by_type, None: self.compiled.untyped}
                self.other = self.compiled.other
            else:
                self.table = {}
                self.other = self.compiled.untyped


class Engine:
    """Evaluates rules on events.

    >>> engine = Engine.from_files(["rules.yaml"], rule_matching="first")
    >>> alerts = engine.process(event)
    """

    def __init__(
        self,
        ruleset: Ruleset,
        *,
        rule_matching: str = "first",
        hostname: str | None = None,
        min_priority: str | None = None,
        disabled_rules: Iterable[str] = (),
        disabled_tags: Iterable[str] = (),
        append_output: Sequence[AppendOutput] = (),
        compiled: dict[str, tuple[Any, Any]] | None = None,
    ) -> None:
        """`compiled`: what :meth:`compiled_states` gave for the same ruleset and options (from
        :mod:`stockade.engine.cache`): the rules are not compiled again."""
        self.ruleset = ruleset
        self.rule_matching = check_rule_matching(rule_matching, "rule_matching")
        self.hostname = hostname or socket.gethostname()
        self._stats = EngineStats()
        self.problems: list[Problem] = list(ruleset.problems)
        disabled = set(disabled_rules)
        dtags = set(disabled_tags)
        max_rank = priority_rank(min_priority) if min_priority else 99
        self._active: dict[str, _Rule] = {}
        by_source: dict[str, list[_Rule]] = {}
        fmt_errors: list[Problem] = []
        for r in sorted(ruleset.rules.values(), key=lambda r: r.index):
            runnable = r.ast is not None or (
                r.sequence is not None and all(s.ast is not None for s in r.sequence.steps)
            )
            if not runnable or not r.enabled or r.name in disabled or dtags & set(r.tags):
                continue
            if priority_rank(r.priority) > max_rank:
                continue
            try:
                more, extra = extra_for(append_output, r.name, r.source, r.tags)
                fmt = compile_output(f"{r.output} {more}" if more else r.output, r.source)
            except OutputFormatError as e:
                fmt_errors.append(Problem("error", "LOAD_ERR_COMPILE_OUTPUT", str(e), r.location))
                continue
            rule = _Rule(r, fmt, list(r.tags), extra)
            self._active[r.name] = rule
            by_source.setdefault(r.source, []).append(rule)
        if fmt_errors:
            self.problems.extend(fmt_errors)
            raise RuleLoadError(self.problems)
        self._sources = {
            src: _SourceRules(src, rules, rule_matching, compiled.get(src) if compiled else None)
            for src, rules in by_source.items()
        }
        self._runners = {src: self._runner(sr) for src, sr in self._sources.items()}
        self._batch_runners = {
            src: self._batch_runner(sr)
            if sr.other is not None or sr.step_table is not None
            else _count_only(sr)
            for src, sr in self._sources.items()
        }

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str | Any],
        *,
        rule_matching: str = "first",
        hostname: str | None = None,
        min_priority: str | None = None,
        disabled_rules: Iterable[str] = (),
        disabled_tags: Iterable[str] = (),
        append_output: Sequence[AppendOutput] = (),
    ) -> Engine:
        """Load rules files in order (one ruleset); raises RuleLoadError listing every error."""
        rs = load_rules([str(p) if not isinstance(p, tuple) else p for p in paths])
        return cls(
            rs,
            rule_matching=rule_matching,
            hostname=hostname,
            min_priority=min_priority,
            disabled_rules=disabled_rules,
            disabled_tags=disabled_tags,
            append_output=append_output,
        )

    def compiled_states(self) -> dict[str, tuple[Any, Any]]:
        """Per source, the :meth:`CompiledSet.state` of its rules and of its sequence steps."""
        return {
            src: (
                sr.compiled.state() if sr.compiled is not None else None,
                sr.steps.state() if sr.steps is not None else None,
            )
            for src, sr in self._sources.items()
        }

    @property
    def stats(self) -> EngineStats:
        """The engine's counters, up to date."""
        st = self._stats
        for src, sr in self._sources.items():
            st.events[src] = sr.n
        st.sequences_expired = sum(sr.tracker.expired for sr in self._sources.values())
        st.sequences_evicted = sum(sr.tracker.evicted for sr in self._sources.values())
        return st

    # -- evaluation -----------------------------------------------------------------------------
    def process(self, event: Event) -> list[Alert]:
        """Evaluate one event; its alerts (none: an empty list, shared, not to be changed)."""
        run = self._runners.get(event.source)
        if run is None:
            self._stats.events[event.source] += 1
            return _EMPTY
        return run(event.data, event)

    def runners(self) -> dict[str, _Run]:
        """Per source with rules, what :meth:`process` calls for one event: ``run(data, event)``
        (a caller evaluating many events skips the lookup; a source not here goes to process())."""
        return dict(self._runners)

    def process_data(self, source: str, data: dict[str, Any], event: Event | None = None) -> list[Alert]:
        """Evaluate one event's data."""
        run = self._runners.get(source)
        if run is None:
            self._stats.events[source] += 1
            return _EMPTY
        return run(data, event)

    def process_batch(self, source: str, datas: list[dict[str, Any]]) -> list[tuple[int, list[Alert]]]:
        """Evaluate many events' data of one source, in order: ``(index in datas, alerts)`` for each
        event that raised alerts. The same alerts as :meth:`process_data` on each, without an
        :class:`Event` (so without event ids): the caller wraps the few that alerted."""
        run = self._batch_runners.get(source)
        if run is None:
            self._stats.events[source] += len(datas)
            return []
        return run(datas)

    def _hot_locals(self, sr: _SourceRules) -> tuple[Any, ...]:
        """What the runners close over, in this order: the rules' bucket lookup (``get(evt.type,
        other)``) and `other`, first-match, the rules, the sequence steps' bucket lookup and
        `other`, whether there are steps, and the engine's alert, fallback and steps methods."""
        bucket = sr.table.get if sr.table is not None else {}.get
        step_bucket = sr.step_table.get if sr.step_table is not None else {}.get
        has_steps = sr.step_table is not None
        rules = (bucket, sr.other, sr.first, sr.rules)
        return (*rules, step_bucket, sr.step_other, has_steps, self._alert, self._fallback, self._steps)

    # The two runners are the hot path: their loop bodies are the same code on purpose. A batch
    # runner that calls the one-event runner per event measured 5-13 % slower (benchmarks/, the
    # replay path), so they share their set-up (_hot_locals) and not their body.
    def _runner(self, sr: _SourceRules) -> _Run:
        """The hot path for one source, as a closure over everything it needs (no attribute lookups)."""
        bucket, other, first, rules, step_bucket, step_other, has_steps, alert, fallback, steps = (
            self._hot_locals(sr)
        )
        empty = _EMPTY

        def run(data: dict[str, Any], event: Event | None) -> list[Alert]:
            sr.n += 1
            out: list[Alert] | None = None
            if other is not None:
                fn = bucket(data.get("evt.type"), other)
                try:
                    res = fn(data)
                except Exception:
                    res = fallback(sr, data)
                if first:
                    if res >= 0:
                        out = [alert(rules[res], data, event)]
                elif res:
                    out = [alert(rules[i], data, event) for i in res]
            if has_steps:
                sfn = step_bucket(data.get("evt.type"), step_other)
                if sfn is not None:
                    seq_alerts = steps(sr, sfn, data, event)
                    if seq_alerts:
                        out = (out or []) + seq_alerts
            return out if out is not None else empty

        return run

    def _batch_runner(self, sr: _SourceRules) -> _RunBatch:
        """:meth:`_runner`'s loop over a list of events' data, in one frame (the replay's hot path)."""
        bucket, other, first, rules, step_bucket, step_other, has_steps, alert, fallback, steps = (
            self._hot_locals(sr)
        )

        def run_batch(datas: list[dict[str, Any]]) -> list[tuple[int, list[Alert]]]:
            sr.n += len(datas)
            hits: list[tuple[int, list[Alert]]] = []
            i = -1
            for data in datas:
                i += 1
                out: list[Alert] | None = None
                if other is not None:
                    fn = bucket(data.get("evt.type"), other)
                    try:
                        res = fn(data)
                    except Exception:
                        res = fallback(sr, data)
                    if first:
                        if res >= 0:
                            out = [alert(rules[res], data, None)]
                    elif res:
                        out = [alert(rules[j], data, None) for j in res]
                if has_steps:
                    sfn = step_bucket(data.get("evt.type"), step_other)
                    if sfn is not None:
                        seq_alerts = steps(sr, sfn, data, None)
                        if seq_alerts:
                            out = (out or []) + seq_alerts
                if out is not None:
                    hits.append((i, out))
            return hits

        return run_batch

    def _fallback(self, sr: _SourceRules, data: dict[str, Any]) -> Any:
        """Compiled code raised on this event: evaluate with the reference interpreter."""
        self._stats.fallbacks += 1
        hits = []
        for i, r in enumerate(sr.rules):
            try:
                ok = interp.evaluate(r.d.ast, data)  # type: ignore[arg-type]
            except Exception as e:
                self._stats.problems.report(f"rule '{r.d.name}': {type(e).__name__}: {e}")
                continue
            if ok:
                if sr.mode == "first":
                    return i
                hits.append(i)
        return -1 if sr.mode == "first" else hits

    def _steps(self, sr: _SourceRules, fn: Any, data: dict[str, Any], event: Event | None) -> list[Alert]:
        try:
            hits = fn(data)
        except Exception:
            self._stats.fallbacks += 1
            hits = []
            for i, (si, k) in enumerate(sr.step_owner):
                seq = sr.seqs[si].d.sequence
                try:
                    if seq is not None and interp.evaluate(seq.steps[k].ast, data):  # type: ignore[arg-type]
                        hits.append(i)
                except Exception as e:
                    name = sr.seqs[si].d.name
                    self._stats.problems.report(f"rule '{name}' step {k + 1}: {type(e).__name__}: {e}")
        if not hits:
            return _EMPTY
        per_seq: dict[int, set[int]] = {}
        for i in hits:
            si, k = sr.step_owner[i]
            per_seq.setdefault(si, set()).add(k)
        t = _time_ns(sr.source, data)
        eid = event.id if event is not None else None
        out = []
        for si, steps in per_seq.items():
            done = sr.tracker.observe(si, steps, data, t, eid)
            if done is not None:
                rule = sr.seqs[si]
                alert = self._alert(rule, data, event)
                alert.event_ids = [x for _, _, x in done.steps if x]
                alert.extra["sequence"] = [
                    {
                        "step": k + 1,
                        "time": format_time_ns(_time_ns(sr.source, d)),
                        "evt.type": d.get("evt.type"),
                        "proc.cmdline": interp.extractor("proc.cmdline", None)(d) if sr.typed else None,
                        "event_id": x,
                    }
                    for k, d, x in done.steps
                ]
                out.append(alert)
        return out

    def _alert(self, rule: _Rule, data: dict[str, Any], event: Event | None) -> Alert:
        d = rule.d
        self._stats.alerts[d.name] += 1
        t = _time_ns(d.source, data)
        text, fields = rule.fmt.render(data)
        if rule.extra is not None:
            text = rule.extra.add_to(fields, data, text)
        if d.source == "syscall":
            fields.setdefault("evt.time", t)
        output = f"{format_time_ns(t)[11:29]}: {d.priority} {text}"
        alert = Alert(
            time_ns=t,
            rule=d.name,
            priority=d.priority,
            output=output,
            output_fields=fields,
            source=d.source,
            tags=rule.tags,
            hostname=self.hostname,
            workload=workload_of(d.source, data),
        )
        if event is not None and event.id:
            alert.event_ids = [event.id]
        return alert

    # -- introspection ----------------------------------------------------------------------------
    def rules_info(self) -> list[dict[str, Any]]:
        """Every loaded rule as the API and `stockade rules list` show it, with its hits."""
        out = []
        for r in sorted(self.ruleset.rules.values(), key=lambda r: r.index):
            loc: Location | None = r.location
            out.append(
                {
                    "name": r.name,
                    "desc": r.desc,
                    "priority": r.priority,
                    "source": r.source,
                    "tags": list(r.tags),
                    "enabled": r.name in self._active,
                    "condition": r.condition,
                    "sequence": (
                        {
                            "by": r.sequence.by,
                            "within_s": r.sequence.within_s,
                            "steps": [s.condition for s in r.sequence.steps],
                        }
                        if r.sequence
                        else None
                    ),
                    "output": r.output,
                    "evttypes": sorted(r.evttypes) if r.evttypes is not None else None,
                    "file": loc.file if loc else None,
                    "line": loc.line if loc else None,
                    "hits": self._stats.alerts.get(r.name, 0),
                }
            )
        return out

    @property
    def active_rules(self) -> int:
        """How many rules are enabled and evaluated."""
        return len(self._active)

    def evttypes(self, source: str = "syscall") -> set[str] | None:
        """The event types the active rules of `source` need; None if some rule needs all of them."""
        need: set[str] = set()
        for r in self._active.values():
            if r.d.source != source:
                continue
            if r.d.evttypes is None:
                return None
            need |= r.d.evttypes
        return need

    def conditions(self, source: str = "syscall") -> list[Node]:
        """The resolved conditions the active rules of `source` evaluate: each rule's (exceptions
        folded in) and every step of each sequence rule."""
        out: list[Node] = []
        for r in self._active.values():
            if r.d.source != source:
                continue
            if r.d.sequence is not None:
                out.extend(s.ast for s in r.d.sequence.steps if s.ast is not None)
            elif r.d.ast is not None:
                out.append(r.d.ast)
        return out


def _count_only(sr: _SourceRules) -> _RunBatch:
    """The batch runner of a source without rules or sequences: it only counts."""

    def run_batch(datas: list[dict[str, Any]]) -> list[tuple[int, list[Alert]]]:
        sr.n += len(datas)
        return []

    return run_batch


def _time_ns(source: str, data: dict[str, Any]) -> int:
    """The event's time (:func:`event_time_ns`); the wall clock for an event that has none."""
    t = event_time_ns(data, source)
    return time.time_ns() if t is None else t


def workload_of(source: str, data: dict[str, Any]) -> str:
    """The workload an event is about: for syscall events the workload id
    (:mod:`stockade.behavior.workload`: ``k8s/<ns>/<kind>/<owner>``, ``container/<repo>/<name>``,
    ``host``); for audit events the object (``namespace/resource/name``) or ``cluster``."""
    if source == "k8s_audit":
        obj = data.get("objectRef")
        if isinstance(obj, dict):
            ns, name = obj.get("namespace"), obj.get("name")
            res = obj.get("resource")
            return "/".join(str(x) for x in (ns, res, name) if x)
        return "cluster"
    return workload_of_event(data).id
