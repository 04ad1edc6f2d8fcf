"""The OS package catalogers (dpkg, apk, rpm) on real trees, against Trivy in the same run.

Trees: the Debian minbase (debootstrap, cached), the busybox tree, rpm databases in all three
formats (tests/packages/rpmtrees.py), an Alpine installed database and a distroless status.d
(written here in their real formats: no Alpine or distroless image can be fetched on this
machine). Each is catalogued by :func:`catalog_tree` and by ``trivy rootfs`` (offline), and the
package sets, (name, version) pairs, must be equal but for :data:`DIFFERENCES`, the one list of
known and explained differences (docs/packages.md repeats it).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import rpmtrees

from helpers import need, trivy_rootfs
from stockade.model.package import Package
from stockade.packages.cataloger import Tree
from stockade.packages.osrelease import OsRelease, detect, parse_os_release
from stockade.packages.walk import Catalog, catalog_tree

#: rpm's entry for a signing key imported with ``rpm --import``: Trivy lists it as a package
#: (version = key id - creation time), Stockade leaves it out: it is a key, not installed software,
#: no advisory names it, and it owns no files
GPG_PUBKEY: Final = "gpg-pubkey: an imported signing key, not software (Trivy lists it, Stockade does not)"

#: tree -> {name or (name, version): why Stockade and Trivy differ on it}; empty where they agree.
#: Differences of purl qualifiers are not package-set differences and are listed in docs/packages.md.
DIFFERENCES: Final[dict[str, dict[str | tuple[str, str], str]]] = {
    "debian-minbase": {},
    "busybox": {},
    "rpm-sqlite": {"gpg-pubkey": GPG_PUBKEY},
    "rpm-bdb": {"gpg-pubkey": GPG_PUBKEY},
    "rpm-ndb": {"gpg-pubkey": GPG_PUBKEY},
    "alpine": {},
    "distroless": {},
    "this-machine": {},
}

#: the tests running Trivy or building trees take seconds each
slow = pytest.mark.slow


def pkgset(packages: list[Package]) -> set[tuple[str, str]]:
    """(name, version) of each package."""
    return {(p.name, p.version) for p in packages}


def trivy_set(components: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(name, version) of each component Trivy found."""
    return {(c["name"], c.get("version", "")) for c in components}


def assert_matches_trivy(tree: str, ours: Catalog, theirs: list[dict[str, Any]]) -> None:
    """Our package set is Trivy's, but for the explained differences of `tree`."""
    known = DIFFERENCES[tree]

    def unexplained(pairs: set[tuple[str, str]]) -> list[tuple[str, str]]:
        return sorted(p for p in pairs if p not in known and p[0] not in known)

    only_ours = unexplained(pkgset(ours.packages) - trivy_set(theirs))
    only_trivy = unexplained(trivy_set(theirs) - pkgset(ours.packages))
    assert not only_ours and not only_trivy, (
        f"{tree}: found only by Stockade {only_ours}, only by Trivy {only_trivy}"
    )
    # every listed difference is one this run shows (a stale entry is an error too)
    diff = pkgset(ours.packages) ^ trivy_set(theirs)
    for entry in known:
        assert any(p == entry or p[0] == entry for p in diff), f"{tree}: {entry} no longer differs"
    assert not ours.errors, ours.errors


