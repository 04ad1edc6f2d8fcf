"""The ranking (stockade.vulns.priority): loaded and exposed findings rank above the same on disk."""

from __future__ import annotations

from stockade.model.package import Finding, Package
from stockade.vulns.priority import Context, Loader, at_least, by_workload, rank, score

PKG = Package(
    "bottle", "0.12.18", "PyPI", "pkg:pypi/bottle@0.12.18", "/app/bottle-0.12.18.dist-info/METADATA"
)


def _finding(**kw: object) -> Finding:
    base: dict[str, object] = {
        "package": PKG,
        "id": "PYSEC-2022-227",
        "aliases": ("CVE-2022-31799",),
        "fixed": ("0.12.20",),
        "severity": "HIGH",
    }
    base.update(kw)
    return Finding(**base)  # type: ignore[arg-type]


PY = Loader(7, "python3", "open", "/app/bottle.py")


def test_loaded_and_exposed_rank_above_the_same_finding_unused() -> None:
    f = _finding()
    hot = Context("container:a", "w1", "web", True, (PY,), ("tcp/8080 listening",))
    cold = Context("container:b", "w2", "idle", True, (), ("tcp/8080 listening",))
    out = rank([(f, cold), (f, hot)])
    assert [r.context.asset for r in out] == ["container:a", "container:b"]
    assert out[0].score - out[1].score == 25.0
    parts = {p: (pts, why) for p, pts, why in out[0].parts}
    assert parts["loaded"][0] == 25.0 and "python3[7] (open)" in parts["loaded"][1]
    assert parts["exposed"] == (15.0, "tcp/8080 listening")
    assert parts["fix"] == (5.0, "fixed in 0.12.20")
    d = out[0].as_dict()
    assert d["loaded"] is True and d["exposed"] is True and d["id"] == "PYSEC-2022-227"
    assert {"factor", "points", "why"} <= set(d["score_parts"][0])


def test_a_loaded_high_outranks_an_unloaded_critical() -> None:
    running = Context("container:a", "w", "web", True, (PY,), ("tcp/80 listening",))
    idle = Context("container:a", "w", "web", True, (), ("tcp/80 listening",))
    high = score(_finding(severity="HIGH", cvss_score=7.5), running)
    crit = score(_finding(id="X", severity="CRITICAL", cvss_score=9.8), idle)
    assert high.score > crit.score


def test_cvss_kev_epss_and_missing_scores() -> None:
    ctx = Context("image:x", None, "img")
    plain = score(_finding(severity="MEDIUM", fixed=()), ctx)
    assert plain.score == 20.0  # 5 * 4, nothing else
    rich = score(_finding(severity="MEDIUM", cvss_score=6.1, kev=True, epss=0.5, fixed=()), ctx)
    assert rich.score == round(6.1 * 4 + 10 + 5, 2)
    assert dict((p, w) for p, _, w in rich.parts)["kev"] == "in CISA KEV"


def test_per_workload_lists_and_thresholds() -> None:
    a = Context("container:a", "w1", "a", True, (PY,))
    b = Context("container:b", "w2", "b", True)
    groups = by_workload(rank([(_finding(), a), (_finding(), b), (_finding(id="Y"), a)]))
    assert list(groups) == ["w1", "w2"] and len(groups["w1"]) == 2
    assert at_least("CRITICAL", "HIGH") and at_least("HIGH", "HIGH") and not at_least("LOW", "HIGH")
    assert at_least("UNKNOWN", "UNKNOWN") and not at_least("weird", "LOW")
