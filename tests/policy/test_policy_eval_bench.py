"""benchmarks/policy_eval.py runs, and the policy it learns decides as the same policy written as
Falco rules does in the engine (the same events denied and alerted on)."""

from __future__ import annotations

import importlib
import json
import sys

import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # benchmarks/ is not a package
policy_eval = importlib.import_module("policy_eval")


def test_the_benchmark_runs_and_agrees_with_the_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert policy_eval.main(["--count", "20000", "--repeat", "1", "--no-pin", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    figures = {f["name"]: f for f in res["figures"]}
    denied = figures["evaluate (CompiledPolicy)"]["result"]
    assert denied.endswith(" denied") and int(denied.split()[0]) > 0
    assert figures["decide only (operations mapped)"]["result"] == denied
    assert figures["engine, equivalent rules"]["result"] == denied.replace("denied", "alerts")
    assert res["rules"]["file"] > 50