def trivy_purls(components: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(name, version) -> Trivy's purl."""
    return {(c["name"], c.get("version", "")): c.get("purl", "") for c in components}


def without_distro(purl: str) -> str:
    """A purl without its ``distro`` qualifier (Trivy puts the point release there)."""
    base, _, quals = purl.partition("?")
    kept = [q for q in quals.split("&") if q and not q.startswith("distro=")]
    return base + ("?" + "&".join(kept) if kept else "")


# -- Debian ------------------------------------------------------------------------------------


def dpkg_query(root: Path) -> set[tuple[str, str]]:
    """What dpkg itself says is installed in `root`."""
    need(shutil.which("dpkg-query"), "needs dpkg-query")
    r = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={root}/var/lib/dpkg",
            "-W",
            "-f",
            "${Package} ${Version} ${db:Status-Abbrev}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    # the abbreviation's second letter is the state: "i" installed (wanted to install, "ii", or held, "hi")
    return {(n, v) for n, v, st in (line.split(" ", 2) for line in r.stdout.splitlines()) if st[1:2] == "i"}


@pytest.mark.root
@slow
def test_debian_minbase_matches_dpkg_and_trivy(debian_rootfs: Path, tmp_path: Path) -> None:
    cat = catalog_tree(debian_rootfs)
    assert pkgset(cat.packages) == dpkg_query(debian_rootfs)
    theirs = trivy_rootfs(debian_rootfs, tmp_path / "trivy")
    assert_matches_trivy("debian-minbase", cat, theirs)
    assert len(cat.packages) > 50
    # purls as Trivy writes them, but for the distro qualifier (debian-12, Trivy's debian-12.x)
    purls = trivy_purls(theirs)
    for p in cat.packages:
        assert without_distro(p.purl) == without_distro(purls[(p.name, p.version)]), p
        assert p.ecosystem == "Debian" and p.distro == "12" and "distro=debian-12" in p.purl
        assert p.path == "/var/lib/dpkg/status" and p.found_by == "dpkg"
    by_name = {p.name: p for p in cat.packages}
    # the epoch stays in the version, the source package and its version are kept
    bsdutils = by_name["bsdutils"]
    assert bsdutils.version.startswith("1:") and "epoch=1" in bsdutils.purl
    assert bsdutils.source == "util-linux" and bsdutils.source_version and ":" not in bsdutils.source_version
    # files from info/<pkg>.list, directories left out; multi-arch packages' <pkg>:<arch>.list too
    assert "/bin/ls" in by_name["coreutils"].files and "/bin" not in by_name["coreutils"].files
    # licenses as the machine-readable copyright files name them (Trivy normalises to SPDX ids)
    assert by_name["apt"].licenses[:2] == ("GPL-2+", "GPL-2")
    assert sum(1 for p in cat.packages if p.licenses) > len(cat.packages) // 2
    libc = by_name["libc6"]
    assert (debian_rootfs / "var/lib/dpkg/info/libc6:amd64.list").exists() or libc.files
    assert any(f.endswith("/libc.so.6") for f in libc.files)


def test_dpkg_removed_and_half_installed_are_not_packages(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text('ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n')
    (root / "var/lib/dpkg/status").write_text(
        "Package: kept\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1ubuntu1\n"
        "Source: kept-src (1.0-1ubuntu0)\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 2.0\n\n"
        "Package: broken\nStatus: install reinstreq half-installed\nArchitecture: amd64\nVersion: 3.0\n\n"
        "Package: held\nStatus: hold ok installed\nArchitecture: all\nVersion: 4.0\n"
        "Description: a long\n description line\n"
    )
    cat = catalog_tree(root)
    assert pkgset(cat.packages) == {("kept", "1.0-1ubuntu1"), ("held", "4.0")}
    kept = next(p for p in cat.packages if p.name == "kept")
    assert kept.ecosystem == "Ubuntu" and kept.distro == "22.04"
    assert kept.purl == "pkg:deb/ubuntu/kept@1.0-1ubuntu1?arch=amd64&distro=ubuntu-22.04"
    assert (kept.source, kept.source_version) == ("kept-src", "1.0-1ubuntu0")


@pytest.mark.root
@slow
def test_distroless_status_d_matches_trivy(debian_rootfs: Path, tmp_path: Path) -> None:
    """A distroless-style tree: one stanza per file in status.d (no Status line), md5sums beside."""
    root = tmp_path / "distroless"
    sd = root / "var/lib/dpkg/status.d"
    sd.mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy(debian_rootfs / "etc/os-release", root / "etc/os-release")
    shutil.copy(debian_rootfs / "etc/debian_version", root / "etc/debian_version")
    wanted = {"base-files", "libc6", "tzdata", "netbase"}
    status = (debian_rootfs / "var/lib/dpkg/status").read_text()
    info = debian_rootfs / "var/lib/dpkg/info"
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        name = fields.get("Package")
        if name not in wanted:
            continue
        body = "\n".join(line for line in stanza.splitlines() if not line.startswith("Status:"))
        (sd / name).write_text(body + "\n")
        for md5 in (info / f"{name}.md5sums", info / f"{name}:amd64.md5sums"):
            if md5.exists():
                shutil.copy(md5, sd / f"{name}.md5sums")
    cat = catalog_tree(root)
    found = {p.name for p in cat.packages}
    assert found == {n for n in wanted if (sd / n).exists()} and len(found) >= 3
    assert all(p.path == f"/var/lib/dpkg/status.d/{p.name}" for p in cat.packages)
    libc = next(p for p in cat.packages if p.name == "libc6")
    assert any(f.endswith("/libc.so.6") for f in libc.files)
    assert_matches_trivy("distroless", cat, trivy_rootfs(root, tmp_path / "trivy"))


# -- busybox ------------------------------------------------------------------------------------


@slow
def test_busybox_tree_has_no_package_database(busybox_rootfs: Path, tmp_path: Path) -> None:
    """A bare busybox tree (Debian's busybox-static copied in) has no package database: neither we nor
    Trivy report a package (Trivy has no busybox binary detection either)."""
    cat = catalog_tree(busybox_rootfs)
    theirs = trivy_rootfs(busybox_rootfs, tmp_path / "trivy")
    assert cat.packages == [] and cat.errors == []
    assert_matches_trivy("busybox", cat, theirs)
    assert theirs == []


# -- rpm -----------------------------------------------------------------------------------------

RPM_EXPECTED: Final = {
    "sqlite": ("Rocky Linux", "9", "rocky", "/var/lib/rpm/rpmdb.sqlite"),
    "bdb": ("RPM", "7", "centos", "/var/lib/rpm/Packages"),
    "ndb": ("openSUSE", "Leap 15.5", "opensuse", "/usr/lib/sysimage/rpm/Packages.db"),
}


@pytest.fixture(scope="module")
def rpm_roots() -> dict[str, Path]:
    """Trees with an rpm database in each format (tests/packages/rpmtrees.py)."""
    return rpmtrees.rpm_roots()


@slow
@pytest.mark.parametrize("kind", ["sqlite", "bdb", "ndb"])
def test_rpm_database_matches_trivy(rpm_roots: dict[str, Path], kind: str, tmp_path: Path) -> None:
    root = rpm_roots[kind]
    cat = catalog_tree(root)
    theirs = trivy_rootfs(root, tmp_path / "trivy")
    assert_matches_trivy(f"rpm-{kind}", cat, theirs)
    expected = {(n, (f"{e}:" if e is not None else "") + f"{v}-{r}") for n, e, v, r, _ in rpmtrees.RPMS}
    assert pkgset(cat.packages) == expected
    ecosystem, distro, namespace, dbpath = RPM_EXPECTED[kind]
    assert {c["name"] for c in theirs} - {p.name for p in cat.packages} == {"gpg-pubkey"}
    purls = trivy_purls(theirs)
    for p in cat.packages:
        assert (p.ecosystem, p.distro, p.path, p.found_by) == (ecosystem, distro, dbpath, "rpm")
        assert p.purl.startswith(f"pkg:rpm/{namespace}/{p.name}@")
        assert without_distro(p.purl) == without_distro(purls[(p.name, p.version)])
        assert p.source == p.name and p.licenses == ("MIT AND BSD-3-Clause",)
    by_name = {p.name: p for p in cat.packages}
    assert "epoch=2" in by_name["stk-hello"].purl
    assert by_name["stk-hello"].source_version == "1.2.3-4.el9"
    big = by_name["stk-bigfiles"].files
    assert len(big) == 400 and "/usr/share/stk-bigfiles/file0399.txt" in big


@slow
def test_rpm_sqlite_matches_rpm_itself(rpm_roots: dict[str, Path]) -> None:
    need(shutil.which("rpm"), "needs rpm")
    r = subprocess.run(
        [
            "rpm",
            "--root",
            str(rpm_roots["sqlite"]),
            "--dbpath",
            "/var/lib/rpm",
            "-qa",
            "--qf",
            "%{NAME} %{EVR}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {(n, v) for n, v in (x.split() for x in r.stdout.splitlines())}
    # the imported signing key is an entry of rpm's database, not software: left out (DIFFERENCES)
    keys = {(n, v) for n, v in installed if n == "gpg-pubkey"}
    assert len(keys) == 1
    assert pkgset(catalog_tree(rpm_roots["sqlite"]).packages) == installed - keys


@slow
def test_broken_rpm_databases_are_reported_and_the_walk_goes_on(
    rpm_roots: dict[str, Path], tmp_path: Path
) -> None:
    expected = {(n, (f"{e}:" if e is not None else "") + f"{v}-{r}") for n, e, v, r, _ in rpmtrees.RPMS}
    # a truncated ndb database: the headers before the break are packages, the break is reported
    root = tmp_path / "root"
    shutil.copytree(rpm_roots["ndb"], root, symlinks=True)
    ndb = root / "usr/lib/sysimage/rpm/Packages.db"
    data = ndb.read_bytes()
    ndb.write_bytes(data[: len(data) - 100])
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("Package: ok\nStatus: install ok installed\nVersion: 1\n")
    cat = catalog_tree(root)
    found = pkgset(cat.packages)
    assert ("ok", "1") in found and found - {("ok", "1")} <= expected and len(found) >= 2
    assert [path for path, _ in cat.errors] == ["/usr/lib/sysimage/rpm/Packages.db"]
    assert "ndb" in cat.errors[0][1]
    # one corrupt header in an sqlite database: the others are packages, that one an error
    other = tmp_path / "other"
    shutil.copytree(rpm_roots["sqlite"], other, symlinks=True)
    db = sqlite3.connect(other / "var/lib/rpm/rpmdb.sqlite")
    try:
        hnum = db.execute("SELECT MIN(hnum) FROM Packages").fetchone()[0]
        db.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (b"\0\0\0\x09garbage", hnum))
        db.commit()
    finally:
        db.close()
    cat2 = catalog_tree(other)
    assert len(cat2.packages) == len(expected) - 1 and pkgset(cat2.packages) < expected
    assert cat2.errors == [("/var/lib/rpm/rpmdb.sqlite", cat2.errors[0][1])]
    assert cat2.errors[0][1].startswith("header 1: ")
    # a file named like a database that is none: reported, nothing found
    bad = tmp_path / "bad"
    (bad / "var/lib/rpm").mkdir(parents=True)
    (bad / "var/lib/rpm/rpmdb.sqlite").write_text("not a database\n")
    cat3 = catalog_tree(bad)
    assert cat3.packages == [] and cat3.errors[0][0] == "/var/lib/rpm/rpmdb.sqlite"
    assert "not an rpm database" in cat3.errors[0][1]


# -- Alpine --------------------------------------------------------------------------------------

#: packages of Alpine 3.19's base image (alpine:3.19.1), as apk records them
ALPINE_PACKAGES: Final = (
    ("alpine-baselayout-data", "3.4.3-r2", "alpine-baselayout", "GPL-2.0-only", ("etc/fstab", "etc/hosts")),
    ("musl", "1.2.4_git20230717-r4", "musl", "MIT", ("lib/ld-musl-x86_64.so.1",)),
    ("busybox", "1.36.1-r15", "busybox", "GPL-2.0-only", ("bin/busybox",)),
    ("zlib", "1.3.1-r0", "zlib", "Zlib", ("lib/libz.so.1", "lib/libz.so.1.3.1")),
    ("libcrypto3", "3.1.4-r5", "openssl", "Apache-2.0", ("lib/libcrypto.so.3",)),
    (
        "ca-certificates-bundle",
        "20230506-r0",
        "ca-certificates",
        "MPL-2.0 AND MIT",
        ("etc/ssl/certs/ca-certificates.crt",),
    ),
)


def write_apk_db(root: Path) -> None:
    """An Alpine 3.19 tree's release files and /lib/apk/db/installed (apk's format: P, V, A, L, o,
    F and R lines, a blank line between packages)."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/alpine-release").write_text("3.19.1\n")
    (root / "etc/os-release").write_text(
        'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'
    )
    (root / "lib/apk/db").mkdir(parents=True)
    blocks = []
    for name, version, origin, lic, files in ALPINE_PACKAGES:
        lines = [
            "C:Q1" + "A" * 27 + "=",
            f"P:{name}",
            f"V:{version}",
            "A:x86_64",
            "S:100000",
            "I:200000",
            f"T:{name} for the test",
            "U:https://alpinelinux.org",
            f"L:{lic}",
            f"o:{origin}",
            "m:Natanael Copa <ncopa@alpinelinux.org>",
            "t:1700000000",
            "c:0123456789abcdef0123456789abcdef01234567",
        ]
        cwd = None
        for f in files:
            d, _, base = f.rpartition("/")
            if d != cwd:
                lines.append(f"F:{d}")
                cwd = d
            lines.append(f"R:{base}")
            lines.append("Z:Q1" + "B" * 27 + "=")
        blocks.append("\n".join(lines) + "\n")
    (root / "lib/apk/db/installed").write_text("\n".join(blocks) + "\n")


@slow
def test_alpine_installed_matches_trivy(tmp_path: Path) -> None:
    root = tmp_path / "alpine"
    write_apk_db(root)
    cat = catalog_tree(root)
    theirs = trivy_rootfs(root, tmp_path / "trivy")
    assert_matches_trivy("alpine", cat, theirs)
    assert pkgset(cat.packages) == {(n, v) for n, v, *_ in ALPINE_PACKAGES}
    purls = trivy_purls(theirs)
    for p in cat.packages:
        assert (p.ecosystem, p.distro, p.path) == ("Alpine", "v3.19", "/lib/apk/db/installed")
        assert p.purl == f"pkg:apk/alpine/{p.name}@{p.version}?arch=x86_64&distro=alpine-3.19.1"
        assert without_distro(p.purl) == without_distro(purls[(p.name, p.version)])
    by_name = {p.name: p for p in cat.packages}
    assert by_name["libcrypto3"].source == "openssl"
    assert by_name["zlib"].files == ("/lib/libz.so.1", "/lib/libz.so.1.3.1")
    assert by_name["ca-certificates-bundle"].licenses == ("MPL-2.0 AND MIT",)


# -- OS release -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"etc/os-release": 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'},
            ("Debian", "12", "debian-12"),
        ),
        ({"usr/lib/os-release": "ID=alpine\nVERSION_ID=3.20.3\n"}, ("Alpine", "v3.20", "alpine-3.20.3")),
        ({"etc/alpine-release": "3.18.4\n"}, ("Alpine", "v3.18", "alpine-3.18.4")),
        ({"etc/debian_version": "11.9\n"}, ("Debian", "11", "debian-11")),
        ({"etc/debian_version": "trixie/sid\n"}, ("Debian", None, None)),
        ({"etc/os-release": 'ID="rhel"\nVERSION_ID="9.4"\n'}, ("Red Hat", "9", "rhel-9.4")),
        ({"etc/os-release": 'ID="almalinux"\nVERSION_ID="8.10"\n'}, ("AlmaLinux", "8", "almalinux-8.10")),
        (
            {"etc/os-release": 'ID="opensuse-tumbleweed"\nVERSION_ID="20240101"\n'},
            ("openSUSE", "Tumbleweed", "opensuse-tumbleweed-20240101"),
        ),
        ({"etc/os-release": "ID=fedora\nVERSION_ID=40\n"}, (None, "40", "fedora-40")),
    ],
)
def test_os_release(tmp_path: Path, files: dict[str, str], expected: tuple[str | None, ...]) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    rel = detect(Tree(tmp_path))
    assert rel is not None
    assert (rel.ecosystem, rel.osv_release, rel.purl_distro) == expected


def test_os_release_through_an_absolute_symlink_stays_in_the_tree(tmp_path: Path) -> None:
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/lib/os-release").write_text("ID=ubuntu\nVERSION_ID='24.04'\n")
    os.symlink("/usr/lib/os-release", tmp_path / "etc/os-release")
    assert detect(Tree(tmp_path)) == OsRelease(id="ubuntu", version_id="24.04")
    assert detect(Tree(tmp_path / "etc")) is None
    assert parse_os_release('# comment\nNAME="A B"\nbad line\n') == {"NAME": "A B"}


@slow
def test_rpm_sqlite_write_ahead_log_is_read_and_the_tree_untouched(
    rpm_roots: dict[str, Path], tmp_path: Path
) -> None:
    """A database caught with committed headers still in its -wal (a live system's rpmdb): they are
    packages too; the scanned files are not changed (the database is read from a private copy)."""
    src = rpm_roots["sqlite"] / "var/lib/rpm/rpmdb.sqlite"
    root = tmp_path / "root"
    (root / "var/lib/rpm").mkdir(parents=True)
    shutil.copytree(rpm_roots["sqlite"] / "etc", root / "etc", symlinks=True)
    work = tmp_path / "work.sqlite"
    shutil.copy(src, work)
    db = sqlite3.connect(work)
    try:
        assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        db.execute("PRAGMA wal_autocheckpoint=0")
        blob = db.execute(
            "SELECT blob FROM Packages WHERE hnum = (SELECT MIN(hnum) FROM Packages)"
        ).fetchone()[0]
        db.execute("DELETE FROM Packages")
        db.execute("INSERT INTO Packages (hnum, blob) VALUES (1, ?)", (blob,))
        db.commit()
        shutil.copy(work, root / "var/lib/rpm/rpmdb.sqlite")
        shutil.copy(f"{work}-wal", root / "var/lib/rpm/rpmdb.sqlite-wal")
    finally:
        db.close()
    assert (root / "var/lib/rpm/rpmdb.sqlite-wal").stat().st_size > 0
    before = {p.name: p.read_bytes() for p in (root / "var/lib/rpm").iterdir()}
    cat = catalog_tree(root)
    assert len(cat.packages) == 1 and not cat.errors, cat.errors
    assert {p.name: p.read_bytes() for p in (root / "var/lib/rpm").iterdir()} == before


@slow
def test_this_machines_dpkg_database_matches_trivy(tmp_path: Path) -> None:
    """The build machine's own dpkg database (hundreds of packages, multi-arch, sources with their
    own versions), copied with its os-release: the same set as Trivy's, the same sources."""
    need(Path("/var/lib/dpkg/status").is_file(), "needs a Debian or Ubuntu machine (its dpkg database)")
    root = tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    for f in ("os-release", "debian_version"):
        if Path("/etc", f).exists():
            shutil.copy(Path("/etc", f), root / "etc" / f)
    shutil.copytree(
        "/var/lib/dpkg", root / "var/lib/dpkg", symlinks=True, ignore=shutil.ignore_patterns("*lock*")
    )
    cat = catalog_tree(root)
    theirs = trivy_rootfs(root, tmp_path / "trivy")
    assert_matches_trivy("this-machine", cat, theirs)
    assert pkgset(cat.packages) == dpkg_query(root)
    props = {
        (c["name"], c.get("version", "")): {
            q["name"].rsplit(":", 1)[-1]: q["value"] for q in c.get("properties", [])
        }
        for c in theirs
    }
    for p in cat.packages:
        q = props[(p.name, p.version)]
        version = q.get("SrcVersion", "") + (f"-{q['SrcRelease']}" if q.get("SrcRelease") else "")
        version = f"{q['SrcEpoch']}:{version}" if q.get("SrcEpoch") else version
        assert (p.source, p.source_version) == (q.get("SrcName"), version), p
