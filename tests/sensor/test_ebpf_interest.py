"""The kernel's interest filter: calls on a path no rule cares about are dropped in the kernel.

Three things are held here:

* the decoder reports every call of a class as :func:`stockade.rules.interest.class_facts` says
  (the analysis is only as sound as that);
* soundness, as properties: a call the plan drops (:meth:`InterestPlan.keeps` false) matches no
  rule, for generated conditions and for the default rules (Falco's stable rules and the pack),
  on events the real decoder makes from records;
* the eBPF program does what the plan's model says, call by call (root, eBPF).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from helpers import Collector, wait_until
from stockade.config import load_config
from stockade.engine import Engine
from stockade.engine.build import build_engine
from stockade.rules import interp
from stockade.rules.ast import Check, ListLit, Node
from stockade.rules.interest import READ_EXCLUDED_FLAGS, InterestPlan, call_class, class_facts, plan_interest
from stockade.rules.printer import print_condition
from stockade.runtime.sensing import SensorRunner
from stockade.sensor.ebpf.backend import EbpfBackend
from stockade.sensor.ebpf.events import HDR, T_SADDR, T_STR, Decoder
from stockade.sensor.ebpf.syscalls import PATH_TARGETS, PF_HOW, PF_NO_FLAGS, SYSCALLS
from strategies import bool_trees, field_ref, lit

TARGETS = {n: t.target for n, t in PATH_TARGETS.items()}
READ_FLAGS = [0, 0o2000000, 0o200000 | 0o4000, 0o20000000 - 0o20000000 + 0o400000, 0o10000000, 0o200]
OTHER_FLAGS = [1, 2, 0o100, 0o1000, 0o2000, 0o20200000, 0o101 | 0o1000, 0o2 | 0o2000000, 0o100 | 0o200]


def kernel_class(evttype: str, flags: int, ret: int) -> int:
    """The class the program gives a call (pf_class in probe.bpf.c)."""
    src = PATH_TARGETS[evttype].flags
    read_only = src != PF_NO_FLAGS and not flags & READ_EXCLUDED_FLAGS
    return call_class(ret < 0, read_only)


def record(evttype: str, path: bytes, flags: int, ret: int) -> memoryview:
    """The record the program writes for a call of a path syscall (an absolute path: no dir blob)."""
    target = PATH_TARGETS[evttype]
    args = [3, 4, 5, 6, 7, 8]
    args[target.slot] = 0x7000
    blobs = [(T_STR + target.slot, path)]
    if target.flags == PF_HOW:
        blobs.append((T_SADDR + 2, struct.pack("<QQQ", flags, 0o644, 0)))
    elif target.flags != PF_NO_FLAGS:
        args[target.flags] = flags
    out = b""
    for tag, data in blobs:
        blob = tag.to_bytes(2, "little") + len(data).to_bytes(2, "little") + data
        out += blob + b"\0" * (-len(blob) % 4)
    size = HDR.size + len(out)
    nr = SYSCALLS[evttype].nr
    hdr = HDR.pack(1, nr, size, 1, 42, 42, 1, 42, 0, 0, 1000, 0, 7, 1, 1, ret, *args, 0, b"probe")
    return memoryview(hdr + out)


def decode(evttype: str, path: bytes, flags: int, ret: int) -> dict[str, Any]:
    rec = record(evttype, path, flags, ret)
    ev = Decoder(0).decode(rec, 0, len(rec))
    assert ev is not None and ev["evt.type"] == evttype
    return ev


@pytest.mark.parametrize("evttype", sorted(PATH_TARGETS))
def test_the_decoder_reports_each_class_as_the_analysis_assumes(evttype: str) -> None:
    target = PATH_TARGETS[evttype]
    path = b"/srv/app/data.txt"
    for flags in READ_FLAGS + OTHER_FLAGS:
        for ret in (0, 3, 1000, -1, -2, -13):
            ev = decode(evttype, path, flags, ret)
            cls = kernel_class(evttype, flags, ret)
            for field, fact in class_facts(evttype, cls, target.is_open).items():
                value = interp.extractor(field, None)(ev)
                assert fact.holds(value), (evttype, oct(flags), ret, field, fact, value)
            # the arguments the analysis takes for missing are
            assert {k for k in ev if k.startswith("evt.arg.")} <= target.args, evttype
            assert interp.extractor("evt.arg.nosuch", None)(ev) is None
            for field in target.fields:  # the path as given, in every field the analysis reads as it
                assert interp.extractor(field, None)(ev) == path.decode(), (evttype, field)
            assert interp.extractor("fd.directory", None)(ev) == "/srv/app"
            assert interp.extractor("fd.filename", None)(ev) == "data.txt"


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("/etc//shadow", "/etc/shadow"),
        ("//etc/shadow", "/etc/shadow"),
        ("/tmp/../etc/shadow", "/etc/shadow"),
        ("/etc/./shadow", "/etc/shadow"),
        ("/etc/shadow/", "/etc/shadow"),
        ("/etc/shadow", "/etc/shadow"),
    ],
)
def test_an_absolute_path_is_normalized_as_libsinsp_does(given: str, name: str) -> None:
    """fd.name is the normalized path (no rule is evaded by '//' or '..'); fd.nameraw as given."""
    ev = decode("openat", given.encode(), 0, 3)
    assert ev["fd.name"] == name and ev["evt.arg.name"] == given
    assert interp.extractor("fd.nameraw", None)(ev) == given
    ev.update({**_CONTAINER, **CONTEXTS[1]})
    assert "Password Database Read in Container" in [
        a.rule for a in default_engine().process_data("syscall", ev)
    ]


# -- soundness on generated conditions ---------------------------------------------------------


@st.composite
def other_checks(draw: st.DrawFn) -> Check:
    """A check on what the kernel does not know (the process, the container)."""
    f, values = draw(
        st.sampled_from(
            [
                ("proc.name", ["cat", "bash"]),
                ("container.id", ["host"]),
                ("user.name", ["root"]),
                ("proc.pname", ["runc", "bash"]),
            ]
        )
    )
    return Check(field_ref(f), draw(st.sampled_from(["=", "!="])), lit(draw(st.sampled_from(values)), False))


PATH_CONSTS = [
    "/etc/shadow",
    "/etc",
    "/etc/",
    "/etc/pam.d",
    "/home/u/.ssh/id_rsa",
    "/proc/1/environ",
    "/",
    "",
    "shadow",
    ".ssh",
    "id_rsa",
    "pam.d",
    "/tmp/x",
    "sock",
    "a/b",
]
GLOBS = [
    "/etc/*",
    "*shadow",
    "/proc/*/environ",
    "*../*",
    "/home/*/.ssh/*",
    "*.pem",
    "[ab]*",
    "\\*x",
    "/etc/?am*",
]
PATH_FIELDS = ["fd.name", "fd.nameraw", "evt.arg.name", "fd.directory", "fd.filename"]
PATH_OPS = ["=", "!=", "startswith", "endswith", "contains", "in", "pmatch", "glob", "icontains", "regex"]


@st.composite
def path_checks(draw: st.DrawFn) -> Check:
    """A check on the call's path (as given, its directory, its file name)."""
    f = field_ref(draw(st.sampled_from(PATH_FIELDS)))
    op = draw(st.sampled_from(PATH_OPS))
    q = draw(st.booleans())
    if op in ("in", "pmatch"):
        items = draw(st.lists(st.sampled_from(PATH_CONSTS), min_size=1, max_size=3))
        return Check(f, op, ListLit(tuple(lit(v, q) for v in items)))
    pool = GLOBS + PATH_CONSTS if op == "glob" else PATH_CONSTS
    return Check(f, op, lit(draw(st.sampled_from(pool)), q))


