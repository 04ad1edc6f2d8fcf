"""The anomaly model file: versioned JSON (gzip-compressed when the name ends in ``.gz``), never
pickle, so a model file can be read without trusting whoever wrote it.

Version 1::

    {"format": "stockade-anomaly-model", "version": 1,
     "kind": "kneser-ney" | "stide", "order": 6, "max_ngrams": 200000,
     "bits": 10,                                # per symbol id: at most 2**bits - 1 symbols
     "symbols": [3, 6, 195, ...],               # the vocabulary: id i is symbols[i - 1], 0 unknown
     "ngrams": [{"order": 1, "ids": [...], "counts": [...]}, ...],   # one per order 1 .. order;
                                                # ids: `order` ids per n-gram, oldest first
     "trained": {"sequences": 833, "symbols": 308077, "dropped": 0},
     "threshold": {"value": 4.1, "quantile": 0.99, "scores": 833, "method": "..."} | null}

The counts are saved, not the compiled probabilities: a model read back can learn more and is
frozen again on load. A file that is not such a model raises :class:`ModelFileError` naming the
file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any

import orjson

from stockade.anomaly.interface import Calibration, SequenceModel
from stockade.anomaly.kinds import KINDS, Model
from stockade.anomaly.ngram import MAX_ORDER
from stockade.anomaly.vocab import MAX_BITS, Vocabulary, capacity
from stockade.errors import Location, SourceError

__all__ = ["FORMAT", "VERSION", "ModelFileError", "dump", "load", "parse", "save"]

FORMAT = "stockade-anomaly-model"
VERSION = 1


class ModelFileError(SourceError):
    """A file that is not a readable anomaly model (the message says what is wrong, and where)."""


def dump(model: SequenceModel) -> dict[str, Any]:
    """The JSON document of `model`."""
    c = model.counts
    ngrams = []
    for k in range(1, c.order + 1):
        ids: list[int] = []
        counts: list[int] = []
        for gram, n in c.grams(k):
            ids.extend(gram)
            counts.append(n)
        ngrams.append({"order": k, "ids": ids, "counts": counts})
    cal = model.calibration
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": model.kind,
        "order": c.order,
        "max_ngrams": c.max_ngrams,
        "bits": c.bits,
        "symbols": list(c.vocab.symbols),
        "ngrams": ngrams,
        "trained": {"sequences": c.sequences, "symbols": c.symbols, "dropped": c.dropped},
        "threshold": None
        if cal is None
        else {"value": cal.threshold, "quantile": cal.quantile, "scores": cal.scores, "method": cal.method},
    }


def save(model: SequenceModel, path: str | Path) -> None:
    """Write `model` to `path` (gzip when it ends in ``.gz``), atomically: a reader sees the old
    file or the new one, never half of one."""
    p = Path(path)
    data = orjson.dumps(dump(model))
    if p.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ModelFileError(f"cannot write the model: {e.strerror or e}", Location(str(p))) from None


def load(path: str | Path) -> Model:
    """The model saved in `path`, frozen, ready to score."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ModelFileError(f"cannot read the model: {e.strerror or e}", Location(str(p))) from None
    return parse(data, str(p))


def _decode(data: bytes, name: str) -> Any:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise ModelFileError(f"not an anomaly model: corrupt gzip data ({e})", Location(name)) from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ModelFileError(
            f"not an anomaly model: not JSON ({e.msg})", Location(name, e.lineno, e.colno)
        ) from None


def parse(data: bytes, name: str = "<model>") -> Model:
    """The model in `data` (a model file's bytes; `name` says where, in errors), frozen."""
    doc = _decode(data, name)
    r = _Reader(name)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise r.error(f'not an anomaly model (no "format": "{FORMAT}")')
    version = doc.get("version")
    if version != VERSION:
        raise r.error(f"model file version {version!r}: this Stockade reads version {VERSION} only")
    kind = r.get(doc, "kind", str)
    cls = KINDS.get(kind)
    if cls is None:
        raise r.error(f"kind: unknown model kind '{kind}' (known: {', '.join(KINDS)})")
    order = r.count(doc, "order", 1, MAX_ORDER)
    bits = r.count(doc, "bits", 1, MAX_BITS)
    model = cls(order, r.count(doc, "max_ngrams", 1, None), bits)
    symbols = r.get(doc, "symbols", list)
    r.symbols(symbols, capacity(bits))
    model.counts.vocab = Vocabulary(symbols, bits)
    r.ngrams(model, r.get(doc, "ngrams", list), len(symbols))
    trained = r.get(doc, "trained", dict)
    c = model.counts
    c.sequences, c.symbols, c.dropped = (
        r.count(trained, k, 0, None) for k in ("sequences", "symbols", "dropped")
    )
    model.calibration = r.calibration(doc.get("threshold"))
    model.freeze()
    return model


