"""The rule families of test_rule_families.py again, with a busy loop on every core.

Users' nodes are busy: the sensor's reader threads wait for a core, short-lived processes exit
before /proc is read, and the attribution and process facts must hold all the same (a fact the
sensor could not get is unknown, never another process's or the host's). The same tests, the same
assertions; only the load differs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
import test_rule_families
from test_rule_families import (  # the tests and their batches, collected again in this module
    fallback_batch,
    podman_batch,
    runc_batch,
    test_a_podman_container_s_own_process,
    test_a_podman_container_s_own_process_with_the_fallback_sensors,
    test_a_runc_container_s_own_process,
    test_in_a_podman_container,
    test_in_a_podman_container_with_the_fallback_sensors,
    test_in_a_runc_container,
    test_on_the_host,
)

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.slow]

__all__ = [
    "fallback_batch",
    "podman_batch",
    "runc_batch",
    "test_a_podman_container_s_own_process",
    "test_a_podman_container_s_own_process_with_the_fallback_sensors",
    "test_a_runc_container_s_own_process",
    "test_in_a_podman_container",
    "test_in_a_podman_container_with_the_fallback_sensors",
    "test_in_a_runc_container",
    "test_on_the_host",
]


@pytest.fixture(scope="module", autouse=True)
def cpu_hogs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """One busy loop per core (at the sensor's own priority) for the whole module."""
    hogs = [subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"]) for _ in range(os.cpu_count() or 1)]
    quiet_wait = test_rule_families.WAIT_S
    test_rule_families.WAIT_S = 60.0
    try:
        yield hogs
    finally:
        test_rule_families.WAIT_S = quiet_wait
        for h in hogs:
            h.kill()
            h.wait()
