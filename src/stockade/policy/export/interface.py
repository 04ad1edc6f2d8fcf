"""What every exporter gives and raises: :class:`ExportResult` and :class:`ExportError`.

An exporter is a function ``export(policy, **options) -> ExportResult`` (registered by name in
:data:`stockade.policy.export.EXPORTERS`). It never drops a rule silently: what the target format
cannot express is widened, narrowed or left out, and each such change is one line of `warnings`
(the YAML formats also write them as comments at the top of the text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stockade.policy.model import PolicyError

__all__ = ["ExportError", "ExportResult", "Exporter"]


class ExportError(PolicyError):
    """A policy that cannot be exported to the format asked for (or a bad export option)."""

    title = "Cannot export policy"


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The exported document and what it could not express of the policy."""

    text: str
    warnings: tuple[str, ...] = ()


#: ``export(policy: WorkloadPolicy, **options) -> ExportResult``: one format (its options are
#: keyword-only parameters with defaults)
Exporter = Callable[..., ExportResult]
