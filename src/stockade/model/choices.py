"""Closed choices a user names in flags and configuration keys: the one home of each, and its check.

Each choice is a ``Literal`` type (the configuration's pydantic models use it as the field type, so
mypy and pydantic check the same set) and a function that turns a user's string into it or raises a
:class:`~stockade.errors.UsageError` naming where the string came from (a flag, a key). Code that
branches on a choice matches on the ``Literal`` and ends with ``assert_never``.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from stockade.errors import UsageError

#: how a command prints what it found, and how a sink writes alerts
OutputFormat = Literal["text", "json"]
OUTPUT_FORMATS: Final[tuple[OutputFormat, ...]] = get_args(OutputFormat)

#: an event that matches several rules raises the first one's alert (Falco's default) or all of them
RuleMatching = Literal["first", "all"]
RULE_MATCHINGS: Final[tuple[RuleMatching, ...]] = get_args(RuleMatching)


def check_output_format(value: str, where: str = "--output") -> OutputFormat:
    """`value` as an output format; a UsageError naming `where` if it is none."""
    for fmt in OUTPUT_FORMATS:
        if value == fmt:
            return fmt
    one_of = " or ".join(f"'{f}'" for f in OUTPUT_FORMATS)
    raise UsageError(f"{where} must be {one_of}, not '{value}'")


def check_rule_matching(value: str, where: str = "--rule-matching") -> RuleMatching:
    """`value` as a rule-matching mode; a UsageError naming `where` if it is none."""
    for mode in RULE_MATCHINGS:
        if value == mode:
            return mode
    raise UsageError(f"{where} must be one of {', '.join(RULE_MATCHINGS)}, not '{value}'")
