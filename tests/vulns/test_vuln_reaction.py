"""The reaction to a loaded and exposed finding (runtime/vulnwatch.py): one alert per finding while
it lasts, quarantine through the responder with ``action: isolate``, lifted once a round finds the
container fixed; nothing for a finding that is not loaded. The isolate mechanism itself is the
response tests' (tests/response); here the responder records what it is asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stockade.config import StockadeConfig
from stockade.model.alert import Alert
from stockade.model.package import Finding, Package
from stockade.runtime.vulnwatch import VulnWatch
from stockade.vulns.priority import Context, Loader, rank

PKG = Package("certifi", "2022.9.24", "PyPI", "pkg:pypi/certifi@2022.9.24", "/usr/lib/certifi/METADATA")
CRIT = Finding(PKG, "PYSEC-2023-135", ("CVE-2023-37920",), ("2023.7.22",), "CRITICAL")
LOW = Finding(PKG, "PYSEC-2022-42986", ("CVE-2022-23491",), ("2022.12.7",), "LOW")
PY = Loader(7, "python3", "open", "/usr/lib/certifi/cacert.pem")
HOT = Context("container:" + "a" * 64, "image:app", "hot", True, (PY,), ("tcp/8080 listening",))
COLD = Context("container:" + "b" * 64, "image:app", "cold", True, (), ("tcp/8080 listening",))


@dataclass
class _Outcome:
    ok: bool = True
    detail: str = ""


@dataclass
class _Responder:
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def act(self, action: str, ref: str, **kw: Any) -> _Outcome:
        self.calls.append((action, ref, kw))
        return _Outcome()


def _watch(action: str) -> tuple[VulnWatch, list[Alert], _Responder, list[tuple[str, dict[str, Any]]]]:
    cfg = StockadeConfig.model_validate(
        {"vulnerabilities": {"react": {"action": action, "allow": ["10.0.0.5"]}}}
    )
    alerts: list[Alert] = []
    audit: list[tuple[str, dict[str, Any]]] = []
    responder = _Responder()
    watch = VulnWatch(
        cfg,
        alerts.extend,
        matcher=lambda _pkgs: [],
        responder=responder,
        audit=lambda kind, _subject, data, _actor: audit.append((kind, data)),
        discover=lambda: [],
        images=lambda: [],
    )
    return watch, alerts, responder, audit


def test_a_loaded_exposed_critical_finding_alerts_once_and_is_quarantined_until_fixed() -> None:
    watch, alerts, responder, audit = _watch("isolate")
    hot, cold = HOT.asset.split(":")[1], COLD.asset.split(":")[1]
    ranked = rank([(CRIT, HOT), (CRIT, COLD), (LOW, HOT)])
    watch._react(ranked, {hot, cold})
    watch._react(ranked, {hot, cold})  # the next round: nothing new
    assert [a.rule for a in alerts] == ["Vulnerable package loaded and exposed"]
    assert alerts[0].output_fields["container.full_id"] == hot
    assert alerts[0].output_fields["vuln.id"] == "PYSEC-2023-135"
    assert [(a, r) for a, r, _ in responder.calls] == [("isolate", hot)]
    assert responder.calls[0][2]["allow"] == ["10.0.0.5"] and watch.isolated == {hot}
    # a round that no longer finds it (the image was fixed): the quarantine is lifted
    watch._react(rank([(LOW, HOT)]), {hot, cold})
    assert [(a, r) for a, r, _ in responder.calls] == [("isolate", hot), ("unisolate", hot)]
    assert watch.isolated == set() and len(alerts) == 1
    assert [d["action"] for k, d in audit if k == "vulnerability"] == ["alerted", "fixed"]


def test_alert_only_never_touches_the_container() -> None:
    watch, alerts, responder, _ = _watch("alert")
    hot = HOT.asset.split(":")[1]
    watch._react(rank([(CRIT, HOT)]), {hot})
    assert len(alerts) == 1 and responder.calls == []
