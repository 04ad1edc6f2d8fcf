"""Fixtures for the resource tests: a pure cgroup2 node in a directory (``node``), real cgroups
made for a test (``real_cgroup``): tests/resources/cgnode.py. `stockade up` as a real process
(``stockade_up``) is tests/upctl.py's."""

from __future__ import annotations

from resources.cgnode import node, real_cgroup  # noqa: F401 (fixtures are found by name)