@st.composite
def call_checks(draw: st.DrawFn) -> Check:
    """A check on what the kernel knows of a call besides its path."""
    q = draw(st.booleans())
    kind = draw(st.sampled_from(["type", "flags", "open", "res", "num"]))
    if kind == "type":
        return Check(
            field_ref("evt.type"), draw(st.sampled_from(["=", "!="])), lit(draw(st.sampled_from(TYPES)), q)
        )
    if kind == "flags":
        name = draw(
            st.sampled_from(["O_RDONLY", "O_WRONLY", "O_TRUNC", "O_CREAT", "O_CLOEXEC", "RDWR", "O_"])
        )
        return Check(field_ref("evt.arg.flags"), draw(st.sampled_from(["contains", "="])), lit(name, q))
    if kind == "open":
        which = draw(st.sampled_from(["evt.is_open_read", "evt.is_open_write", "evt.is_open_create"]))
        return Check(
            field_ref(which),
            draw(st.sampled_from(["=", "!="])),
            lit(draw(st.sampled_from(["true", "false"])), q),
        )
    if kind == "res":
        return Check(field_ref("evt.res"), draw(st.sampled_from(["=", "!="])), lit("SUCCESS", q))
    num = field_ref(draw(st.sampled_from(["fd.num", "evt.rawres"])))
    return Check(
        num, draw(st.sampled_from(["<", ">=", "=", "!="])), lit(draw(st.sampled_from(["0", "-1", "3"])), q)
    )


