"""WorkloadPolicy -> Falco rules that alert on deviations (Stockade's Monitor mode, for Falco users).

One macro selects the workload (``<p>_workload``, ``<p>`` = ``stockade_<policy name>``):
Kubernetes: ``k8s.ns.name`` and the pod name shapes its owner's controller gives
(``<owner>-<hash>-<suffix>`` for a Deployment or a CronJob, ``<owner>-<suffix>`` otherwise, the
owner itself for a bare pod; a ``glob`` with as many dashes, and not one more, so ``web`` does not
also select ``web-api``); plain containers: ``container.image.repository`` and
``container.name`` (with any replica suffix); ``host``: ``container.id = host``. The container
runtime's own init process (``runc:[2:INIT]``, run from the host's runc binary inside the
container before the workload's first program) is not the workload.

Then, for each kind of operation, the policy's block and audit rules each become a rule
("Blocked|Audited <kind> in <workload> (rule <name>)", priority WARNING for block, NOTICE for
audit), and when ``spec.action`` is not ``allow`` one rule alerts on what no allow rule names
("Unexpected process in <workload>", "Unexpected file read|write in ...", "Unexpected
outbound|inbound connection in ...", "Unexpected listening port in ...", "Unexpected privileged
operation in ..."). Every alert names the policy, the rule and the workload.

Paths: an exact path is ``=`` / ``in``, ``/d/**`` is ``startswith /d/``, a path's tail at any
depth (``/**/x``, ``/**/*.key``, ``/**/.ssh/**``) is ``endswith`` / ``contains``, other globs are
Falco's ``glob`` (where ``*`` also crosses ``/``: a pattern without ``**`` also gets a test that
the path has exactly as many components, so the match is exact; ``/a/**/b`` is ``/a/*b``, wider).
A file rule's ``except`` globs are ``and not`` tests of the same field (an exception that
matches none of the rule's paths is left out; an exact path one of them matches makes the rule
match nothing). Processes match ``proc.exepath``
(`parent` ``proc.pexepath``, `args` ``proc.args``); files ``fd.name`` with ``open_read`` /
``open_write`` (exec access is a process match); connections ``fd.sip``/``fd.snet``,
``fd.sip.name`` (DNS peers, as Falco resolves them) and ``fd.sport`` (``fd.cip``, ``fd.sport`` for
ingress; ``fd.lport`` for listen). A workload peer has no address Falco knows: an allow rule's is
widened to any peer, a block rule's left out (warnings say so).

The rules use Falco's default macros ``spawned_process``, ``container``, ``open_read`` and
``open_write`` (falco_rules.yaml, loaded first); ``standalone=True`` writes their definitions
(those used) at the top, copied from Falco's stable rules (Apache-2.0). Connections use macros of
their own rather than Falco's ``outbound``, which leaves out private (RFC 1918) and loopback
addresses, exactly where a workload moves sideways.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from stockade.behavior.ops import PRIVILEGED_SYSCALLS
from stockade.behavior.pathglob import intersects
from stockade.policy.decision import Action
from stockade.policy.export._common import (
    Target,
    dump_yaml,
    exact,
    has_glob,
    named,
    network_of,
    path_shape,
    port_ranges,
    privileged_actions,
    target_of,
)
from stockade.policy.export.interface import ExportError, ExportResult
from stockade.policy.globs import literal, path_match
from stockade.policy.model import FileRule, NetworkRule, ProcessRule, WorkloadPolicy

__all__ = ["FALCO_MACROS", "export"]

#: Falco's default macros the rules use (falco_rules.yaml, stable), written with standalone=True
FALCO_MACROS = {
    "spawned_process": "(evt.type in (execve, execveat))",
    "container": "(container.id != host)",
    "open_write": "(evt.type in (open,openat,openat2) and evt.is_open_write=true and fd.typechar='f' and fd.num>=0)",
    "open_read": "(evt.type in (open,openat,openat2) and evt.is_open_read=true and fd.typechar='f' and fd.num>=0)",
}
#: the connections of each direction (macros of the export's own)
_NET_EVENTS = {
    "egress": (
        "((evt.type = connect or (evt.type in (sendto, sendmsg) and fd.l4proto != tcp and "
        "fd.connected = false and fd.name_changed = true)) and (fd.typechar = 4 or fd.typechar = 6) "
        "and (evt.rawres >= 0 or evt.res = EINPROGRESS))"
    ),
    "ingress": "(evt.type in (accept, accept4) and (fd.typechar = 4 or fd.typechar = 6) and evt.rawres >= 0)",
    "listen": "(evt.type in (bind, listen) and (fd.typechar = 4 or fd.typechar = 6) and evt.rawres >= 0)",
}
_NET_TITLE = {"egress": "outbound connection", "ingress": "inbound connection", "listen": "listening port"}
#: peer address, peer network, peer name and port fields per direction
_NET_FIELDS = {
    "egress": ("fd.sip", "fd.snet", "fd.sip.name", "fd.sport"),
    "ingress": ("fd.cip", "fd.cnet", "fd.cip.name", "fd.sport"),
    "listen": ("fd.lip", "fd.lnet", "", "fd.lport"),
}
_PRIORITY = {"block": "WARNING", "audit": "NOTICE"}
_VERB = {"block": "Blocked", "audit": "Audited"}
_RUNTIME_INIT = '(proc.name startswith "runc:[" and proc.exepath endswith "/runc")'
_PLAIN = re.compile(r"^[A-Za-z0-9_./:+@-]+$")
_OUTPUT = {
    "process": "process=%proc.exepath parent=%proc.pexepath command=%proc.cmdline",
    "file": "file=%fd.name process=%proc.exepath command=%proc.cmdline",
    "network": "connection=%fd.name process=%proc.exepath command=%proc.cmdline",
    "privileged": "syscall=%evt.type process=%proc.exepath command=%proc.cmdline",
}
_WHERE = "container=%container.id image=%container.image.repository pod=%k8s.pod.name ns=%k8s.ns.name"


def q(text: str) -> str:
    """`text` as a Falco quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _item(text: str) -> str:
    """`text` as a list item (quoted when it is not a plain word)."""
    return text if _PLAIN.match(text) else q(text)


