"""The engine a configuration asks for: its rule files (or the default rules), its engine options,
through the compiled-rules cache when asked. What `stockade replay`, `stockade up`, the agent and a
rules reload all build."""

from __future__ import annotations

from pathlib import Path

from stockade.config import AppendOutputConfig, StockadeConfig, unknown_names
from stockade.engine.append_output import AppendOutput
from stockade.engine.cache import load_engine
from stockade.engine.engine import Engine
from stockade.errors import ConfigError, Location
from stockade.rules.defaults import default_rule_paths, expand_rule_paths

__all__ = ["append_output_spec", "build_engine", "check_disabled"]


def build_engine(
    cfg: StockadeConfig,
    rules: list[str] | None,
    rule_matching: str | None = None,
    min_priority: str | None = None,
    cache_dir: Path | None = None,
) -> tuple[Engine, list[str]]:
    """The engine for `rules` (default: the configured default rules) and notes for the user;
    through the compiled-rules cache (:mod:`stockade.engine.cache`) in `cache_dir` (None: none;
    the user's is :func:`default_cache_dir`, the node's :func:`node_cache_dir`).

    A disabled rule or tag that names nothing is a :class:`ConfigError` blaming where it was set
    with the default rules, a note with ``--rules`` files (which may simply not hold it)."""
    notes: list[str] = []
    if rules:
        paths = expand_rule_paths(rules)
    else:
        paths, notes = default_rule_paths(cfg)
    problems: list[str] = []

    def check(engine: Engine) -> None:
        problems[:] = check_disabled(cfg, engine)
        if problems and not rules:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            # "key 'engine.disabled_rules': ..." -> where that key was set (file, variable or flag): ...
            key, _, what = problems[0].partition(": ")
            raise ConfigError(what + more, Location(cfg.describe(key.removeprefix("key ").strip("'"))))

    engine = load_engine(
        paths,
        cache_dir=cache_dir,
        rule_matching=rule_matching or cfg.engine.rule_matching,
        hostname=cfg.hostname,
        min_priority=min_priority or cfg.engine.min_priority,
        disabled_rules=cfg.engine.disabled_rules,
        disabled_tags=cfg.engine.disabled_tags,
        append_output=[append_output_spec(a) for a in cfg.engine.append_output],
        check=check,
    )
    notes.extend(f"{p} (ignored: not in the --rules files)" for p in problems)
    return engine, notes


def check_disabled(cfg: StockadeConfig, engine: Engine) -> list[str]:
    """engine.disabled_rules / disabled_tags naming no loaded rule or tag (a typo disables nothing)."""
    rules = engine.ruleset.rules
    tags = {t for r in rules.values() for t in r.tags}
    e = cfg.engine
    return unknown_names("engine.disabled_rules", e.disabled_rules, set(rules), "rule") + unknown_names(
        "engine.disabled_tags", e.disabled_tags, tags, "tag"
    )


def append_output_spec(a: AppendOutputConfig) -> AppendOutput:
    """The engine's :class:`AppendOutput` for one ``engine.append_output`` entry of the configuration."""
    names = tuple(f for f in a.extra_fields if isinstance(f, str))
    static = tuple((k, str(v)) for f in a.extra_fields if isinstance(f, dict) for k, v in f.items())
    return AppendOutput(
        source=a.match.source,
        tags=frozenset(a.match.tags),
        rule=a.match.rule,
        extra_output=a.extra_output,
        compact=a.compact,
        extra_fields=names,
        static_fields=static,
    )
