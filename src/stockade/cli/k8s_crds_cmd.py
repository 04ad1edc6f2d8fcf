"""`stockade k8s crds`: the CustomResourceDefinitions of Stockade's policy kinds (docs/k8s-deploy.md),
as multi-document YAML for ``kubectl apply -f -``; ``--output json`` prints one CRD per line."""

from __future__ import annotations

from typing import Annotated

import typer

from stockade.cli import common, k8s_cmd
from stockade.errors import UsageError

__all__ = ["crds", "register"]


def crds(
    kinds: Annotated[
        list[str] | None,
        typer.Option("--kind", "-k", help="Only this kind (repeatable): WorkloadPolicy, ..."),
    ] = None,
    output: str | None = common.OutputOpt,
) -> None:
    """CustomResourceDefinitions (stockade.dev/v1alpha1) with schemas from the policy models."""
    import sys

    import yaml

    from stockade.k8s.crds import KINDS
    from stockade.k8s.crds import crds as make

    known = [k.kind for k in KINDS]
    for k in kinds or ():
        if k not in known:
            raise UsageError(f"--kind {k!r}: one of {', '.join(known)}")
    docs = make(tuple(kinds or ()))
    if common.output_format(output) == "json":
        for d in docs:
            common.json_line(d)
    else:
        sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True, width=100))


def register(app: typer.Typer) -> None:
    """Add `k8s crds`."""
    k8s_cmd.group(app).command("crds")(crds)
