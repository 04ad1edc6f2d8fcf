"""The catalogue of checks and how it runs.

A check is a function from one object (and the :class:`Context` of the whole scan) to the
:class:`Violation` s it finds, registered with :func:`check` together with what users filter and
read it by: id, severity, title, description, remediation, a fix snippet, the Pod Security
Standards controls it implements (``pss:baseline:privileged`` ...), whether it is NSA/CISA
guidance, and its CIS Kubernetes benchmark items. A check applies to the kinds it names, or with
``kinds=WORKLOADS`` to every object with a pod template (:func:`stockade.k8s.objects.pod_template`).

:func:`evaluate` runs the chosen checks over objects and returns the findings, sorted by file,
line and check. A check that raises on a strange object is a bug: it is recorded in
:attr:`Context.errors` (check, object, error) and the scan goes on.

``--standard`` names: ``pss-baseline`` (checks with a baseline control), ``pss-restricted`` (the
restricted profile, which includes the baseline), ``nsa``, ``cis`` and ``all``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from stockade.errors import UsageError
from stockade.k8s.finding import K8sFinding, dotted
from stockade.k8s.objects import POD_TEMPLATE_PATHS, K8sObject, Path

__all__ = [
    "PSS_CONTROLS",
    "SEVERITIES",
    "STANDARDS",
    "WORKLOADS",
    "Check",
    "CheckFn",
    "Context",
    "Violation",
    "all_checks",
    "check",
    "evaluate",
    "get_check",
    "select",
]

SEVERITIES: Final = ("CRITICAL", "HIGH", "MEDIUM", "LOW")

#: every Pod Security Standards control id a check may name
PSS_CONTROLS: Final = (
    "pss:baseline:host-process",
    "pss:baseline:host-namespaces",
    "pss:baseline:privileged",
    "pss:baseline:capabilities",
    "pss:baseline:host-path",
    "pss:baseline:host-ports",
    "pss:baseline:apparmor",
    "pss:baseline:selinux",
    "pss:baseline:proc-mount",
    "pss:baseline:seccomp",
    "pss:baseline:sysctls",
    # not in the list: the baseline control Kubernetes 1.34 added (probes and lifecycle
    # hooks may not name a host); an extension id of the same form
    "pss:baseline:host-probes",
    "pss:restricted:volume-types",
    "pss:restricted:privilege-escalation",
    "pss:restricted:run-as-non-root",
    "pss:restricted:run-as-user",
    "pss:restricted:seccomp",
    "pss:restricted:capabilities",
)

STANDARDS: Final = ("pss-baseline", "pss-restricted", "nsa", "cis", "all")

#: ``kinds=WORKLOADS``: every kind with a pod template
WORKLOADS: Final = frozenset(POD_TEMPLATE_PATHS)


@dataclass(frozen=True, slots=True)
class Violation:
    """What a check found wrong: a one-line message and the path of the offending field."""

    message: str
    path: Path = ()


@dataclass(slots=True)
class Context:
    """The scan around one object: every object scanned (for checks over the whole set, such as
    NetworkPolicy coverage), whether that set is the whole picture (False at admission: such
    checks then stay silent), and the errors of checks that raised."""

    objects: Sequence[K8sObject] = ()
    complete: bool = True
    errors: list[tuple[str, K8sObject, str]] = field(default_factory=list)
    cache: dict[str, object] = field(default_factory=dict)  # per-scan indexes checks may build


CheckFn = Callable[[K8sObject, Context], Iterable[Violation]]


@dataclass(frozen=True, slots=True)
class Check:
    """One check of the catalogue."""

    id: str
    severity: str
    title: str
    description: str
    remediation: str
    fix: str  # a YAML snippet that passes
    kinds: frozenset[str]
    fn: CheckFn
    controls: tuple[str, ...] = ()  # PSS control ids
    nsa: bool = False
    cis: tuple[str, ...] = ()  # CIS Kubernetes benchmark items ("5.2.2")
    needs_all: bool = False  # looks at the whole object set (Context.complete)

    @property
    def standards(self) -> frozenset[str]:
        """The ``--standard`` names that select this check (besides ``all``)."""
        s = {"all"}
        if any(c.startswith("pss:baseline:") for c in self.controls):
            s |= {"pss-baseline", "pss-restricted"}
        if any(c.startswith("pss:restricted:") for c in self.controls):
            s.add("pss-restricted")
        if self.nsa:
            s.add("nsa")
        if self.cis:
            s.add("cis")
        return frozenset(s)

    def applies_to(self, obj: K8sObject) -> bool:
        """Whether the check looks at objects of this kind."""
        return obj.kind in self.kinds


_REGISTRY: dict[str, Check] = {}
_loaded = False


def check(
    id: str,
    *,
    severity: str,
    title: str,
    description: str,
    remediation: str,
    fix: str,
    kinds: Iterable[str] = WORKLOADS,
    controls: Sequence[str] = (),
    nsa: bool = False,
    cis: Sequence[str] = (),
    needs_all: bool = False,
) -> Callable[[CheckFn], CheckFn]:
    """Register the decorated function as check `id` (ids are unique; controls must be known)."""
    if severity not in SEVERITIES:
        raise ValueError(f"check {id}: severity {severity!r} is not one of {SEVERITIES}")
    unknown = [c for c in controls if c not in PSS_CONTROLS]
    if unknown:
        raise ValueError(f"check {id}: unknown PSS control(s) {unknown}")

    def register(fn: CheckFn) -> CheckFn:
        if id in _REGISTRY:
            raise ValueError(f"check {id} is registered twice")
        _REGISTRY[id] = Check(
            id, severity, title, description, remediation, fix, frozenset(kinds), fn,
            tuple(controls), nsa, tuple(cis), needs_all,
        )  # fmt: skip
        return fn

    return register


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import stockade.k8s.checks as pkg

        for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)):
            importlib.import_module(f"{pkg.__name__}.{mod}")


def all_checks() -> list[Check]:
    """Every check of the catalogue, by id."""
    _load()
    return sorted(_REGISTRY.values(), key=lambda c: c.id)


def get_check(check_id: str) -> Check:
    """The check `check_id` (a UsageError naming the id when unknown)."""
    _load()
    try:
        return _REGISTRY[check_id]
    except KeyError:
        raise UsageError(f"no check {check_id!r} (`stockade k8s checks` lists them)") from None


def select(
    standard: str = "all",
    severities: Iterable[str] | None = None,
    ids: Iterable[str] | None = None,
) -> list[Check]:
    """The checks of `standard`, of the `severities` given (all when None), or exactly `ids`."""
    if standard not in STANDARDS:
        raise UsageError(f"--standard {standard!r}: one of {', '.join(STANDARDS)}")
    chosen = [get_check(i) for i in ids] if ids is not None else all_checks()
    sev = frozenset(severities) if severities is not None else None
    return [c for c in chosen if standard in c.standards and (sev is None or c.severity in sev)]


def evaluate(
    objects: Sequence[K8sObject],
    checks: Sequence[Check] | None = None,
    context: Context | None = None,
) -> list[K8sFinding]:
    """The findings of `checks` (the whole catalogue by default) over `objects`."""
    ctx = context if context is not None else Context(objects)
    found: list[K8sFinding] = []
    for c in all_checks() if checks is None else checks:
        if c.needs_all and not ctx.complete:
            continue
        for obj in objects:
            if not c.applies_to(obj):
                continue
            try:
                violations = list(c.fn(obj, ctx))
            except Exception as e:  # a check that cannot take this object: recorded, scan goes on
                ctx.errors.append((c.id, obj, f"{type(e).__name__}: {e}"))
                continue
            for v in violations:
                found.append(
                    K8sFinding(
                        c.id,
                        c.severity,
                        c.controls,
                        obj.kind,
                        obj.namespace,
                        obj.name,
                        obj.file,
                        obj.line_of(v.path),
                        v.message,
                        c.remediation,
                        c.title,
                        dotted(v.path),
                    )
                )
    found.sort(key=lambda f: (f.file or "", f.line or 0, f.check, f.field))
    return found
