"""An operation as a token of a workload's behaviour (stockade.behavior.tokens)."""

from __future__ import annotations

from typing import Any

from stockade.behavior.tokens import ATTACK, kind_of, token_of


def ev(**kw: Any) -> dict[str, Any]:
    return {"evt.rawres": 0, "proc.exepath": "/usr/sbin/httpd", **kw}


def test_each_operation_is_one_token_with_generated_names_generalised() -> None:
    assert token_of(
        ev(**{"evt.type": "execve", "proc.exepath": "/bin/sh", "proc.pexepath": "/usr/sbin/httpd"})
    ) == ("exec /bin/sh < /usr/sbin/httpd")
    a = token_of(
        ev(
            **{
                "evt.type": "openat",
                "evt.rawres": 3,
                "fd.name": "/tmp/tmp.a8f3k2",
                "evt.arg.flags": "O_WRONLY|O_CREAT",
            }
        )
    )
    b = token_of(
        ev(
            **{
                "evt.type": "openat",
                "evt.rawres": 3,
                "fd.name": "/tmp/tmp.Zq81xx",
                "evt.arg.flags": "O_WRONLY|O_CREAT",
            }
        )
    )
    assert a == b == "open write /tmp/tmp.*"
    # a credential file stays itself
    assert token_of(
        ev(**{"evt.type": "openat", "evt.rawres": 3, "fd.name": "/etc/shadow", "evt.arg.flags": "O_RDONLY"})
    ) == ("open read /etc/shadow")
    conn = ev(**{"evt.type": "connect", "fd.l4proto": "tcp", "fd.sip": "10.89.0.7", "fd.sport": 5432})
    assert token_of(conn) == "egress 10.89.0.7 5432/tcp"
    assert (
        token_of(conn, {"10.89.0.7": "container/localhost/db/db"}.get)
        == "egress container/localhost/db/db 5432/tcp"
    )
    assert (
        token_of(ev(**{"evt.type": "bind", "fd.name": "0.0.0.0:8080", "fd.l4proto": "tcp"}))
        == "listen 8080/tcp"
    )
    assert token_of(ev(**{"evt.type": "setuid"})) == "priv setuid"
    assert token_of(ev(**{"evt.type": "read"})) is None


def test_every_kind_has_attack_techniques() -> None:
    for t in (
        "exec /bin/sh < ?",
        "open read /x",
        "egress 1.2.3.4 80/tcp",
        "ingress 1.2.3.4 80/tcp",
        "listen 80/tcp",
        "priv mount",
    ):
        assert ATTACK[kind_of(t)], t
