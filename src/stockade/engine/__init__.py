"""The detection engine."""

from stockade.engine.engine import Engine, EngineStats, workload_of

__all__ = ["Engine", "EngineStats", "workload_of"]
