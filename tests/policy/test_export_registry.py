"""The exporters' registry and what every exporter promises (deterministic text, warnings said)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stockade.errors import StockadeError
from stockade.policy.export import EXPORTERS, ExportError, export, options_of
from stockade.policy.model import PolicyError, WorkloadPolicy

DATA = Path(__file__).parent / "data" / "export"
WEB = WorkloadPolicy.model_validate(yaml.safe_load((DATA / "web.policy.yaml").read_text()))


def test_the_formats_and_their_options() -> None:
    assert {f: options_of(f) for f in EXPORTERS} == {
        "kubearmor": ("labels",),
        "networkpolicy": ("labels", "peer_labels", "dns_namespace", "dns_labels"),
        "seccomp": ("runtime",),
        "falco": ("standalone",),
    }


def test_an_unknown_format_or_option_is_an_export_error() -> None:
    with pytest.raises(
        ExportError,
        match="no export format 'apparmor' \\(formats: kubearmor, networkpolicy, seccomp, falco\\)",
    ):
        export(WEB, "apparmor")
    with pytest.raises(ExportError, match="falco: unknown option\\(s\\) labels \\(options: standalone\\)"):
        export(WEB, "falco", labels={"app": "web"})
    err = ExportError("x")
    assert isinstance(err, PolicyError) and isinstance(err, StockadeError)
    assert err.title == "Cannot export policy" and err.exit_code == 1


@pytest.mark.parametrize("fmt", list(EXPORTERS))
def test_each_format_is_deterministic_and_parses(fmt: str) -> None:
    texts = {export(WEB, fmt).text for _ in range(3)}
    assert len(texts) == 1
    (text,) = texts
    parsed = json.loads(text) if fmt == "seccomp" else yaml.safe_load(text)
    assert parsed


@pytest.mark.parametrize("fmt", ["kubearmor", "networkpolicy", "falco"])
def test_the_yaml_formats_write_their_warnings_as_comments(fmt: str) -> None:
    r = export(WEB, fmt)
    assert r.warnings
    comments = [line for line in r.text.splitlines() if line.startswith("# warning: ")]
    assert [c.removeprefix("# warning: ") for c in comments] == [
        w for w in r.warnings if not w.startswith("What no Allow item allows")
    ]
