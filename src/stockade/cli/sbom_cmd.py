"""`stockade sbom PATH [--format cyclonedx|spdx]`: the SBOM of a directory or an image, on stdout.

PATH is a root filesystem directory, an image archive (``podman image save``, docker-archive or
oci-archive), an OCI layout directory or a local podman image reference. The document (CycloneDX
1.6 JSON by default, or SPDX 2.3 JSON) goes to standard output; what could not be read (files the
catalogers could not parse, image members that could not be unpacked) is said on standard error,
one line each, and the document is written all the same (docs/sbom.md).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stockade.cli import common
from stockade.packages.sbom_write import FORMATS, write_sbom
from stockade.packages.subject import catalog_target


def sbom(
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH",
            help="A directory, an image archive or OCI layout, or a podman image (localhost/app:1.0).",
        ),
    ],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"Document format: {' or '.join(FORMATS)}.")
    ] = "cyclonedx",
) -> None:
    """Write the SBOM (every package with its purl, version, licenses and path) of PATH to stdout."""
    common.check_choice(fmt, "--format", FORMATS)
    catalog, subject = catalog_target(path)
    for member, reason in subject.unpack_errors:
        common.print_error(f"{path}: not unpacked: {member}: {reason}")
    for inner, reason in catalog.errors:
        common.print_error(f"{path}: not read: {inner}: {reason}")
    sys.stdout.write(write_sbom(fmt, catalog.packages, subject) + "\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add `stockade sbom` to the command line."""
    app.command("sbom")(sbom)
