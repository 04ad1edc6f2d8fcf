"""What changed between two WorkloadPolicies: rules added, removed, changed, per section.

:func:`diff_policies` compares two policies (``a`` the old, ``b`` the new):

* the policy's own settings (``metadata.name``, labels, annotations, ``spec.workload``,
  ``spec.action``), field by field;
* each rule section (process, file, network, privileged): rules are paired by name first (same
  name, other content: *changed*, with the fields that differ), then the rules left are paired by
  content (same rule under another name: *renamed*); what is left of ``a`` was *removed*, of ``b``
  *added*. Rule order is not compared: it changes no decision (blocks are checked before allows
  whatever their place), only which of two matching rules of one action a verdict names;
* ``spec.syscalls``: names added and removed, or the list appearing (restricted) or going away.

:class:`PolicyDiff` renders as text in the manner of a unified diff (``-`` old, ``+`` new, a
``@@ section @@`` line per section, each rule on one line as canonical flow YAML) and as JSON
(:meth:`PolicyDiff.to_dict`). It is empty when the policies decide and read the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from stockade.policy.load import SECTIONS, rule_to_dict
from stockade.policy.model import WorkloadPolicy

__all__ = ["FieldChange", "PolicyDiff", "RuleChange", "diff_policies"]

ChangeKind = Literal["added", "removed", "changed", "renamed"]


@dataclass(frozen=True, slots=True)
class FieldChange:
    """A policy setting that differs: its dotted name, the old and the new value (None: absent)."""

    field: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class RuleChange:
    """One rule added, removed, changed (same name) or renamed (same content)."""

    section: str
    kind: ChangeKind
    name: str
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None
    #: the fields that differ (changed: content fields; renamed: ["name"])
    fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "section": self.section,
            "kind": self.kind,
            "name": self.name,
            "old": self.old,
            "new": self.new,
            "fields": list(self.fields),
        }


@dataclass(slots=True)
class PolicyDiff:
    """The differences between policy `a` and policy `b` (module docstring)."""

    a: str
    b: str
    settings: list[FieldChange] = field(default_factory=list)
    rules: list[RuleChange] = field(default_factory=list)
    syscalls_added: list[str] = field(default_factory=list)
    syscalls_removed: list[str] = field(default_factory=list)
    #: the syscall list appears (None -> list) or goes away (list -> None)
    syscalls_restricted: tuple[bool, bool] = (False, False)

    @property
    def empty(self) -> bool:
        """Whether the two policies are the same."""
        return not (
            self.settings
            or self.rules
            or self.syscalls_added
            or self.syscalls_removed
            or self.syscalls_restricted[0] != self.syscalls_restricted[1]
        )

    def __bool__(self) -> bool:
        return not self.empty

    def counts(self) -> dict[str, int]:
        """How many rules were added, removed, changed and renamed."""
        out = {"added": 0, "removed": 0, "changed": 0, "renamed": 0}
        for r in self.rules:
            out[r.kind] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``equal``, ``settings``, ``rules``, ``syscalls``, ``counts``."""
        return {
            "a": self.a,
            "b": self.b,
            "equal": self.empty,
            "settings": [{"field": c.field, "old": c.old, "new": c.new} for c in self.settings],
            "rules": [r.to_dict() for r in self.rules],
            "syscalls": {
                "added": self.syscalls_added,
                "removed": self.syscalls_removed,
                "restricted": {"old": self.syscalls_restricted[0], "new": self.syscalls_restricted[1]},
            },
            "counts": self.counts(),
        }

    def render(self, a_label: str | None = None, b_label: str | None = None) -> str:
        """The differences as text, unified-diff style; "" when there are none."""
        if self.empty:
            return ""
        lines = [f"--- {a_label or self.a}", f"+++ {b_label or self.b}"]
        if self.settings:
            lines.append("@@ settings @@")
            for c in self.settings:
                if c.old is not None:
                    lines.append(f"-{c.field}: {_flow(c.old)}")
                if c.new is not None:
                    lines.append(f"+{c.field}: {_flow(c.new)}")
        for section in SECTIONS:
            changes = [r for r in self.rules if r.section == section]
            if changes:
                lines.append(f"@@ spec.{section} @@")
                lines.extend(_rule_lines(r) for r in changes)
        lines.extend(self._syscall_lines())
        return "\n".join(lines) + "\n"

    def _syscall_lines(self) -> list[str]:
        old, new = self.syscalls_restricted
        if not (self.syscalls_added or self.syscalls_removed or old != new):
            return []
        lines = ["@@ spec.syscalls @@"]
        if old != new:
            lines.append("-(not restricted)" if new else "+(not restricted)")
        lines.extend(f"-{s}" for s in self.syscalls_removed)
        lines.extend(f"+{s}" for s in self.syscalls_added)
        return lines


