"""The error hierarchy: the tree errors.py draws is the one the classes make, and each boundary
(the CLI, the API) translates an error as its class says."""

from __future__ import annotations

import inspect
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stockade import errors
from stockade.api.problem import install_problem_handlers
from stockade.cli.main import translate
from stockade.errors import Location, NotFoundError, StockadeError, UsageError

#: a row of the table in errors.py's docstring: name, exit status, HTTP status, problem type
_ROW = re.compile(r"^\s*(?:[│├└─ ]*)(\w+Error)\s+(\d)\s+(\d{3})\s+([a-z-]+)\b", re.M)


def _table() -> dict[str, tuple[int, int, str]]:
    doc = errors.__doc__ or ""
    return {m[1]: (int(m[2]), int(m[3]), m[4]) for m in _ROW.finditer(doc)}


def _classes() -> dict[str, type[StockadeError]]:
    return {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls) and issubclass(cls, StockadeError) and cls.__module__ == errors.__name__
    }


def test_the_docstring_table_lists_every_class_with_its_translations() -> None:
    table = _table()
    classes = _classes()
    assert set(table) == set(classes)
    for name, cls in classes.items():
        assert table[name] == (cls.exit_code, cls.http_status, cls.problem_type), name


def test_the_docstring_tree_names_the_subclasses_defined_elsewhere() -> None:
    from stockade.plugins import PluginError
    from stockade.rules.parser import ConditionSyntaxError
    from stockade.rules.ruleset import RuleLoadError
    from stockade.runtime.reload import ReloadError
    from stockade.sensor.ebpf.libbpf import BpfError
    from stockade.sensor.interface import SensorError

    doc = errors.__doc__ or ""
    for cls in (PluginError, ConditionSyntaxError, RuleLoadError, ReloadError, SensorError, BpfError):
        assert re.search(rf"\b{cls.__name__}\b.*\({re.escape(cls.__module__)}[:)]", doc), cls


def test_every_class_is_documented() -> None:
    for name, cls in _classes().items():
        assert cls is StockadeError or (cls.__doc__ and cls.__doc__ != StockadeError.__doc__), name


def test_an_error_names_where_it_is() -> None:
    e = StockadeError("unknown field 'proc.nam'", Location("rules.yaml", 12, 19, "rule 'x'"))
    assert str(e) == "rules.yaml:12:19 (rule 'x'): unknown field 'proc.nam'"
    assert str(StockadeError("plain")) == "plain"
    assert str(Location("stockade.yaml", None, 4)) == "stockade.yaml"


@pytest.mark.parametrize(
    ("error", "status", "lines"),
    [
        (StockadeError("boom"), 1, ["stockade: error: boom"]),
        (UsageError("--limit must be 1 or more"), 2, ["stockade: error: --limit must be 1 or more"]),
        (NotFoundError("no alert with id 'x'"), 3, ["stockade: error: no alert with id 'x'"]),
        (
            StockadeError("rules reload failed", Location("a.yaml", 3), details=["b.yaml:4: error: x [C]"]),
            1,
            ["stockade: error: a.yaml:3: rules reload failed", "  b.yaml:4: error: x [C]"],
        ),
    ],
)
def test_the_cli_boundary_prints_one_error_line_and_its_details(
    error: StockadeError, status: int, lines: list[str]
) -> None:
    assert translate(error) == (status, lines)


def test_the_cli_boundary_lets_a_bug_through() -> None:
    assert translate(ValueError("a bug")) is None
    assert translate(KeyboardInterrupt()) == (130, [])


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (StockadeError("x"), 400, "error"),
        (UsageError("x"), 422, "invalid-parameter"),
        (NotFoundError("x"), 404, "not-found"),
        (errors.StorageError("x"), 503, "storage-unavailable"),
        (errors.ConfigError("x"), 500, "configuration"),
    ],
)
def test_the_api_boundary_answers_the_problem_the_class_names(
    error: StockadeError, status: int, kind: str
) -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/fail")
    def fail() -> None:
        raise error

    r = TestClient(app).get("/fail")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert (body["type"], body["title"], body["detail"]) == (
        f"https://stockade.dev/problems/{kind}",
        error.title,
        "x",
    )
