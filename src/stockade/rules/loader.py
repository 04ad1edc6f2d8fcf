"""Load Falco rules files (and Stockade's extensions) into a :class:`Ruleset`.

Files are read in order and form one ruleset, as Falco loads them: a later file may append to or
override what an earlier one defined. Every problem is collected with its file, line, column and
item; nothing stops at the first error. Conditions are resolved (macros expanded, lists resolved,
exceptions added, fields checked) by :mod:`stockade.rules.resolve` once everything is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stockade.errors import Location
from stockade.model.alert import normalize_priority
from stockade.model.timeutil import parse_duration_s
from stockade.rules.ruleset import (
    BUILTIN_PLUGINS,
    ENGINE_VERSION,
    ExceptionDef,
    ListDef,
    MacroDef,
    RuleDef,
    RuleLoadError,
    Ruleset,
    SequenceDef,
    SequenceStep,
)

_RULE_KEYS = {
    "rule",
    "condition",
    "output",
    "desc",
    "priority",
    "source",
    "tags",
    "enabled",
    "exceptions",
    "append",
    "override",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "sequence",
    "capture",
    "capture_duration",
}
_OVERRIDE_APPEND = {"condition", "output", "desc", "tags", "exceptions"}
_OVERRIDE_REPLACE = _OVERRIDE_APPEND | {"priority", "enabled", "warn_evttypes", "skip-if-unknown-filter"}


@dataclass(slots=True)
class _Item:
    """A top-level YAML mapping with the position of each key's value."""

    value: dict[str, Any]
    marks: dict[str, tuple[int, int, str]]  # key -> (line, column, scalar style)
    line: int
    column: int


def _to_python(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        if node.tag in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:value"):
            return node.value  # YAML 1.1 reads a bare '=' as the 'value' key type: Falco means the string
        return yaml.constructor.SafeConstructor().construct_object(node)
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(n) for n in node.value]
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for k, v in node.value:
            out[_to_python(k)] = _to_python(v)
        return out
    return None


def _read_items(path: str, text: str, rs: Ruleset) -> list[_Item] | None:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
        problem = getattr(e, "problem", None) or str(e)
        rs.error("LOAD_ERR_YAML_PARSE", f"invalid YAML: {problem}", loc)
        return None
    if root is None:
        return []
    if not isinstance(root, yaml.SequenceNode):
        rs.error(
            "LOAD_ERR_YAML_VALIDATE",
            "a rules file must be a YAML list of items (- rule: / - macro: / - list:)",
            Location(path, root.start_mark.line + 1, root.start_mark.column + 1),
        )
        return None
    items: list[_Item] = []
    for node in root.value:
        loc = Location(path, node.start_mark.line + 1, node.start_mark.column + 1)
        if not isinstance(node, yaml.MappingNode):
            rs.error("LOAD_ERR_YAML_VALIDATE", "unexpected element: each item must be a mapping", loc)
            continue
        value: dict[str, Any] = {}
        marks: dict[str, tuple[int, int, str]] = {}
        for k, v in node.value:
            key = str(_to_python(k))
            try:
                value[key] = _to_python(v)
            except yaml.YAMLError as e:
                rs.error("LOAD_ERR_YAML_PARSE", f"invalid value for '{key}': {e}", loc)
                continue
            style = getattr(v, "style", None) or ""
            marks[key] = (v.start_mark.line + 1, v.start_mark.column + 1, style)
        items.append(_Item(value, marks, loc.line or 1, loc.column or 1))
    return items


def _version_tuple(v: Any) -> tuple[int, ...] | None:
    if isinstance(v, int):
        return (0, v, 0)  # Falco's old integer engine versions
    m = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*", str(v))
    if not m:
        return None
    return tuple(int(x or 0) for x in m.groups())


