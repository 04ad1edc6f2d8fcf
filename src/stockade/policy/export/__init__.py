"""Exports of a WorkloadPolicy to the formats users already run.

:data:`EXPORTERS` maps a format's name to its exporter, ``export(policy, **options) ->
ExportResult`` (the text and the warnings of what could not be expressed):

* ``kubearmor``: a KubeArmorPolicy (:mod:`.kubearmor`; option `labels`);
* ``networkpolicy``: a Kubernetes NetworkPolicy (:mod:`.networkpolicy`; options `labels`,
  `peer_labels`, `dns_namespace`, `dns_labels`);
* ``seccomp``: an OCI seccomp profile, JSON (:mod:`.seccomp`; option `runtime`);
* ``falco``: Falco rules alerting on deviations (:mod:`.falco`; option `standalone`).

:func:`export` looks the format up and checks the options (ExportError names what it accepts).
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from stockade.policy.export import falco, kubearmor, networkpolicy, seccomp
from stockade.policy.export.interface import Exporter, ExportError, ExportResult
from stockade.policy.model import WorkloadPolicy

__all__ = ["EXPORTERS", "ExportError", "ExportResult", "Exporter", "export", "options_of"]

EXPORTERS: Final[dict[str, Exporter]] = {
    "kubearmor": kubearmor.export,
    "networkpolicy": networkpolicy.export,
    "seccomp": seccomp.export,
    "falco": falco.export,
}


def options_of(fmt: str) -> tuple[str, ...]:
    """The options format `fmt`'s exporter takes."""
    params = inspect.signature(EXPORTERS[fmt]).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def export(policy: WorkloadPolicy, fmt: str, **options: Any) -> ExportResult:
    """`policy` in format `fmt` (a key of :data:`EXPORTERS`) with the exporter's `options`."""
    if fmt not in EXPORTERS:
        raise ExportError(f"no export format {fmt!r} (formats: {', '.join(EXPORTERS)})")
    unknown = sorted(set(options) - set(options_of(fmt)))
    if unknown:
        accepted = ", ".join(options_of(fmt)) or "none"
        raise ExportError(f"{fmt}: unknown option(s) {', '.join(unknown)} (options: {accepted})")
    return EXPORTERS[fmt](policy, **options)
