"""ADFA-LD: the sequence models against STIDE, trained on normal traces only, scored on dev.

One command::

    .venv/bin/python benchmarks/adfa_ld.py [--data DIR] [--order N] [--window N] [--max-ngrams N]
                                           [--quantile Q] [--window-size W] [--select N]
                                           [--cpu N | --no-pin] [--json]

What it does: reads ``training.tar.gz`` (833 normal traces) and ``dev.tar.gz`` (normal traces under
``dev/normal/``, attacks under ``dev/attack/<Family>_<n>/``) from ``--data`` (default: the
workplace's ``shared/data/adfa-ld``), pins itself to one CPU, and for each model (the Kneser-Ney
n-gram model, then STIDE, in the same run):

* trains on the training traces only (the normal ones), then learns the threshold (the
  ``--quantile`` of 5-fold out-of-fold scores of those same training traces): CPU seconds of each;
* scores every dev trace: CPU seconds, traces/s and syscalls/s; then, as the agent would, every
  dev trace cut in windows of ``--window-size`` syscalls (each with the ``order - 1`` before it):
  CPU per ``score_window``;
* prints the ROC AUC (normal dev traces against all attacks, and against each family), the
  detection rate at 1 %, 5 % and 10 % false alarms (threshold set on the dev normal scores), and at
  the model's own threshold the false-alarm rate on dev normal traces and the detection rate.

``--select N`` first prints the normal-only criterion the order was chosen by: for orders 1 .. N,
the held-out bits per syscall of 5-fold cross-validated training traces, and the n-grams an order
needs. Nothing in dev is used to choose anything.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness

from stockade.anomaly.adfa import Trace, read_traces
from stockade.anomaly.kinds import Model
from stockade.anomaly.metrics import auc, detection_at
from stockade.anomaly.ngram import DEFAULT_MAX_NGRAMS, NgramCounts
from stockade.anomaly.selection import heldout_bits
from stockade.anomaly.smoothed import DEFAULT_ORDER, KneserNeyModel
from stockade.anomaly.stide import DEFAULT_WINDOW, StideModel
from stockade.anomaly.threshold import DEFAULT_QUANTILE
from stockade.anomaly.training import train

DATA = harness.REPO.parent / "shared" / "data" / "adfa-ld"
FALSE_ALARMS = (0.01, 0.05, 0.10)
_FAMILY = re.compile(r"/attack/([^/]+?)_\d+/")


@dataclass
class ModelResult:
    kind: str
    order: int
    ngrams: int
    fit_s: float
    threshold_s: float
    score_s: float
    traces_per_s: float
    syscalls_per_s: float
    auc: float
    auc_by_family: dict[str, float]
    detection: dict[str, float]  # "1%" -> share of attacks detected
    threshold: float | None
    threshold_false_alarms: float | None
    threshold_detection: float | None
    observe_us: float  # CPU per syscall learned (fit time / training syscalls: observe + freeze)
    window_us: float  # CPU per score_window of --window-size syscalls (with its history), dev


@dataclass
class Result:
    data: str
    training_traces: int
    dev_normal: int
    dev_attacks: dict[str, int]
    cpu: int | None
    window_size: int
    selection: list[dict[str, float]] = field(default_factory=list)
    models: list[ModelResult] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=harness.machine_info)


def label(name: str) -> str | None:
    """The attack family of a dev trace (None: normal)."""
    if "/normal/" in name:
        return None
    m = _FAMILY.search(name)
    if m is None:
        raise SystemExit(f"adfa_ld: cannot tell normal from attack: {name}")
    return m[1]


def windows(dev: Sequence[Trace], size: int, history: int) -> list[tuple[list[int], int]]:
    """Every trace cut in windows of `size` syscalls, each with the `history` syscalls before it:
    how the agent scores a thread's stream."""
    out = []
    for t in dev:
        s = t.syscalls
        for i in range(0, len(s), size):
            lo = max(0, i - history)
            out.append((s[lo : i + size], i - lo))
    return out


def window_cost(model: Model, wins: Sequence[tuple[list[int], int]]) -> float:
    c0 = time.process_time()
    for seq, start in wins:
        model.score_window(seq, start)
    return (time.process_time() - c0) / len(wins) * 1e6


def evaluate(
    model: Model, fit_s: float, threshold_s: float, dev: Sequence[Trace], learned: int, window: int
) -> ModelResult:
    c0 = time.process_time()
    scores = [model.score(t.syscalls) for t in dev]
    score_s = time.process_time() - c0
    labels = [label(t.name) for t in dev]
    normal = [s for s, lab in zip(scores, labels, strict=True) if lab is None]
    attacks = [s for s, lab in zip(scores, labels, strict=True) if lab is not None]
    families = sorted({lab for lab in labels if lab is not None})
    by_family = {
        f: auc(normal, [s for s, lab in zip(scores, labels, strict=True) if lab == f]) for f in families
    }
    cal = model.calibration
    t = cal.threshold if cal else None
    return ModelResult(
        kind=model.kind,
        order=model.order,
        ngrams=model.counts.size,
        fit_s=fit_s,
        threshold_s=threshold_s,
        score_s=score_s,
        traces_per_s=len(dev) / score_s,
        syscalls_per_s=sum(len(x.syscalls) for x in dev) / score_s,
        auc=auc(normal, attacks),
        auc_by_family=by_family,
        detection={f"{fa:.0%}": detection_at(normal, attacks, fa) for fa in FALSE_ALARMS},
        threshold=t,
        threshold_false_alarms=None if t is None else sum(s > t for s in normal) / len(normal),
        threshold_detection=None if t is None else sum(s > t for s in attacks) / len(attacks),
        observe_us=fit_s / learned * 1e6,
        window_us=window_cost(model, windows(dev, window, model.order - 1)),
    )


