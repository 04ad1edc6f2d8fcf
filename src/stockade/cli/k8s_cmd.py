"""`stockade k8s ...`: Kubernetes posture. This module makes the group; each part adds its own
commands from a module named ``k8s_<part>_cmd`` (scan, admission, rbac, node, crds) through
:func:`group`, so that `stockade k8s scan` imports only what it needs."""

from __future__ import annotations

import typer

__all__ = ["group", "register"]

HELP = "Kubernetes posture: manifest and cluster scans, admission control, RBAC, node checks."


def group(app: typer.Typer) -> typer.Typer:
    """The `k8s` group of `app` (made and added when no module made it yet)."""
    for g in app.registered_groups:
        if g.name == "k8s" and g.typer_instance is not None:
            return g.typer_instance
    k8s = typer.Typer(help=HELP, no_args_is_help=True)
    app.add_typer(k8s, name="k8s")
    return k8s


def register(app: typer.Typer) -> None:
    """Add the `k8s` group."""
    group(app)
