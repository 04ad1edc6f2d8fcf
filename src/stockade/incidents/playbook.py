"""Response playbooks: when an alert or its incident meets a trigger, graduated actions follow.

A ``ResponsePlaybook`` (``apiVersion: stockade.dev/v1alpha1``) in YAML::

    apiVersion: stockade.dev/v1alpha1
    kind: ResponsePlaybook
    metadata:
      name: contain-credential-theft
    spec:
      trigger:                      # every condition given must hold (rules and tags: any of)
        rules: ["Read sensitive file*", "Terminal shell in container"]
        tags: [mitre_credential_access, T1552]
        priority: Warning           # the alert at least this severe
        incident_score: 50          # its incident scored at least this
        containers_only: true       # never act on a host alert (default)
      once_per_incident: true       # run once per incident (default)
      actions:                      # in order; each automatic or waiting for approval
        - action: notify
          sinks: [chat]             # the names of `sinks:` entries (default: all)
        - action: isolate
          allow: [10.0.0.0/24]      # forensics allow-list (CIDR or CIDR:PORT[-PORT])
        - action: freeze
        - action: capture
          memory: all               # pids, or all; none by default
        - action: kill
          approval: required

Actions: ``notify``, ``isolate``, ``freeze``, ``capture``, ``kill`` (and their undoings
``unisolate``, ``thaw``, run by hand). ``approval: auto`` (the default) runs the action at once;
``required`` records it on the incident as pending until a responder approves it (``stockade
respond approve``, the API). A ``kill`` is never run on a container whose evidence has not been
captured: the runtime captures first (:mod:`stockade.runtime.response`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stockade.errors import ConfigError, Location
from stockade.model.alert import Alert, normalize_priority, priority_rank
from stockade.model.allowlist import checked_allow
from stockade.model.incident import Incident

__all__ = [
    "ACTIONS",
    "API_VERSION",
    "KIND",
    "PlaybookAction",
    "ResponsePlaybook",
    "load_playbooks",
    "matches",
    "parse_playbooks",
    "plan",
]

API_VERSION = "stockade.dev/v1alpha1"
KIND = "ResponsePlaybook"
#: what a playbook can do, and what a responder can run by hand
ACTIONS = ("notify", "isolate", "unisolate", "freeze", "thaw", "capture", "kill")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Strict):
    """When a playbook runs (every condition given must hold)."""

    rules: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    priority: str | None = None
    incident_score: float | None = Field(default=None, ge=0, le=100)
    containers_only: bool = True

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: str | None) -> str | None:
        if v is None:
            return None
        p = normalize_priority(v)
        if p is None:
            raise ValueError(f"{v!r} is not a priority (Emergency ... Debug)")
        return p


class PlaybookAction(_Strict):
    """One step of a playbook."""

    action: Literal["notify", "isolate", "unisolate", "freeze", "thaw", "capture", "kill"]
    approval: Literal["auto", "required"] = "auto"
    #: notify: the sinks to tell (names of `sinks:` entries); empty: all
    sinks: tuple[str, ...] = ()
    #: isolate: the forensics allow-list (CIDRs the container may still reach)
    allow: tuple[str, ...] = ()
    #: capture: the pids (container pids as the host sees them) to dump memory of, or ["all"]
    memory: tuple[str, ...] = ()

    @field_validator("allow")
    @classmethod
    def _allow(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        checked_allow(v)
        return v

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        if isinstance(v, str | int):
            v = [v]
        for m in v or ():
            if str(m) != "all" and not str(m).isdigit():
                raise ValueError(f"memory: {m!r} is neither a pid nor 'all'")
        return tuple(str(m) for m in v or ())


class Metadata(_Strict):
    """The playbook's name."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""


class PlaybookSpec(_Strict):
    """Trigger and actions."""

    trigger: Trigger
    actions: Annotated[tuple[PlaybookAction, ...], Field(min_length=1)]
    once_per_incident: bool = True
    enabled: bool = True


