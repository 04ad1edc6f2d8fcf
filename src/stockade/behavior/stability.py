"""How far a profile can be trusted: confidence, what looks under-observed, stability, rollouts.

* :func:`confidence` is a score in [0, 1], the geometric mean of three saturating factors, each
  ``x / (x + half)`` (one half when ``x`` is ``half``): the events seen (observations and
  repeats; half at ``half_observations``), the quiet time since the last new behaviour (half at
  ``half_quiet_s``) and the time learned (half at ``half_learned_s``). An empty profile scores 0;
  a profile that overflowed (could not record everything) scores half of that.
* :func:`under_observed` lists what a promotion would likely break: a listening port no
  connection to was seen; a program run only once; a behaviour that recurs on a schedule (seen at
  intervals of ``period_s`` or more, the longest gap between sightings being its period) watched
  for fewer than ``cycles`` periods, so its next runs are not seen yet; too few observations; an
  overflow.
* :func:`is_stable`: enough observations, no new behaviour for ``quiet_s``, no overflow.
* :func:`rebase` starts a new image digest's profile from the previous version's;
  :func:`new_since_base` is what the new version learned that its base did not have (what a
  rollout reports).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

from stockade.behavior.describe import describe_net, describe_process, entries
from stockade.behavior.model import Profile, Seen
from stockade.model.timeutil import format_time_ns

__all__ = [
    "DEFAULT_MIN_OBSERVATIONS",
    "confidence",
    "is_stable",
    "new_since_base",
    "rebase",
    "under_observed",
]

#: under_observed's "too few events" (the configuration's zero_trust.promotion.min_observations
#: default; is_stable takes the configured value)
DEFAULT_MIN_OBSERVATIONS: Final = 1000
_NS = 1_000_000_000


def _saturate(x: float, half: float) -> float:
    return x / (x + half) if x > 0 else 0.0


def _events(profile: Profile) -> int:
    return profile.observations + profile.repeats


def confidence(
    profile: Profile,
    now_ns: int,
    *,
    half_observations: float = 500.0,
    half_quiet_s: float = 600.0,
    half_learned_s: float = 3600.0,
) -> float:
    """How much the profile can be trusted at `now_ns`, in [0, 1] (module docstring)."""
    seen = _saturate(_events(profile), half_observations)
    quiet = _saturate((now_ns - profile.last_new_ns) / _NS, half_quiet_s)
    learned = _saturate((now_ns - profile.created_ns) / _NS, half_learned_s)
    score = math.cbrt(seen * quiet * learned)
    if profile.overflow:
        score /= 2
    return min(1.0, max(0.0, score))


def _duration(ns: int) -> str:
    s = ns // _NS
    if s >= 86400:
        return f"{s / 86400:.1f}d"
    if s >= 3600:
        return f"{s / 3600:.1f}h"
    if s >= 60:
        return f"{s // 60}m"
    return f"{s}s"


def _latest(profile: Profile) -> int:
    times = [profile.last_new_ns, profile.created_ns, profile.rebased_ns]
    times += [s.last_ns for _section, _text, s in entries(profile)]
    return max(times)


def _scheduled(text: str, s: Seen, now_ns: int, period_ns: int, cycles: int) -> str | None:
    if s.count < 2 or s.gap_ns < period_ns or now_ns - s.first_ns >= cycles * s.gap_ns:
        return None
    return (
        f"{text}: recurs about every {_duration(s.gap_ns)}, seen {s.count} times; "
        f"next expected around {format_time_ns(s.last_ns + s.gap_ns)}"
    )


def under_observed(
    profile: Profile,
    now_ns: int | None = None,
    *,
    min_observations: int = DEFAULT_MIN_OBSERVATIONS,
    period_s: float = 60.0,
    cycles: int = 3,
) -> list[str]:
    """What looks under-observed (module docstring), one line each; `now_ns` defaults to the
    latest time the profile holds."""
    now = now_ns if now_ns is not None else _latest(profile)
    out: list[str] = []
    served = {(port, proto) for (d, _peer, port, proto) in profile.network if d == "ingress"}
    for direction, _peer, port, proto in sorted(profile.network):
        if direction == "listen" and (port, proto) not in served:
            out.append(f"{describe_net('listen', '', port, proto)}: no connection to it seen")
    for key, s in sorted(profile.processes.items()):
        if s.count == 1:
            out.append(f"{describe_process(*key)}: run once only")
    for _section, text, s in entries(profile):
        said = _scheduled(text, s, now, int(period_s * _NS), cycles)
        if said is not None:
            out.append(said)
    if _events(profile) < min_observations:
        out.append(f"only {_events(profile)} events observed (stable needs {min_observations})")
    if profile.overflow:
        out.append(f"{profile.overflow} behaviours not recorded: the profile is full")
    return out


def is_stable(
    profile: Profile,
    now_ns: int,
    *,
    quiet_s: float,
    min_observations: int,
) -> tuple[bool, str]:
    """Whether the profile is stable at `now_ns` (enough observations, nothing new for
    `quiet_s`, nothing dropped), and why (or why not)."""
    n = _events(profile)
    quiet_ns = now_ns - profile.last_new_ns
    if profile.overflow:
        return False, f"{profile.overflow} behaviours were not recorded (the profile is full)"
    if n < min_observations:
        return False, f"only {n} events observed, {min_observations} needed"
    if quiet_ns < quiet_s * _NS:
        return False, (
            f"new behaviour {_duration(max(0, quiet_ns))} ago, "
            f"{_duration(int(quiet_s * _NS))} without any needed"
        )
    return True, f"no new behaviour for {_duration(quiet_ns)}, {n} events observed"


def rebase(previous: Profile, image_digest: str, now_ns: int | None = None) -> Profile:
    """The profile of a new image digest, starting from `previous`: the same entries (copies),
    ``version`` + 1, ``base_digest`` the previous digest, ``rebased_ns`` (default: just after
    the latest time `previous` holds). The quiet time restarts: the new image's behaviour has not
    been watched yet."""
    now = now_ns if now_ns is not None else _latest(previous) + 1
    return replace(
        previous,
        image_digest=image_digest,
        version=previous.version + 1,
        base_digest=previous.image_digest,
        rebased_ns=now,
        last_new_ns=max(previous.last_new_ns, now),
        processes={k: s.copy() for k, s in previous.processes.items()},
        files={k: s.copy() for k, s in previous.files.items()},
        network={k: s.copy() for k, s in previous.network.items()},
        privileged={k: s.copy() for k, s in previous.privileged.items()},
        syscalls={k: s.copy() for k, s in previous.syscalls.items()},
    )


def new_since_base(profile: Profile) -> list[str]:
    """What this version learned that its base did not have (all of it for a first version)."""
    return [text for _section, text, s in entries(profile) if s.first_ns >= profile.rebased_ns and s.count]