class _FileLoader:
    def __init__(self, rs: Ruleset, path: str, text: str) -> None:
        self.rs = rs
        self.path = path
        self.text = text

    def loc(self, item: _Item, key: str | None = None, what: str | None = None) -> Location:
        if key is not None and key in item.marks:
            line, col, _ = item.marks[key]
            return Location(self.path, line, col, what)
        return Location(self.path, item.line, item.column, what)

    def cond_loc(self, item: _Item, key: str, what: str) -> Location:
        line, col, style = item.marks.get(key, (item.line, item.column, ""))
        if style in ("|", ">"):
            line, col = line + 1, 0  # block scalar: the text starts on the next line
        elif style in ('"', "'"):
            col += 1
        return Location(self.path, line, col, what)

    def load(self) -> None:
        items = _read_items(self.path, self.text, self.rs)
        if items is None:
            return
        for item in items:
            v = item.value
            if "rule" in v:
                self.rule_item(item)
            elif "macro" in v:
                self.macro_item(item)
            elif "list" in v:
                self.list_item(item)
            elif "required_engine_version" in v:
                self.engine_version(item)
            elif "required_plugin_versions" in v:
                self.plugin_versions(item)
            else:
                keys = ", ".join(map(str, v)) or "nothing"
                self.rs.error(
                    "LOAD_ERR_YAML_VALIDATE",
                    f"unknown item (has {keys}); expected rule, macro, list, required_engine_version "
                    "or required_plugin_versions",
                    self.loc(item),
                )

    # -- header items ---------------------------------------------------------------------------
    def engine_version(self, item: _Item) -> None:
        raw = item.value["required_engine_version"]
        want = _version_tuple(raw)
        loc = self.loc(item, "required_engine_version")
        if want is None:
            self.rs.error("LOAD_ERR_VALIDATE", f"required_engine_version '{raw}' is not a version", loc)
            return
        self.rs.required_engine_versions.append((self.path, ".".join(map(str, want))))
        if want > ENGINE_VERSION:
            have = ".".join(map(str, ENGINE_VERSION))
            self.rs.error(
                "LOAD_ERR_VALIDATE",
                f"rules require engine version {'.'.join(map(str, want))}, this engine implements {have}",
                loc,
            )

    def plugin_versions(self, item: _Item) -> None:
        raw = item.value["required_plugin_versions"]
        loc = self.loc(item, "required_plugin_versions")
        if not isinstance(raw, list):
            self.rs.error("LOAD_ERR_VALIDATE", "required_plugin_versions must be a list", loc)
            return
        for req in raw:
            if not isinstance(req, dict) or "name" not in req or "version" not in req:
                self.rs.error("LOAD_ERR_VALIDATE", "each required plugin needs 'name' and 'version'", loc)
                continue
            options = [req] + [a for a in (req.get("alternatives") or []) if isinstance(a, dict)]
            satisfied_by = None
            for opt in options:
                have = BUILTIN_PLUGINS.get(str(opt.get("name")))
                want_v, have_v = _version_tuple(opt.get("version")), _version_tuple(have) if have else None
                if have_v is not None and want_v is not None and have_v >= want_v:
                    satisfied_by = str(opt.get("name"))
                    break
            self.rs.required_plugins.append(
                {
                    "file": self.path,
                    "name": str(req["name"]),
                    "version": str(req["version"]),
                    "alternatives": [str(a.get("name")) for a in options[1:]],
                    "satisfied_by": satisfied_by,
                }
            )
            if satisfied_by is None:
                self.rs.warn(
                    "LOAD_UNSUPPORTED_PLUGIN",
                    f"plugin requirement {req['name']} {req['version']} is not built in; rules that need "
                    "its fields will fail to load",
                    loc,
                )

    # -- lists ------------------------------------------------------------------------------------
    def list_item(self, item: _Item) -> None:
        v = item.value
        name = str(v["list"])
        what = f"list '{name}'"
        loc = self.loc(item, "list", what)
        if "items" not in v:
            self.rs.error("LOAD_ERR_YAML_VALIDATE", "item has no mapping for key 'items'", loc)
            return
        items = v["items"]
        if items is None:
            items = []
        if not isinstance(items, list) or any(isinstance(x, (dict, list)) for x in items):
            self.rs.error(
                "LOAD_ERR_YAML_VALIDATE", "'items' must be a list of strings", self.loc(item, "items", what)
            )
            return
        str_items = [_scalar_str(x) for x in items]
        mode = self._mode(item, what, {"items"})
        if mode is None:
            return
        prev = self.rs.lists.get(name)
        if mode.get("items") == "append":
            if prev is None:
                self.rs.error(
                    "LOAD_ERR_VALIDATE", f"list '{name}' has 'append' but no list by that name exists", loc
                )
                return
            prev.items.extend(str_items)
        elif prev is not None and mode.get("items") == "replace":
            prev.items = str_items
        else:
            self.rs.lists[name] = ListDef(name, str_items, loc)

    # -- macros -----------------------------------------------------------------------------------
    def macro_item(self, item: _Item) -> None:
        v = item.value
        name = str(v["macro"])
        what = f"macro '{name}'"
        loc = self.loc(item, "macro", what)
        cond = v.get("condition")
        if not isinstance(cond, str):
            self.rs.error("LOAD_ERR_YAML_VALIDATE", "item has no mapping for key 'condition'", loc)
            return
        mode = self._mode(item, what, {"condition"})
        if mode is None:
            return
        prev = self.rs.macros.get(name)
        m = mode.get("condition")
        if m == "append":
            if prev is None:
                self.rs.error(
                    "LOAD_ERR_VALIDATE", f"macro '{name}' has 'append' but no macro by that name exists", loc
                )
                return
            prev.condition = f"{prev.condition} {cond}"
            prev.cond_location = None  # positions no longer map to one place
        elif prev is not None and m == "replace":
            prev.condition = cond
            prev.cond_location = self.cond_loc(item, "condition", what)
        else:
            self.rs.macros[name] = MacroDef(name, cond, loc, self.cond_loc(item, "condition", what))

    # -- rules ------------------------------------------------------------------------------------
    def rule_item(self, item: _Item) -> None:
        v = item.value
        name = str(v["rule"])
        what = f"rule '{name}'"
        loc = self.loc(item, "rule", what)
        for k in v:
            if k not in _RULE_KEYS:
                self.rs.warn("LOAD_UNKNOWN_KEY", f"unknown key '{k}' (ignored)", self.loc(item, k, what))
        mode = self._mode(item, what, _OVERRIDE_REPLACE)
        if mode is None:
            return
        prev = self.rs.rules.get(name)
        if mode:
            if prev is None:
                verb = "append" if set(mode.values()) == {"append"} else "override"
                self.rs.error(
                    "LOAD_ERR_VALIDATE", f"rule '{name}' has '{verb}' but no rule by that name exists", loc
                )
                return
            self._amend(item, prev, mode, what)
            return
        if set(v) - {"rule", "enabled"} == set() and "enabled" in v:
            # `- rule: X / enabled: false`: switch an existing rule on or off
            if prev is None:
                self.rs.error(
                    "LOAD_ERR_VALIDATE", f"rule '{name}' sets 'enabled' but no rule by that name exists", loc
                )
                return
            prev.enabled = _bool(v["enabled"])
            return
        rule = self._new_rule(item, name, what, loc)
        if rule is None:
            return
        if prev is not None:
            rule.index = prev.index  # a redefinition keeps the place of the first definition
            self.rs.warn("LOAD_RULE_REDEFINED", f"rule '{name}' redefines an earlier rule of that name", loc)
        else:
            rule.index = len(self.rs.rules)
        self.rs.rules[name] = rule

    def _new_rule(self, item: _Item, name: str, what: str, loc: Location) -> RuleDef | None:
        v = item.value
        seq = None
        if "sequence" in v:
            seq = self._sequence(item, what)
            if seq is None:
                return None
        missing = [k for k in ("output", "priority") if k not in v]
        if "condition" not in v and seq is None:
            missing.insert(0, "condition")
        if missing:
            self.rs.error("LOAD_ERR_YAML_VALIDATE", f"item has no mapping for key '{missing[0]}'", loc)
            return None
        if "condition" in v and seq is not None:
            self.rs.error("LOAD_ERR_VALIDATE", "a rule has either 'condition' or 'sequence', not both", loc)
            return None
        prio = normalize_priority(str(v["priority"]))
        if prio is None:
            self.rs.error(
                "LOAD_ERR_VALIDATE",
                f"invalid priority '{v['priority']}' (one of emergency, alert, critical, error, warning, notice, "
                "informational, debug)",
                self.loc(item, "priority", what),
            )
            # keep the rule (disabled) so its condition is still checked and every problem reported
            prio = "Debug"
            v = {**v, "enabled": False}
        source = str(v.get("source", "syscall"))
        tags = v.get("tags") or []
        if not isinstance(tags, list):
            self.rs.error("LOAD_ERR_YAML_VALIDATE", "'tags' must be a list", self.loc(item, "tags", what))
            return None
        exceptions = self._exceptions(item, what)
        if exceptions is None:
            return None
        cond = v.get("condition", "")
        if not isinstance(cond, str):
            self.rs.error(
                "LOAD_ERR_YAML_VALIDATE", "'condition' must be a string", self.loc(item, "condition", what)
            )
            return None
        return RuleDef(
            name=name,
            condition=cond,
            output=str(v["output"]).strip(),
            priority=prio,
            desc=str(v.get("desc") or ""),
            source=source,
            tags=[str(t) for t in tags],
            enabled=_bool(v.get("enabled", True)),
            exceptions=exceptions,
            location=loc,
            cond_location=self.cond_loc(item, "condition", what) if "condition" in v else None,
            sequence=seq,
            warn_evttypes=_bool(v.get("warn_evttypes", True)),
            skip_if_unknown_filter=_bool(v.get("skip-if-unknown-filter", False)),
        )

    def _amend(self, item: _Item, prev: RuleDef, mode: dict[str, str], what: str) -> None:
        v = item.value
        for key, how in mode.items():
            if key not in v:
                self.rs.error(
                    "LOAD_ERR_VALIDATE",
                    f"'override' names '{key}' but the item has no '{key}'",
                    self.loc(item, "override", what),
                )
                continue
            val = v[key]
            if key == "condition":
                prev.condition = f"{prev.condition} {val}" if how == "append" else str(val)
                prev.cond_location = None if how == "append" else self.cond_loc(item, "condition", what)
            elif key in ("output", "desc"):
                old = prev.output if key == "output" else prev.desc
                new = f"{old} {str(val).strip()}" if how == "append" else str(val).strip()
                setattr(prev, key, new)
            elif key == "tags":
                tags = [str(t) for t in (val or [])]
                prev.tags = prev.tags + [t for t in tags if t not in prev.tags] if how == "append" else tags
            elif key == "exceptions":
                exc = self._exceptions(item, what)
                if exc is None:
                    continue
                if how == "replace":
                    prev.exceptions = exc
                else:
                    by_name = {e.name: e for e in prev.exceptions}
                    for e in exc:
                        if e.name in by_name:
                            by_name[e.name].values.extend(e.values)
                        else:
                            prev.exceptions.append(e)
            elif key == "priority":
                p = normalize_priority(str(val))
                if p is None:
                    self.rs.error(
                        "LOAD_ERR_VALIDATE", f"invalid priority '{val}'", self.loc(item, "priority", what)
                    )
                else:
                    prev.priority = p
            elif key == "enabled":
                prev.enabled = _bool(val)
            elif key == "warn_evttypes":
                prev.warn_evttypes = _bool(val)
            elif key == "skip-if-unknown-filter":
                prev.skip_if_unknown_filter = _bool(val)

    def _mode(self, item: _Item, what: str, allowed: set[str]) -> dict[str, str] | None:
        """How the item amends an earlier one: {key: append|replace}; {} for a definition."""
        v = item.value
        append = v.get("append")
        override = v.get("override")
        if append is not None and override is not None:
            self.rs.error(
                "LOAD_ERR_VALIDATE",
                "an item cannot have both 'append' and 'override'",
                self.loc(item, "override", what),
            )
            return None
        if override is not None:
            if not isinstance(override, dict) or not override:
                self.rs.error(
                    "LOAD_ERR_YAML_VALIDATE",
                    "'override' must map keys to append or replace",
                    self.loc(item, "override", what),
                )
                return None
            out: dict[str, str] = {}
            for k, how in override.items():
                k, how = str(k), str(how)
                ok = _OVERRIDE_APPEND if how == "append" else allowed if how == "replace" else set()
                if how not in ("append", "replace"):
                    self.rs.error(
                        "LOAD_ERR_VALIDATE",
                        f"override of '{k}' must be append or replace, not '{how}'",
                        self.loc(item, "override", what),
                    )
                    return None
                if k not in (ok & allowed) and not (k == "items" and "items" in allowed):
                    self.rs.error(
                        "LOAD_ERR_VALIDATE",
                        f"key '{k}' cannot be overridden with '{how}'",
                        self.loc(item, "override", what),
                    )
                    return None
                out[k] = how
            return out
        if append is not None and _bool(append):
            self.rs.warn(
                "LOAD_DEPRECATED_ITEM",
                "'append: true' is deprecated in Falco; use 'override: {key: append}'",
                self.loc(item, "append", what),
            )
            return {k: "append" for k in item.value if k in (_OVERRIDE_APPEND | {"items"})}
        return {}

    def _exceptions(self, item: _Item, what: str) -> list[ExceptionDef] | None:
        raw = item.value.get("exceptions")
        if raw is None:
            return []
        loc = self.loc(item, "exceptions", what)
        if not isinstance(raw, list):
            self.rs.error("LOAD_ERR_YAML_VALIDATE", "'exceptions' must be a list", loc)
            return None
        out = []
        for ex in raw:
            if not isinstance(ex, dict) or "name" not in ex:
                self.rs.error("LOAD_ERR_YAML_VALIDATE", "each exception needs a 'name'", loc)
                return None
            fields = ex.get("fields")
            comps = ex.get("comps")
            values = ex.get("values") or []
            if not isinstance(values, list):
                self.rs.error(
                    "LOAD_ERR_YAML_VALIDATE", f"exception '{ex['name']}': 'values' must be a list", loc
                )
                return None
            out.append(ExceptionDef(str(ex["name"]), fields if fields is not None else [], comps, values))
        return out

    def _sequence(self, item: _Item, what: str) -> SequenceDef | None:
        raw = item.value["sequence"]
        loc = self.loc(item, "sequence", what)
        if not isinstance(raw, dict):
            self.rs.error(
                "LOAD_ERR_YAML_VALIDATE", "'sequence' must be a mapping with by, within, steps", loc
            )
            return None
        steps = raw.get("steps")
        if not isinstance(steps, list) or len(steps) < 2:
            self.rs.error("LOAD_ERR_VALIDATE", "'sequence.steps' must list at least two steps", loc)
            return None
        out_steps = []
        for i, s in enumerate(steps):
            cond = s.get("condition") if isinstance(s, dict) else s if isinstance(s, str) else None
            if not isinstance(cond, str):
                self.rs.error("LOAD_ERR_VALIDATE", f"sequence step {i + 1} needs a 'condition'", loc)
                return None
            out_steps.append(SequenceStep(cond))
        by = str(raw.get("by", "container.id"))
        try:
            within = parse_duration_s(str(raw.get("within", "60s")))
        except Exception:
            self.rs.error(
                "LOAD_ERR_VALIDATE", f"'sequence.within' is not a duration: {raw.get('within')!r}", loc
            )
            return None
        ordered = raw.get("ordered", True)
        if not isinstance(ordered, bool):
            self.rs.error(
                "LOAD_ERR_VALIDATE", f"'sequence.ordered' must be true or false, not {ordered!r}", loc
            )
            return None
        return SequenceDef(by, within, out_steps, ordered)


