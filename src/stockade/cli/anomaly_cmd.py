"""`stockade anomaly train|score`: sequence models of normal syscall traces, offline (docs/anomaly.md).

Contracts:

* ``stockade anomaly train --format adfa DIR --model FILE`` learns a model from the normal traces
  in DIR (one trace per file, syscall numbers separated by white space) and writes it to FILE;
* ``stockade anomaly score --format adfa --model FILE PATH... --output json`` prints one JSON
  object per trace, one per line: ``{"trace": "<path>", "score": <float>}`` (higher = more
  anomalous); ``--details`` adds ``anomalous``, ``threshold`` and ``unusual``. A trace file that
  cannot be read is reported on standard error and the others are scored (exit 1 at the end).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stockade.anomaly import modelfile
from stockade.anomaly.adfa import read_traces
from stockade.anomaly.interface import WindowScore
from stockade.anomaly.kinds import DEFAULT_KIND, KINDS, Model
from stockade.anomaly.ngram import DEFAULT_MAX_NGRAMS, MAX_ORDER
from stockade.anomaly.threshold import DEFAULT_FOLDS, DEFAULT_QUANTILE
from stockade.anomaly.training import Trained, train
from stockade.cli import common
from stockade.errors import SourceError, UsageError

anomaly_app = typer.Typer(
    help="Anomaly models of syscall sequences: train on normal traces, score traces.", no_args_is_help=True
)

#: the trace formats `--format` names
FORMATS = ("adfa",)

FormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="Trace format: adfa (one trace per file, syscall numbers).")
]
ModelOpt = Annotated[
    str, typer.Option("--model", "-m", metavar="FILE", help="The model file (JSON; .gz: gzip).")
]


@anomaly_app.command("train")
def train_cmd(
    paths: Annotated[
        list[str], typer.Argument(metavar="DIR...", help="Normal traces: directories, files or .tar.gz.")
    ],
    model: ModelOpt,
    fmt: FormatOpt = "adfa",
    kind: Annotated[str, typer.Option("--kind", help=f"The model: {', '.join(KINDS)}.")] = DEFAULT_KIND,
    order: Annotated[
        int | None,
        typer.Option("--order", min=1, max=MAX_ORDER, help="Longest n-gram (default: the kind's)."),
    ] = None,
    max_ngrams: Annotated[
        int, typer.Option("--max-ngrams", min=1, help="Cap on distinct n-grams (bounds memory).")
    ] = DEFAULT_MAX_NGRAMS,
    quantile: Annotated[
        float, typer.Option("--quantile", min=0.5, max=1.0, help="Threshold: this quantile of normal scores.")
    ] = DEFAULT_QUANTILE,
    folds: Annotated[
        int,
        typer.Option("--folds", min=0, help="Folds of held-out normal scores for the threshold (0: none)."),
    ] = DEFAULT_FOLDS,
    output: str | None = common.OutputOpt,
) -> None:
    """Learn a model of the normal traces in DIR, with its alert threshold, and write it to FILE."""
    out = common.output_format(output)
    common.check_choice(fmt, "--format", FORMATS)
    common.check_choice(kind, "--kind", tuple(KINDS))
    traces = list(read_traces(paths))
    if not traces:
        raise UsageError(f"no trace files in {', '.join(paths)}")
    trained = train([t.syscalls for t in traces], kind, order, max_ngrams, quantile, folds)
    modelfile.save(trained.model, model)
    summary = _summary(trained, model)
    if trained.model.counts.dropped:
        common.print_error(
            f"warning: the n-gram cap ({max_ngrams:,}) was reached: {trained.model.counts.dropped:,} "
            "n-grams were not learned (--max-ngrams, or a lower --order)"
        )
    common.emit(summary, _summary_text(summary), out)


def _summary(trained: Trained, path: str) -> dict[str, Any]:
    m, cal = trained.model, trained.calibration
    c = m.counts
    return {
        "model": path,
        "kind": m.kind,
        "order": m.order,
        "traces": c.sequences,
        "syscalls": c.symbols,
        "vocabulary": len(c.vocab),
        "ngrams": c.size,
        "max_ngrams": c.max_ngrams,
        "dropped": c.dropped,
        "threshold": cal.threshold if cal else None,
        "quantile": cal.quantile if cal else None,
        "fit_seconds": round(trained.fit_s, 3),
        "threshold_seconds": round(trained.calibrate_s, 3),
    }


def _summary_text(s: dict[str, Any]) -> str:
    lines = [
        f"learned {s['kind']} (order {s['order']}) from {s['traces']:,} traces, {s['syscalls']:,} syscalls: "
        f"{s['ngrams']:,} n-grams (cap {s['max_ngrams']:,}), {s['vocabulary']} distinct syscalls",
    ]
    if s["threshold"] is not None:
        lines.append(
            f"threshold {s['threshold']:.4g}: the {s['quantile']:.4g} quantile of held-out normal scores"
        )
    lines.append(f"wrote {s['model']}")
    return "\n".join(lines)


@anomaly_app.command("score")
def score_cmd(
    paths: Annotated[
        list[str], typer.Argument(metavar="PATH...", help="Traces: files, directories (every file), .tar.gz.")
    ],
    model: ModelOpt,
    fmt: FormatOpt = "adfa",
    details: Annotated[
        bool, typer.Option("--details", help="JSON: add anomalous, threshold and the unusual part.")
    ] = False,
    output: str | None = common.OutputOpt,
) -> None:
    """Score traces: one line per trace, higher = more anomalous (above the threshold: anomalous)."""
    out = common.output_format(output)
    common.check_choice(fmt, "--format", FORMATS)
    if not Path(model).exists():
        raise UsageError(f"{model}: no such model file")
    m = modelfile.load(model)
    bad: list[SourceError] = []

    def problem(e: SourceError) -> None:
        bad.append(e)
        common.print_error(str(e))

    rows: list[tuple[str, WindowScore]] = []
    for t in read_traces(paths, on_error=problem):
        ws = m.score_window(t.syscalls)
        if out == "json":
            common.json_line(_score_json(t.name, ws, m, details))
        else:
            rows.append((t.name, ws))
    if out == "text":
        _score_table(rows, m)
    if bad:
        raise typer.Exit(1)


def _anomalous(score: float, m: Model) -> bool | None:
    return None if m.calibration is None else score > m.calibration.threshold


def _score_json(name: str, ws: WindowScore, m: Model, details: bool) -> dict[str, Any]:
    obj: dict[str, Any] = {"trace": name, "score": ws.score}
    if details:
        obj["anomalous"] = _anomalous(ws.score, m)
        obj["threshold"] = m.calibration.threshold if m.calibration else None
        obj["unusual"] = list(ws.unusual)
    return obj


def _score_table(rows: list[tuple[str, WindowScore]], m: Model) -> None:
    if not rows:
        common.console.print("no traces", markup=False)
        return
    table = common.listing_table()
    for col in ("TRACE", "SCORE", "ANOMALOUS", "MOST UNUSUAL"):
        table.add_column(col)
    for name, ws in rows:
        flag = _anomalous(ws.score, m)
        table.add_row(
            name,
            f"{ws.score:.4f}",
            "-" if flag is None else ("yes" if flag else "no"),
            " ".join(str(s) for s in ws.unusual) or "-",
        )
    common.print_table(table)
    if m.calibration is not None:
        n = sum(ws.score > m.calibration.threshold for _, ws in rows)
        common.console.print(
            f"{n} of {len(rows)} traces above the threshold {m.calibration.threshold:.4g}", markup=False
        )


def register(app: typer.Typer) -> None:
    """Add `stockade anomaly` to the command line."""
    app.add_typer(anomaly_app, name="anomaly")
