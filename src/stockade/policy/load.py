"""Read WorkloadPolicy documents from YAML files, with errors that name file, line, column and field.

:func:`load_policies` reads files (or directories: their ``*.yaml`` then ``*.yml`` files in name
order, as rules directories are read) of one or more YAML documents. A document of another
``kind`` or ``apiVersion`` (a KubeArmorPolicy or a ResponsePlaybook kept beside the policies) is
skipped with a note; a ``WorkloadPolicy`` of another ``apiVersion`` is an error.

Every problem of a file is reported at once: one :class:`~stockade.policy.model.PolicyError` whose
message is the first problem (``web.yaml:14:9 (spec.file[2].access[0]): 'reed' is not one of
read, write, exec``) and whose ``details`` list all of them, in file order. Two kinds are checked:

* the document's shape, by the pydantic models (unknown fields, missing ones, values of the wrong
  type or not among the choices), each error placed where its value is in the file;
* what the models cannot say: rule names (unique in the policy, not ``default``, which names the
  policy's own action), path globs (:mod:`stockade.policy.globs`; a file rule's ``except`` entries
  too), peers (exactly one of ``cidr``,
  ``workload``, ``dns``; a valid network without host bits, a workload id, a host name; none on a
  ``listen`` rule), ports (1-65535 or a range ``LOW-HIGH``), a rule that can match nothing (an
  empty ``access`` or ``ports``), the workload id and syscall names (:mod:`stockade.policy.syscalls`).

YAML is read as the rules files are (:mod:`stockade.rules.yamldoc`: every scalar is text; ``~`` or
an empty value is absent). Rules without a name are named by section and position (``process-1``,
``file-2``) and ports become numbers, so a loaded policy is complete; :func:`dump_policy` writes it
back in a canonical form that loads to an equal policy.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from stockade.behavior.workload import is_workload_id
from stockade.errors import Location
from stockade.policy.globs import check_path_glob
from stockade.policy.model import API_VERSION, KIND, PolicyError, WorkloadPolicy
from stockade.policy.syscalls import SYSCALL_NUMBERS, is_syscall
from stockade.rules.defaults import expand_rule_paths
from stockade.rules.yamldoc import YamlError, YMap, YSeq, load_all

__all__ = [
    "SECTIONS",
    "Loaded",
    "LoadedPolicy",
    "dump_policies",
    "dump_policy",
    "load_policies",
    "parse_documents",
    "parse_policies",
    "parse_policy",
    "policy_to_dict",
    "read_policy_files",
    "rule_to_dict",
]

#: the rule sections of a policy's spec, in document order
SECTIONS = ("process", "file", "network", "privileged")
_RESERVED = "default"
_HOST = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?\.?$", re.I)
_PORT = re.compile(r"^(\d+)(?:-(\d+))?$")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Loaded(Generic[M]):
    """A policy document of any kind (its model has ``metadata.name``) and where it was read:
    file, and the line and column its document starts at."""

    policy: M
    origin: str
    line: int = 1
    column: int = 1

    @property
    def name(self) -> str:
        """The policy's name."""
        return str(getattr(getattr(self.policy, "metadata", None), "name", ""))

    @property
    def location(self) -> Location:
        """Where the document is, naming the policy."""
        return Location(self.origin, self.line, self.column, f"policy {self.name!r}")


class LoadedPolicy(Loaded[WorkloadPolicy]):
    """A WorkloadPolicy and where it was read."""

    __slots__ = ()


# -- problems -----------------------------------------------------------------------------------
@dataclass(order=True, frozen=True, slots=True)
class _Problem:
    line: int
    column: int
    path: str
    message: str


