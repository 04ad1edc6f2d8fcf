"""Read AdmissionPolicy documents from YAML files (errors with file, line, column and field, as
for WorkloadPolicies: :func:`stockade.policy.load.parse_documents`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stockade.errors import Location
from stockade.k8s.admission.policy import KIND, AdmissionPolicy
from stockade.policy.load import parse_documents
from stockade.policy.model import PolicyError
from stockade.rules.defaults import expand_rule_paths

__all__ = ["LoadedAdmissionPolicy", "load_admission_policies", "parse_admission_policies"]


@dataclass(frozen=True, slots=True)
class LoadedAdmissionPolicy:
    """A policy and where it was read (file, line and column of its document)."""

    policy: AdmissionPolicy
    origin: str
    line: int = 1
    column: int = 1

    @property
    def name(self) -> str:
        """The policy's name."""
        return self.policy.metadata.name

    @property
    def location(self) -> Location:
        """Where the document is, naming the policy."""
        return Location(self.origin, self.line, self.column, f"policy {self.name!r}")

    @property
    def base(self) -> Path:
        """The directory key and certificate files are relative to."""
        return Path(self.origin).parent


def parse_admission_policies(
    text: str, origin: str = "<input>", *, notes: list[str] | None = None
) -> list[LoadedAdmissionPolicy]:
    """Every AdmissionPolicy of a YAML stream (documents of other kinds skipped, noted)."""
    return [
        LoadedAdmissionPolicy(p, origin, line, col)
        for p, line, col in parse_documents(text, origin, AdmissionPolicy, KIND, notes=notes)
    ]


def load_admission_policies(
    paths: Iterable[str | Path], *, notes: list[str] | None = None
) -> list[LoadedAdmissionPolicy]:
    """The AdmissionPolicies of files and directories (``*.yaml`` then ``*.yml``), in order; two
    policies of one name are an error."""
    out: list[LoadedAdmissionPolicy] = []
    for path in expand_rule_paths([str(p) for p in paths]):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise PolicyError(f"cannot read policy file: {why}", Location(path)) from None
        out.extend(parse_admission_policies(text, path, notes=notes))
    seen: dict[str, LoadedAdmissionPolicy] = {}
    for lp in out:
        first = seen.setdefault(lp.name, lp)
        if first is not lp:
            raise PolicyError(
                f"name {lp.name!r} is already that of the policy at {first.location}", lp.location
            )
    return out
