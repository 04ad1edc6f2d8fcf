"""Confidence, under-observed behaviour, stability, and a rollout's new image digest."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.behavior.learn import Learner
from stockade.behavior.model import Profile
from stockade.behavior.stability import confidence, is_stable, new_since_base, rebase, under_observed
from stockade.model.clock import FakeClock

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
H = 3600 * S


def execve(exe: str, t: int, args: str = "", parent: str = "/bin/sh") -> dict[str, Any]:
    return {
        "evt.type": "execve",
        "evt.time": t,
        "evt.rawres": 0,
        "proc.exepath": exe,
        "proc.pexepath": parent,
        "proc.args": args,
    }


def openat(path: str, t: int) -> dict[str, Any]:
    return {
        "evt.type": "openat",
        "evt.time": t,
        "evt.rawres": 3,
        "fd.name": path,
        "evt.arg.flags": "O_RDONLY",
    }


def served(port: int, t: int, client: str = "10.88.0.9") -> list[dict[str, Any]]:
    listen = {
        "evt.type": "listen",
        "evt.time": t,
        "evt.rawres": 0,
        "fd.lip": "0.0.0.0",
        "fd.lport": port,
        "fd.l4proto": "tcp",
    }
    accept = {
        "evt.type": "accept4",
        "evt.time": t,
        "evt.rawres": 5,
        "fd.name": f"{client}:51000->10.88.0.2:{port}",
        "fd.l4proto": "tcp",
    }
    return [listen, accept]


def web_server(hours: int = 2, requests_per_hour: int = 600) -> Learner:
    """A web server learned for `hours`: it starts, serves 8080 (and listens on 9090, never used),
    reads its pages; a backup job runs every hour."""
    clock = FakeClock(start=T0 / S)
    lr = Learner(Profile("container/localhost/web/web", image_digest="sha256:v1"), clock=clock)
    lr.observe(execve("/usr/sbin/httpd", T0, "-f /etc/httpd.conf"))
    lr.observe(served(9090, T0)[0])
    for h in range(hours):
        for i in range(requests_per_hour):
            t = T0 + h * H + i * (H // requests_per_hour)
            for ev in served(8080, t):
                lr.observe(ev)
            lr.observe(openat("/srv/www/index.html", t))
        lr.observe(execve("/usr/local/bin/backup", T0 + h * H + 30 * 60 * S))
    return lr


def test_confidence_grows_with_observations_quiet_and_time() -> None:
    empty = Profile("w", created_ns=T0, last_new_ns=T0)
    assert confidence(empty, T0 + H) == 0.0
    lr = web_server()
    p = lr.profile
    soon = confidence(p, p.last_new_ns + 60 * S)
    later = confidence(p, p.last_new_ns + 24 * H)
    assert 0.0 < soon < later <= 1.0
    assert later > 0.9
    lr.repeated(100_000)  # repeats the kernel deduplicated are evidence too
    assert confidence(p, p.last_new_ns + 60 * S) > soon
    full = confidence(p, p.last_new_ns + 24 * H)
    p.overflow = 1
    assert confidence(p, p.last_new_ns + 24 * H) == pytest.approx(full / 2)
    assert confidence(p, p.last_new_ns - H) == 0.0  # a clock before the last new behaviour: no quiet


def test_under_observed() -> None:
    lr = web_server(hours=2)
    p = lr.profile
    now = T0 + 2 * H
    got = under_observed(p, now, min_observations=100)
    assert "listen 9090/tcp: no connection to it seen" in got
    assert not any(g.startswith("listen 8080") for g in got)
    assert "exec /usr/sbin/httpd -f /etc/httpd.conf (parent /bin/sh): run once only" in got
    backup = [g for g in got if g.startswith("exec /usr/local/bin/backup")]
    assert backup == [
        "exec /usr/local/bin/backup (parent /bin/sh): recurs about every 1.0h, seen 2 times; "
        "next expected around 2023-11-15T00:43:20.000000000Z"
    ]
    assert not any("only" in g and "events" in g for g in got)
    # watched for three of its periods, the schedule is known
    lr.observe(execve("/usr/local/bin/backup", T0 + 2 * H + 30 * 60 * S))
    assert not any(g.startswith("exec /usr/local/bin/backup") for g in under_observed(p, T0 + 4 * H))
    # few observations, an overflow
    few = Profile("w")
    few.observations = 10
    few.overflow = 3
    assert under_observed(few, T0) == [
        "only 10 events observed (stable needs 1000)",
        "3 behaviours not recorded: the profile is full",
    ]


def test_under_observed_defaults_to_the_profiles_latest_time() -> None:
    p = web_server(hours=2).profile
    latest = T0 + 2 * H - 6 * S  # the last request
    assert under_observed(p, min_observations=10) == under_observed(p, latest, min_observations=10)
    assert under_observed(p, min_observations=10) != under_observed(p, latest + 2 * H, min_observations=10)


def test_is_stable() -> None:
    lr = web_server(hours=2)
    p = lr.profile
    last = p.last_new_ns
    assert is_stable(p, last + 2 * H, quiet_s=3600, min_observations=100_000) == (
        False,
        f"only {p.observations} events observed, 100000 needed",
    )
    ok, why = is_stable(p, last + 10 * 60 * S, quiet_s=3600, min_observations=100)
    assert not ok and why == "new behaviour 10m ago, 1.0h without any needed"
    ok, why = is_stable(p, last + 2 * H, quiet_s=3600, min_observations=100)
    assert ok and why == f"no new behaviour for 2.0h, {p.observations} events observed"
    p.overflow = 2
    assert is_stable(p, last + 2 * H, quiet_s=3600, min_observations=100) == (
        False,
        "2 behaviours were not recorded (the profile is full)",
    )


def test_a_new_image_digest_starts_from_the_previous_profile_and_reports_only_what_is_new() -> None:
    v1 = web_server(hours=1).profile
    rollout = T0 + 5 * H
    v2 = rebase(v1, "sha256:v2", rollout)
    assert (v2.version, v2.base_digest, v2.image_digest, v2.rebased_ns) == (
        2,
        "sha256:v1",
        "sha256:v2",
        rollout,
    )
    assert v2.processes == v1.processes and v2.files == v1.files and v2.network == v1.network
    assert v2.last_new_ns == rollout  # the quiet time restarts with the new image
    assert new_since_base(v2) == []
    lr = Learner(v2, clock=FakeClock(start=rollout / S))
    # the new image runs what the old one did, and one extra binary
    assert lr.observe(execve("/usr/sbin/httpd", rollout + S, "-f /etc/httpd.conf")) == []
    for ev in served(8080, rollout + 2 * S):
        assert lr.observe(ev) == []
    assert lr.observe(execve("/usr/local/bin/extra", rollout + 3 * S)) == [
        "exec /usr/local/bin/extra (parent /bin/sh)"
    ]
    assert new_since_base(v2) == ["exec /usr/local/bin/extra (parent /bin/sh)"]
    # the base is untouched (its Seen objects were copied)
    assert ("/usr/local/bin/extra", "/bin/sh", "") not in v1.processes
    assert v1.processes[("/usr/sbin/httpd", "/bin/sh", "-f /etc/httpd.conf")].count == 1
    # a first version has no base: everything is new
    assert "exec /usr/sbin/httpd -f /etc/httpd.conf (parent /bin/sh)" in new_since_base(v1)
    # without a time, the rebase is just after the latest the previous profile holds
    v3 = rebase(v2, "sha256:v3")
    assert v3.rebased_ns > rollout + 3 * S and v3.version == 3 and new_since_base(v3) == []
