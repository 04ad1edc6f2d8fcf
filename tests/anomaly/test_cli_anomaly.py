"""`stockade anomaly train|score` as users run them (subprocesses), on a slice of the real ADFA-LD
data (Creech & Hu, UNSW 2013): the JSON lines contract, attacks above normal traces, the table,
and errors that name the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from helpers import SHARED_DATA, need_file
from stockade.cli.main import main

STOCKADE = str(Path(sys.executable).parent / "stockade")
ADFA = SHARED_DATA / "adfa-ld"


def stockade(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    return subprocess.run(
        [STOCKADE, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False
    )


def _extract(archive: Path, dest: Path, want: dict[str, int]) -> None:
    """The first `n` files (in name order) of each folder prefix in `want`, into `dest`."""
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name)
        for prefix, n in want.items():
            chosen = [m for m in members if m.name.startswith(prefix)][:n]
            assert len(chosen) == n, prefix
            for m in chosen:
                f = tar.extractfile(m)
                assert f is not None
                out = dest / m.name
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(f.read())


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("adfa")
    _extract(need_file(ADFA / "training.tar.gz"), root, {"Training_Data_Master/": 100})
    _extract(
        need_file(ADFA / "dev.tar.gz"),
        root,
        {"dev/normal/": 40, "dev/attack/Adduser_1/": 7, "dev/attack/Hydra_FTP_1/": 12},
    )
    return root


@pytest.fixture(scope="module")
def model(data: Path) -> Path:
    r = stockade(data, "anomaly", "train", "--format", "adfa", "Training_Data_Master", "--model", "m.json.gz")
    assert r.returncode == 0, r.stderr
    assert "learned kneser-ney (order 6) from 100 traces" in r.stdout
    assert "threshold " in r.stdout and "wrote m.json.gz" in r.stdout
    return data / "m.json.gz"


def test_score_prints_one_json_object_per_trace_and_attacks_score_higher(data: Path, model: Path) -> None:
    r = stockade(
        data,
        "anomaly",
        "score",
        "--format",
        "adfa",
        "--model",
        str(model),
        "dev/attack",
        "dev/normal",
        "--output",
        "json",
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    files = sorted(str(p.relative_to(data)) for p in (data / "dev").rglob("*.txt"))
    assert [x["trace"] for x in lines] == files
    assert all(set(x) == {"trace", "score"} and isinstance(x["score"], float) for x in lines)
    normal = [x["score"] for x in lines if "/normal/" in x["trace"]]
    attack = [x["score"] for x in lines if "/attack/" in x["trace"]]
    assert len(normal) == 40 and len(attack) == 19
    assert sum(attack) / len(attack) > sum(normal) / len(normal) + 1.0
    # the same scores as one file at a time, and with the details asked for
    one = files[0]
    d = stockade(data, "anomaly", "score", "--model", str(model), one, "--details", "-o", "json")
    (obj,) = [json.loads(line) for line in d.stdout.splitlines()]
    assert obj["trace"] == one and obj["score"] == lines[0]["score"]
    assert obj["anomalous"] == (obj["score"] > obj["threshold"]) and len(obj["unusual"]) in range(1, 7)


def test_score_prints_a_table_by_default(
    data: Path, model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(data)
    assert (
        main(["anomaly", "score", "--format", "adfa", "--model", str(model), "dev/attack/Hydra_FTP_1"]) == 0
    )
    head, *rows = capsys.readouterr().out.splitlines()
    assert head.split() == ["TRACE", "SCORE", "ANOMALOUS", "MOST", "UNUSUAL"]
    assert len(rows) == 13 and rows[-1].endswith(f"traces above the threshold {rows[-1].split()[-1]}")
    assert all(row.startswith("dev/attack/Hydra_FTP_1/UAD-Hydra-FTP-1-") for row in rows[:-1])


def test_a_bad_trace_is_reported_and_the_others_scored(data: Path, model: Path) -> None:
    bad = data / "bad"
    bad.mkdir()
    (bad / "ok.txt").write_text("3 4 5 6")
    (bad / "torn.txt").write_text("3 4\n5 6x")
    r = stockade(data, "anomaly", "score", "--model", str(model), "bad", "missing.txt", "-o", "json")
    assert r.returncode == 1
    assert [json.loads(line)["trace"] for line in r.stdout.splitlines()] == ["bad/ok.txt"]
    assert r.stderr.splitlines() == [
        "stockade: error: bad/torn.txt:2:3: not a syscall number: '6x'",
        "stockade: error: missing.txt: no such file or directory",
    ]


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (
            ["score", "--model", "corrupt.json", "dev/normal"],
            1,
            "stockade: error: corrupt.json: model file version 9: this Stockade reads version 1 only",
        ),
        (
            ["score", "--model", "none.json", "dev/normal"],
            2,
            "stockade: error: none.json: no such model file",
        ),
        (
            ["score", "--format", "strace", "--model", "corrupt.json", "dev/normal"],
            2,
            "stockade: error: --format must be one of adfa, not 'strace'",
        ),
        (
            ["train", "dev/normal", "--model", "x.json", "--kind", "lstm"],
            2,
            "stockade: error: --kind must be one of kneser-ney, stide, not 'lstm'",
        ),
        (
            ["train", "dev/attack/Adduser_1", "--model", "x.json", "--folds", "10"],
            2,
            "stockade: error: learning the threshold with 10 folds needs at least 10 normal sequences, "
            "and there are 7 (--folds 0: no threshold)",
        ),
        (["train", "Training_Data_Master/.none", "--model", "x.json"], 1, "no such file or directory"),
    ],
)
def test_errors_name_the_file_and_exit_like_other_commands(
    data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    status: int,
    says: str,
) -> None:
    monkeypatch.chdir(data)
    (data / "corrupt.json").write_text('{"format": "stockade-anomaly-model", "version": 9}')
    assert main(["anomaly", *args]) == status
    out, err = capsys.readouterr()
    assert out == "" and says in err.strip() and len(err.strip().splitlines()) == 1
    assert not (data / "x.json").exists()