def _tail_test(field: str, pattern: str) -> str | None:
    """An exact test for a glob naming a path's tail at any depth, as the credential patterns do
    (``/**/.netrc``, ``/**/*.key``, ``/**/.ssh/**``); None for another glob."""
    rest = pattern.removeprefix("/**/")
    if rest == pattern or not rest:
        return None
    lit = literal(rest)
    if lit is not None:
        return f"{field} endswith {q('/' + lit)}"
    suffix = literal(rest[1:]) if rest.startswith("*") else None
    if suffix and "/" not in suffix:
        return f"{field} endswith {q(suffix)}"
    tree = literal(rest[:-3]) if rest.endswith("/**") else None
    if tree:
        return f"{field} contains {q('/' + tree + '/')}"
    return None


def path_test(field: str, pattern: str) -> tuple[str, bool]:
    """A Falco test of `field` against a policy path or glob, and whether it is exact."""
    shape = path_shape(pattern)
    if shape.kind == "exact":
        return f"{field} = {q(shape.base)}", True
    if shape.kind == "tree":
        return f"{field} startswith {q(shape.base)}", True
    tail = _tail_test(field, pattern)
    if tail is not None:
        return tail, True
    # a "**" component: none or more components, so "/a/**/b" is "/a/*b" (also "/a/xb": wider)
    glob = re.sub(r"\*\*+", "*", re.sub(r"(?:/\*\*)+/", "/*", pattern))
    if "**" not in pattern:
        deeper = "/*" * (shape.depth + 1)
        return f"({field} glob {q(glob)} and not {field} glob {q(deeper)})", True
    comps = pattern.split("/")
    last_tree = max(i for i, c in enumerate(comps) if "**" in c)
    exact = not any(has_glob(c) for c in comps[:last_tree]) and last_tree == len(comps) - 1
    return f"{field} glob {q(glob)}", exact


def _any_of(tests: Sequence[str]) -> str:
    """The disjunction of `tests` (none: a test that never holds)."""
    if not tests:
        return "evt.num < 0"
    return tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")"


def _ports_test(field: str, ranges: list[tuple[int, int]]) -> str:
    singles = [str(lo) for lo, hi in ranges if lo == hi]
    tests = [f"{field} in ({', '.join(singles)})"] if singles else []
    tests += [f"({field} >= {lo} and {field} <= {hi})" for lo, hi in ranges if lo != hi]
    return _any_of(tests)


