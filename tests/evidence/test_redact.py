"""Secrets are redacted from evidence summaries by name and by value; other values stay."""

from __future__ import annotations

from stockade.evidence.redact import REDACTED, redact_args, redact_env


def test_environment_by_name_and_value() -> None:
    env = {
        "PASSWORD": "p",
        "DB_PASSWD": "p",
        "GITHUB_TOKEN": "t",
        "AWS_REGION": "eu-west-1",
        "SSH_PRIVATE_KEY": "k",
        "API_KEY": "k",
        "CLIENT_SECRET": "s",
        "DATABASE_URL": "postgres://app:pw123@db:5432/app",
        "SOMETHING": "AKIAABCDEFGHIJKLMNOP",
        "JWT_LIKE": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig",
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
        "KEYBOARD": "us",
        "MONKEY": "x",
    }
    out, redacted = redact_env(env)
    for k in (
        "PASSWORD",
        "DB_PASSWD",
        "GITHUB_TOKEN",
        "AWS_REGION",
        "SSH_PRIVATE_KEY",
        "API_KEY",
        "CLIENT_SECRET",
    ):
        assert out[k] == REDACTED, k
    assert out["DATABASE_URL"] == "postgres://app:***@db:5432/app"
    assert out["SOMETHING"] == REDACTED and out["JWT_LIKE"] == REDACTED
    assert (out["PATH"], out["HOME"], out["KEYBOARD"], out["MONKEY"]) == ("/usr/bin:/bin", "/root", "us", "x")
    assert set(redacted) == set(env) - {"PATH", "HOME", "KEYBOARD", "MONKEY"}


def test_command_line() -> None:
    args = [
        "app",
        "--password=hunter2",
        "--token",
        "abc",
        "--verbose",
        "https://user:pw@example.test/x",
        "sh -c 'export API_TOKEN=t1 MODE=fast; run'",
    ]
    out, changed = redact_args(args)
    assert out == [
        "app",
        f"--password={REDACTED}",
        "--token",
        REDACTED,
        "--verbose",
        "https://user:***@example.test/x",
        f"sh -c 'export API_TOKEN={REDACTED} MODE=fast; run'",
    ]
    assert changed == 4
