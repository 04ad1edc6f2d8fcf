"""Offline runs: replay recordings through the pipeline (what `stockade replay` does)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from stockade.config import StockadeConfig
from stockade.engine.build import build_engine
from stockade.engine.cache import default_cache_dir
from stockade.errors import SourceError
from stockade.model.event import Event
from stockade.runtime.pipeline import Pipeline
from stockade.sinks.stdout import StdoutSink
from stockade.sources.detect import open_input
from stockade.sources.registry import open_source


@dataclass(slots=True)
class ReplayReport:
    """What a replay did: per input, events, malformed records and problems; alerts and errors."""

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
        """The report as the lines `stockade replay` prints on standard error."""
        out = list(self.notes)
        for f, src, n, bad, errors in self.inputs:
            line = f"replayed {n} events from {f} (source {src})"
            if bad:
                line += f"; {bad} malformed records skipped"
            out.append(line)
            out.extend(f"  {e}" for e in errors)
        tail = f"{self.alerts} alerts from {self.rules_loaded} rules"
        if self.eval_errors:
            tail += f"; {self.eval_errors} rule evaluation errors"
        if self.delivery_errors:
            tail += f"; {self.delivery_errors} alerts failed to print"
        out.append(tail)
        return out


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
    """Replay recordings through one pipeline to standard output (`stockade replay`); what it did."""
    engine, notes = build_engine(
        cfg, rules, rule_matching, min_priority, cache_dir=default_cache_dir() if rules_cache else None
    )
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


def recorded_events(files: list[str], problems: list[str], *, source: str | None = None) -> Iterator[Event]:
    """The events of recordings (any format `stockade replay` reads), in order; an input that
    cannot be read, and the malformed records of one, are said in `problems` (never silently)."""
    for f in files:
        try:
            if source is None:
                name, stream = open_input(f)
                with stream:
                    src = open_source(name, stream, name_hint=f)
                    yield from src.events()
            else:
                src = open_source(source, f)
                yield from src.events()
        except SourceError as e:
            problems.append(str(e))
            continue
        st = src.stats
        if st.malformed:
            problems.append(f"{f}: {st.malformed} malformed records skipped")
            problems.extend(f"  {e}" for e in st.errors[:5])