class _Rules:
    """The Falco items of one policy, in order, and what could not be expressed."""

    def __init__(self, policy: WorkloadPolicy, target: Target) -> None:
        self.policy = policy
        self.p = "stockade_" + re.sub(r"[^A-Za-z0-9_]", "_", policy.metadata.name)
        self.wid = policy.spec.workload
        self.in_container = target.kind != "host"
        self.items: list[dict[str, Any]] = []
        self.rules: list[dict[str, Any]] = []
        self.used: set[str] = set()
        self.warnings: list[str] = []
        self.count = 0
        self.items.append({"macro": f"{self.p}_workload", "condition": _workload_condition(target)})

    def uses(self, *macros: str) -> str:
        """Note Falco default macros used; the first one's name."""
        self.used.update(macros)
        return macros[0]

    def scope(self) -> str:
        """The workload test every rule starts with."""
        return (
            f"{self.uses('container')} and {self.p}_workload" if self.in_container else f"{self.p}_workload"
        )

    def macro(self, name: str, condition: str) -> str:
        """Define macro ``<p>_<name>``; its name."""
        self.items.append({"macro": f"{self.p}_{name}", "condition": condition})
        return f"{self.p}_{name}"

    def rule(self, title: str, kind: str, rule: str, action: Action, condition: str) -> None:
        """A rule named ``<title> in <workload>`` (`rule` the policy rule it reports)."""
        name = f"{title} in {self.wid}" + ("" if rule == "default" else f" (rule {rule})")
        self.rules.append(
            {
                "rule": name,
                "desc": f"{title} in workload {self.wid}: WorkloadPolicy {self.policy.metadata.name}, rule {rule}.",
                "condition": condition,
                "output": (
                    f"{title} in {self.wid} (policy={self.policy.metadata.name} rule={rule} "
                    f"{_OUTPUT[kind]} {_WHERE})"
                ),
                "priority": _PRIORITY[action],
                "tags": ["stockade", "workload_policy", kind],
            }
        )

    def explicit(self, kind: str, title: str, name: str, action: Action, test: str) -> str:
        """A block or audit rule of the policy: its macro (for the default rule to leave out)."""
        self.count += 1
        m = self.macro(f"rule_{self.count}", test)
        self.rule(f"{_VERB[action]} {title}", kind, name, action, f"{self.scope()} and {m}")
        return m

    def wants_default(self, allowed: Sequence[str]) -> bool:
        """Whether what no allow rule names gets a rule (not when spec.action is allow or an allow
        rule names everything)."""
        return self.policy.spec.action != "allow" and "" not in allowed

    def default(
        self,
        kind: str,
        title: str,
        event: str,
        allowed: Sequence[str],
        denied: Sequence[str],
        deps: Sequence[str] = (),
    ) -> None:
        """The rule for what no allow rule names (see :meth:`wants_default`); `deps`: the Falco
        default macros `event` uses."""
        action = self.policy.spec.action
        if not self.wants_default(allowed):
            return
        self.used.update(deps)
        cond = f"{event} and {self.scope()}"
        if allowed:
            cond += f" and not {self.macro(f'allowed_{_slug(title)}', _any_of(allowed))}"
        cond += "".join(f" and not {m}" for m in denied)
        self.rule(f"Unexpected {title}", kind, "default", action, cond)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _workload_condition(t: Target) -> str:
    if t.kind == "host":
        base = "container.id = host"
    elif t.kind == "k8s":
        dashes = {"deployment": 2, "cronjob": 2, "pod": 0}.get(t.owner_kind, 1)
        pod = f"k8s.pod.name = {q(t.owner)}"
        if dashes:
            pod = (
                f"k8s.pod.name glob {q(t.owner + '-*' * dashes)} and not "
                f"k8s.pod.name glob {q(t.owner + '-*' * (dashes + 1))}"
            )
        base = f"k8s.ns.name = {q(t.namespace)} and {pod}"
    else:
        base = f"container.image.repository = {q(t.repository)}"
        if t.name:
            base += f" and (container.name = {q(t.name)} or container.name glob {q(t.name + '[-_.][0-9]*')})"
    return f"({base} and not {_RUNTIME_INIT})"


# -- processes and files -------------------------------------------------------------------------
def _everything(path: str) -> bool:
    """Whether policy path `path` names every path (``/**``)."""
    shape = path_shape(path)
    return shape.kind == "tree" and shape.base == "/"


def _path(field: str, path: str, warn: Callable[[str], None]) -> str:
    """The test of `field` against `path`, with a warning when Falco's glob is wider."""
    test, exact = path_test(field, path)
    if not exact:
        warn(f"{path!r} matched with Falco's glob, where * also crosses /: wider")
    return test


def _process_test(rule: ProcessRule, warn: Callable[[str], None]) -> str:
    """A process rule's test."""
    tests = [_path("proc.exepath", rule.path, warn)]
    if rule.parent:
        tests.append(_path("proc.pexepath", rule.parent, warn))
    if rule.args:
        tests.append(f"proc.args glob {q(rule.args)}")
    return tests[0] if len(tests) == 1 else "(" + " and ".join(tests) + ")"


