"""What a loaded rules file set is made of: lists, macros, rules, sequence rules, and problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stockade.errors import Location, RuleError
from stockade.model.event import SOURCES as SOURCES  # the rule sources, re-exported
from stockade.rules.ast import Node

#: The Falco rules-engine version whose language this engine implements (required_engine_version).
ENGINE_VERSION = (0, 57, 0)
#: Plugins whose fields are built in: name -> version we claim (required_plugin_versions).
BUILTIN_PLUGINS = {
    "container": "0.4.0",
    "k8saudit": "0.18.0",
    "k8saudit-aks": "0.6.0",
    "k8saudit-eks": "0.12.0",
    "k8saudit-gke": "0.6.0",
    "k8saudit-ovh": "0.1.0",
    "json": "0.7.0",
}


@dataclass(slots=True)
class Problem:
    """One load error or warning, with where it is. `code` follows Falco's (LOAD_UNUSED_MACRO, ...)."""

    level: str  # "error" | "warning"
    code: str
    message: str
    location: Location | None = None

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        return f"{prefix}{self.level}: {self.message} [{self.code}]"

    def to_dict(self) -> dict[str, Any]:
        """The problem as JSON (`stockade rules lint --output json`)."""
        loc = self.location
        return {
            "level": self.level,
            "code": self.code,
            "message": self.message,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "item": loc.item if loc else None,
        }


class RuleLoadError(RuleError):
    """The ruleset has errors; `problems` holds every one of them (and the warnings)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.level == "error"]
        first = errors[0] if errors else None
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        super().__init__(
            (first.message + more) if first else "rules failed to load",
            first.location if first else None,
        )

    def __str__(self) -> str:
        errors = [p for p in self.problems if p.level == "error"]
        if not errors:
            return super().__str__()
        more = (
            f" (and {len(errors) - 1} more errors; `stockade rules lint` lists them)"
            if len(errors) > 1
            else ""
        )
        # the CLI says "error:" already: the first problem without its level
        first = errors[0]
        where = f"{first.location}: " if first.location else ""
        return f"{where}{first.message} [{first.code}]{more}"


@dataclass(slots=True)
class ListDef:
    """A `list` item of a rules file."""

    name: str
    items: list[str]
    location: Location
    used: bool = False
    #: load order of the first definition, and of the last definition or append (Falco's index and
    #: visibility: a list sees the lists defined before its visibility)
    index: int = 0
    visibility: int = 0


@dataclass(slots=True)
class MacroDef:
    """A `macro` item of a rules file."""

    name: str
    condition: str
    location: Location
    #: where the condition text starts in the file, for error positions
    cond_location: Location | None = None
    used: bool = False
    #: as ListDef: a macro sees the macros defined before its visibility
    index: int = 0
    visibility: int = 0


@dataclass(slots=True)
class ExceptionDef:
    """One of a rule's exceptions: fields, comparisons and values."""

    name: str
    fields: list[str] | str
    comps: list[str] | str | None
    values: list[Any]
    location: Location | None = None

    @property
    def has_fields(self) -> bool:
        """Whether the exception names fields (one without is an error)."""
        return bool(self.fields)


@dataclass(slots=True)
class SequenceStep:
    """One step of a sequence rule."""

    condition: str
    ast: Node | None = None


@dataclass(slots=True)
class SequenceDef:
    """A sequence rule's steps, key (`by`) and window."""

    by: str  # a field name (container.id, proc.pid, ...) or "process_tree"
    within_s: float
    steps: list[SequenceStep]
    #: False: every step, in any order, within the window
    ordered: bool = True


@dataclass(slots=True)
class RuleDef:
    """A `rule` item of a rules file, as loaded and (once resolved) with its condition tree."""

    name: str
    condition: str
    output: str
    priority: str
    desc: str = ""
    source: str = "syscall"
    tags: list[str] = field(default_factory=list)
    enabled: bool = True
    exceptions: list[ExceptionDef] = field(default_factory=list)
    location: Location | None = None
    cond_location: Location | None = None
    #: where the output text starts in the file (None once appended to)
    output_location: Location | None = None
    sequence: SequenceDef | None = None
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    #: the condition after macro expansion, lists resolution and exceptions (set by the resolver)
    ast: Node | None = None
    #: the event types it can match: None = all (see stockade.rules.evttypes)
    evttypes: frozenset[str] | None = None
    #: all event types except these (when evttypes is None); empty = no restriction at all
    evttypes_excluded: frozenset[str] = frozenset()
    #: load order index (position of its first definition)
    index: int = 0


@dataclass(slots=True)
class Ruleset:
    """What rule files loaded to: lists, macros, rules, and every problem found."""

    files: list[str] = field(default_factory=list)
    lists: dict[str, ListDef] = field(default_factory=dict)
    macros: dict[str, MacroDef] = field(default_factory=dict)
    rules: dict[str, RuleDef] = field(default_factory=dict)  # insertion order = load order
    problems: list[Problem] = field(default_factory=list)
    required_engine_versions: list[tuple[str, str]] = field(default_factory=list)  # (file, version)
    required_plugins: list[dict[str, Any]] = field(default_factory=list)
    #: Falco's load counter: one step per list, macro or rule definition, append or override
    seq: int = 0

    def next_seq(self) -> int:
        """The next load-order number."""
        self.seq += 1
        return self.seq

    @property
    def errors(self) -> list[Problem]:
        """The problems that are errors."""
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems that are warnings."""
        return [p for p in self.problems if p.level == "warning"]

    def error(self, code: str, message: str, location: Location | None) -> None:
        """Record an error."""
        self.problems.append(Problem("error", code, message, location))

    def warn(self, code: str, message: str, location: Location | None) -> None:
        """Record a warning."""
        self.problems.append(Problem("warning", code, message, location))
