"""Load Falco rules files (and Stockade's extensions) into a :class:`Ruleset`, as Falco reads them.

Files are read in order and form one ruleset, as Falco loads them: a later file may append to or
override what an earlier one defined. The reading follows Falco's reader and collector
(falcosecurity/falco `userspace/engine/rule_loader_reader.cpp`, `rule_loader_collector.cpp`): the same
leniency (empty items and documents are skipped, unknown top-level items and keys are warnings, every
scalar is text decoded by the key that reads it), the same strictness (a missing or empty name, a
value of the wrong shape, an `override` that does not match the item's keys) and the same codes
(``LOAD_ERR_*`` for errors, ``LOAD_*`` for warnings). Unlike Falco, which stops at the first error,
every problem is collected with its file, line, column and item; an item with an error is skipped.
Conditions are resolved (macros expanded, lists resolved, exceptions added, fields and outputs
checked) by :mod:`stockade.rules.resolve` once everything is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stockade.errors import Location
from stockade.model.alert import normalize_priority
from stockade.model.timeutil import parse_duration_s
from stockade.rules.ast import LIST_OPS, MODIFIERS, NUM_OPS, STR_OPS
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
from stockade.rules.yamldoc import YamlError, YMap, YSeq, as_bool, as_uint, load_all

# Falco's messages (rule_loading_messages.h)
WARNING_APPEND = (
    "'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead."
)
WARNING_ENABLED = (
    "The standalone 'enabled' key usage is deprecated. The correct approach requires also a 'replace' "
    "entry under the 'override' key (i.e. 'enabled: replace')."
)
ERROR_OVERRIDE_APPEND = (
    "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry (e.g. "
    "'condition: append') under 'override' instead."
)
ERROR_NO_PREVIOUS_MACRO = (
    "Macro uses 'append' or 'override.condition: append' but no macro by that name already exists"
)
ERROR_NO_PREVIOUS_LIST = (
    "List uses 'append' or 'override.items: append' but no list by that name already exists"
)
ERROR_NO_PREVIOUS_RULE_APPEND = (
    "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists"
)
ERROR_NO_PREVIOUS_RULE_REPLACE = (
    "An 'override.<key>: replace' to a rule was requested but no rule by that name already exists"
)

_RGX_IDENTIFIER = "([a-zA-Z]+[a-zA-Z0-9_]*)"
_RGX_BARESTR = "([^()\"'\\s=,]+)"

_RULE_KEYS = frozenset(
    {
        "rule",
        "condition",
        "output",
        "desc",
        "priority",
        "source",
        "enabled",
        "capture",
        "capture_duration",
        "warn_evttypes",
        "skip-if-unknown-filter",
        "tags",
        "exceptions",
        "override",
        "append",
        "sequence",  # Stockade extension
    }
)
_RULE_APPEND = ("condition", "output", "desc", "tags", "exceptions")
_RULE_REPLACE = (
    "condition",
    "output",
    "desc",
    "priority",
    "capture",
    "capture_duration",
    "tags",
    "exceptions",
    "enabled",
    "warn_evttypes",
    "skip-if-unknown-filter",
)
_SINGLE_FIELD_COMPS = frozenset(("in", "pmatch", "intersects"))


class _ItemError(Exception):
    """A problem that stops reading the current item (Falco's rule_load_exception)."""

    def __init__(self, message: str, location: Location, code: str = "LOAD_ERR_YAML_VALIDATE") -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.code = code


def supported_comp(op: str) -> bool:
    """An operator libsinsp's parser accepts, or a string operator with a modifier (`startswith oneof`)."""
    if op in STR_OPS or op in NUM_OPS or op in LIST_OPS or op == "exists":
        return True
    base, _, mod = op.rpartition(" ")
    return mod in MODIFIERS and base.strip() in STR_OPS


def _version_tuple(v: str) -> tuple[int, int, int] | None:
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", v.strip())
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _compatible(have: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """libsinsp's sinsp_version::compatible_with: same major, at least the minor.patch wanted."""
    return have[0] == want[0] and have[1:] >= want[1:]


def _vstr(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v))


def _plugin_satisfies(name: str, version: str) -> bool:
    """Whether a built-in plugin `name` meets the required `version`."""
    have = BUILTIN_PLUGINS.get(name)
    have_v, want_v = _version_tuple(have) if have else None, _version_tuple(version)
    return have_v is not None and want_v is not None and _compatible(have_v, want_v)


def _validate_field_list(ex: ExceptionDef, fields: list[str], source: str, eloc: Location) -> None:
    """An exception with a list of fields: one comparison per field (default ``=``)."""
    from stockade.rules.resolve import valid_lhs_field

    if ex.comps is None:
        ex.comps = ["="] * len(fields)
    comps = ex.comps if isinstance(ex.comps, list) else [ex.comps]
    if len(comps) != len(fields):
        raise _ItemError("Fields and comps lists must have equal length", eloc, "LOAD_ERR_VALIDATE")
    ex.comps = [" ".join(str(c).split()) for c in comps]
    for c in ex.comps:
        if not supported_comp(c):
            raise _ItemError(f"'{c}' is not a supported comparison operator", eloc, "LOAD_ERR_VALIDATE")
    for f in fields:
        if not isinstance(f, str) or not valid_lhs_field(f, source):
            raise _ItemError(f"'{f}' is not a supported filter field", eloc, "LOAD_ERR_VALIDATE")


def _validate_single_field(ex: ExceptionDef, field: str, source: str, eloc: Location) -> None:
    """An exception with one field: a list comparison (default ``in``) or a modifier operator."""
    from stockade.rules.resolve import valid_lhs_field

    if ex.comps is None:
        ex.comps = "in"
    if isinstance(ex.comps, list):
        raise _ItemError("Fields and comps must both be strings", eloc, "LOAD_ERR_VALIDATE")
    ex.comps = " ".join(ex.comps.split())
    base, _, mod = ex.comps.rpartition(" ")
    if ex.comps not in _SINGLE_FIELD_COMPS and not (mod in MODIFIERS and base in STR_OPS):
        raise _ItemError(
            "When fields is a single value, comps must be one of (in, pmatch, intersects) or a "
            "modifier operator (e.g. startswith oneof)",
            eloc,
            "LOAD_ERR_VALIDATE",
        )
    if not valid_lhs_field(field, source):
        raise _ItemError(f"'{field}' is not a supported filter field", eloc, "LOAD_ERR_VALIDATE")


class _FileLoader:
    def __init__(self, rs: Ruleset, path: str, text: str) -> None:
        self.rs = rs
        self.path = path
        self.text = text

    # -- positions ------------------------------------------------------------------------------
    def loc(self, item: YMap, key: str | None = None, what: str | None = None) -> Location:
        if key is not None and key in item.marks:
            line, col, _ = item.marks[key]
            return Location(self.path, line, col, what)
        return Location(self.path, item.line, item.column, what)

    def cond_loc(self, item: YMap, key: str, what: str) -> Location:
        line, col, style = item.marks.get(key, (item.line, item.column, ""))
        if style in ("|", ">"):
            line, col = line + 1, 0  # block scalar: the text starts on the next line
        elif style in ('"', "'"):
            col += 1
        return Location(self.path, line, col, what)

    # -- Falco's decoders (decode_val, decode_seq) ------------------------------------------------
    def val(
        self, item: YMap, key: str, what: str | None, *, optional: bool = False, can_be_empty: bool = False
    ) -> str | None:
        if key not in item:
            if optional:
                return None
            raise _ItemError(f"Item has no mapping for key '{key}'", self.loc(item, None, what))
        v = item[key]
        if v is None:
            if can_be_empty:
                return None
            raise _ItemError(f"Mapping for key '{key}' is empty", self.loc(item, None, what))
        if not isinstance(v, str):
            raise _ItemError("Value is not a scalar value", self.loc(item, key, what))
        if v == "" and not can_be_empty:
            raise _ItemError("Value must be non-empty", self.loc(item, key, what))
        return v

    def bool_val(self, item: YMap, key: str, what: str | None, *, optional: bool = True) -> bool | None:
        s = self.val(item, key, what, optional=optional)
        if s is None:
            return None
        b = as_bool(s)
        if b is None:
            raise _ItemError("Can't decode YAML scalar value", self.loc(item, key, what))
        return b

    def seq(self, item: YMap, key: str, what: str | None, *, optional: bool) -> list[str] | None:
        if key not in item:
            if optional:
                return None
            raise _ItemError(f"Item has no mapping for key '{key}'", self.loc(item, None, what))
        v = item[key]
        if not isinstance(v, YSeq):
            raise _ItemError("Value is not a sequence", self.loc(item, key, what))
        if any(not isinstance(x, str) for x in v):
            raise _ItemError("sequence value is not scalar", self.loc(item, key, what))
        return v

    def overrides(
        self, item: YMap, appendable: Iterable[str], replaceable: Iterable[str], what: str
    ) -> tuple[list[str], list[str]]:
        ov = item.get("override")
        if "override" not in item:
            return [], []
        if not isinstance(ov, YMap):
            raise _ItemError(
                "'override' must map keys to append or replace", self.loc(item, "override", what)
            )
        app: list[str] = []
        rep: list[str] = []
        for key, how in ov.items():
            loc = self.loc(ov, key, what)
            if how == "append":
                if key not in appendable:
                    raise _ItemError(f"Key '{key}' cannot be appended to, use 'replace' instead", loc)
                app.append(key)
            elif how == "replace":
                if key not in replaceable:
                    raise _ItemError(f"Key '{key}' cannot be replaced", loc)
                rep.append(key)
            else:
                allowed = " ".join(
                    w for w, ok in (("append", key in appendable), ("replace", key in replaceable)) if ok
                )
                raise _ItemError(
                    f"Invalid override operation for key '{key}': '{how}'. Allowed values are: {allowed}", loc
                )
        return app, rep

    def warn_unknown_keys(self, item: YMap, expected: Iterable[str], loc: Location) -> None:
        for key in item:
            if key not in expected:
                self.rs.warn("LOAD_UNKNOWN_KEY", f"Unknown key '{key}'. The key will be ignored.", loc)

    # -- the file ---------------------------------------------------------------------------------
    def load(self) -> None:
        try:
            docs = load_all(self.text)
        except YamlError as e:
            self.rs.error("LOAD_ERR_YAML_PARSE", e.message, Location(self.path, e.line, e.column))
            return
        whole = Location(self.path)
        for doc in docs:
            if doc is None:
                continue  # an empty document
            if not isinstance(doc, YMap | YSeq):
                self.rs.error("LOAD_ERR_YAML_VALIDATE", "Rules content is not yaml", whole)
                continue
            if not isinstance(doc, YSeq):
                self.rs.error("LOAD_ERR_YAML_VALIDATE", "Rules content is not yaml array of objects", whole)
                continue
            for item in doc:
                if item is None:
                    continue  # a bare `-`: Falco skips null items
                try:
                    self.item(item, doc)
                except _ItemError as e:
                    self.rs.error(e.code, e.message, e.location)

    def item(self, item: Any, doc: YSeq) -> None:
        if not isinstance(item, YMap):
            raise _ItemError(
                "Unexpected element type. Each element should be a yaml associative array.",
                Location(self.path, doc.line, doc.column),
            )
        if "required_engine_version" in item:
            self.engine_version(item)
        elif "required_plugin_versions" in item:
            self.plugin_versions(item)
        elif "list" in item:
            self.list_item(item)
        elif "macro" in item:
            self.macro_item(item)
        elif "rule" in item:
            self.rule_item(item)
        else:
            self.rs.warn("LOAD_UNKNOWN_ITEM", "Unknown top level item", self.loc(item))

    # -- header items -----------------------------------------------------------------------------
    def engine_version(self, item: YMap) -> None:
        what = "required_engine_version"
        raw = self.val(item, "required_engine_version", what)
        assert raw is not None
        loc = self.loc(item, "required_engine_version", what)
        n = as_uint(raw)
        want = (0, n, 0) if n is not None else _version_tuple(raw)
        if want is None:
            raise _ItemError(
                f"Unable to parse engine version '{raw}' as a semver string. Expected \"x.y.z\" semver format.",
                loc,
            )
        self.rs.required_engine_versions.append((self.path, _vstr(want)))
        self.warn_unknown_keys(item, ("required_engine_version",), loc)
        if not _compatible(ENGINE_VERSION, want):
            raise _ItemError(
                f"Rules require engine version {_vstr(want)}, but engine version is {_vstr(ENGINE_VERSION)}",
                loc,
                "LOAD_ERR_VALIDATE",
            )

    def plugin_versions(self, item: YMap) -> None:
        """A required_plugin_versions item: each requirement checked and recorded (a warning for a
        plugin whose fields are not built in)."""
        what = "required_plugin_versions"
        raw = item["required_plugin_versions"]
        loc = self.loc(item, "required_plugin_versions", what)
        if not isinstance(raw, YSeq):
            raise _ItemError("Value of required_plugin_versions must be a sequence", loc)
        for req in raw:
            options = self._plugin_options(req, loc)
            satisfied_by = next((name for name, version in options if _plugin_satisfies(name, version)), None)
            first_name, first_version = options[0]
            self.rs.required_plugins.append(
                {
                    "file": self.path,
                    "name": first_name,
                    "version": first_version,
                    "alternatives": [n for n, _ in options[1:]],
                    "satisfied_by": satisfied_by,
                }
            )
            if satisfied_by is None:
                # Falco refuses to start without the plugin; Stockade has its plugins' fields built in
                self.rs.warn(
                    "LOAD_UNSUPPORTED_PLUGIN",
                    f"plugin requirement {first_name} {first_version} is not built in; rules that need "
                    "its fields will fail to load",
                    loc,
                )
        self.warn_unknown_keys(item, ("required_plugin_versions",), loc)

    def _plugin_options(self, req: Any, loc: Location) -> list[tuple[str, str]]:
        """One plugin requirement's (name, version) and its alternatives', checked."""
        what = "required_plugin_versions"
        if not isinstance(req, YMap):
            raise _ItemError("Plugin version must be a mapping", loc)
        options = [(self.val(req, "name", what), self.val(req, "version", what))]
        if "alternatives" in req:
            alts = req.get("alternatives")
            if not isinstance(alts, YSeq):
                raise _ItemError("Value of plugin version alternatives must be a sequence", loc)
            for alt in alts:
                if not isinstance(alt, YMap):
                    raise _ItemError("Plugin version alternative must be a mapping", loc)
                options.append((self.val(alt, "name", what), self.val(alt, "version", what)))
        names: set[str] = set()
        for name, version in options:
            if _version_tuple(str(version)) is None:
                raise _ItemError(
                    f"Invalid required version '{version}' for plugin '{name}'", loc, "LOAD_ERR_VALIDATE"
                )
            if str(name) in names:
                raise _ItemError(
                    f"Defined multiple alternative version requirements for plugin '{name}'",
                    loc,
                    "LOAD_ERR_VALIDATE",
                )
            names.add(str(name))
        return [(str(n), str(v)) for n, v in options]

    # -- lists ------------------------------------------------------------------------------------
    def list_item(self, item: YMap) -> None:
        name = self.val(item, "list", "list")
        assert name is not None
        what = f"list '{name}'"
        loc = self.loc(item, "list", what)
        if not re.fullmatch(_RGX_BARESTR, name):
            self.rs.warn(
                "LOAD_INVALID_LIST_NAME",
                f"List has an invalid name. List names should match a regular expression: {_RGX_BARESTR}",
                loc,
            )
        items = self.seq(item, "items", what, optional=False)
        assert items is not None
        append = self.bool_val(item, "append", what) or False
        if append:
            self.rs.warn("LOAD_DEPRECATED_ITEM", WARNING_APPEND, loc)
        app, rep = self.overrides(item, ("items",), ("items",), what)
        if append and (app or rep):
            raise _ItemError(ERROR_OVERRIDE_APPEND, loc)
        seq = self.rs.next_seq()
        if append or app:
            prev = self.rs.lists.get(name)
            if prev is None:
                raise _ItemError(ERROR_NO_PREVIOUS_LIST, loc, "LOAD_ERR_VALIDATE")
            prev.items.extend(items)
            prev.visibility = seq
        else:
            prev = self.rs.lists.get(name)
            index = prev.index if prev is not None else seq
            self.rs.lists[name] = ListDef(name, list(items), loc, index=index, visibility=seq)
        self.warn_unknown_keys(item, ("list", "items", "append", "override"), loc)

    # -- macros -----------------------------------------------------------------------------------
    def macro_item(self, item: YMap) -> None:
        name = self.val(item, "macro", "macro")
        assert name is not None
        what = f"macro '{name}'"
        loc = self.loc(item, "macro", what)
        if not re.fullmatch(_RGX_IDENTIFIER, name):
            self.rs.warn(
                "LOAD_INVALID_MACRO_NAME",
                f"Macro has an invalid name. Macro names should match a regular expression: {_RGX_IDENTIFIER}",
                loc,
            )
        cond = self.val(item, "condition", what)
        assert cond is not None
        append = self.bool_val(item, "append", what) or False
        if append:
            self.rs.warn("LOAD_DEPRECATED_ITEM", WARNING_APPEND, loc)
        app, rep = self.overrides(item, ("condition",), ("condition",), what)
        if append and (app or rep):
            raise _ItemError(ERROR_OVERRIDE_APPEND, loc)
        seq = self.rs.next_seq()
        prev = self.rs.macros.get(name)
        if append or app:
            if prev is None:
                raise _ItemError(ERROR_NO_PREVIOUS_MACRO, loc, "LOAD_ERR_VALIDATE")
            prev.condition = f"{prev.condition} {cond}"
            prev.cond_location = None  # positions no longer map to one place
            prev.visibility = seq
        else:
            index = prev.index if prev is not None else seq
            self.rs.macros[name] = MacroDef(
                name, cond, loc, self.cond_loc(item, "condition", what), index=index, visibility=seq
            )
        self.warn_unknown_keys(item, ("macro", "condition", "append", "override"), loc)

    # -- rules ------------------------------------------------------------------------------------
    def rule_item(self, item: YMap) -> None:
        name = self.val(item, "rule", "rule")
        assert name is not None
        what = f"rule '{name}'"
        loc = self.loc(item, "rule", what)
        source = self.val(item, "source", what, optional=True, can_be_empty=True) or ""
        append = self.bool_val(item, "append", what) or False
        if append:
            self.rs.warn("LOAD_DEPRECATED_ITEM", WARNING_APPEND, loc)
        app, rep = self.overrides(item, _RULE_APPEND, _RULE_REPLACE, what)
        if append and (app or rep):
            raise _ItemError(ERROR_OVERRIDE_APPEND, loc)
        if app or rep:
            self._check_override_keys(item, app, rep, what, loc)
            if app:
                self.append_rule(item, name, source, app, what, loc)
            if rep:
                self.replace_rule(item, name, source, rep, what, loc)
        elif append:
            keys = [k for k in ("condition", "exceptions") if k in item]
            self.append_rule(item, name, source, keys, what, loc)
        elif not any(k in item for k in ("condition", "output", "desc", "priority", "sequence")):
            self._enable_rule(item, name, what, loc)
        else:
            self.define_rule(item, name, what, loc)
        self.warn_unknown_keys(item, _RULE_KEYS, loc)

    def _check_override_keys(
        self, item: YMap, app: list[str], rep: list[str], what: str, loc: Location
    ) -> None:
        """Every key an override names is in the item, and every overridable key is named."""
        expected = {k for k in (*_RULE_APPEND, *_RULE_REPLACE) if k in item}
        for how, keys in (("append", app), ("replace", rep)):
            for k in keys:
                if k not in expected:
                    raise _ItemError(
                        f"An {how} override for '{k}' was specified but '{k}' is not defined", loc
                    )
                expected.discard(k)
        for k in sorted(expected):
            raise _ItemError(
                f"Unexpected key '{k}': no corresponding entry under 'override' is defined.",
                self.loc(item, k, what),
            )

    def _enable_rule(self, item: YMap, name: str, what: str, loc: Location) -> None:
        """A rule item with only `enabled` (deprecated): enables or disables an earlier rule."""
        enabled = self.bool_val(item, "enabled", what, optional=False)
        self.rs.warn("LOAD_DEPRECATED_ITEM", WARNING_ENABLED, loc)
        prev = self.rs.rules.get(name)
        if prev is None:
            raise _ItemError(
                "Rule has 'enabled' key but no rule by that name already exists", loc, "LOAD_ERR_VALIDATE"
            )
        prev.enabled = bool(enabled)

    def _prev_rule(self, name: str, source: str, loc: Location) -> RuleDef | None:
        prev = self.rs.rules.get(name)
        if prev is not None and source and prev.source != source:
            raise _ItemError("Rule has been re-defined with a different source", loc, "LOAD_ERR_VALIDATE")
        return prev

    def define_rule(self, item: YMap, name: str, what: str, loc: Location) -> None:
        seq_def = self._sequence(item, what) if "sequence" in item else None
        cond = "" if seq_def is not None else self.val(item, "condition", what)
        output = self.val(item, "output", what)
        desc = self.val(item, "desc", what)
        prio_text = self.val(item, "priority", what)
        prio = normalize_priority(str(prio_text))
        if prio is None:
            raise _ItemError("Invalid priority", self.loc(item, "priority", what))
        source = self.val(item, "source", what, optional=True) or "syscall"
        enabled = self.bool_val(item, "enabled", what)
        self.bool_val(item, "capture", what)
        duration = self.val(item, "capture_duration", what, optional=True)
        if duration is not None and as_uint(duration) is None:
            raise _ItemError("Can't decode YAML scalar value", self.loc(item, "capture_duration", what))
        warn_evttypes = self.bool_val(item, "warn_evttypes", what)
        skip = self.bool_val(item, "skip-if-unknown-filter", what)
        tags = self.seq(item, "tags", what, optional=True) or []
        exceptions = self._exceptions(item, what, append=False)
        if "condition" in item and seq_def is not None:
            raise _ItemError(
                "a rule has either 'condition' or 'sequence', not both", loc, "LOAD_ERR_VALIDATE"
            )
        prev = self._prev_rule(name, source, loc)
        if source not in _known_sources():
            self.rs.warn("LOAD_UNKNOWN_SOURCE", f"Unknown source {source}, skipping", loc)
        else:
            for ex in exceptions:
                self._validate_exception(ex, source, loc)
        rule = RuleDef(
            name=name,
            condition=cond or "",
            output=str(output).strip(),
            priority=prio,
            desc=str(desc),
            source=source,
            tags=list(dict.fromkeys(tags)),
            enabled=True if enabled is None else enabled,
            exceptions=exceptions,
            location=loc,
            cond_location=self.cond_loc(item, "condition", what) if "condition" in item else None,
            output_location=self.cond_loc(item, "output", what),
            sequence=seq_def,
            warn_evttypes=True if warn_evttypes is None else warn_evttypes,
            skip_if_unknown_filter=bool(skip),
        )
        # a redefinition replaces the rule and keeps the place of the first definition (as Falco)
        rule.index = prev.index if prev is not None else len(self.rs.rules)
        self.rs.rules[name] = rule

    def append_rule(
        self, item: YMap, name: str, source: str, keys: list[str], what: str, loc: Location
    ) -> None:
        values = self._update_values(item, keys, what, append=True)
        prev = self._prev_rule(name, source, loc)
        if prev is None:
            raise _ItemError(ERROR_NO_PREVIOUS_RULE_APPEND, loc, "LOAD_ERR_VALIDATE")
        if not values:
            raise _ItemError(
                "Appended rule must have exceptions or condition property", loc, "LOAD_ERR_VALIDATE"
            )
        for key, val in values.items():
            if key == "condition" and val:
                prev.condition = f"{prev.condition} {val}"
                prev.cond_location = None
            elif key == "output" and val:
                prev.output = f"{prev.output} {val}"
                prev.output_location = None
            elif key == "desc" and val:
                prev.desc = f"{prev.desc} {val}"
            elif key == "tags":
                prev.tags = list(dict.fromkeys([*prev.tags, *val]))
            elif key == "exceptions":
                self._append_exceptions(prev, val, loc)

    def _append_exceptions(self, prev: RuleDef, exceptions: list[ExceptionDef], loc: Location) -> None:
        """Appended exceptions: a new one is added (complete), an existing one gets more values."""
        by_name = {e.name: e for e in prev.exceptions}
        for ex in exceptions:
            old = by_name.get(ex.name)
            if old is not None:
                if ex.has_fields:
                    raise _ItemError(
                        "Can not append exception fields to existing exception, only values",
                        loc,
                        "LOAD_ERR_VALIDATE",
                    )
                if ex.comps is not None:
                    raise _ItemError(
                        "Can not append exception comps to existing exception, only values",
                        loc,
                        "LOAD_ERR_VALIDATE",
                    )
                old.values.extend(ex.values)
                continue
            if not ex.has_fields:
                raise _ItemError(
                    "Rule exception must have fields property with a list of fields", loc, "LOAD_ERR_VALIDATE"
                )
            if not ex.values:
                raise _ItemError(
                    "Rule exception must have values property with a list of values", loc, "LOAD_ERR_VALIDATE"
                )
            if prev.source in _known_sources():
                self._validate_exception(ex, prev.source, loc)
            prev.exceptions.append(ex)
            by_name[ex.name] = ex

    def replace_rule(
        self, item: YMap, name: str, source: str, keys: list[str], what: str, loc: Location
    ) -> None:
        values = self._update_values(item, keys, what, append=False)
        prev = self._prev_rule(name, source, loc)
        if prev is None:
            raise _ItemError(ERROR_NO_PREVIOUS_RULE_REPLACE, loc, "LOAD_ERR_VALIDATE")
        for key, val in values.items():
            if key == "condition":
                prev.condition = val
                prev.cond_location = self.cond_loc(item, "condition", what)
            elif key == "output":
                prev.output = val
                prev.output_location = self.cond_loc(item, "output", what)
            elif key == "exceptions":
                if prev.source in _known_sources():
                    for ex in val:
                        self._validate_exception(ex, prev.source, loc)
                prev.exceptions = val
            elif key in ("capture", "capture_duration"):
                continue
            elif key == "skip-if-unknown-filter":
                prev.skip_if_unknown_filter = val
            else:
                setattr(prev, key, val)

    def _update_values(self, item: YMap, keys: list[str], what: str, *, append: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in keys:
            if key in ("condition", "output", "desc"):
                v = self.val(item, key, what)
                out[key] = v.strip() if key == "output" and v else v
            elif key == "tags":
                out[key] = list(self.seq(item, key, what, optional=True) or [])
            elif key == "exceptions":
                out[key] = self._exceptions(item, what, append=append)
            elif key == "priority":
                p = normalize_priority(str(self.val(item, key, what)))
                if p is None:
                    raise _ItemError("Invalid priority", self.loc(item, "priority", what))
                out[key] = p
            elif key == "capture_duration":
                v = self.val(item, key, what)
                if as_uint(v) is None:
                    raise _ItemError("Can't decode YAML scalar value", self.loc(item, key, what))
                out[key] = v
            else:  # enabled, capture, warn_evttypes, skip-if-unknown-filter
                out[key] = self.bool_val(item, key, what, optional=False)
        return out

    # -- exceptions -------------------------------------------------------------------------------
    def _exceptions(self, item: YMap, what: str, *, append: bool) -> list[ExceptionDef]:
        raw = item.get("exceptions")
        if raw is None:
            return []
        loc = self.loc(item, "exceptions", what)
        if not isinstance(raw, YSeq):
            raise _ItemError("Rule exceptions must be a sequence", loc)
        out: list[ExceptionDef] = []
        for ex in raw:
            if not isinstance(ex, YMap):
                raise _ItemError("Rule exception must be a mapping", loc)
            exname = self.val(ex, "name", what)
            eloc = Location(self.path, ex.line, ex.column, f"{what} exception '{exname}'")
            if any(e.name == exname for e in out):
                self.rs.warn(
                    "LOAD_EXCEPTION_NAME_NOT_UNIQUE",
                    f"Multiple definitions of exception '{exname}' in the same rule",
                    eloc,
                )
            if "fields" not in ex and not append:
                raise _ItemError("Item has no mapping for key 'fields'", eloc)
            fields = self._entry(ex.get("fields"), eloc)
            comps = self._entry(ex.get("comps"), eloc)
            values: list[Any] = []
            if "values" in ex:
                vals = ex["values"]
                if not isinstance(vals, YSeq):
                    raise _ItemError("Rule exception values must be a sequence", eloc)
                values = [self._entry(v, eloc, top=False) for v in vals]
            elif append:
                self.rs.warn("LOAD_APPEND_NO_VALUES", "Overriding/appending exception with no values", eloc)
            out.append(ExceptionDef(str(exname), fields if fields is not None else [], comps, values, eloc))
        return out

    def _entry(self, v: Any, loc: Location, top: bool = True) -> Any:
        """An exception's fields, comps or value: text, or a list of entries (Falco's rule_exception_info)."""
        if v is None:
            return None if top else ""
        if isinstance(v, str):
            if v == "" and top:
                raise _ItemError("Value must be non-empty", loc)
            return v
        if isinstance(v, YSeq):
            return [self._entry(x, loc, top=False) for x in v]
        return None if top else ""

    def _validate_exception(self, ex: ExceptionDef, source: str, loc: Location) -> None:
        """An exception's fields exist for `source` and its comparisons are ones it may use
        (normalised in place; the default comparison filled in)."""
        eloc = ex.location or loc
        if not ex.has_fields:
            raise _ItemError(
                "Rule exception item must have fields property with a list of fields",
                eloc,
                "LOAD_ERR_VALIDATE",
            )
        if isinstance(ex.fields, list):
            _validate_field_list(ex, ex.fields, source, eloc)
        else:
            _validate_single_field(ex, ex.fields, source, eloc)

    # -- sequences (Stockade extension) -----------------------------------------------------------
    def _sequence(self, item: YMap, what: str) -> SequenceDef:
        raw = item["sequence"]
        loc = self.loc(item, "sequence", what)
        if not isinstance(raw, YMap):
            raise _ItemError("'sequence' must be a mapping with by, within, steps", loc)
        steps = raw.get("steps")
        if not isinstance(steps, YSeq) or len(steps) < 2:
            raise _ItemError("'sequence.steps' must list at least two steps", loc, "LOAD_ERR_VALIDATE")
        out_steps = []
        for i, s in enumerate(steps):
            cond = s.get("condition") if isinstance(s, YMap) else s if isinstance(s, str) else None
            if not isinstance(cond, str) or not cond:
                raise _ItemError(f"sequence step {i + 1} needs a 'condition'", loc, "LOAD_ERR_VALIDATE")
            out_steps.append(SequenceStep(cond))
        by = raw.get("by") or "container.id"
        within_text = raw.get("within") or "60s"
        try:
            within = parse_duration_s(str(within_text))
        except Exception:
            raise _ItemError(
                f"'sequence.within' is not a duration: {within_text!r}", loc, "LOAD_ERR_VALIDATE"
            ) from None
        ordered = as_bool(raw["ordered"]) if "ordered" in raw else True
        if ordered is None:
            raise _ItemError(
                f"'sequence.ordered' must be true or false, not {raw['ordered']!r}", loc, "LOAD_ERR_VALIDATE"
            )
        return SequenceDef(str(by), within, out_steps, ordered)


def _known_sources() -> tuple[str, ...]:
    from stockade.rules.ruleset import SOURCES

    return SOURCES


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
                rs.error("LOAD_ERR_FILE_READ", "no such rules file", Location(name))
                continue
            except (OSError, UnicodeDecodeError) as e:
                rs.error("LOAD_ERR_FILE_READ", f"cannot read rules file: {e}", Location(name))
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
