"""The model file: what is saved is what is read back (scores, threshold, what more it can learn),
and a file that is not a model is refused with the file and what is wrong with it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from stockade.anomaly import modelfile
from stockade.anomaly.modelfile import ModelFileError
from stockade.anomaly.smoothed import KneserNeyModel
from stockade.anomaly.stide import StideModel
from stockade.anomaly.training import train

TRACES = [[1, 2, 3, 4] * 5, [1, 2, 5, 4] * 4, [7, 1, 2, 3] * 3, [1, 2, 3, 4, 4] * 3, [2, 3, 4, 1] * 6]
PROBES = [[1, 2, 3, 4, 1, 2], [9, 9, 1, 2], [4, 3, 2, 1], [5]]


@pytest.mark.parametrize("kind", ["kneser-ney", "stide"])
@pytest.mark.parametrize("name", ["model.json", "model.json.gz"])
def test_a_saved_model_scores_as_it_did(tmp_path: Path, kind: str, name: str) -> None:
    trained = train(TRACES, kind, order=3, quantile=0.8, folds=5).model
    path = tmp_path / name
    modelfile.save(trained, path)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b'{"')
    back = modelfile.load(path)
    assert type(back) is type(trained) and back.order == 3
    assert back.calibration == trained.calibration and back.calibration is not None
    assert [back.score(p) for p in PROBES] == [trained.score(p) for p in PROBES]
    assert [back.score_window(p) for p in PROBES] == [trained.score_window(p) for p in PROBES]
    c, d = back.counts, trained.counts
    assert (c.sequences, c.symbols, c.dropped, c.size, c.tables) == (
        d.sequences,
        d.symbols,
        d.dropped,
        d.size,
        d.tables,
    )
    # it learns on where it stopped
    back.observe([9, 9, 1, 2])
    back.freeze()
    assert back.score([9, 9, 1, 2]) < trained.score([9, 9, 1, 2])
    assert not list(tmp_path.glob(".*tmp*"))


def test_names_are_symbols_too(tmp_path: Path) -> None:
    m = KneserNeyModel(order=2, bits=16)
    m.observe(["exec /bin/sh", "connect 10.0.0.1:443", "exec /bin/sh"])
    modelfile.save(m, tmp_path / "m.json")
    back = modelfile.load(tmp_path / "m.json")
    assert back.counts.bits == 16 and back.counts.vocab.capacity == 65535
    assert back.counts.vocab.symbols == ["exec /bin/sh", "connect 10.0.0.1:443"]
    assert back.score(["exec /bin/sh", "connect 10.0.0.1:443"]) == m.score(
        ["exec /bin/sh", "connect 10.0.0.1:443"]
    )
    assert back.calibration is None


def _doc() -> dict[str, Any]:
    m = StideModel(order=2)
    m.observe([1, 2, 3])
    return modelfile.dump(m)


def _bad(tmp_path: Path, data: bytes) -> str:
    p = tmp_path / "bad.json"
    p.write_bytes(data)
    with pytest.raises(ModelFileError) as e:
        modelfile.load(p)
    assert str(e.value).startswith(str(p)), str(e.value)  # the file, first
    return str(e.value)


def _edited(**changes: Any) -> bytes:
    d = _doc()
    d.update(changes)
    return json.dumps(d).encode()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (
            b'{"format": "stockade-anomaly-model", "version": 1,\n "kind": }',
            "bad.json:2:10: not an anomaly model: not JSON",
        ),
        (b"", "not JSON"),
        (b"[1, 2]", 'not an anomaly model (no "format": "stockade-anomaly-model")'),
        (b'{"format": "something-else"}', "not an anomaly model"),
        (_edited(version=2), "model file version 2: this Stockade reads version 1 only"),
        (_edited(version="1"), "model file version '1'"),
        (_edited(kind="lstm"), "kind: unknown model kind 'lstm' (known: kneser-ney, stide)"),
        (_edited(order=0), "order: 0 is not 1 .. 16"),
        (_edited(order=True), "order: expected an integer, not true"),
        (_edited(max_ngrams=None), "max_ngrams: expected an integer, not nothing"),
        (_edited(symbols=[1, 1, 2]), "symbols: a symbol is listed twice"),
        (_edited(bits=17), "bits: 17 is not 1 .. 16"),
        (_edited(bits=1), "symbols: 3 symbols, more than 1 (bits)"),
        (_edited(symbols=[1, [2], 3]), "symbols[1]: expected a number or a string, not [2]"),
        (_edited(ngrams=[]), "ngrams: 0 tables for order 2"),
        (_edited(max_ngrams=2), "ngrams: 5 n-grams, more than max_ngrams"),
        (_edited(trained={"sequences": -1, "symbols": 0, "dropped": 0}), "sequences: -1 is not 0 or more"),
        (
            _edited(threshold={"value": "high", "quantile": 0.99, "scores": 3}),
            'threshold.value: expected a number, not "high"',
        ),
        (_edited(threshold=[1]), "threshold: expected an object or null"),
        (gzip.compress(b'{"format": "stockade-anomaly-model"}')[:-6], "corrupt gzip data"),
    ],
)
def test_a_file_that_is_not_a_model_says_what_is_wrong(tmp_path: Path, data: bytes, says: str) -> None:
    assert says in _bad(tmp_path, data)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"order": 2, "ids": [1, 2, 2], "counts": [1]}, "ngrams[1].ids: 3 ids for 1 2-grams"),
        ({"order": 2, "ids": [1, 7], "counts": [1]}, "ngrams[1].ids: an id that is not a symbol's (0 .. 3)"),
        (
            {"order": 2, "ids": [1, 2], "counts": [0]},
            "ngrams[1].counts: a count that is not a positive integer",
        ),
        ({"order": 2, "ids": [1, 2], "counts": [1.5]}, "a count that is not a positive integer"),
        ({"order": 3, "ids": [1, 2], "counts": [1]}, "ngrams[1].order: expected 2"),
        ({"order": 2, "ids": "12", "counts": [1]}, 'ngrams[1].ids: expected a list, not "12"'),
    ],
)
def test_a_bad_ngram_table_is_named(tmp_path: Path, table: dict[str, Any], says: str) -> None:
    d = _doc()
    d["ngrams"][1] = table
    assert says in _bad(tmp_path, json.dumps(d).encode())


def test_a_missing_or_unwritable_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read the model"):
        modelfile.load(tmp_path / "none.json")
    with pytest.raises(ModelFileError, match="cannot write the model"):
        modelfile.save(StideModel(), tmp_path / "no" / "dir" / "m.json")