def _scalar_str(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x)


def _bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "yes", "on", "1")
    return bool(v)


def read_rules(sources: Iterable[str | tuple[str, str]]) -> Ruleset:
    """Read rules files (paths, or (name, text) pairs) in order into one Ruleset, unresolved."""
    rs = Ruleset()
    for src in sources:
        if isinstance(src, tuple):
            name, text = src
        else:
            name = os.fspath(src)
            try:
                text = Path(name).read_text(encoding="utf-8")
            except FileNotFoundError:
                rs.error("LOAD_ERR_OPEN", "no such rules file", Location(name))
                continue
            except (OSError, UnicodeDecodeError) as e:
                rs.error("LOAD_ERR_OPEN", f"cannot read rules file: {e}", Location(name))
                continue
        rs.files.append(name)
        _FileLoader(rs, name, text).load()
    return rs


def check_rules(sources: Iterable[str | tuple[str, str]]) -> Ruleset:
    """Read and resolve rules files; every problem is in the result's `problems` (never raises)."""
    from stockade.rules.resolve import resolve

    return resolve(read_rules(sources))


def load_rules(sources: Iterable[str | tuple[str, str]]) -> Ruleset:
    """Read and resolve rules files; raise RuleLoadError listing every error if there is any."""
    rs = check_rules(sources)
    if rs.errors:
        raise RuleLoadError(rs.problems)
    return rs
