"""The default rules: Falco's stable rules where installed, then Stockade's built-in pack."""

from __future__ import annotations

from pathlib import Path

from stockade.config import StockadeConfig

BUILTIN_RULES_DIR = Path(__file__).resolve().parent / "builtin"
#: loaded after the pack when `engine.pack_scope` is hosts_and_containers
HOST_SCOPE_RULES = Path(__file__).resolve().parent / "extras" / "hosts.yaml"


def builtin_rule_files() -> list[Path]:
    """Stockade's built-in rule files, in name order."""
    return sorted(BUILTIN_RULES_DIR.glob("*.yaml"))


def expand_rule_paths(paths: list[str]) -> list[str]:
    """Files as given; a directory stands for its *.yaml files in name order (as Falco does)."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(str(x) for x in sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")))
        else:
            out.append(p)
    return out


def default_rule_paths(cfg: StockadeConfig | None = None) -> tuple[list[str], list[str]]:
    """(rule files to load in order, notes on what was not found)."""
    cfg = cfg or StockadeConfig()
    files: list[str] = []
    notes: list[str] = []
    falco = [p for p in cfg.engine.falco_rules_paths if Path(p).is_file()]
    if not falco and cfg.engine.falco_rules_paths:
        notes.append(
            "Falco's stable rules not found at "
            + ", ".join(cfg.engine.falco_rules_paths)
            + "; running without them"
        )
    files.extend(falco)
    if cfg.engine.builtin_rules:
        files.extend(str(p) for p in builtin_rule_files())
        if cfg.engine.pack_scope == "hosts_and_containers":
            files.append(str(HOST_SCOPE_RULES))
    files.extend(expand_rule_paths(cfg.engine.rules_files))
    return files, notes