def selection(seqs: Sequence[Sequence[int]], max_order: int, max_ngrams: int) -> list[dict[str, float]]:
    bits = heldout_bits(seqs, max_order, max_ngrams=10**9)
    counts = NgramCounts(max_order, 10**9)
    for s in seqs:
        counts.observe(s)
    needed = [sum(len(t) for t in counts.tables[:k]) for k in range(1, max_order + 1)]
    return [
        {
            "order": k,
            "heldout_bits": bits[k - 1],
            "ngrams": needed[k - 1],
            "fits_cap": needed[k - 1] <= max_ngrams,
        }
        for k in range(1, max_order + 1)
    ]


def measure(args: argparse.Namespace) -> Result:
    cpu = None if args.no_pin else harness.pin_cpu(args.cpu)
    training = [t.syscalls for t in read_traces([args.data / "training.tar.gz"])]
    dev = list(read_traces([args.data / "dev.tar.gz"]))
    attacks: dict[str, int] = {}
    for t in dev:
        lab = label(t.name)
        if lab is not None:
            attacks[lab] = attacks.get(lab, 0) + 1
    res = Result(
        data=str(args.data),
        training_traces=len(training),
        dev_normal=sum(label(t.name) is None for t in dev),
        dev_attacks=attacks,
        cpu=cpu,
        window_size=args.window_size,
    )
    if args.select:
        res.selection = selection(training, args.select, args.max_ngrams)
    for kind, order in ((KneserNeyModel.kind, args.order), (StideModel.kind, args.window)):
        tr = train(training, kind, order, args.max_ngrams, args.quantile)
        learned = sum(len(x) for x in training)
        res.models.append(evaluate(tr.model, tr.fit_s, tr.calibrate_s, dev, learned, args.window_size))
    return res


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def print_table(r: Result) -> None:
    fams = ", ".join(f"{n} {f}" for f, n in sorted(r.dev_attacks.items()))
    print(
        f"ADFA-LD ({r.data}): trained on {r.training_traces} normal traces; dev {r.dev_normal} normal, {fams}"
    )
    print(f"cpu {r.cpu}, {r.machine['cpu_model']}, load {r.machine['loadavg']}, Python {r.machine['python']}")
    if r.selection:
        print("\norder selection (normal only): held-out bits/syscall, 5-fold over the training traces")
        for s in r.selection:
            fits = "" if s["fits_cap"] else "  (over the n-gram cap)"
            print(f"  order {s['order']:>2}: {s['heldout_bits']:.4f} bits, {s['ngrams']:>9,} n-grams{fits}")
    print()
    head = f"{'model':<18}{'AUC':>7}" + "".join(f"{'DR@' + f'{fa:.0%}':>9}" for fa in FALSE_ALARMS)
    print(head + f"{'train s':>9}{'thresh s':>9}{'traces/s':>10}{'syscalls/s':>12}")
    for m in r.models:
        print(
            f"{m.kind + f' ({m.order})':<18}{m.auc:>7.4f}"
            + "".join(f"{m.detection[f'{fa:.0%}']:>9.1%}" for fa in FALSE_ALARMS)
            + f"{m.fit_s:>9.2f}{m.threshold_s:>9.2f}{m.traces_per_s:>10,.0f}{m.syscalls_per_s:>12,.0f}"
        )
    print()
    for m in r.models:
        fam = ", ".join(f"{f} {a:.4f}" for f, a in m.auc_by_family.items())
        print(f"{m.kind}: AUC by family: {fam}; {m.ngrams:,} n-grams")
        print(
            f"  online: {m.observe_us:.2f} us per syscall learned (observe + freeze), {m.window_us:.0f} us per window "
            f"of {r.window_size} syscalls scored ({m.window_us / r.window_size:.2f} us per syscall)"
        )
        if m.threshold is not None:
            print(
                f"  at its own threshold {m.threshold:.4g}: false alarms {_pct(m.threshold_false_alarms)} "
                f"of dev normal traces, detection {_pct(m.threshold_detection)} of attacks"
            )


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help=f"the ADFA-LD folder (default {DATA})")
    ap.add_argument(
        "--order", type=int, default=DEFAULT_ORDER, help=f"Kneser-Ney order (default {DEFAULT_ORDER})"
    )
    ap.add_argument("--window", type=int, default=DEFAULT_WINDOW, help=f"STIDE n (default {DEFAULT_WINDOW})")
    ap.add_argument("--max-ngrams", type=int, default=DEFAULT_MAX_NGRAMS, help="n-gram cap of both models")
    ap.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE, help="threshold quantile")
    ap.add_argument("--window-size", type=int, default=64, help="syscalls per window (default 64)")
    ap.add_argument("--select", type=int, default=0, help="print held-out bits for orders 1..N first")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    return ap.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(harness.main(None, parse, measure, print_table))