class ResponsePlaybook(_Strict):
    """A response playbook (module docstring)."""

    apiVersion: Literal["stockade.dev/v1alpha1"]
    kind: Literal["ResponsePlaybook"]
    metadata: Metadata
    spec: PlaybookSpec

    @property
    def name(self) -> str:
        """The playbook's name."""
        return self.metadata.name


def matches(
    playbook: ResponsePlaybook, alert: Alert, incident: Incident | None, container: str | None
) -> bool:
    """Whether `alert` (grouped into `incident`, in `container`) meets the playbook's trigger."""
    t = playbook.spec.trigger
    if not playbook.spec.enabled:
        return False
    if t.containers_only and not container:
        return False
    if t.rules and not any(fnmatch.fnmatchcase(alert.rule, r) for r in t.rules):
        return False
    if t.tags:
        have = {x.lower() for x in alert.tags}
        want = {x.lower() for x in t.tags}
        # a technique tag matches its sub-techniques: T1552 matches T1552.001
        if not (have & want or any(h.split(".")[0] in want for h in have)):
            return False
    if t.priority is not None and priority_rank(alert.priority) > priority_rank(t.priority):
        return False
    return not (t.incident_score is not None and (incident is None or incident.score < t.incident_score))


def _doc_lines(text: str) -> list[int]:
    """The line (1-based) each YAML document starts on."""
    try:
        return [node.start_mark.line + 1 for node in yaml.compose_all(text, Loader=yaml.SafeLoader) if node]
    except yaml.YAMLError:
        return []


def parse_playbooks(text: str, origin: str) -> list[ResponsePlaybook]:
    """The playbooks of a YAML text (documents of other kinds skipped); errors name file and line."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = Location(origin, mark.line + 1, mark.column + 1) if mark else Location(origin)
        raise ConfigError(f"not valid YAML: {getattr(e, 'problem', e)}", loc) from e
    lines = _doc_lines(text)
    out: list[ResponsePlaybook] = []
    names: set[str] = set()
    for i, doc in enumerate(docs):
        line = lines[i] if i < len(lines) else None
        where = Location(origin, line) if line else Location(origin)
        if not isinstance(doc, dict):
            raise ConfigError(f"document {i + 1} is not a mapping", where)
        if doc.get("kind") != KIND:
            continue
        try:
            pb = ResponsePlaybook.model_validate(doc)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            msg = str(err.get("ctx", {}).get("error", err["msg"]))
            raise ConfigError(f"ResponsePlaybook document {i + 1}, {field}: {msg}", where) from e
        if pb.name in names:
            raise ConfigError(f"two playbooks are named {pb.name!r}", where)
        names.add(pb.name)
        out.append(pb)
    return out


def load_playbooks(paths: Iterable[str | Path]) -> list[ResponsePlaybook]:
    """The playbooks in files or directories (their ``*.yaml``/``*.yml`` files in name order)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
        elif p.exists():
            files.append(p)
        else:
            raise ConfigError(f"no playbook file or directory {p}")
    out: list[ResponsePlaybook] = []
    seen: dict[str, str] = {}
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read the playbook file: {e}", Location(str(f))) from e
        for pb in parse_playbooks(text, str(f)):
            if pb.name in seen:
                raise ConfigError(
                    f"playbook {pb.name!r} is also defined in {seen[pb.name]}", Location(str(f))
                )
            seen[pb.name] = str(f)
            out.append(pb)
    return out


def plan(playbook: ResponsePlaybook) -> Sequence[PlaybookAction]:
    """The playbook's actions in the order they run, with a capture before any kill that has none
    before it (evidence is never destroyed before it is taken)."""
    out: list[PlaybookAction] = []
    captured = False
    for a in playbook.spec.actions:
        if a.action == "kill" and not captured:
            out.append(PlaybookAction(action="capture", approval=a.approval))
            captured = True
        captured = captured or a.action == "capture"
        out.append(a)
    return out