TYPES = ["openat", "open", "openat2", "creat", "unlinkat", "mkdir"]


def conditions() -> st.SearchStrategy[Node]:
    leaves = st.one_of(path_checks(), path_checks(), call_checks(), call_checks(), other_checks())
    return bool_trees(leaves, max_leaves=7)


PIECES = [
    "/etc",
    "/shadow",
    "/pam.d",
    "/",
    "/.ssh",
    "/id_rsa",
    "/proc/1",
    "/environ",
    "/tmp",
    "x",
    ".pem",
    "../",
]
PIECES += ["//", "/./", "sock", "a/b", "/home/u", "é"]


@st.composite
def paths(draw: st.DrawFn) -> bytes:
    """Paths around the constants: the constants themselves, joined, cut and extended."""
    if draw(st.booleans()):
        base = draw(st.sampled_from(PATH_CONSTS + [g.replace("*", "q").replace("?", "p") for g in GLOBS]))
    else:
        base = "".join(draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=4)))
    cut = draw(st.integers(0, 3))
    if cut and len(base) > cut:
        base = base[:-cut] if draw(st.booleans()) else base[cut:]
    base = draw(st.sampled_from(["", "/", "/srv"])) + base + draw(st.sampled_from(["", "x", "/", "/f"]))
    return base.encode()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(conditions(), min_size=1, max_size=3), st.sampled_from(TYPES), st.data())
def test_a_dropped_call_never_matches(conds: list[Node], evttype: str, data: st.DataObject) -> None:
    plan = plan_interest(conds, TARGETS)
    for _ in range(8):
        ev = dropped_call(data, plan, evttype, data.draw(paths()))
        if ev is None:
            continue
        for c in conds:
            assert not interp.evaluate(c, ev), (print_condition(c), ev)


def dropped_call(data: st.DataObject, plan: InterestPlan, evttype: str, path: bytes) -> dict[str, Any] | None:
    """A call of `evttype` on `path` (flags, result and process drawn) as the decoder and the
    enrichment give it, if the plan drops it; None if the plan keeps it."""
    flags = data.draw(st.sampled_from(READ_FLAGS + OTHER_FLAGS))
    ret = data.draw(st.sampled_from([0, 3, -1, -13]))
    if plan.keeps(evttype, kernel_class(evttype, flags, ret), path):
        event("kept")
        return None
    event("dropped")
    ev = decode(evttype, path, flags, ret)
    ev.update({k: v for k, v in data.draw(contexts()).items() if v is not None})
    return ev


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    """What enrichment adds, from values the default rules test."""
    return {
        "proc.name": draw(st.sampled_from(["cat", "bash", "python3", "sshd", "nginx", "find", "grep", "vi"])),
        "proc.pname": draw(st.sampled_from(["bash", "runc", "containerd-shim", "sshd", "systemd", None])),
        "proc.aname": draw(st.sampled_from([["bash", "runc"], ["sshd", "systemd"], []])),
        "proc.exepath": draw(st.sampled_from(["/usr/bin/cat", "/bin/bash", "/tmp/x", None])),
        "proc.cmdline": draw(st.sampled_from(["cat /etc/shadow", "bash", "vi x", None])),
        "container.id": draw(st.sampled_from(["host", "3ad7b26ded6d"])),
        "container.image.repository": draw(st.sampled_from(["nginx", "docker.io/library/alpine", None])),
        "user.name": draw(st.sampled_from(["root", "app", None])),
        "user.uid": draw(st.sampled_from([0, 1000])),
        "proc.tty": draw(st.sampled_from([0, 34816])),
        "proc.is_exe_upper_layer": draw(st.sampled_from([True, False, None])),
    }


