"""Compare Stockade's condition semantics with libsinsp's (Debian's sysdig) on .scap captures.

Run by hand (a development check, not a test: captures are not committed):

    cd /tmp && git -C FALCO_CLONE show 'b1ae5d3d^:test/trace_files/cat_write.scap' > cat_write.scap
    .venv/bin/python scripts/sysdig_oracle.py /tmp/cat_write.scap /tmp/connect_localhost.scap

(FALCO_CLONE: a clone of falcosecurity/falco; `git log --all --format=%H -- '*.scap'` lists the
commits holding captures.) For each capture, sysdig dumps the fields a sensor records for every event;
Stockade rebuilds its events from those alone and derives the rest (evt.res, fd.directory, ...). Then
filters are generated from the values sysdig shows for the derived fields, and each one is run by
`sysdig -r CAPTURE -p "*%evt.num" FILTER` and by Stockade's reference interpreter: they agree when
both refuse the filter or both match the same events. Prints the agreement and every disagreement.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from stockade.rules.interp import evaluate
from stockade.rules.parser import ConditionSyntaxError, parse_condition
from stockade.rules.resolve import Resolver, _Fail
from stockade.rules.ruleset import Ruleset

#: what a sensor records for an event (Stockade derives the other fields from these)
BASE = [
    "evt.num",
    "evt.type",
    "evt.dir",
    "evt.rawres",
    "fd.name",
    "fd.typechar",
    "proc.name",
    "proc.pid",
    "evt.arg.flags",
    "fd.num",
]
#: derived fields whose semantics are compared
DERIVED = ["evt.res", "evt.failed", "fd.directory", "fd.filename", "fd.type", "evt.is_open_read"]
STRINGS = {"evt.res", "fd.directory", "fd.filename", "fd.type"}
#: filters libsinsp refuses at load (type checks)
TYPE_CHECKS = [
    "proc.pid = 1.5",
    "proc.pid contains 1",
    "proc.pid startswith 1",
    "proc.pid pmatch (1)",
    "evt.is_open_read = yes",
    "evt.is_open_read = 1",
    "evt.failed = 0",
    "fd.num glob 1*",
]


def dump(capture: str, fields: list[str]) -> list[dict[str, Any]]:
    fmt = "*" + " ".join(f"%{f}" for f in fields)
    out = subprocess.run(
        ["sysdig", "-r", capture, "-j", "-p", fmt], capture_output=True, text=True, check=True
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def sysdig_matches(capture: str, flt: str) -> set[int] | None:
    r = subprocess.run(
        ["sysdig", "-r", capture, "-p", "*%evt.num", flt], capture_output=True, text=True, check=False
    )
    if r.returncode != 0 or "error" in (r.stdout + r.stderr).lower():
        return None
    return {int(x) for x in r.stdout.split() if x.isdigit()}


def stockade_matches(events: list[dict[str, Any]], flt: str) -> set[int] | None:
    try:
        res = Resolver(Ruleset())
        ast = res.expand(parse_condition(flt))
        res.check_fields(ast, "syscall")
    except (ConditionSyntaxError, _Fail):
        return None
    return {int(e["evt.num"]) for e in events if evaluate(ast, e)}


def _quote(v: str) -> str:
    return '"' + v.replace('"', '\\"') + '"' if (not v or any(c in v for c in ' ()",=')) else v


def filters(rows: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for f in DERIVED:
        values = sorted(
            {str(r[f]).lower() if isinstance(r[f], bool) else str(r[f]) for r in rows if r.get(f) is not None}
        )
        out += [f"{f} exists", f"not {f} exists"]
        for v in values[:12]:
            q = _quote(v)
            out += [f"{f} = {q}", f"{f} != {q}", f"not {f} = {q}"]
            if f in STRINGS and len(v) >= 3:
                out += [
                    f"{f} startswith {_quote(v[:2])}",
                    f"{f} endswith {_quote(v[-2:])}",
                    f"{f} contains {_quote(v[1:3])}",
                ]
        if len(values) >= 2:
            out.append(f"{f} in ({_quote(values[0])}, {_quote(values[-1])})")
    return out + TYPE_CHECKS


def main(captures: list[str]) -> int:
    agree = total = 0
    for cap in captures:
        base = dump(cap, BASE)
        events = [{k: v for k, v in r.items() if v is not None} for r in base]
        for e in events:  # sysdig prints evt.rawres as a number and flags as text; keep them so
            if isinstance(e.get("evt.arg.flags"), str) and e["evt.arg.flags"] == "":
                del e["evt.arg.flags"]
        rows = dump(cap, ["evt.num", *DERIVED])
        for flt in filters(rows):
            s, o = sysdig_matches(cap, flt), stockade_matches(events, flt)
            total += 1
            if s == o:
                agree += 1
                continue

            def show(m: set[int] | None) -> str:
                return "refused" if m is None else f"{len(m)} events"

            extra = sorted((s or set()) ^ (o or set()))[:5] if s is not None and o is not None else []
            print(f"{cap}: {flt!r}: sysdig {show(s)}, stockade {show(o)} {extra}")
    print(f"agreement: {agree}/{total} filters ({100 * agree / max(total, 1):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
