"""Sequence rules: steps on the same container or process tree within a time window, in order
(or, with ``ordered: false``, in any order).

Falco cannot express "a shell, then a download tool, then an outbound connection in the same
container within 60s" (falcosecurity/rules#196). A sequence rule's steps are compiled like rule
conditions; this tracker keeps, per rule and per key (the `by` field's value, or the process tree),
how far the sequence has got. Memory is bounded: at most `max_partial` partial sequences are kept
(oldest evicted first, counted in `evicted`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from stockade.model.fields import syscall_value

PROCESS_TREE = "process_tree"


@dataclass(slots=True)
class Partial:
    """A sequence begun and not yet completed: when it began and the steps matched so far."""

    start_ns: int
    next_step: int
    #: (step index, event data, event id) of each step matched so far
    steps: list[tuple[int, dict[str, Any], str | None]] = field(default_factory=list)
    #: for process_tree sequences: the pids that belong to the tree
    pids: set[Any] = field(default_factory=set)
    #: the steps done (an unordered sequence may do them in any order)
    done: set[int] = field(default_factory=set)

    def step_for(self, step_hits: set[int], ordered: bool) -> int | None:
        """Which step this event advances, or None."""
        if ordered:
            return self.next_step if self.next_step in step_hits else None
        todo = step_hits - self.done
        return min(todo) if todo else None

    def advance(self, k: int, data: dict[str, Any], event_id: str | None, nsteps: int) -> bool:
        """Record step `k`; whether the sequence is complete."""
        self.steps.append((k, data, event_id))
        self.done.add(k)
        self.next_step += 1
        return len(self.done) == nsteps


@dataclass(slots=True)
class SequenceSpec:
    """One sequence rule as the tracker needs it: its key field, window, steps and order."""

    by: str
    within_ns: int
    nsteps: int
    ordered: bool = True

    def first_step(self, step_hits: set[int]) -> int | None:
        """The step an event starts a sequence with, or None."""
        if self.ordered:
            return 0 if 0 in step_hits else None
        return min(step_hits) if step_hits else None


def _pid_chain(data: dict[str, Any]) -> list[Any]:
    """The pid of the process and of its ancestors, as far as the event knows them."""
    out = []
    for key in ("proc.pid", "proc.ppid"):
        v = data.get(key)
        if v is not None:
            out.append(v)
    anc = syscall_value(data, "proc.apid")
    if isinstance(anc, list):
        out.extend(anc)
    return out


class SequenceTracker:
    """How far each sequence rule has got, per key (bounded; counts what expired or was evicted)."""

    def __init__(self, specs: list[SequenceSpec], max_partial: int = 100_000) -> None:
        self.specs = specs
        self.max_partial = max_partial
        self.partials: OrderedDict[tuple[int, Any], Partial] = OrderedDict()
        self.evicted = 0
        self.expired = 0

    def _key(self, spec: SequenceSpec, data: dict[str, Any]) -> Any:
        if spec.by == PROCESS_TREE:
            return None
        return syscall_value(data, spec.by)

    def observe(
        self, spec_pos: int, step_hits: set[int], data: dict[str, Any], time_ns: int, event_id: str | None
    ) -> Partial | None:
        """Feed the steps of sequence `spec_pos` that this event matched; return a completed one."""
        spec = self.specs[spec_pos]
        if spec.by == PROCESS_TREE:
            return self._observe_tree(spec_pos, spec, step_hits, data, time_ns, event_id)
        key = self._key(spec, data)
        if key is None:
            return None
        k = (spec_pos, key)
        p = self.partials.get(k)
        if p is not None and time_ns - p.start_ns > spec.within_ns:
            del self.partials[k]
            self.expired += 1
            p = None
        if p is not None:
            step = p.step_for(step_hits, spec.ordered)
            if step is None:
                return None
            self.partials.move_to_end(k)
            if p.advance(step, data, event_id, spec.nsteps):
                del self.partials[k]
                return p
            return None
        first = spec.first_step(step_hits)
        if first is not None:
            self._put(k, Partial(time_ns, 1, [(first, data, event_id)], done={first}))
        return None

    def _observe_tree(
        self,
        spec_pos: int,
        spec: SequenceSpec,
        step_hits: set[int],
        data: dict[str, Any],
        time_ns: int,
        event_id: str | None,
    ) -> Partial | None:
        chain = _pid_chain(data)
        pid = data.get("proc.pid")
        for k in [k for k in self.partials if k[0] == spec_pos]:
            p = self.partials[k]
            if time_ns - p.start_ns > spec.within_ns:
                del self.partials[k]
                self.expired += 1
                continue
            step = p.step_for(step_hits, spec.ordered)
            if step is not None and any(x in p.pids for x in chain):
                if pid is not None:
                    p.pids.add(pid)
                if p.advance(step, data, event_id, spec.nsteps):
                    del self.partials[k]
                    return p
                return None
        first = spec.first_step(step_hits)
        if first is not None and pid is not None:
            self._put(
                (spec_pos, ("tree", pid, time_ns)),
                Partial(time_ns, 1, [(first, data, event_id)], {pid}, {first}),
            )
        return None

    def _put(self, k: tuple[int, Any], p: Partial) -> None:
        self.partials[k] = p
        if len(self.partials) > self.max_partial:
            self.partials.popitem(last=False)
            self.evicted += 1