@dataclass(slots=True)
class _Problems:
    """Every problem of one file, with where."""

    origin: str
    found: set[_Problem] = field(default_factory=set)

    def add(self, where: tuple[int, int], path: str, message: str) -> None:
        self.found.add(_Problem(where[0], where[1], path, message))

    def error(self) -> PolicyError | None:
        """One error listing every problem (file order), or None when there is none."""
        if not self.found:
            return None
        ordered = sorted(self.found)
        locs = [Location(self.origin, p.line, p.column, p.path or None) for p in ordered]
        more = f" (and {len(ordered) - 1} more)" if len(ordered) > 1 else ""
        return PolicyError(
            ordered[0].message + more,
            locs[0],
            [f"{loc}: {p.message}" for loc, p in zip(locs, ordered, strict=True)],
        )


def _pos(node: YMap | YSeq) -> tuple[int, int]:
    return node.line, node.column


def _mark(node: YMap | YSeq, key: str | int) -> tuple[int, int]:
    """Where the value at `key` starts (the container's start when it has none)."""
    if isinstance(node, YMap) and isinstance(key, str) and key in node.marks:
        line, col, _ = node.marks[key]
        return line, col
    if isinstance(node, YSeq) and isinstance(key, int) and 0 <= key < len(node.marks):
        line, col, _ = node.marks[key]
        return line, col
    return _pos(node)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


# -- the models' errors, placed -----------------------------------------------------------------
def _locate(doc: Any, loc: tuple[int | str, ...]) -> tuple[tuple[int, int], str]:
    """Where the value at pydantic's `loc` is in `doc`, and its field path (``spec.file[2].path``).

    A key the document lacks (a missing field) is named in the path at its container's place;
    pydantic's union members (``int``, ``str``) are not keys of the document and end the walk."""
    node, where, path = doc, _pos(doc), ""
    for key in loc:
        if isinstance(node, YMap) and isinstance(key, str):
            where = _mark(node, key)
            path = _join(path, key)
            node = node.get(key)
        elif isinstance(node, YSeq) and isinstance(key, int) and key < len(node):
            where = _mark(node, key)
            path = _join(path, key)
            node = node[key]
        else:
            break
    return where, path


