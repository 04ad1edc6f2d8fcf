"""Secrets kept out of an evidence bundle's summaries (the raw copies under ``raw/`` keep them).

A variable is redacted when its *name* looks like a secret's (``PASSWORD``, ``SECRET``, ``TOKEN``,
``KEY``, ``CREDENTIAL``, ``AWS_*``, ...) or its *value* does (credentials in a URL, an AWS access
key id, a JWT, a PEM private key, a GitHub or Slack token). Credentials in a URL are cut out of the
value (``https://user:***@host``), the rest is replaced whole by :data:`REDACTED`. Command-line
arguments go through the same value patterns, and ``--password=x`` style flags through the name
patterns.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "redact_args", "redact_env", "redact_value", "secret_name"]

REDACTED = "***REDACTED***"

_SECRET_NAME = re.compile(
    r"PASS(WORD|WD|PHRASE)?|SECRET|TOKEN|(^|_)KEY($|_)|APIKEY|API_KEY|PRIVATE|CREDENTIAL|"
    r"(^|_)AUTH|SESSION|COOKIE|SIGNATURE|(^|_)DSN$|^AWS_|CONNECTION_STRING",
    re.IGNORECASE,
)
#: scheme://user:password@host: the password is cut out
_URL_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<secret>[^@\s/]+)(?=@)")
_SECRET_VALUES = (
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\bsk_(live|test)_[A-Za-z0-9]{16,}"),
)
#: NAME=value inside an argument (a shell script's ``export API_TOKEN=...``)
_ASSIGNMENT = re.compile(r"\b(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>[^\s;&|'\"`]+)")
_FLAG = re.compile(r"^(?P<flag>--?[A-Za-z0-9_.-]+)=(?P<value>.*)$", re.DOTALL)


def secret_name(name: str) -> bool:
    """Whether a variable or flag named `name` holds a secret by its name."""
    return bool(_SECRET_NAME.search(name))


def redact_value(value: str) -> tuple[str, bool]:
    """`value` with credentials in URLs cut out, or :data:`REDACTED` when it looks like a secret;
    and whether anything was redacted."""
    if any(p.search(value) for p in _SECRET_VALUES):
        return REDACTED, True
    cut, n = _URL_CREDENTIALS.subn(lambda m: m.group("head") + "***", value)
    return cut, n > 0


def redact_env(env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The environment with secrets redacted, and the names of the variables redacted."""
    out: dict[str, str] = {}
    redacted: list[str] = []
    for k, v in env.items():
        if secret_name(k):
            out[k], hit = REDACTED, True
        else:
            out[k], hit = redact_value(v)
        if hit:
            redacted.append(k)
    return out, redacted


def redact_args(args: list[str]) -> tuple[list[str], int]:
    """A command line with secrets redacted (``--password=x``, the argument after ``--token``,
    credentials in URLs, secret-looking values); and how many arguments were changed."""
    out: list[str] = []
    changed = 0
    after_flag = False
    for a in args:
        if after_flag:
            out.append(REDACTED)
            changed += 1
            after_flag = False
            continue
        m = _FLAG.match(a)
        if m and secret_name(m.group("flag").lstrip("-")):
            out.append(f"{m.group('flag')}={REDACTED}")
            changed += 1
            continue
        if a.startswith("-") and "=" not in a and secret_name(a.lstrip("-")):
            out.append(a)
            after_flag = True
            continue
        v, hit = redact_value(a)
        v = _ASSIGNMENT.sub(_redact_assignment, v)
        out.append(v)
        changed += hit or v != a
    return out, changed


def _redact_assignment(m: re.Match[str]) -> str:
    return f"{m.group('name')}={REDACTED}" if secret_name(m.group("name")) else m.group(0)