# -- soundness with the default rules ---------------------------------------------------------


@cache
def default_engine() -> Engine:
    cfg = load_config(None, {}, environ={})
    engine, _ = build_engine(cfg, [], rule_matching="all")
    return engine


@cache
def default_plan() -> InterestPlan:
    return plan_interest(default_engine().conditions("syscall"), TARGETS)


TYPICAL = [
    b"/etc/ld.so.cache",
    b"/lib/x86_64-linux-gnu/libc.so.6",
    b"/proc/self/status",
    b"/usr/share/zoneinfo/UTC",
    b"/srv/app/data.txt",
    b"/tmp/tmp1234",
]


def test_the_default_rules_drop_the_usual_traffic_and_keep_what_they_read() -> None:
    plan = default_plan()
    assert {"open", "openat", "openat2", "creat"} <= set(plan.classes)
    ro, wr = 0, 1  # openat's flags: O_RDONLY, O_WRONLY
    for p in TYPICAL:
        assert not plan.keeps("openat", kernel_class("openat", ro, 3), p), p
    # what Falco's and the pack's rules read
    for p in [b"/etc/shadow", b"/etc/sudoers.d/x", b"/root/.ssh/id_rsa", b"/home/u/.aws/credentials"]:
        assert plan.keeps("openat", kernel_class("openat", ro, 3), p), p
    for p in [b"/etc/hosts", b"/usr/bin/ls", b"/root/.bash_history"]:
        assert plan.keeps("openat", kernel_class("openat", wr, 3), p), p
    # never dropped: relative, non-canonical, too long
    for p in [b"etc/shadow", b"/etc//shadow", b"/tmp/../etc/shadow", b"/etc/shadow/", b"/" + b"a" * 300]:
        assert plan.keeps("openat", kernel_class("openat", ro, 3), p), p


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_with_the_default_rules_a_dropped_call_matches_no_rule(data: st.DataObject) -> None:
    plan, engine = default_plan(), default_engine()
    conds = engine.conditions("syscall")
    near = sorted({n.text for n in plan.needles} | {p.decode() for p in TYPICAL})
    evttype = data.draw(st.sampled_from(sorted(TARGETS)))
    text = data.draw(st.sampled_from(near)) + data.draw(st.sampled_from(["", "x", "/x", "/id_rsa", ".pem"]))
    path = (data.draw(st.sampled_from(["", "/", "/host", "/proc/1/root"])) + text).encode()
    ev = dropped_call(data, plan, evttype, path)
    if ev is not None:
        matched = [print_condition(c)[:120] for c in conds if interp.evaluate(c, ev)]
        assert not matched, (ev, matched)


CONTEXTS: list[dict[str, Any]] = [
    # a shell in a container, as root, on a terminal
    {"proc.name": "bash", "proc.pname": "runc", "proc.aname": ["runc", "containerd-shim"], "proc.tty": 34816},
    # a tool in a container started by a shell
    {"proc.name": "cat", "proc.pname": "bash", "proc.aname": ["bash", "runc"], "proc.cmdline": "cat x"},
    {"proc.name": "python3", "proc.pname": "sh", "proc.exepath": "/tmp/x", "proc.is_exe_upper_layer": True},
    {"proc.name": "find", "proc.pname": "bash", "proc.cmdline": "find / -name id_rsa"},
    # the same on the host, from an SSH session
    {"proc.name": "vi", "proc.pname": "bash", "proc.aname": ["bash", "sshd"], "container.id": "host"},
    {"proc.name": "nginx", "proc.pname": "systemd", "container.id": "host", "user.name": "www-data"},
]
_CONTAINER = {"container.id": "3ad7b26ded6d", "container.image.repository": "docker.io/library/alpine"}


