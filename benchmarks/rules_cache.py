"""What a start of `stockade up` or `stockade agent` pays for its rules: building the engine of the
default rules (Stockade's pack, and Falco's where installed) through the node's compiled-rules
cache (``engine.rules_cache_dir``, a warm entry) against compiling them (the baseline: what every
start paid before the cache, and what the first start still pays), in the same run.

    .venv/bin/python benchmarks/rules_cache.py [--repeat R] [--json]

Alternating rounds, best of ``--repeat`` (5) by wall time each: ``build_engine`` of an empty
configuration with the cache turned off, and with a warm cache in a temporary data directory (its
entry written once before the rounds). CPU seconds are the process's in the same call.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from stockade.config import load_config
from stockade.engine.build import build_engine
from stockade.engine.cache import node_cache_dir


def _timed(fn: Any) -> tuple[float, float, Any]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        cfg = load_config(None, {"data_dir": str(Path(d) / "data")}, environ={})
        cache = node_cache_dir(cfg)
        build_engine(cfg, None, cache_dir=cache)  # the entry a first start writes
        best: dict[str, tuple[float, float]] = {}
        rules = 0
        for _ in range(args.repeat):
            for name, cache_dir in (("compile (no cache)", None), ("warm cache", cache)):
                wall, cpu, (engine, _notes) = _timed(lambda c=cache_dir: build_engine(cfg, None, cache_dir=c))
                rules = len(engine.ruleset.rules)
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
    ratio = best["compile (no cache)"][0] / best["warm cache"][0]
    result = {
        "rules": rules,
        "best_of": args.repeat,
        "runs": {k: {"wall_s": round(w, 4), "cpu_s": round(c, 4)} for k, (w, c) in best.items()},
        "compile_over_cache": round(ratio, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"the default rules ({rules}), best of {args.repeat}:")
    for k, (w, c) in best.items():
        print(f"  {k:20s} {w * 1000:8.1f} ms wall  {c * 1000:8.1f} ms CPU")
    print(f"  a start reads the cache {ratio:.1f}x faster than it compiles the rules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
