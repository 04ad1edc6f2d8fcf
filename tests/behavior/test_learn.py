"""The learner: what is new, cheap repeats, generalisation, bounds, network peers."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.behavior.generalise import EXCLUDE, Thresholds, covers
from stockade.behavior.learn import Learner, _key
from stockade.behavior.model import Profile, Seen
from stockade.behavior.ops import operation_of
from stockade.model.clock import FakeClock

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def execve(exe: str, args: str = "", parent: str = "/bin/sh", t: int = T0) -> dict[str, Any]:
    return {
        "evt.type": "execve",
        "evt.time": t,
        "evt.rawres": 0,
        "proc.exepath": exe,
        "proc.pexepath": parent,
        "proc.args": args,
    }


def openat(path: str, flags: str = "O_RDONLY|O_CLOEXEC", t: int = T0, res: int = 3) -> dict[str, Any]:
    return {"evt.type": "openat", "evt.time": t, "evt.rawres": res, "fd.name": path, "evt.arg.flags": flags}


def connect(ip: str, port: int, t: int = T0, proto: str = "tcp") -> dict[str, Any]:
    local = "::1" if ":" in ip else "10.88.0.2"
    name = f"[{local}]:40000->[{ip}]:{port}" if ":" in ip else f"{local}:40000->{ip}:{port}"
    return {"evt.type": "connect", "evt.time": t, "evt.rawres": 0, "fd.name": name, "fd.l4proto": proto}


def accept(client: str, port: int, t: int = T0) -> dict[str, Any]:
    return {
        "evt.type": "accept4",
        "evt.time": t,
        "evt.rawres": 5,
        "fd.name": f"{client}:51000->10.88.0.2:{port}",
        "fd.l4proto": "tcp",
    }


def listen(port: int, t: int = T0) -> dict[str, Any]:
    return {
        "evt.type": "listen",
        "evt.time": t,
        "evt.rawres": 0,
        "fd.lip": "0.0.0.0",
        "fd.lport": port,
        "fd.l4proto": "tcp",
    }


def learner(**kw: Any) -> Learner:
    return Learner(Profile("container/localhost/web/web", image_digest="sha256:aaa"), clock=FakeClock(), **kw)


def test_observe_says_what_is_new_once() -> None:
    lr = learner()
    assert lr.observe(execve("/usr/sbin/httpd")) == [
        "syscall execve",
        "exec /usr/sbin/httpd (parent /bin/sh)",
    ]
    assert lr.observe(execve("/usr/sbin/httpd", t=T0 + S)) == []
    assert lr.observe(openat("/tmp/tmp.Xa3bQ9k2", "O_WRONLY|O_CREAT")) == [
        "syscall openat",
        "open /tmp/tmp.* (write)",
    ]
    assert lr.observe(openat("/tmp/tmp.Qz81Lm0p", "O_WRONLY|O_CREAT")) == []
    assert lr.observe(connect("10.88.0.5", 8080)) == ["syscall connect", "egress 10.88.0.5:8080/tcp"]
    assert lr.observe(listen(8080)) == ["syscall listen", "listen 8080/tcp"]
    assert lr.observe(accept("10.88.0.9", 8080)) == ["syscall accept4", "ingress 10.88.0.9 -> port 8080/tcp"]
    assert lr.observe({"evt.type": "setuid", "evt.time": T0, "evt.rawres": 0}) == [
        "syscall setuid",
        "privileged setuid",
    ]
    p = lr.profile
    assert p.observations == 8
    assert p.processes[("/usr/sbin/httpd", "/bin/sh", "")] == Seen(2, T0, T0 + S, S)
    assert p.last_new_ns == T0


def test_every_event_counts_its_syscall_failed_ones_too() -> None:
    lr = learner()
    assert lr.observe(openat("/etc/shadow", res=-13)) == ["syscall openat"]
    assert lr.observe({"evt.type": "close", "evt.time": T0 + 1, "evt.rawres": 0}) == ["syscall close"]
    assert lr.observe({"evt.type": "procexit", "evt.time": T0 + 2}) == []
    assert lr.observe({"evt.type": "close", "evt.time": T0 + 3, "evt.rawres": 0}) == []
    assert lr.profile.files == {}  # the failed open is no behaviour
    assert {k: s.count for k, s in lr.profile.syscalls.items()} == {"openat": 1, "close": 2}


def test_argument_shapes_and_too_many_of_them() -> None:
    lr = learner(args_variants=3)
    assert lr.observe(execve("/bin/sleep", "30")) == ["syscall execve", "exec /bin/sleep * (parent /bin/sh)"]
    assert lr.observe(execve("/bin/sleep", "31")) == []
    assert lr.observe(execve("/app/worker", "--id=1234 --queue jobs")) == [
        "exec /app/worker --id=* --queue jobs (parent /bin/sh)"
    ]
    for i, arg in enumerate(["a", "b", "c"]):
        assert lr.observe(execve("/bin/echo", arg, t=T0 + i)) == [f"exec /bin/echo {arg} (parent /bin/sh)"]
    said = lr.observe(execve("/bin/echo", "d", t=T0 + 9))
    assert said == ["exec /bin/echo ** (parent /bin/sh) (generalised from 4 argument shapes)"]
    assert lr.observe(execve("/bin/echo", "anything at all")) == []
    echo = {k: s for k, s in lr.profile.processes.items() if k[0] == "/bin/echo"}
    assert list(echo) == [("/bin/echo", "/bin/sh", "**")]
    assert echo[("/bin/echo", "/bin/sh", "**")].count == 5
    # another parent is another program entry
    assert lr.observe(execve("/bin/echo", "x", parent="/usr/bin/python3")) == [
        "exec /bin/echo x (parent /usr/bin/python3)"
    ]


def test_siblings_collapse_into_a_directory_pattern_with_exclusions() -> None:
    lr = learner(thresholds=Thresholds(siblings=4))
    assert lr.observe(openat("/srv/conf/a0")) == ["syscall openat", "open /srv/conf/a0 (read)"]
    for i in range(1, 4):
        assert lr.observe(openat(f"/srv/conf/a{i}", t=T0 + i)) == [f"open /srv/conf/a{i} (read)"]
    said = lr.observe(openat("/srv/conf/hosts", t=T0 + 10))
    assert said == ["open /srv/conf/* (read) (generalised from 5 entries)"]
    files = lr.profile.files
    assert files[("/srv/conf/*", "read")] == Seen(5, T0, T0 + 10, 7)  # the longest gap: 3 -> 10
    assert (EXCLUDE + "**/*.key", "read") in files and (EXCLUDE + "**/id_rsa*", "read") in files
    assert lr.observe(openat("/srv/conf/resolv.conf")) == []
    # a credential file is new even in a collapsed directory, and stays exact
    assert lr.observe(openat("/srv/conf/tls.key")) == ["open /srv/conf/tls.key (read)"]
    read = [p for p, a in files if a == "read"]
    assert covers(read, "/srv/conf/tls.key") and not covers(read, "/srv/conf/other.key")
    assert not covers(read, "/srv/conf/id_rsa")
    # the write access learns on its own
    assert lr.observe(openat("/srv/conf/hosts", "O_WRONLY")) == ["open /srv/conf/hosts (write)"]


def test_no_pattern_could_cover_a_system_credential_file() -> None:
    lr = learner(thresholds=Thresholds(siblings=2, subdirs=2))
    etc = ["hosts", "resolv.conf", "nsswitch.conf", "passwd", "group", "localtime", "ld.so.cache"]
    for name in etc:
        lr.observe(openat(f"/etc/{name}"))
    for name in ("status", "stat", "cmdline", "maps"):
        lr.observe(openat(f"/proc/4242/{name}"))
    for name in ("a", "b", "c"):
        lr.observe(openat(f"/var/run/secrets/{name}/x"))  # credentials: exact, whatever their number
    entries = {k[0] for k in lr.profile.files if not k[0].startswith(EXCLUDE)}
    assert {f"/etc/{n}" for n in etc} <= entries  # /etc/* would cover /etc/shadow: never made
    assert {"/proc/*/status", "/proc/*/stat", "/proc/*/cmdline", "/proc/*/maps"} <= entries  # not /proc/*/*
    assert {"/var/run/secrets/a/x", "/var/run/secrets/b/x", "/var/run/secrets/c/x"} <= entries
    assert not any(e.endswith(("/*", "/**")) for e in entries)
    # even to make room
    full = learner(max_entries=len(etc))
    for name in etc:
        full.observe(openat(f"/etc/{name}"))
    assert full.observe(openat("/etc/one-more"))[-1].startswith(
        "overflow: open /etc/one-more (read) not recorded"
    )


def test_deep_trees_collapse_into_a_tree_pattern() -> None:
    lr = learner(thresholds=Thresholds(siblings=100, subdirs=3))
    base = "/usr/lib/python3/dist-packages"
    for pkg in ("a", "b", "c"):
        lr.observe(openat(f"{base}/{pkg}/__init__.py"))
    said = lr.observe(openat(f"{base}/d/sub/mod.py"))
    assert said == [f"open {base}/** (read) (generalised from 4 entries)"]
    assert lr.observe(openat(f"{base}/e/f/g.py")) == []
    assert [k for k in lr.profile.files if not k[0].startswith(EXCLUDE)] == [(f"{base}/**", "read")]


def test_no_pattern_at_the_root_or_too_high() -> None:
    lr = learner(thresholds=Thresholds(siblings=2, subdirs=2))
    for top in ("a", "b", "c", "d"):
        lr.observe(openat(f"/{top}"))
        lr.observe(openat(f"/usr/{top}/x/y"))
    entries = {k[0] for k in lr.profile.files if not k[0].startswith(EXCLUDE)}
    assert "/*" not in entries and "/**" not in entries and "/usr/**" not in entries
    assert {"/a", "/b", "/c", "/d"} <= entries


def test_a_full_section_generalises_then_counts_overflow() -> None:
    lr = learner(max_entries=3)
    for d in ("x", "y"):
        lr.observe(openat(f"/srv/{d}/one"))
    lr.observe(openat("/srv/x/two"))
    # full: /srv/x (two entries) collapses to make room
    assert lr.observe(openat("/data/a")) == ["open /data/a (read)"]
    files = {k[0] for k in lr.profile.files if not k[0].startswith(EXCLUDE)}
    assert files == {"/srv/x/*", "/srv/y/one", "/data/a"}
    assert lr.profile.overflow == 0
    # full again, and nothing left to collapse: reported, counted, never silent; once per behaviour
    said = lr.observe(openat("/opt/b"))
    assert said == ["overflow: open /opt/b (read) not recorded (the files section is full: 3 entries)"]
    assert lr.observe(openat("/opt/b")) == []
    assert lr.profile.overflow == 1


def test_full_process_and_network_sections_generalise_before_overflowing() -> None:
    lr = learner(max_entries=2, cidr_after=100)
    lr.observe(execve("/bin/a", "x"))
    lr.observe(execve("/bin/a", "y"))
    assert lr.observe(execve("/bin/b")) == ["exec /bin/b (parent /bin/sh)"]
    assert set(lr.profile.processes) == {("/bin/a", "/bin/sh", "**"), ("/bin/b", "/bin/sh", "")}
    assert lr.observe(execve("/bin/c"))[0].startswith("overflow: exec /bin/c (parent /bin/sh) not recorded")
    lr.observe(connect("10.0.0.1", 80))
    lr.observe(connect("10.0.0.2", 80))
    assert lr.observe(connect("192.168.1.1", 443)) == ["egress 192.168.1.1:443/tcp"]
    assert set(lr.profile.network) == {
        ("egress", "cidr:10.0.0.0/24", 80, "tcp"),
        ("egress", "cidr:192.168.1.1/32", 443, "tcp"),
    }
    assert lr.observe(connect("10.0.0.77", 80)) == []  # the /24 covers it
    assert lr.profile.overflow == 1


def test_network_peers() -> None:
    workloads = {"10.88.0.5": "container/localhost/db/db"}
    names = {"93.184.216.34": "example.com"}
    lr = learner(peer_of=workloads.get, dns_of=names.get, cidr_after=3)
    assert lr.observe(connect("10.88.0.5", 5432))[-1] == "egress workload:container/localhost/db/db:5432/tcp"
    assert lr.observe(connect("93.184.216.34", 443)) == ["egress dns:example.com:443/tcp"]
    assert lr.observe(connect("::ffff:10.88.0.5", 5432)) == []  # IPv4-mapped: the same workload
    for i in (1, 2, 3):
        assert lr.observe(connect(f"203.0.113.{i}", 443)) == [f"egress 203.0.113.{i}:443/tcp"]
    assert lr.observe(connect("203.0.113.4", 443)) == [
        "egress 203.0.113.0/24:443/tcp (generalised from 4 addresses)"
    ]
    assert lr.observe(connect("203.0.113.200", 443)) == []
    assert lr.observe(connect("203.0.113.200", 8443)) == ["egress 203.0.113.200:8443/tcp"]  # ports stay exact
    assert lr.observe(connect("2001:db8::1", 443)) == ["egress [2001:db8::1]:443/tcp"]
    assert ("egress", "cidr:2001:db8::1/128", 443, "tcp") in lr.profile.network
    for i in (2, 3, 4):
        lr.observe(connect(f"2001:db8::{i}", 443))
    assert ("egress", "cidr:2001:db8::/64", 443, "tcp") in lr.profile.network
    # ingress keeps the local port served, generalises its clients alike
    for i in range(1, 5):
        lr.observe(accept(f"10.1.2.{i}", 8080))
    assert ("ingress", "cidr:10.1.2.0/24", 8080, "tcp") in lr.profile.network
    # an ephemeral bind is not a listening port
    assert lr.observe({**listen(0), "evt.type": "bind"}) == ["syscall bind"]
    assert not any(k[0] == "listen" for k in lr.profile.network)


def test_repeats_are_one_lookup_after_operation_of() -> None:
    lr = learner()
    ev = openat("/etc/hosts")
    lr.observe(ev)
    op = operation_of(ev)
    assert op is not None
    seen = lr._known[_key(op)]
    assert seen == (lr.profile.files[("/etc/hosts", "read")],)
    before = dict(lr.profile.files)
    for i in range(100):
        assert lr.observe({**ev, "evt.time": T0 + i}) == []
    assert lr.profile.files == before and lr.profile.files[("/etc/hosts", "read")].count == 101
    lr.repeated(1000)
    assert (lr.profile.observations, lr.profile.repeats) == (101, 1000)


def test_a_bounded_cache() -> None:
    lr = learner(cache_size=4)
    for i in range(10):
        lr.observe(openat(f"/proc/{100 + i}/status"))  # one entry, ten operations
    assert len(lr._known) <= 4
    assert lr.profile.files[("/proc/*/status", "read")].count == 10


def test_a_learner_resumes_a_stored_profile() -> None:
    lr = learner(thresholds=Thresholds(siblings=3), cidr_after=2)
    for i in range(4):
        lr.observe(openat(f"/app/cache/{i}.json"))
        lr.observe(connect(f"10.9.9.{i}", 80))
    lr.observe(execve("/bin/sleep", "1"))
    stored = Profile.from_dict(lr.profile.to_dict())
    assert stored == lr.profile
    again = Learner(stored, clock=FakeClock(), thresholds=Thresholds(siblings=3), cidr_after=2)
    for ev in (openat("/app/cache/99.json"), connect("10.9.9.99", 80), execve("/bin/sleep", "2")):
        assert again.observe(ev) == []


def test_events_without_a_time_take_the_clock() -> None:
    clock = FakeClock(start=1_800_000_000.0)
    lr = Learner(Profile("host"), clock=clock)
    assert lr.profile.created_ns == 1_800_000_000 * S
    ev = openat("/etc/hosts")
    del ev["evt.time"]
    clock.advance(5)
    lr.observe(ev)
    assert lr.profile.files[("/etc/hosts", "read")].first_ns == 1_800_000_005 * S


@pytest.mark.parametrize("n", [1, 7])
def test_overflow_of_syscalls_is_reported_once(n: int) -> None:
    lr = learner(max_entries=n)
    for i in range(n):
        lr.observe({"evt.type": f"call{i}", "evt.time": T0})
    said = lr.observe({"evt.type": "extra", "evt.time": T0})
    assert said == [f"overflow: syscall extra not recorded (the syscalls section is full: {n} entries)"]
    assert lr.observe({"evt.type": "extra", "evt.time": T0}) == []
    assert lr.profile.overflow == 1
