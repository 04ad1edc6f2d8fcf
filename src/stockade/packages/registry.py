"""Every cataloger, in the order their packages are listed."""

from __future__ import annotations

from stockade.packages.apk import ApkCataloger
from stockade.packages.cataloger import Cataloger
from stockade.packages.dpkg import DpkgCataloger
from stockade.packages.gobinary import GoBinaryCataloger
from stockade.packages.java import JavaCataloger
from stockade.packages.npm import NpmCataloger, NpmLockCataloger
from stockade.packages.python import PythonCataloger
from stockade.packages.rpm import RpmCataloger
from stockade.packages.rust import CargoLockCataloger, RustBinaryCataloger

__all__ = ["catalogers"]


def catalogers(lockfiles: bool = False) -> list[Cataloger]:
    """A fresh instance of every cataloger (some keep state across one walk).

    A root filesystem scan reports what is installed, as Trivy's rootfs and image scans do;
    `lockfiles` adds the lock files those scans leave out (npm's package-lock.json), for a
    source tree. Cargo.lock is read in both (Trivy's rootfs scan reads it too).
    """
    found: list[Cataloger] = [DpkgCataloger(), ApkCataloger(), RpmCataloger()]
    found += [
        PythonCataloger(),
        NpmCataloger(),
        GoBinaryCataloger(),
        JavaCataloger(),
        RustBinaryCataloger(),
        CargoLockCataloger(),
    ]
    if lockfiles:
        found.append(NpmLockCataloger())
    return found