def boundary_paths(plan: InterestPlan) -> list[bytes]:
    """Paths at the edges of the plan's needles: each needle, under a directory, extended."""
    texts = sorted({n.text for n in plan.needles} | {p.decode() for p in TYPICAL})
    out = set()
    for t in texts:
        for head in ("", "/host", "/proc/1/root"):
            for tail in ("", "x", "/x", "/id_rsa"):
                p = head + t + tail
                if p.startswith("/"):
                    out.add(p.encode())
    return sorted(out)


#: kept calls of the needles' edges that must raise an alert (the check is not vacuous)
KEPT_ALERTS = 100


def test_with_the_default_rules_no_dropped_call_at_a_needles_edge_raises_an_alert() -> None:
    """Every path at the edge of a needle, in every syscall and class, in six process contexts:
    the engine raises no alert on a call the plan drops (and does on some it keeps: kept calls are
    evaluated only until enough of them have alerted, as three in four calls are kept and only
    the dropped ones are under test)."""
    plan = default_plan()
    cfg = load_config(None, {}, environ={})
    engine, _ = build_engine(cfg, [], rule_matching="all")
    calls = [(0o2000000, 3), (0, -2), (0o1101, 3), (0o2 | 0o100, -13), (0o1000, 3)]
    dropped = alerted_kept = 0
    for evttype in sorted(TARGETS):
        for path in boundary_paths(plan):
            for flags, ret in calls:
                keeps = plan.keeps(evttype, kernel_class(evttype, flags, ret), path)
                dropped += not keeps
                if keeps and alerted_kept > KEPT_ALERTS:
                    continue
                base = decode(evttype, path, flags, ret)
                for ctx in CONTEXTS:
                    ev = {**base, **_CONTAINER, **ctx}
                    alerts = engine.process_data("syscall", ev)
                    if keeps:
                        alerted_kept += bool(alerts)
                    else:
                        assert not alerts, (path, oct(flags), ret, ctx, [a.rule for a in alerts])
    assert dropped > 5000 and alerted_kept > KEPT_ALERTS, (dropped, alerted_kept)


# -- in the kernel (root, eBPF) ----------------------------------------------------------------

RULES = """
- rule: Exact
  desc: d
  condition: evt.type in (open, openat) and fd.name = {d}/exact and evt.is_open_read = true
  output: "%fd.name"
  priority: WARNING
- rule: Below
  desc: d
  condition: evt.type = openat and fd.directory in ({d}/below)
  output: "%fd.name"
  priority: WARNING
- rule: Suffix
  desc: d
  condition: evt.type = openat and fd.filename endswith .pem and proc.name != nosuchproc
  output: "%fd.name"
  priority: WARNING
- rule: Contains
  desc: d
  condition: evt.type = openat and fd.name contains needle-q
  output: "%fd.name"
  priority: WARNING
- rule: Written
  desc: d
  condition: evt.type = openat and evt.is_open_write = true and fd.name startswith {d}/
  output: "%fd.name"
  priority: WARNING
- rule: Glob
  desc: d
  condition: evt.type = openat and fd.name glob '{d}/*/deep/*.key' and fd.num >= 0
  output: "%fd.name"
  priority: WARNING
"""


def _runner(tmp_path: Path, **sensor: Any) -> tuple[SensorRunner, Collector]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent(RULES.format(d=tmp_path)))
    over = {
        "sensor": {"backend": "ebpf", **sensor},
        "engine": {"falco_rules_paths": [], "builtin_rules": False, "aggregate_window_s": 0},
    }
    cfg = load_config(None, over, environ={})
    engine, _ = build_engine(cfg, [str(rules)], rule_matching="all")
    pipe = Collector(engine)
    return SensorRunner(cfg, pipe, engine.evttypes("syscall")), pipe


