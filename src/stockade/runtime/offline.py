"""Offline runs: replay recordings through the pipeline (what `stockade replay` does)."""

from __future__ import annotations

from dataclasses import dataclass, field

from stockade.config import AppendOutputConfig, StockadeConfig, unknown_names
from stockade.engine import Engine
from stockade.engine.append_output import AppendOutput
from stockade.engine.cache import default_cache_dir, load_engine
from stockade.errors import ConfigError, Location, SourceError
from stockade.rules.defaults import default_rule_paths, expand_rule_paths
from stockade.runtime.pipeline import Pipeline
from stockade.sinks.stdout import StdoutSink
from stockade.sources.detect import open_input
from stockade.sources.registry import open_source


@dataclass(slots=True)
class ReplayReport:
    inputs: list[tuple[str, str, int, int, list[str]]] = field(
        default_factory=list
    )  # file, source, events, bad, errors
    failed_inputs: list[str] = field(default_factory=list)
    alerts: int = 0
    notes: list[str] = field(default_factory=list)
    rules_loaded: int = 0
    eval_errors: int = 0
    delivery_errors: int = 0

    def summary_lines(self) -> list[str]:
        out = list(self.notes)
        for f, src, n, bad, errors in self.inputs:
            line = f"replayed {n} events from {f} (source {src})"
            if bad:
                line += f"; {bad} malformed records skipped"
            out.append(line)
            out.extend(f"  {e}" for e in errors)
        out.extend(f"error: {f}" for f in self.failed_inputs)
        tail = f"{self.alerts} alerts from {self.rules_loaded} rules"
        if self.eval_errors:
            tail += f"; {self.eval_errors} rule evaluation errors"
        if self.delivery_errors:
            tail += f"; {self.delivery_errors} alerts failed to print"
        out.append(tail)
        return out


def build_engine(
    cfg: StockadeConfig,
    rules: list[str] | None,
    rule_matching: str | None = None,
    min_priority: str | None = None,
    rules_cache: bool = False,
) -> tuple[Engine, list[str]]:
    """The engine for `rules` (default: the configured default rules); `rules_cache`: through the
    compiled-rules cache (:mod:`stockade.engine.cache`)."""
    notes: list[str] = []
    if rules:
        paths = expand_rule_paths(rules)
    else:
        paths, notes = default_rule_paths(cfg)
    engine = load_engine(
        paths,
        cache_dir=default_cache_dir() if rules_cache else None,
        rule_matching=rule_matching or cfg.engine.rule_matching,
        hostname=cfg.hostname,
        min_priority=min_priority or cfg.engine.min_priority,
        disabled_rules=cfg.engine.disabled_rules,
        disabled_tags=cfg.engine.disabled_tags,
        append_output=[append_output_spec(a) for a in cfg.engine.append_output],
    )
    problems = check_disabled(cfg, engine)
    if problems and not rules:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        # "key 'engine.disabled_rules': ..." -> where that key was set (file, variable or flag): ...
        key, _, what = problems[0].partition(": ")
        raise ConfigError(what + more, Location(cfg.describe(key.removeprefix("key ").strip("'"))))
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


def replay_files(
    cfg: StockadeConfig,
    files: list[str],
    *,
    source: str | None = None,
    rules: list[str] | None = None,
    output_format: str = "json",
    rule_matching: str | None = None,
    min_priority: str | None = None,
    aggregate_window_s: float = 0.0,
    rules_cache: bool = True,
) -> ReplayReport:
    engine, notes = build_engine(cfg, rules, rule_matching, min_priority, rules_cache)
    report = ReplayReport(notes=notes, rules_loaded=engine.active_rules)
    sink = StdoutSink(format=output_format)
    pipe = Pipeline(engine, [sink], aggregate_window_s=aggregate_window_s)
    for f in files:
        try:
            if source is None:
                name, stream = open_input(f)
                with stream:
                    src = open_source(name, stream, name_hint=f)
                    pipe.run(src)
            else:
                name = source
                src = open_source(source, f)
                pipe.run(src)
        except SourceError as e:
            report.failed_inputs.append(str(e))
            continue
        except OSError as e:
            report.failed_inputs.append(f"{f}: {e.strerror or e}")
            continue
        errors = list(src.stats.errors)
        skipped = getattr(src, "skipped", None)
        if skipped:
            errors.append(f"skipped (kinds not mapped): {skipped}")
        dropped = getattr(src, "dropped_upstream", None)
        if dropped:
            errors.append(f"dropped upstream (reported by the producer): {dropped}")
        report.inputs.append((f, name, src.stats.events, src.stats.malformed, errors))
    pipe.close()
    sink.close()
    report.alerts = pipe.stats.alerts
    report.eval_errors = engine.stats.eval_errors
    report.delivery_errors = pipe.stats.delivery_errors
    return report
