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
)


def register(app: typer.Typer) -> None:
    """Add every command group to the command line."""
    for mod in COMMAND_MODULES:
        importlib.import_module(f"stockade.cli.{mod}").register(app)