def _allowed_process(rule: ProcessRule, exacts: list[str], warn: Callable[[str], None]) -> str | None:
    """An allow rule's test: None when it went into `exacts`, "" when it allows every program."""
    if rule.parent is None and rule.args is None:
        if _everything(rule.path):
            return ""
        if not has_glob(rule.path):
            exacts.append(exact(rule.path))
            return None
    return _process_test(rule, warn)


def _file_path(field: str, rule: FileRule, warn: Callable[[str], None]) -> str | None:
    """A file rule's test of `field` (a path), its exceptions left out: "" for every path, None
    for none (an exact path that one of its exceptions matches)."""
    exceptions = rule.except_ or []
    path = literal(rule.path)
    if path is not None:
        return None if any(path_match(e, path) for e in exceptions) else _path(field, rule.path, warn)
    tests = [] if _everything(rule.path) else [_path(field, rule.path, warn)]
    for e in exceptions:
        if not intersects(rule.path, e):
            continue  # it leaves out nothing of this rule
        test, is_exact = path_test(field, e)
        if not is_exact:
            warn(f"except {e!r} matched with Falco's glob, where * also crosses /: the rule matches less")
        tests.append(f"not {test}")
    return tests[0] if len(tests) == 1 else "(" + " and ".join(tests) + ")" if tests else ""


def _allowed_exec(rule: FileRule, exacts: list[str], warn: Callable[[str], None]) -> str | None:
    """An allow file rule's test of executions (as :func:`_allowed_process`; None also when it
    allows none)."""
    path = literal(rule.path)
    if path is None and rule.except_:
        return _file_path("proc.exepath", rule, warn)
    if path is not None and any(path_match(e, path) for e in rule.except_ or ()):
        return None
    return _allowed_process(ProcessRule(path=rule.path), exacts, warn)


def _file_test(r: _Rules, rule: FileRule, access: str, warn: Callable[[str], None]) -> str | None:
    """A block or audit file rule's test for one kind of access (None: it matches nothing)."""
    if access == "exec":
        event, field = r.uses("spawned_process"), "proc.exepath"
    else:
        event, field = r.uses("open_read" if access == "read" else "open_write"), "fd.name"
    test = _file_path(field, rule, warn)
    if test is None:
        return None
    return f"({event} and {test})" if test else event


def _processes(r: _Rules) -> None:
    spec = r.policy.spec
    exacts: list[str] = []
    allowed: list[str | None] = []
    denied: list[str] = []
    for name, p in named(spec.process, "process"):
        warn = _warner(r, f"process rule {name}")
        if p.action == "allow":
            allowed.append(_allowed_process(p, exacts, warn))
        else:
            test = f"{r.uses('spawned_process')} and {_process_test(p, warn)}"
            denied.append(r.explicit("process", "process", name, p.action, test))
    for name, f in named(spec.file, "file"):
        if "exec" in f.access and f.action == "allow":
            allowed.append(_allowed_exec(f, exacts, _warner(r, f"file rule {name}")))
    tests = [a for a in allowed if a is not None]
    if exacts and r.wants_default(tests):
        r.items.append({"list": f"{r.p}_executables", "items": [_item(e) for e in dict.fromkeys(exacts)]})
        tests.append(f"proc.exepath in ({r.p}_executables)")
    r.default("process", "process", "spawned_process", tests, denied, ("spawned_process",))


def _files(r: _Rules) -> None:
    spec = r.policy.spec
    allowed: dict[str, list[str]] = {"read": [], "write": []}
    denied: list[str] = []
    for name, f in named(spec.file, "file"):
        warn = _warner(r, f"file rule {name}")
        if f.action == "allow":
            test = _file_path("fd.name", f, warn)
            for a in ("read", "write"):
                if a in f.access and test is not None:
                    allowed[a].append(test)
            continue
        tests = [t for a in ("read", "write", "exec") if a in f.access and (t := _file_test(r, f, a, warn))]
        denied.append(r.explicit("file", "file access", name, f.action, _any_of(tests)))
    r.default("file", "file read", "open_read", allowed["read"], denied, ("open_read",))
    r.default("file", "file write", "open_write", allowed["write"], denied, ("open_write",))


