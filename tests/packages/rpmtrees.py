"""Root filesystems holding a real rpm database in each format, built with Debian's rpm tools.

Debian's rpm (4.18) writes only sqlite databases, so:

* ``sqlite``: rpms built with ``rpmbuild`` from small specs, installed with ``rpm --root``
  (files and database, Rocky Linux 9 os-release), and a signing key imported with ``rpm
  --import`` (a ``gpg-pubkey`` entry, as every Red Hat system has);
* ``bdb``: the same headers loaded with ``db_load -t hash`` (Berkeley DB 5.3, the library rpm
  used for ``Packages`` until 4.16) keyed as rpm keys them (the header number, 4 bytes native
  order), CentOS 7 os-release;
* ``ndb``: the same headers written in rpm's ndb layout (lib/backend/ndb/rpmpkg.c: header, slot
  pages, blobs with head, adler32 tail) by :func:`write_ndb`, openSUSE Leap 15.5 os-release. No
  tool on Debian writes ndb; the writer follows rpm's source.

Built once into the shared test cache (tests/trees.py).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Final

import trees
from helpers import need

#: (name, epoch or None, version, release, number of files)
RPMS: Final = (
    ("stk-hello", 2, "1.2.3", "4.el9", 2),
    ("stk-tool", None, "0.9", "1.el9", 3),
    ("stk-bigfiles", None, "5.0.1", "2.el9", 400),
)
#: the release file each distribution also has (Trivy tells Red Hat's family by it, not os-release)
RELEASE_FILES: Final = {
    "sqlite": ("etc/rocky-release", "Rocky Linux release 9.3 (Blue Onyx)\n"),
    "bdb": ("etc/centos-release", "CentOS Linux release 7.9.2009 (Core)\n"),
    "ndb": ("etc/SUSE-brand", "openSUSE\nVERSION = 15.5\n"),
}
OS_RELEASES: Final = {
    "sqlite": 'NAME="Rocky Linux"\nVERSION="9.3 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n',
    "bdb": 'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n',
    "ndb": 'NAME="openSUSE Leap"\nVERSION="15.5"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\nVERSION_ID="15.5"\n',
}


def _spec(name: str, epoch: int | None, version: str, release: str, nfiles: int) -> str:
    files = [f"/usr/share/{name}/file{i:04d}.txt" for i in range(nfiles)]
    install = "\n".join(f"echo {i} > %{{buildroot}}{f}" for i, f in enumerate(files))
    return (
        f"Name: {name}\nVersion: {version}\nRelease: {release}\n"
        + (f"Epoch: {epoch}\n" if epoch is not None else "")
        + "Summary: Stockade test package\nLicense: MIT AND BSD-3-Clause\nBuildArch: noarch\n"
        + f"%description\nStockade test package {name}\n"
        + f"%install\nmkdir -p %{{buildroot}}/usr/share/{name}\n{install}\n"
        + "%files\n"
        + "\n".join(files)
        + "\n"
    )


def _run(args: list[str]) -> None:
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {(r.stderr or r.stdout)[-2000:]}")


def write_ndb(path: Path, blobs: list[bytes]) -> None:
    """An ndb ``Packages.db`` holding `blobs` (package indexes 1..n), as rpmpkg.c lays it out."""
    page, slot_size, blk = 4096, 16, 16
    slots_per_page = page // slot_size
    npages = max(1, -(-(len(blobs) + 2) // slots_per_page))
    out = bytearray(npages * page)
    struct.pack_into("<4sIIII", out, 0, b"RpmP", 0, 1, npages, len(blobs) + 1)
    for s in range(2, npages * slots_per_page):
        struct.pack_into("<4sIII", out, s * slot_size, b"Slot", 0, 0, 0)
    for i, blob in enumerate(blobs):
        idx = i + 1
        body = struct.pack("<4sIII", b"BlbS", idx, 1, len(blob)) + blob
        cnt = -(-(len(body) + 12) // blk)
        pad = b"\0" * (cnt * blk - len(body) - 12)
        adler = zlib.adler32(body + pad)
        rec = body + pad + struct.pack("<II4s", adler, len(blob), b"BlbE")
        off = len(out) // blk
        struct.pack_into("<4sIII", out, (i + 2) * slot_size, b"Slot", idx, off, cnt)
        out += rec
    path.write_bytes(bytes(out))


def write_bdb(path: Path, blobs: list[bytes]) -> None:
    """A Berkeley DB hash ``Packages`` holding `blobs` under keys 1..n (db_load)."""
    lines = ["VERSION=3", "format=bytevalue", "type=hash", "db_pagesize=4096", "HEADER=END"]
    for i, blob in enumerate(blobs):
        lines.append(" " + struct.pack("=I", i + 1).hex())
        lines.append(" " + blob.hex())
    lines.append("DATA=END")
    src = path.with_suffix(".dump")
    src.write_text("\n".join(lines) + "\n")
    _run(["db_load", "-f", str(src), "-t", "hash", str(path)])
    src.unlink()


def _release_files(root: Path, kind: str) -> None:
    (root / "etc/os-release").write_text(OS_RELEASES[kind])
    name, text = RELEASE_FILES[kind]
    (root / name).write_text(text)
    if kind != "ndb":
        (root / "etc/redhat-release").symlink_to(Path(name).name)


def _import_key(root: Path, home: Path) -> None:
    """A fresh ed25519 signing key (gpg), imported into the tree's rpm database."""
    home.mkdir(mode=0o700)
    try:
        _run(
            [
                "gpg",
                "--batch",
                "--homedir",
                str(home),
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--quick-gen-key",
                "Stockade Test <test@stockade.invalid>",
                "ed25519",
                "sign",
                "never",
            ]
        )
        key = home / "key.asc"
        r = subprocess.run(
            ["gpg", "--batch", "--homedir", str(home), "--armor", "--export", "test@stockade.invalid"],
            capture_output=True,
            check=True,
            timeout=60,
        )
        key.write_bytes(r.stdout)
        _run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--import", str(key)])
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, timeout=60
        )
        shutil.rmtree(home, ignore_errors=True)


