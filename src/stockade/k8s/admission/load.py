"""Read AdmissionPolicy documents from YAML files (errors with file, line, column and field, as
for WorkloadPolicies: :func:`stockade.policy.load.parse_documents`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from stockade.k8s.admission.policy import KIND, AdmissionPolicy
from stockade.policy.load import Loaded, parse_documents, read_policy_files
from stockade.policy.model import PolicyError

__all__ = ["LoadedAdmissionPolicy", "load_admission_policies", "parse_admission_policies"]


class LoadedAdmissionPolicy(Loaded[AdmissionPolicy]):
    """An AdmissionPolicy and where it was read."""

    __slots__ = ()

    @property
    def base(self) -> Path:
        """The directory key and certificate files are relative to."""
        return Path(self.origin).parent


def parse_admission_policies(
    text: str, origin: str = "<input>", *, notes: list[str] | None = None
) -> list[LoadedAdmissionPolicy]:
    """Every AdmissionPolicy of a YAML stream (documents of other kinds skipped, noted)."""
    return [
        LoadedAdmissionPolicy(d.policy, d.origin, d.line, d.column)
        for d in parse_documents(text, origin, AdmissionPolicy, KIND, notes=notes)
    ]


def load_admission_policies(
    paths: Iterable[str | Path], *, notes: list[str] | None = None
) -> list[LoadedAdmissionPolicy]:
    """The AdmissionPolicies of files and directories (``*.yaml`` then ``*.yml``), in order; two
    policies of one name are an error."""
    out: list[LoadedAdmissionPolicy] = []
    for path, text in read_policy_files(paths):
        out.extend(parse_admission_policies(text, path, notes=notes))
    seen: dict[str, LoadedAdmissionPolicy] = {}
    for lp in out:
        first = seen.setdefault(lp.name, lp)
        if first is not lp:
            raise PolicyError(
                f"name {lp.name!r} is already that of the policy at {first.location}", lp.location
            )
    return out
