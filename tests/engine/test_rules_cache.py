"""The compiled-rules cache (stockade.engine.cache): a cached engine raises exactly the alerts of a
freshly compiled one, a changed rule file is compiled again (a stale entry is never used), and an
entry that is corrupt or that someone else could have written is not read."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import stockade.engine.cache as cache_mod
import stockade.rules.loader as loader
from stockade.config import DEFAULT_APPEND_OUTPUT
from stockade.engine import Engine
from stockade.engine.build import append_output_spec
from stockade.engine.cache import load_engine
from stockade.model.alert import Alert
from stockade.rules.defaults import builtin_rule_files
from stockade.rules.ruleset import RuleLoadError
from stockade.sources.jsonl import JsonlSource

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "recordings" / "shell_in_container.jsonl"
STOCKADE = Path(sys.executable).with_name("stockade")


def _alerts(engine: Engine, path: Path = SAMPLE) -> list[dict[str, Any]]:
    out = []
    for ev in JsonlSource(str(path)).events():
        for a in engine.process(ev):
            out.append(_comparable(a))
    return out


def _comparable(a: Alert) -> dict[str, Any]:
    d = a.to_falco_json()
    d.pop("uuid", None)
    d.pop("stockade", None)
    return d


class _Loads:
    """Counts the rule loads that really parse the files."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        real = loader.load_rules

        def counted(paths: list[str]) -> Any:
            self.n += 1
            return real(paths)

        monkeypatch.setattr(cache_mod, "load_rules", counted)


@pytest.mark.parametrize("matching", ["first", "all"])
def test_cached_engine_alerts_exactly_as_compiled_one(
    tmp_path: Path, falco_rules_path: Path, monkeypatch: pytest.MonkeyPatch, matching: str
) -> None:
    rules = [str(falco_rules_path), *map(str, builtin_rule_files())]
    extra = [append_output_spec(a) for a in DEFAULT_APPEND_OUTPUT]
    loads = _Loads(monkeypatch)
    fresh = Engine.from_files(rules, rule_matching=matching, hostname="h", append_output=extra)
    first = load_engine(rules, cache_dir=tmp_path, rule_matching=matching, hostname="h", append_output=extra)
    assert loads.n == 1 and len(list(tmp_path.glob("*.pickle"))) == 1
    cached = load_engine(rules, cache_dir=tmp_path, rule_matching=matching, hostname="h", append_output=extra)
    assert loads.n == 1  # read from the cache: nothing parsed
    expect = _alerts(fresh)
    assert len(expect) >= 2
    assert _alerts(first) == expect
    assert _alerts(cached) == expect
    assert cached.rules_info() == fresh.rules_info()
    assert cached.evttypes() == fresh.evttypes()
    assert [str(p) for p in cached.problems] == [str(p) for p in fresh.problems]


def _rule(tmp_path: Path, name: str) -> Path:
    f = tmp_path / "rules.yaml"
    f.write_text(
        "- rule: Watched program\n"
        "  desc: d\n"
        f"  condition: evt.type = execve and proc.name = {name}\n"
        "  output: seen %proc.name\n"
        "  priority: WARNING\n"
    )
    return f


def test_changed_rule_file_is_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    loads = _Loads(monkeypatch)
    f = _rule(tmp_path, "bash")
    e1 = load_engine([str(f)], cache_dir=cache)
    assert [a["output_fields"]["proc.name"] for a in _alerts(e1)] == ["bash"]
    # same size, same modification time: only the contents differ
    st = f.stat()
    _rule(tmp_path, "curl")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size
    e2 = load_engine([str(f)], cache_dir=cache)
    assert loads.n == 2
    assert [a["output_fields"]["proc.name"] for a in _alerts(e2)] == ["curl"]
    assert len(list(cache.glob("*.pickle"))) == 2
    # options are part of the key too
    load_engine([str(f)], cache_dir=cache, rule_matching="all")
    assert loads.n == 3


def test_corrupt_or_foreign_entries_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    f = _rule(tmp_path, "bash")
    load_engine([str(f)], cache_dir=cache)
    (entry,) = cache.glob("*.pickle")
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    loads = _Loads(monkeypatch)

    entry.write_bytes(b"not a pickle")
    e = load_engine([str(f)], cache_dir=cache)
    assert loads.n == 1 and len(_alerts(e)) == 1
    assert entry.read_bytes() != b"not a pickle"  # rewritten

    entry.chmod(0o666)  # anyone could have written it: not read, and not trusted
    load_engine([str(f)], cache_dir=cache)
    assert loads.n == 2
    entry.chmod(0o600)
    cache.chmod(0o777)
    load_engine([str(f)], cache_dir=cache)
    assert loads.n == 3
    cache.chmod(0o700)
    load_engine([str(f)], cache_dir=cache)
    assert loads.n == 3


def test_rules_with_errors_are_never_cached(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("- rule: R\n  desc: d\n  condition: nosuch.field = 1\n  output: o\n  priority: WARNING\n")
    with pytest.raises(RuleLoadError):
        load_engine([str(f)], cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def _replay(args: list[str], cache_home: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    env["XDG_CACHE_HOME"] = str(cache_home)
    return subprocess.run(
        [str(STOCKADE), "replay", str(SAMPLE), *args], env=env, capture_output=True, timeout=120, check=True
    )


def test_replay_output_is_the_same_with_and_without_the_cache(tmp_path: Path, falco_rules_path: Path) -> None:
    args = ["--rules", str(falco_rules_path), "-o", "json"]
    uncached = _replay([*args, "--no-cache"], tmp_path / "home")
    assert not (tmp_path / "home" / "stockade").exists()  # --no-cache writes nothing
    cold = _replay(args, tmp_path / "home")
    assert len(list((tmp_path / "home" / "stockade" / "rules").glob("*.pickle"))) == 1
    warm = _replay(args, tmp_path / "home")

    def lines(p: subprocess.CompletedProcess[bytes]) -> list[bytes]:
        import orjson

        out = []
        for line in p.stdout.splitlines():
            d = orjson.loads(line)
            d.pop("uuid", None)
            d.pop("stockade", None)
            out.append(orjson.dumps(d, option=orjson.OPT_SORT_KEYS))
        return out

    assert len(lines(uncached)) == 2
    assert lines(cold) == lines(uncached)
    assert lines(warm) == lines(uncached)
    assert warm.stderr == uncached.stderr


def test_the_node_keeps_its_compiled_rules_in_its_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stockade up` and the agent (build_engine with node_cache_dir): a restart reads the rules
    compiled by the start before; the data directory and the cache are private; "" turns it off."""
    from stockade.config import load_config
    from stockade.engine.build import build_engine
    from stockade.engine.cache import node_cache_dir

    data = tmp_path / "data"
    cfg = load_config(None, {"data_dir": str(data)}, environ={})
    cache = node_cache_dir(cfg)
    assert cache == data / "cache" / "rules"
    loads = _Loads(monkeypatch)
    first, _ = build_engine(cfg, None, cache_dir=cache)
    again, _ = build_engine(cfg, None, cache_dir=cache)
    assert loads.n == 1 and len(list(cache.glob("*.pickle"))) == 1
    assert set(again.ruleset.rules) == set(first.ruleset.rules) and len(first.ruleset.rules) > 90
    for d in (data, data / "cache", cache):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d

    off = load_config(None, {"data_dir": str(tmp_path / "d2"), "engine": {"rules_cache_dir": ""}}, environ={})
    assert node_cache_dir(off) is None
    build_engine(off, None, cache_dir=node_cache_dir(off))
    assert loads.n == 2 and not (tmp_path / "d2").exists()