def _build(dest: Path) -> None:
    top = dest / "rpmbuild"
    for name, epoch, version, release, nfiles in RPMS:
        spec = dest / f"{name}.spec"
        spec.write_text(_spec(name, epoch, version, release, nfiles))
        _run(["rpmbuild", "-bb", "--define", f"_topdir {top}", str(spec)])
    rpms = sorted(str(p) for p in top.glob("RPMS/*/*.rpm"))
    root = dest / "sqlite"
    (root / "etc").mkdir(parents=True)
    _release_files(root, "sqlite")
    _run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--initdb"])
    _run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--noscripts", *rpms])
    _import_key(root, dest / "gnupg")
    db = sqlite3.connect(root / "var/lib/rpm/rpmdb.sqlite")
    blobs = [bytes(r[0]) for r in db.execute("SELECT blob FROM Packages ORDER BY hnum")]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for kind, writer, dbname in (("bdb", write_bdb, "Packages"), ("ndb", write_ndb, "Packages.db")):
        other = dest / kind
        shutil.copytree(root, other, symlinks=True)
        for f in (other / "etc").iterdir():
            f.unlink()
        _release_files(other, kind)
        for f in (other / "var/lib/rpm").iterdir():
            f.unlink()
        where = other / ("usr/lib/sysimage/rpm" if kind == "ndb" else "var/lib/rpm")
        where.mkdir(parents=True, exist_ok=True)
        writer(where / dbname, blobs)
        if kind == "ndb":
            (other / "var/lib/rpm").rmdir()
            os.symlink("../../usr/lib/sysimage/rpm", other / "var/lib/rpm")
    shutil.rmtree(top)


def rpm_roots() -> dict[str, Path]:
    """``{"sqlite": root, "bdb": root, "ndb": root}``: trees with :data:`RPMS` installed."""
    for tool, deb in (("rpmbuild", "rpm"), ("rpm", "rpm"), ("db_load", "db-util"), ("gpg", "gnupg")):
        need(shutil.which(tool), f"{tool} is not installed (Debian package {deb}; scripts/install.sh)")
    recipe = repr((RPMS, OS_RELEASES, _spec("x", 1, "1", "1", 2))) + repr(RELEASE_FILES) + "gpg-pubkey"
    base = trees.cached_tree("rpm-roots", recipe, _build)
    return {kind: base / kind for kind in ("sqlite", "bdb", "ndb")}