def _warner(r: _Rules, where: str) -> Callable[[str], None]:
    """A function adding a warning about `where` (once: a rule may test a path for several kinds
    of access)."""

    def warn(text: str) -> None:
        if f"{where}: {text}" not in r.warnings:
            r.warnings.append(f"{where}: {text}")

    return warn


# -- network and privileged operations ------------------------------------------------------------
def _peer_test(rule: NetworkRule, where: str) -> str | None:
    """The peer part of a network rule's test ("" any peer, None: no address Falco knows)."""
    peer = rule.peer
    _ip, net, name, _port = _NET_FIELDS[rule.direction]
    if peer is None:
        return ""
    if peer.cidr:
        return f"{net} = {q(str(network_of(peer.cidr, where)))}"
    if peer.dns and name:
        return f"{name} {'glob' if has_glob(peer.dns) else '='} {q(peer.dns)}"
    return None


def _network_test(rule: NetworkRule, where: str, warn: Callable[[str], None]) -> str | None:
    """A network rule's test ("" any connection, None: not expressible)."""
    peer = _peer_test(rule, where)
    if peer is None:
        what = (
            f"workload {rule.peer.workload}" if rule.peer and rule.peer.workload else f"{rule.direction} peer"
        )
        warn(f"{what} has no address Falco knows: {'any peer' if rule.action == 'allow' else 'left out'}")
        if rule.action != "allow":
            return None
        peer = ""
    tests = [peer] if peer else []
    ranges = port_ranges(rule.ports, where)
    if ranges is not None:
        tests.append(_ports_test(_NET_FIELDS[rule.direction][3], ranges))
    if rule.protocol != "any":
        tests.append(f"fd.l4proto = {rule.protocol}")
    if not tests:
        return ""
    return tests[0] if len(tests) == 1 else "(" + " and ".join(tests) + ")"


def _network(r: _Rules) -> None:
    rules = list(named(r.policy.spec.network, "network"))
    for direction, title in _NET_TITLE.items():
        allowed: list[str] = []
        deny: list[tuple[str, Action, str]] = []
        for name, x in rules:
            where = f"network rule {name}"
            test = _network_test(x, where, _warner(r, where)) if x.direction == direction else None
            if x.direction != direction:
                continue
            if test is None:
                continue
            if x.action == "allow":
                allowed.append(test)
            else:
                deny.append((name, x.action, test))
        if not deny and not r.wants_default(allowed):
            continue
        event = r.macro(direction, _NET_EVENTS[direction])
        denied = [r.explicit("network", title, n, a, f"{event} and {t}" if t else event) for n, a, t in deny]
        r.default("network", title, event, allowed, denied)


def _privileged(r: _Rules) -> None:
    groups: dict[tuple[Action, str], list[str]] = {}
    for op, (action, rule) in privileged_actions(r.policy.spec).items():
        if action != "allow":
            groups.setdefault((action, rule), []).append(op)
    for (action, rule), ops in groups.items():
        calls = sorted(s for s, o in PRIVILEGED_SYSCALLS.items() if o in ops)
        tests = [f"evt.type in ({', '.join(calls)})"] if calls else []
        if "raw_socket" in ops:
            tests.append("(evt.type = socket and evt.arg.type in (SOCK_RAW, SOCK_PACKET))")
        cond = f"{_any_of(tests)} and evt.dir = < and evt.rawres >= 0 and {r.scope()}"
        verb = "Unexpected" if rule == "default" else _VERB[action]
        r.rule(f"{verb} privileged operation", "privileged", rule, action, cond)


def export(policy: WorkloadPolicy, *, standalone: bool = False) -> ExportResult:
    """`policy` as Falco rules (module docstring); `standalone`: with Falco's default macros."""
    r = _Rules(policy, target_of(policy.spec.workload))
    _processes(r)
    _files(r)
    _network(r)
    _privileged(r)
    if not r.rules:
        raise ExportError(f"falco: policy {policy.metadata.name} allows everything: no rule to alert with")
    items = [{"macro": m, "condition": c} for m, c in FALCO_MACROS.items() if standalone and m in r.used]
    items += r.items + r.rules
    header = [
        f"# Falco rules exported by Stockade from WorkloadPolicy {policy.metadata.name}",
        f"# (workload {policy.spec.workload}, spec.action {policy.spec.action}): alerts on deviations.",
    ]
    if not standalone:
        header.append(
            f"# Needs Falco's default macros ({', '.join(sorted(r.used))}): load falco_rules.yaml first."
        )
    header += [f"# warning: {w}" for w in r.warnings]
    return ExportResult("\n".join(header) + "\n" + dump_yaml(items), tuple(r.warnings))