def _calls(d: Path) -> list[tuple[str, int]]:
    """(path, open flags) for the child to open: related and unrelated, in every class."""
    names = ["exact", "exactly", "below/f", "below/sub/f", "belowx/f", "c.pem", "c.pem.bak", "x-needle-q-y"]
    names += ["needle-", "a/deep/b.key", "a/deep/b.keys", "plain", "other/deep/x.key"]
    out = []
    for n in names:
        out += [(f"{d}/{n}", os.O_RDONLY), (f"{d}/{n}", os.O_RDONLY | os.O_CLOEXEC)]
        out.append((f"{d}/{n}-missing", os.O_RDONLY))  # failed
        out.append((f"{d}/{n}", os.O_WRONLY))
    out += [(f"{d}//plain", os.O_RDONLY), (f"{d}/./plain", os.O_RDONLY), (f"{d}/" + "p" * 260, os.O_RDONLY)]
    return out


CHILD = """
import os, sys
for line in sys.stdin.read().splitlines():
    path, flags = line.rsplit(" ", 1)
    try:
        os.close(os.open(path, int(flags)))
    except OSError:
        pass
"""


@pytest.mark.root
@pytest.mark.ebpf
def test_the_kernel_drops_exactly_what_the_plan_drops(tmp_path: Path) -> None:
    for sub in ("below/sub", "belowx", "a/deep", "other/deep"):
        (tmp_path / sub).mkdir(parents=True)
    calls = _calls(tmp_path)
    for path, _flags in calls:
        if not path.endswith("-missing") and len(os.path.basename(path)) < 255:
            Path(path).touch()
    runner, pipe = _runner(tmp_path)
    plan = runner.interest
    assert plan.classes.get("openat") == 0b1111
    runner.start()
    try:
        b = runner.backends["ebpf"]
        assert isinstance(b, EbpfBackend) and b.dropping_paths["openat"] == 0b1111
        before = b.refresh_stats().filtered_by_cause["no_interest"]
        text = "".join(f"{p} {f}\n" for p, f in calls)
        subprocess.run([sys.executable, "-c", CHILD], input=text.encode(), check=True)
        want: dict[tuple[str, int, bool], bool] = {}
        dropped = 0
        for path, flags in calls:
            ret = 3 if os.path.exists(path) and not path.endswith("-missing") else -2
            keeps = plan.keeps("openat", kernel_class("openat", flags, ret), path.encode())
            want[(path, flags & 3, ret >= 0)] = keeps
            dropped += not keeps
        assert dropped and any(want.values())

        def seen() -> set[tuple[str, int, bool]]:
            out = set()
            for e in [ev.data for ev in list(pipe.events)]:
                if e.get("evt.type") == "openat" and str(e.get("evt.arg.name", "")).startswith(str(tmp_path)):
                    out.add((e["evt.arg.name"], 1 if e["evt.is_open_write"] else 0, e["evt.rawres"] >= 0))
            return out

        kept = {k for k, v in want.items() if v}
        assert wait_until(lambda: kept <= seen()), sorted(kept - seen())
        time.sleep(0.3)  # stragglers (there must be none)
        got = seen()
        assert got == kept, (sorted(got - kept), sorted(kept - got))
        assert b.refresh_stats().filtered_by_cause["no_interest"] - before >= dropped
        assert not b.stats.lost
        # what the rules said: every alert is on a kept call
        assert {a.output_fields["fd.name"] for a in pipe.alerts} <= {p for p, _f, _ok in kept}
    finally:
        runner.close()


