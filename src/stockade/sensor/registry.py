"""The sensor backends: name -> class, one line each (the registry pattern of :mod:`stockade.plugins`).

Adding a backend is one new file (a :class:`stockade.sensor.interface.Backend` subclass whose class
attributes say how a plan uses it) and one line here; ``tests/sensor/test_sensor_interface.py`` runs
every registered backend through the interface. The order matters: a plan probes the backends of a
role in this order (the first primary that can run is chosen; every fallback that can run is).
"""

from __future__ import annotations

from typing import Final

from stockade.plugins import Registry
from stockade.sensor.interface import Backend

__all__ = ["BACKENDS"]

BACKENDS: Final = Registry[Backend](
    "sensor backend",
    {
        "ebpf": "stockade.sensor.ebpf.backend:EbpfBackend",
        "procconn": "stockade.sensor.procconn:ProcConnectorBackend",
        "fanotify": "stockade.sensor.fanotify:FanotifyBackend",
        "conntrack": "stockade.sensor.conntrack:ConntrackBackend",
        "recorded": "stockade.sensor.recorded:RecordedBackend",
    },
)