class _Reader:
    """The checks of one model file, each failing with the file and the field."""

    def __init__(self, name: str) -> None:
        self.name = name

    def error(self, message: str) -> ModelFileError:
        return ModelFileError(message, Location(self.name))

    def get(self, obj: dict[str, Any], key: str, typ: type, where: str = "") -> Any:
        v = obj.get(key)
        if not isinstance(v, typ) or isinstance(v, bool):
            what = {str: "a string", list: "a list", dict: "an object", int: "an integer"}.get(
                typ, typ.__name__
            )
            raise self.error(f"{where}{key}: expected {what}, not {_shown(v)}")
        return v

    def count(self, obj: dict[str, Any], key: str, lo: int, hi: int | None, where: str = "") -> int:
        v: int = self.get(obj, key, int, where)
        if v < lo or (hi is not None and v > hi):
            span = f"{lo} .. {hi}" if hi is not None else f"{lo} or more"
            raise self.error(f"{where}{key}: {v} is not {span}")
        return v

    def symbols(self, symbols: list[Any], most: int) -> None:
        if len(symbols) > most:
            raise self.error(f"symbols: {len(symbols)} symbols, more than {most} (bits)")
        for i, s in enumerate(symbols):
            if not isinstance(s, (int, str)) or isinstance(s, bool):
                raise self.error(f"symbols[{i}]: expected a number or a string, not {_shown(s)}")
        if len(set(symbols)) != len(symbols):
            raise self.error("symbols: a symbol is listed twice")

    def ngrams(self, model: Model, tables: list[Any], nsym: int) -> None:
        order = model.counts.order
        if len(tables) != order:
            raise self.error(f"ngrams: {len(tables)} tables for order {order} (one per order 1 .. {order})")
        for k, t in enumerate(tables, 1):
            where = f"ngrams[{k - 1}]."
            if not isinstance(t, dict) or t.get("order") != k:
                raise self.error(f"{where}order: expected {k}")
            ids, counts = self.get(t, "ids", list, where), self.get(t, "counts", list, where)
            if len(ids) != k * len(counts):
                raise self.error(f"{where}ids: {len(ids)} ids for {len(counts)} {k}-grams")
            if not all(type(i) is int and 0 <= i <= nsym for i in ids):
                raise self.error(f"{where}ids: an id that is not a symbol's (0 .. {nsym})")
            if not all(type(n) is int and n > 0 for n in counts):
                raise self.error(f"{where}counts: a count that is not a positive integer")
            for j, n in enumerate(counts):
                model.counts.add(ids[j * k : (j + 1) * k], n)
        if model.counts.size > model.counts.max_ngrams:
            raise self.error(f"ngrams: {model.counts.size} n-grams, more than max_ngrams")

    def calibration(self, t: Any) -> Calibration | None:
        if t is None:
            return None
        if not isinstance(t, dict):
            raise self.error(f"threshold: expected an object or null, not {_shown(t)}")
        method = t.get("method", "")
        if not isinstance(method, str):
            raise self.error(f"threshold.method: expected a string, not {_shown(method)}")
        return Calibration(
            self.number(t, "value", "threshold."),
            self.number(t, "quantile", "threshold."),
            self.count(t, "scores", 0, None, "threshold."),
            method,
        )

    def number(self, obj: dict[str, Any], key: str, where: str) -> float:
        v = obj.get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise self.error(f"{where}{key}: expected a number, not {_shown(v)}")
        return float(v)


def _shown(v: Any) -> str:
    if v is None:
        return "nothing"
    s = orjson.dumps(v).decode()
    return s if len(s) <= 40 else s[:37] + "..."