@pytest.mark.root
@pytest.mark.ebpf
def test_off_nothing_is_dropped_by_path_and_a_reload_turns_it_on_live(tmp_path: Path) -> None:
    runner, pipe = _runner(tmp_path, kernel_interest_filter=False)
    assert not runner.interest.active
    runner.start()
    try:
        b = runner.backends["ebpf"]
        assert isinstance(b, EbpfBackend) and not b.dropping_paths
        plain = tmp_path.parent / f"{tmp_path.name}-plain"  # outside the rules' directory
        plain.touch()
        subprocess.run([sys.executable, "-c", CHILD], input=f"{plain} 0\n".encode(), check=True)
        assert wait_until(lambda: any(e.data.get("evt.arg.name") == str(plain) for e in list(pipe.events)))
        assert b.refresh_stats().filtered_by_cause["no_interest"] == 0
        # the plan, set live: the same open is now dropped, a related one still arrives
        assert pipe.engine is not None
        plan = plan_interest(pipe.engine.conditions("syscall"), TARGETS)
        assert not plan.keeps("openat", kernel_class("openat", 0, 3), str(plain).encode())
        b.set_interest(plan)
        assert b.dropping_paths["openat"] == 0b1111
        n = len(pipe.events)
        (tmp_path / "c.pem").touch()
        subprocess.run(
            [sys.executable, "-c", CHILD], input=f"{plain} 0\n{tmp_path}/c.pem 0\n".encode(), check=True
        )
        assert wait_until(
            lambda: any(e.data.get("evt.arg.name") == f"{tmp_path}/c.pem" for e in list(pipe.events))
        )
        assert not any(e.data.get("evt.arg.name") == str(plain) for e in list(pipe.events)[n:])
        assert b.refresh_stats().filtered_by_cause["no_interest"] >= 1
        b.set_interest(InterestPlan())
        assert not b.dropping_paths
    finally:
        runner.close()


ONE_RULE = """
- rule: Watched name
  desc: d
  condition: evt.type = openat and fd.filename = {name}
  output: "%fd.name"
  priority: WARNING
"""


@pytest.mark.root
@pytest.mark.ebpf
def test_a_rule_reload_re_derives_the_filter_live(tmp_path: Path) -> None:
    """After `stockade rules reload` the kernel keeps what the new rules read (and drops what only
    the old ones did): the reloader turns the filter off, swaps the engines, derives it again."""
    from stockade.runtime.pipeline import Pipeline
    from stockade.runtime.reload import RulesReloader

    old, new = (f"{os.getpid()}-{tmp_path.name}-{n}.key" for n in ("old", "new"))
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent(ONE_RULE.format(name=old)))
    over = {
        "sensor": {"backend": "ebpf"},
        "engine": {"falco_rules_paths": [], "builtin_rules": False, "aggregate_window_s": 0},
    }
    cfg = load_config(None, over, environ={})
    engine, _ = build_engine(cfg, [str(rules)], rule_matching="all")
    sink = Collector()
    pipeline = Pipeline(engine, [sink.sink])
    runner = SensorRunner(cfg, pipeline, engine.evttypes("syscall"))
    reloader = RulesReloader(cfg, pipeline, [str(rules)], sensor=runner)
    for name in (old, new):
        (tmp_path / name).touch()
    runner.start()
    try:
        b = runner.backends["ebpf"]
        assert isinstance(b, EbpfBackend)
        opens = f"{tmp_path}/{old} 0\n{tmp_path}/{new} 0\n".encode()
        subprocess.run([sys.executable, "-c", CHILD], input=opens, check=True)
        assert wait_until(lambda: len(sink.alerts) >= 1)
        assert not runner.interest.keeps("openat", 0, f"{tmp_path}/{new}".encode())
        rules.write_text(textwrap.dedent(ONE_RULE.format(name=new)))
        reloader.reload()
        assert runner.interest.keeps("openat", 0, f"{tmp_path}/{new}".encode())
        assert not runner.interest.keeps("openat", 0, f"{tmp_path}/{old}".encode())
        assert b.dropping_paths["openat"] == 0b1111
        n = len(sink.alerts)
        subprocess.run([sys.executable, "-c", CHILD], input=opens, check=True)
        assert wait_until(lambda: len(sink.alerts) > n)
        time.sleep(0.3)
        assert [a.output_fields["fd.name"] for a in sink.alerts] == [f"{tmp_path}/{old}", f"{tmp_path}/{new}"]
    finally:
        runner.close()
