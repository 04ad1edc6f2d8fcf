"""The certificate tree the tests of tests/certs share (session): every format in the places a node
keeps them, made in the test run (tests/tlsgen.py: :func:`build_cert_tree`)."""

from __future__ import annotations

import shutil

import pytest

from helpers import need
from tlsgen import CertTree, build_cert_tree


@pytest.fixture(scope="session")
def cert_tree(tmp_path_factory: pytest.TempPathFactory) -> CertTree:
    """The tree and what a scan of it must find."""
    need(shutil.which("keytool"), "keytool (openjdk-17-jre-headless) is not installed")
    return build_cert_tree(tmp_path_factory.mktemp("certtree"))
