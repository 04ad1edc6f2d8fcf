"""The registry of command groups: one module per group, one line each here."""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES = (
    "replay_cmd",
    "rules_cmd",
    "tuning_cmd",
    "alerts_cmd",
    "events_cmd",
    "serve_cmd",
    "workloads_cmd",
    "policy_cmd",
    "anomaly_cmd",
    "top_cmd",
    "incidents_cmd",
    "respond_cmd",
    "audit_cmd",
    "evidence_cmd",
    "drill_cmd",
    "certs_cmd",
    "drift_cmd",
    "sbom_cmd",
    "db_cmd",
    "scan_cmd",
    "inventory_cmd",
    "vulns_cmd",
    # after inventory_cmd (the group it adds `find` to)
    "inventory_find_cmd",
    # the k8s group first, then the modules adding its commands (k8s_scan_cmd, ...)
    "k8s_cmd",
    "k8s_checks_cmd",
    "k8s_node_cmd",
    "k8s_crds_cmd",
    "k8s_rbac_cmd",
    "k8s_scan_cmd",
    "k8s_admission_cmd",
)


#: groups that modules of other names add commands to (``tuning_cmd`` adds ``rules mute`` ...);
#: a module named ``<group>_...`` (``inventory_find_cmd``) is found by its name
GROUP_EXTENSIONS = {"rules": ("tuning_cmd",)}

_done: set[str] = set()


def modules_for(command: str | None) -> tuple[str, ...]:
    """The modules that define the command group `command` (``inventory`` -> ``inventory_cmd`` and
    ``inventory_find_cmd``); every module when it is unknown or None (help, a typo)."""
    if command:
        own = tuple(m for m in COMMAND_MODULES if m == f"{command}_cmd" or m.startswith(f"{command}_"))
        if own:
            return own + GROUP_EXTENSIONS.get(command, ())
    return COMMAND_MODULES


def register(app: typer.Typer, command: str | None = None) -> None:
    """Add the command groups `command` needs (every group when None) to the command line, once
    each: a one-shot command (``stockade sbom DIR``) then imports only its own module, which halves
    its start-up."""
    for mod in modules_for(command):
        if mod not in _done:
            _done.add(mod)
            importlib.import_module(f"stockade.cli.{mod}").register(app)