def _model_at(loc: tuple[int | str, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model class at `loc` under `root` (list indexes skipped), for naming its fields."""
    model: type[BaseModel] | None = root
    for key in loc:
        if isinstance(key, int) or model is None:
            continue
        info = model.model_fields.get(key)
        model = _inner_model(info.annotation) if info is not None else None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation) if get_origin(annotation) is not None else ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _choices(expected: str) -> str:
    """pydantic's ``'read', 'write' or 'exec'`` as ``read, write, exec``."""
    return expected.replace(" or ", ", ").replace("'", "")


def _unknown_field(name: str, loc: tuple[int | str, ...], root: type[BaseModel]) -> str:
    model = _model_at(loc[:-1], root)
    known = sorted(f.serialization_alias or n for n, f in model.model_fields.items()) if model else []
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field {name!r}{hint}; known fields: {', '.join(known)}"


_SHAPES = {
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "string_type": "expected a single value",
    "int_type": "expected a whole number",
}


def _message(err: ErrorDetails, root: type[BaseModel]) -> str:
    t, inp, loc = err["type"], err.get("input"), err["loc"]
    ctx = err.get("ctx") or {}
    if t == "literal_error":
        return f"{inp!r} is not one of {_choices(str(ctx.get('expected', '')))}"
    if t == "missing":
        return f"{loc[-1]!r} is required" if loc else "a value is required"
    if t == "extra_forbidden":
        return _unknown_field(str(loc[-1]), loc, root)
    if t in _SHAPES:
        return _SHAPES[t]
    if t.startswith("int_"):
        return f"{inp!r} is not a whole number"
    if t == "value_error":  # a model's own validator: its message as written
        return str(err["msg"]).removeprefix("Value error, ")
    return str(err["msg"])


def _shape_problems(doc: YMap, e: ValidationError, pr: _Problems, root: type[BaseModel]) -> None:
    for err in e.errors():
        loc = tuple(err["loc"])
        where, path = _locate(doc, loc)
        if err["type"] == "missing" and not path.endswith(str(loc[-1])):
            path = _join(path, loc[-1])
        pr.add(where, path, _message(err, root))


# -- what the models cannot check ---------------------------------------------------------------
def _str(node: YMap, key: str) -> str | None:
    v = node.get(key)
    return v if isinstance(v, str) else None


def _check_glob(rule: YMap, key: str, path: str, pr: _Problems) -> None:
    v = _str(rule, key)
    if v is not None and (why := check_path_glob(v)) is not None:
        pr.add(_mark(rule, key), _join(path, key), f"invalid glob {v!r}: {why}")


def _check_nonempty(rule: YMap, key: str, path: str, what: str, pr: _Problems) -> None:
    v = rule.get(key)
    if isinstance(v, YSeq) and not v:
        pr.add(_mark(rule, key), _join(path, key), f"lists no {what}: the rule would match nothing")


def _check_process(rule: YMap, path: str, pr: _Problems) -> None:
    _check_glob(rule, "path", path, pr)
    _check_glob(rule, "parent", path, pr)


def _check_file(rule: YMap, path: str, pr: _Problems) -> None:
    _check_glob(rule, "path", path, pr)
    _check_nonempty(rule, "access", path, "access", pr)
    exceptions = rule.get("except")
    if not isinstance(exceptions, YSeq):
        return
    where = _join(path, "except")
    for i, v in enumerate(exceptions):
        if isinstance(v, str) and (why := check_path_glob(v)) is not None:
            pr.add(_mark(exceptions, i), _join(where, i), f"invalid glob {v!r}: {why}")


def _port_problem(text: str) -> str | None:
    m = _PORT.match(text.strip())
    if m is None:
        return f"{text!r} is not a port or a range LOW-HIGH"
    lo, hi = int(m[1]), int(m[2] or m[1])
    if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
        return f"{text!r} is not within 1-65535"
    if lo > hi:
        return f"{text!r} is an empty range ({lo} > {hi})"
    return None


def _cidr_problem(text: str) -> str | None:
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return f"{text!r} is not a network ({e})"
        return f"{text!r} has host bits set (did you mean {net}?)"
    return None


def _peer_problem(key: str, value: str) -> str | None:
    if key == "cidr":
        return _cidr_problem(value)
    if key == "workload" and not is_workload_id(value):
        return f"{value!r} is not a workload id (host, k8s/NAMESPACE/KIND/NAME or container/...)"
    if key == "dns" and not _HOST.match(value):
        return f"{value!r} is not a host name"
    return None


def _check_peer(rule: YMap, path: str, pr: _Problems) -> None:
    peer = rule.get("peer")
    if not isinstance(peer, YMap):
        return
    ppath = _join(path, "peer")
    if rule.get("direction") == "listen":
        pr.add(_mark(rule, "peer"), ppath, "a listen rule has no peer (it matches the local port)")
    given = [k for k in ("cidr", "workload", "dns") if peer.get(k) is not None]
    if len(given) != 1:
        pr.add(_pos(peer), ppath, "a peer names exactly one of cidr, workload, dns")
    for k in given:
        v = _str(peer, k)
        why = _peer_problem(k, v) if v is not None else None
        if why is not None:
            pr.add(_mark(peer, k), _join(ppath, k), why)


def _check_network(rule: YMap, path: str, pr: _Problems) -> None:
    _check_peer(rule, path, pr)
    _check_nonempty(rule, "ports", path, "port", pr)
    ports = rule.get("ports")
    if not isinstance(ports, YSeq):
        return
    for i, p in enumerate(ports):
        why = _port_problem(p) if isinstance(p, str) else None
        if why is not None:
            pr.add(_mark(ports, i), _join(_join(path, "ports"), i), why)


_CHECKS = {"process": _check_process, "file": _check_file, "network": _check_network}


def _rule_names(spec: YMap, pr: _Problems) -> None:
    """Rule names, given or generated, are unique and not the reserved one."""
    seen: dict[str, str] = {}
    for section, i, rule, path in _rules(spec):
        given = rule.get("name")
        name = given if isinstance(given, str) else f"{section}-{i + 1}"
        where = _mark(rule, "name") if isinstance(given, str) else _pos(rule)
        if given is not None and not (isinstance(given, str) and given.strip()):
            pr.add(where, _join(path, "name"), "a rule name is a non-empty text")
        elif name == _RESERVED:
            pr.add(where, _join(path, "name"), f"{_RESERVED!r} names the policy's own action; pick another")
        elif name in seen:
            how = "" if isinstance(given, str) else " (the name this unnamed rule gets)"
            pr.add(where, _join(path, "name"), f"rule name {name!r}{how} is already used by {seen[name]}")
        else:
            seen[name] = path


def _rules(spec: YMap) -> Iterator[tuple[str, int, YMap, str]]:
    for section in SECTIONS:
        seq = spec.get(section)
        if isinstance(seq, YSeq):
            for i, rule in enumerate(seq):
                if isinstance(rule, YMap):
                    yield section, i, rule, f"spec.{section}[{i}]"


def _check_syscalls(spec: YMap, pr: _Problems) -> None:
    seq = spec.get("syscalls")
    if not isinstance(seq, YSeq):
        return
    seen: set[str] = set()
    for i, name in enumerate(seq):
        if not isinstance(name, str):
            continue
        path = f"spec.syscalls[{i}]"
        if not is_syscall(name):
            close = difflib.get_close_matches(name, list(SYSCALL_NUMBERS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            pr.add(_mark(seq, i), path, f"{name!r} is not an x86-64 system call{hint}")
        elif name in seen:
            pr.add(_mark(seq, i), path, f"{name!r} is listed twice")
        seen.add(name)


def _check_spec(doc: YMap, pr: _Problems) -> None:
    spec = doc.get("spec")
    if not isinstance(spec, YMap):
        return
    workload = _str(spec, "workload")
    if workload is not None and not is_workload_id(workload):
        pr.add(
            _mark(spec, "workload"),
            "spec.workload",
            f"{workload!r} is not a workload id (host, k8s/NAMESPACE/KIND/NAME or container/REPOSITORY/NAME)",
        )
    for section, _i, rule, path in _rules(spec):
        check = _CHECKS.get(section)
        if check is not None:
            check(rule, path, pr)
    _rule_names(spec, pr)
    _check_syscalls(spec, pr)
    meta = doc.get("metadata")
    if isinstance(meta, YMap) and isinstance(meta.get("name"), str) and not meta["name"].strip():
        pr.add(_mark(meta, "name"), "metadata.name", "a policy name is a non-empty text")


# -- documents ----------------------------------------------------------------------------------
def _plain(v: Any) -> Any:
    """A document as plain dicts and lists for the models; a null value is an absent key."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _complete(policy: WorkloadPolicy) -> WorkloadPolicy:
    """Name unnamed rules by section and position; ports as numbers."""
    spec = policy.spec
    update: dict[str, Any] = {}
    for section in SECTIONS:
        rules = getattr(spec, section)
        named = [
            r if r.name is not None else r.model_copy(update={"name": f"{section}-{i + 1}"})
            for i, r in enumerate(rules)
        ]
        if section == "network":
            named = [_numeric_ports(r) for r in named]
        update[section] = named
    return policy.model_copy(update={"spec": spec.model_copy(update=update)})


def _numeric_ports(rule: Any) -> Any:
    if rule.ports is None:
        return rule
    ports = [p if isinstance(p, int) else int(p) if p.strip().isdigit() else p.strip() for p in rule.ports]
    return rule.model_copy(update={"ports": ports})


def _is_policy(doc: YMap, pr: _Problems, notes: list[str] | None, of_kind: str = KIND) -> bool:
    """Whether `doc` is a document `of_kind` to read (a note for a document of another kind)."""
    kind, api = doc.get("kind"), doc.get("apiVersion")
    if kind == of_kind:
        if api != API_VERSION:
            where = _mark(doc, "apiVersion")
            pr.add(
                where,
                "apiVersion",
                f"{api!r} is not a supported apiVersion (this Stockade reads {API_VERSION})",
            )
            return False
        return True
    if not isinstance(kind, str):
        pr.add(_mark(doc, "kind"), "kind", f"'kind' is required (kind: {of_kind})")
    elif notes is not None:
        notes.append(f"{pr.origin}:{doc.line}: skipped a {kind} ({api or 'no apiVersion'}): not a {of_kind}")
    return False


def _of_kind(doc: Any, index: int, kind: str, pr: _Problems, notes: list[str] | None) -> YMap | None:
    """`doc` when it is a mapping of `kind` (a problem when it is no mapping)."""
    if doc is None:
        return None
    if not isinstance(doc, YMap):
        where = _pos(doc) if isinstance(doc, YSeq) else (1, 1)
        pr.add(
            where,
            "",
            f"document {index + 1} is not a mapping (a {kind} has apiVersion, kind, metadata, spec)",
        )
        return None
    return doc if _is_policy(doc, pr, notes, kind) else None


def _validated(doc: YMap, model: type[M], pr: _Problems) -> M | None:
    """`doc` as `model`; None, its problems placed in `pr`, when it is not one."""
    try:
        return model.model_validate(_plain(doc))
    except ValidationError as e:
        _shape_problems(doc, e, pr, model)
        return None


def _load_yaml(text: str, origin: str) -> list[Any]:
    try:
        return load_all(text)
    except YamlError as e:
        raise PolicyError(f"invalid YAML: {e.message}", Location(origin, e.line, e.column)) from None


def parse_documents(
    text: str, origin: str, model: type[M], kind: str, *, notes: list[str] | None = None
) -> list[Loaded[M]]:
    """Every document of `kind` (``apiVersion: stockade.dev/v1alpha1``) of a YAML stream as
    `model`, with where it starts; documents of other kinds are skipped (a line
    in `notes` for each). Errors as for WorkloadPolicies: one PolicyError listing every problem,
    each with its line, column and field; a model's validators name the problem themselves."""
    pr = _Problems(origin)
    out: list[Loaded[M]] = []
    for i, d in enumerate(_load_yaml(text, origin)):
        doc = _of_kind(d, i, kind, pr, notes)
        if doc is not None and (m := _validated(doc, model, pr)) is not None:
            out.append(Loaded(m, origin, doc.line, doc.column))
    err = pr.error()
    if err is not None:
        raise err
    return out


def _document(doc: Any, index: int, pr: _Problems, notes: list[str] | None) -> LoadedPolicy | None:
    doc = _of_kind(doc, index, KIND, pr, notes)
    if doc is None:
        return None
    before = len(pr.found)
    policy = _validated(doc, WorkloadPolicy, pr)
    _check_spec(doc, pr)
    if policy is None or len(pr.found) > before:
        return None
    return LoadedPolicy(_complete(policy), pr.origin, doc.line, doc.column)


def parse_policies(
    text: str, origin: str = "<input>", *, notes: list[str] | None = None
) -> list[LoadedPolicy]:
    """Every WorkloadPolicy of a YAML stream; documents of other kinds are skipped (a line in
    `notes` for each); a PolicyError listing every problem of the text."""
    pr = _Problems(origin)
    docs = _load_yaml(text, origin)
    out = [p for i, doc in enumerate(docs) if (p := _document(doc, i, pr, notes)) is not None]
    err = pr.error()
    if err is not None:
        raise err
    return out


def parse_policy(text: str, origin: str = "<input>") -> WorkloadPolicy:
    """The one WorkloadPolicy of a YAML text (a PolicyError if there is none, or several)."""
    found = parse_policies(text, origin)
    if len(found) != 1:
        raise PolicyError(f"expected one {KIND} document, found {len(found)}", Location(origin))
    return found[0].policy


def read_policy_files(paths: Iterable[str | Path]) -> Iterator[tuple[str, str]]:
    """(path, text) of each file of `paths`, a directory standing for its ``*.yaml`` then
    ``*.yml`` files in name order; a PolicyError naming a file that cannot be read."""
    for path in expand_rule_paths([str(p) for p in paths]):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise PolicyError(f"cannot read policy file: {why}", Location(path)) from None
        yield path, text


def load_policies(paths: Iterable[str | Path], *, notes: list[str] | None = None) -> list[LoadedPolicy]:
    """The WorkloadPolicies of files and directories (module docstring), in order. Two policies
    with the same name, or for the same workload, are an error."""
    out: list[LoadedPolicy] = []
    for path, text in read_policy_files(paths):
        out.extend(parse_policies(text, path, notes=notes))
    _check_unique(out)
    return out


def _check_unique(loaded: list[LoadedPolicy]) -> None:
    problems: list[tuple[Location, str]] = []
    first: dict[tuple[str, str], LoadedPolicy] = {}
    for lp in loaded:
        for what, key in (("name", lp.policy.metadata.name), ("workload", lp.policy.spec.workload)):
            seen = first.setdefault((what, key), lp)
            if seen is not lp:
                problems.append(
                    (lp.location, f"{what} {key!r} is already that of the policy at {seen.location}")
                )
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        loc, message = problems[0]
        raise PolicyError(message + more, loc, [f"{loc}: {m}" for loc, m in problems])


# -- canonical YAML -----------------------------------------------------------------------------
class _FlowMap(dict[str, Any]):
    """A mapping written on one line (a peer)."""


def rule_to_dict(rule: BaseModel) -> dict[str, Any]:
    """A rule as its canonical mapping: fields in model order, absent ones left out."""
    d: dict[str, Any] = rule.model_dump(mode="json", exclude_none=True, by_alias=True)
    return d


def _yaml_rule(rule: BaseModel) -> dict[str, Any]:
    d = rule_to_dict(rule)
    if isinstance(d.get("peer"), dict):
        d["peer"] = _FlowMap(d["peer"])
    return d


def policy_to_dict(policy: WorkloadPolicy) -> dict[str, Any]:
    """A policy as its canonical mapping (what :func:`dump_policy` writes; JSON-ready)."""
    meta: dict[str, Any] = {"name": policy.metadata.name}
    for key in ("labels", "annotations"):
        value = getattr(policy.metadata, key)
        if value:
            meta[key] = dict(sorted(value.items()))
    spec = policy.spec
    sd: dict[str, Any] = {"workload": spec.workload, "action": spec.action}
    for section in SECTIONS:
        rules = getattr(spec, section)
        if rules:
            sd[section] = [_yaml_rule(r) for r in rules]
    if spec.syscalls is not None:
        sd["syscalls"] = list(spec.syscalls)
    return {"apiVersion": policy.apiVersion, "kind": policy.kind, "metadata": meta, "spec": sd}


class _Dumper(yaml.SafeDumper):
    """Block style with indented sequences; lists of scalars on one line."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        """A block sequence is indented under its key, always."""
        del indentless
        super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = bool(data) and all(not isinstance(x, dict | list) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_flow_map(dumper: yaml.SafeDumper, data: _FlowMap) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", dict(data), flow_style=True)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(_FlowMap, _represent_flow_map)


def dump_policy(policy: WorkloadPolicy) -> str:
    """The policy as canonical YAML: a fixed key order, rules in their order, defaults written
    out; loading it gives an equal policy (once loaded, every rule has its name)."""
    return yaml.dump(policy_to_dict(policy), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def dump_policies(policies: Iterable[WorkloadPolicy]) -> str:
    """Several policies as one YAML stream."""
    return "---\n".join(dump_policy(p) for p in policies)
