"""Container attribution: cgroup path -> (runtime, id) -> metadata from the runtime (issue 3).

See docs/sensor-enrichment.md. Entry point: :class:`stockade.sensor.containers.resolver.ContainerResolver`.
"""