def _flow(value: Any) -> str:
    """A value as one line of YAML."""
    text: str = yaml.safe_dump(value, default_flow_style=True, width=1 << 16, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _rule_lines(r: RuleChange) -> str:
    out = []
    if r.old is not None:
        out.append(f"-{_flow(r.old)}")
    if r.new is not None:
        out.append(f"+{_flow(r.new)}")
    return "\n".join(out)


def _settings(a: WorkloadPolicy, b: WorkloadPolicy) -> list[FieldChange]:
    pairs = [
        ("metadata.name", a.metadata.name, b.metadata.name),
        ("spec.workload", a.spec.workload, b.spec.workload),
        ("spec.action", a.spec.action, b.spec.action),
    ]
    out = [FieldChange(f, x, y) for f, x, y in pairs if x != y]
    for key in ("labels", "annotations"):
        old, new = getattr(a.metadata, key), getattr(b.metadata, key)
        for k in sorted(set(old) | set(new)):
            if old.get(k) != new.get(k):
                out.append(FieldChange(f"metadata.{key}.{k}", old.get(k), new.get(k)))
    return out


def _content(rule: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A rule's content without its name, hashable (lists as tuples, mappings as sorted items)."""
    return tuple(sorted((k, _frozen(v)) for k, v in rule.items() if k != "name"))


def _frozen(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _frozen(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_frozen(x) for x in v)
    return v


def _named(rules: list[Any], section: str) -> dict[str, dict[str, Any]]:
    """Rules by name (an unnamed one by its place, as loading names it)."""
    out = {}
    for i, r in enumerate(rules):
        d = dict(rule_to_dict(r))
        d.setdefault("name", f"{section}-{i + 1}")
        out[d["name"]] = d
    return out


def _section(section: str, old_rules: list[Any], new_rules: list[Any]) -> list[RuleChange]:
    old, new = _named(old_rules, section), _named(new_rules, section)
    out: list[RuleChange] = []
    for name in [n for n in old if n in new]:
        x, y = old.pop(name), new.pop(name)
        if x != y:
            fields = tuple(k for k in dict.fromkeys([*x, *y]) if x.get(k) != y.get(k))
            out.append(RuleChange(section, "changed", name, x, y, fields))
    by_content: dict[Any, list[str]] = {}
    for name, d in new.items():
        by_content.setdefault(_content(d), []).append(name)
    for name, x in list(old.items()):
        candidates = by_content.get(_content(x))
        if candidates:
            y = new.pop(candidates.pop(0))
            del old[name]
            out.append(RuleChange(section, "renamed", y["name"], x, y, ("name",)))
    out.extend(RuleChange(section, "removed", n, x, None) for n, x in old.items())
    out.extend(RuleChange(section, "added", n, None, y) for n, y in new.items())
    return out


def diff_policies(a: WorkloadPolicy, b: WorkloadPolicy) -> PolicyDiff:
    """What changed from policy `a` to policy `b` (module docstring)."""
    d = PolicyDiff(a.metadata.name, b.metadata.name, settings=_settings(a, b))
    for section in SECTIONS:
        d.rules.extend(_section(section, getattr(a.spec, section), getattr(b.spec, section)))
    old, new = a.spec.syscalls, b.spec.syscalls
    d.syscalls_restricted = (old is not None, new is not None)
    d.syscalls_removed = sorted(set(old or ()) - set(new or ()))
    d.syscalls_added = sorted(set(new or ()) - set(old or ()))
    return d
