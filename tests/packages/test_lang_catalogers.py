"""The language catalogers (Python, npm, Go, Java, Rust) on real trees, against Trivy in the same run.

Trees (tests/trees.py, built once and cached): the old-PyPI venv, a venv with setuptools
egg-info, a project installed by ``npm install`` from the npm registry, its lock file in each
lockfileVersion, a Go binary built offline with Debian's golang-go (a file proxy, a versioned and a
local replacement), Debian's log4j jars with a war and an ear nesting them, and an ELF with
``cargo auditable`` data. Each is catalogued by :func:`catalog_tree` and by ``trivy rootfs``
(offline); the package sets (purls) must be equal but for :data:`LANG_DIFFERENCES`, the one list
of known and explained differences (docs/packages.md, "Language packages", repeats it).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, Final

import pytest

import trees
from helpers import need, trivy_binary, trivy_rootfs
from stockade.model.package import Package
from stockade.packages.elf import ElfFile
from stockade.packages.gobinary import GoBinaryCataloger, parse_buildinfo, read_buildinfo
from stockade.packages.java import JavaCataloger
from stockade.packages.npm import NpmCataloger, NpmLockCataloger
from stockade.packages.python import PythonCataloger
from stockade.packages.registry import catalogers
from stockade.packages.rust import CargoLockCataloger, RustBinaryCataloger
from stockade.packages.walk import Catalog, catalog_tree

#: tree -> {purl (or Trivy's name where it gives no purl): why only one side reports it}
LANG_DIFFERENCES: Final[dict[str, dict[str, str]]] = {
    "venv": {},
    "egg-info": {},
    "node": {},
    "go": {
        "pkg:golang/example.com/lib": "a module replaced by a local directory (=> ../lib): Stockade names it "
        "by the module path it replaces, with no version",
        "../lib": "Trivy names the same module by the directory, with no version and no purl",
    },
    "java": {
        "pkg:maven/com.example/util@3.4.5": "a jar named only by its MANIFEST.MF: Trivy checks such coordinates "
        "against its Java DB (not downloadable offline, so empty) and drops them; Stockade reports them as "
        "Trivy's offline parser does",
    },
    "rust": {},
}


def trivy_set(components: list[dict[str, Any]]) -> set[str]:
    """Each library Trivy found, by purl (by name for the few it gives none)."""
    return {c.get("purl") or c["name"] for c in components if c.get("type") == "library"}


def assert_matches_trivy(tree: str, ours: Catalog, theirs: list[dict[str, Any]]) -> None:
    """Our package set is Trivy's, but for the explained differences of `tree`; every known
    difference really occurs (a stale entry fails)."""
    known = LANG_DIFFERENCES[tree]
    mine = {p.purl for p in ours.packages}
    trivy = trivy_set(theirs)
    assert not ours.errors, ours.errors
    assert mine - trivy == {k for k in known if k.startswith("pkg:")}, (
        f"{tree}: only Stockade: {mine - trivy}"
    )
    assert trivy - mine == {k for k in known if not k.startswith("pkg:")}, (
        f"{tree}: only Trivy: {trivy - mine}"
    )


@pytest.fixture(scope="session")
def trivy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trivy's cache dir with an empty Java DB: Trivy refuses to scan jars without one and cannot
    download it here (``--skip-java-db-update`` then uses this one, with nothing in it)."""
    cache = tmp_path_factory.mktemp("trivy-cache")
    db = cache / "java-db"
    db.mkdir()
    with sqlite3.connect(db / "trivy-java.db") as c:
        c.executescript(
            "CREATE TABLE artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT);"
            "CREATE TABLE indices(artifact_id INTEGER, version TEXT, sha1 BLOB, archive_type TEXT,"
            " FOREIGN KEY (artifact_id) REFERENCES artifacts(id));"
            "CREATE UNIQUE INDEX artifacts_idx ON artifacts(artifact_id, group_id);"
            "CREATE INDEX indices_artifact_idx ON indices(artifact_id);"
            "CREATE UNIQUE INDEX indices_sha1_idx ON indices(sha1);"
        )
    c.close()
    meta = {
        "Version": 1,
        "NextUpdate": "2099-01-01T00:00:00Z",
        "UpdatedAt": "2024-01-01T00:00:00Z",
        "DownloadedAt": "2024-01-01T00:00:00Z",
    }
    (db / "metadata.json").write_text(json.dumps(meta))
    return cache


def by_purl(cat: Catalog) -> dict[str, Package]:
    """The packages of a catalog by purl."""
    return {p.purl: p for p in cat.packages}


# -- Python ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_venv_matches_trivy_and_is_faster(old_venv: Path, trivy_cache: Path) -> None:
    t0 = time.perf_counter()
    ours = catalog_tree(old_venv)
    ours_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = trivy_rootfs(old_venv, trivy_cache)
    trivy_s = time.perf_counter() - t0
    print(f"venv: stockade {ours_s:.3f}s, trivy {trivy_s:.3f}s, {len(ours.packages)} packages")
    assert_matches_trivy("venv", ours, theirs)
    for name, version in trees.OLD_PYPI:
        assert f"pkg:pypi/{name}@{version}" in by_purl(ours)
    django = by_purl(ours)["pkg:pypi/django@3.2"]
    assert django.name == "Django" and django.ecosystem == "PyPI" and django.found_by == "python"
    assert django.path.endswith("/site-packages/Django-3.2.dist-info/METADATA")
    site = django.path.rsplit("/", 2)[0]
    assert f"{site}/django/db/models/query.py" in django.files
    # every file RECORD lists is where it says, in the tree (the binary scripts outside site-packages too)
    missing = [f for f in django.files if not (old_venv / f.lstrip("/")).exists() and "__pycache__" not in f]
    assert not missing, missing[:5]
    assert any(f.startswith("/bin/django-admin") for f in django.files)
    # generous: a loaded shared machine; the benchmark gives the real figure
    assert ours_s < 3 * trivy_s + 1


@pytest.mark.slow
def test_egg_info_matches_trivy(trivy_cache: Path) -> None:
    root = trees.egg_info_tree()
    ours = catalog_tree(root)
    assert_matches_trivy("egg-info", ours, trivy_rootfs(root, trivy_cache))
    pkgs = by_purl(ours)
    name, version = trees.EGG_SDIST
    six = pkgs[f"pkg:pypi/{name}@{version}"]
    assert "/six-1.10.0-py3.11.egg-info/PKG-INFO" in six.path
    tool = pkgs["pkg:pypi/fixture-tool@0.3.1"]
    # SOURCES.txt of a src/ layout project, resolved against the project directory
    assert "/srv/proj/src/tool/__init__.py" in tool.files and "/srv/proj/setup.py" in tool.files
    assert pkgs["pkg:pypi/legacy-thing@2.0"].licenses == ("MIT",)


# -- npm ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_node_modules_matches_trivy(trivy_cache: Path) -> None:
    root = trees.node_project()
    ours = catalog_tree(root)
    assert_matches_trivy("node", ours, trivy_rootfs(root, trivy_cache))
    pkgs = by_purl(ours)
    scoped = pkgs["pkg:npm/%40babel/helper-validator-identifier@7.10.4"]
    assert scoped.name == "@babel/helper-validator-identifier" and scoped.ecosystem == "npm"
    # the nested copy (debug's own ms) and the top-level one are both installed
    assert pkgs["pkg:npm/ms@2.0.0"].path == "/srv/app/node_modules/debug/node_modules/ms/package.json"
    assert "pkg:npm/ms@2.1.3" in pkgs
    # dev dependencies are installed, so reported; the project's own package.json too (as Trivy does)
    assert "pkg:npm/is-number@7.0.0" in pkgs and "pkg:npm/stockade-fixture-app@1.0.0" in pkgs
    # the lock files (package-lock.json, node_modules/.package-lock.json) are not read in a rootfs scan
    assert all(p.found_by == "npm" for p in ours.packages)


def trivy_fs(root: Path, cache: Path) -> list[dict[str, Any]]:
    """``trivy fs`` (which reads lock files) on `root`, offline."""
    cmd = [
        str(trivy_binary()),
        "fs",
        "--quiet",
        "--format",
        "cyclonedx",
        "--skip-db-update",
        "--skip-java-db-update",
        "--offline-scan",
        "--cache-backend",
        "memory",
        "--cache-dir",
        str(cache),
        str(root),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    return list(json.loads(r.stdout).get("components", []))


@pytest.mark.slow
@pytest.mark.parametrize("version", [1, 2, 3])
def test_package_lock_matches_trivy_fs(version: int, trivy_cache: Path) -> None:
    root = trees.npm_lockfiles() / f"v{version}"
    lock = json.loads((root / "package-lock.json").read_text())
    assert lock["lockfileVersion"] == version
    ours = catalog_tree(root, [NpmLockCataloger()])
    assert not ours.errors
    mine = {p.purl for p in ours.packages}
    assert mine == trivy_set(trivy_fs(root, trivy_cache))
    expected = {f"pkg:npm/{n.replace('@', '%40')}@{v}" for n, v in trees.NPM_DEPS.items()} | {
        "pkg:npm/ms@2.0.0"
    }
    # dev dependencies left out, as Trivy does by default
    assert mine == expected
    dev = catalog_tree(root, [NpmLockCataloger(include_dev=True)])
    assert {p.purl for p in dev.packages} == expected | {"pkg:npm/is-number@7.0.0"}


def test_lockfiles_only_when_asked() -> None:
    assert not any(isinstance(c, NpmLockCataloger) for c in catalogers())
    assert any(isinstance(c, NpmLockCataloger) for c in catalogers(lockfiles=True))
    # Cargo.lock is read in a rootfs scan: Trivy's rootfs scan reads it
    assert any(isinstance(c, CargoLockCataloger) for c in catalogers())


# -- Go ----------------------------------------------------------------------------------------------


def go_version_m(binary: Path) -> str:
    """The build info as the Go toolchain reads it (the oracle of the parser)."""
    need(shutil.which("go"), "go is not installed")
    r = subprocess.run(
        ["go", "version", "-m", str(binary)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def our_version_m(binary: Path) -> str:
    """Our parse of the binary printed the way ``go version -m`` prints it."""
    with open(binary, "rb") as f:
        elf = ElfFile.open(f)
        assert elf is not None
        found = read_buildinfo(elf)
    assert found is not None
    info = parse_buildinfo(*found)
    lines = [f"{binary}: {info.go_version}", f"\tpath\t{info.path}"]
    mods = ([("mod", info.main)] if info.main else []) + [("dep", d) for d in info.deps]
    for kind, m in mods:
        assert m is not None
        lines.append(f"\t{kind}\t{m.path}\t{m.version}")
        if m.replace:
            lines.append(f"\t=>\t{m.replace.path}\t{m.replace.version}")
    lines += [f"\tbuild\t{k}={v}" for k, v in info.settings.items()]
    return "\n".join(lines)


def normalise_version_m(text: str) -> str:
    """``go version -m`` output without the checksum column and blank lines."""
    out = []
    for line in text.splitlines():
        cols = line.split("\t")
        if cols[0] == "" and len(cols) > 1 and cols[1] in ("mod", "dep", "=>"):
            cols = cols[:4]
        if line.strip():
            out.append("\t".join(c for c in cols).rstrip("\t"))
    return "\n".join(out)


@pytest.mark.slow
def test_go_binary_matches_trivy_and_go_version(trivy_cache: Path) -> None:
    root = trees.go_binary()
    binary = root / "app/server"
    assert normalise_version_m(our_version_m(binary)) == normalise_version_m(go_version_m(binary))
    ours = catalog_tree(root)
    assert_matches_trivy("go", ours, trivy_rootfs(root, trivy_cache))
    pkgs = by_purl(ours)
    go = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    # the toolchain as stdlib, v-prefixed; the main module's version from -ldflags -X main.version
    assert f"pkg:golang/stdlib@v{go.removeprefix('go')}" in pkgs
    assert "pkg:golang/example.com/app@1.2.3" in pkgs
    # replaced (v1.0.0 => v1.1.0): the replacement is what is compiled in
    assert (
        "pkg:golang/example.com/colors@v1.1.0" in pkgs and "pkg:golang/example.com/colors@v1.0.0" not in pkgs
    )
    # the executable is the file of every module in it (a process running it has them all loaded)
    assert all(
        p.path == "/app/server" and p.files == ("/app/server",) and p.ecosystem == "Go" for p in ours.packages
    )


def old_format_go_binary(path: Path, go_version: str, modinfo: str) -> None:
    """A minimal ELF executable holding build info in the pointer format of Go 1.13-1.17 (no such
    toolchain is installable here): a ``.go.buildinfo`` section whose two pointers lead to Go
    string headers in a loadable segment. ``go version -m`` reads it, which proves the layout."""
    base, sect_off = 0x400000, 0x100
    start, end = (
        b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6",
        b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2",
    )
    mod = start + modinfo.encode() + end
    hdr_off = sect_off + 32
    str_off = hdr_off + 32
    vers = go_version.encode()
    body = bytearray(b"\xff Go buildinf:" + bytes([8, 0]))
    body += struct.pack("<QQ", base + hdr_off, base + hdr_off + 16)
    body += struct.pack("<QQ", base + str_off, len(vers))
    body += struct.pack("<QQ", base + str_off + len(vers), len(mod))
    body += vers + mod
    shstr = b"\0.go.buildinfo\0.shstrtab\0"
    shstr_off = sect_off + len(body)
    shoff = (shstr_off + len(shstr) + 7) & ~7
    total = shoff + 3 * 64
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, base, 64, shoff, 0, 64, 56, 1, 64, 3, 2)
    phdr = struct.pack("<IIQQQQQQ", 1, 6, 0, base, base, total, total, 0x1000)
    sh_null = bytes(64)
    sh_bi = struct.pack("<IIQQQQIIQQ", 1, 1, 3, base + sect_off, sect_off, 32, 0, 0, 16, 0)
    sh_str = struct.pack("<IIQQQQIIQQ", 15, 3, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0)
    data = bytearray(total)
    data[0 : len(ehdr)] = ehdr
    data[64 : 64 + len(phdr)] = phdr
    data[sect_off : sect_off + len(body)] = body
    data[shstr_off : shstr_off + len(shstr)] = shstr
    data[shoff:total] = sh_null + sh_bi + sh_str
    path.write_bytes(bytes(data))
    path.chmod(0o755)


@pytest.mark.slow
def test_go_pointer_format(tmp_path: Path, trivy_cache: Path) -> None:
    modinfo = (
        "path\texample.com/old\nmod\texample.com/old\tv0.9.0\th1:x=\n"
        "dep\tgolang.org/x/text\tv0.3.5\th1:y=\ndep\tgithub.com/pkg/errors\tv0.8.0\th1:z=\n"
        "=>\tgithub.com/pkg/errors\tv0.9.1\th1:w=\n"
    )
    binary = tmp_path / "root/usr/bin/old"
    binary.parent.mkdir(parents=True)
    old_format_go_binary(binary, "go1.16.15", modinfo)
    assert normalise_version_m(our_version_m(binary)) == normalise_version_m(go_version_m(binary))
    ours = catalog_tree(tmp_path / "root")
    assert_matches_trivy("venv", ours, trivy_rootfs(tmp_path / "root", trivy_cache))
    assert {p.purl for p in ours.packages} == {
        "pkg:golang/stdlib@v1.16.15",
        "pkg:golang/example.com/old@v0.9.0",
        "pkg:golang/golang.org/x/text@v0.3.5",
        "pkg:golang/github.com/pkg/errors@v0.9.1",
    }


def test_go_cataloger_skips_what_is_not_a_go_binary(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    shutil.copy("/bin/true", tmp_path / "bin/true")  # an ELF without build info
    (tmp_path / "bin/script").write_text("#!/bin/sh\necho go\n")
    (tmp_path / "bin/script").chmod(0o755)
    (tmp_path / "bin/data").write_bytes(b"\x7fELF" + bytes(100))  # an ELF magic, not an exec bit
    ours = catalog_tree(tmp_path, [GoBinaryCataloger(), RustBinaryCataloger()])
    assert ours.packages == [] and ours.errors == []


# -- Java --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_jars_match_trivy(trivy_cache: Path) -> None:
    root = trees.java_tree()
    ours = catalog_tree(root)
    assert_matches_trivy("java", ours, trivy_rootfs(root, trivy_cache))
    paths = {(p.name, p.version, p.path) for p in ours.packages}
    for jar in ("log4j-api", "log4j-core"):
        hits = [p for p in ours.packages if p.name == f"org.apache.logging.log4j:{jar}"]
        assert hits and all(p.version.startswith("2.") and p.ecosystem == "Maven" for p in hits)
    api = next(p.version for p in ours.packages if p.name == "org.apache.logging.log4j:log4j-api")
    # nested: a jar in a war, and the same war in an ear (three archives deep)
    assert (
        "org.apache.logging.log4j:log4j-api",
        api,
        f"/opt/app/webapp-1.0.0.war!/WEB-INF/lib/log4j-api-{api}.jar",
    ) in paths
    assert (
        "org.apache.logging.log4j:log4j-api",
        api,
        f"/opt/app/bundle.ear!/webapp-1.0.0.war!/WEB-INF/lib/log4j-api-{api}.jar",
    ) in paths
    assert ("com.example:util", "3.4.5", "/opt/app/lib/util-3.4.5.jar") in paths
    # the file a JVM opens is the outermost archive
    nested = [p for p in ours.packages if p.path.startswith("/opt/app/bundle.ear!/")]
    assert nested and all(p.files == ("/opt/app/bundle.ear",) for p in nested)


def test_broken_files_are_reported_and_the_walk_goes_on(tmp_path: Path) -> None:
    import zipfile

    (tmp_path / "app/node_modules/bad").mkdir(parents=True)
    (tmp_path / "app/node_modules/bad/package.json").write_text("{not json")
    (tmp_path / "app/node_modules/good").mkdir()
    (tmp_path / "app/node_modules/good/package.json").write_text('{"name": "good", "version": "1.0.0"}')
    (tmp_path / "app/broken.jar").write_bytes(b"PK\x03\x04 not really")
    with zipfile.ZipFile(tmp_path / "app/outer-1.0.jar", "w") as z:
        z.writestr("META-INF/maven/g/outer/pom.properties", "groupId=g\nartifactId=outer\nversion=1.0\n")
        z.writestr("lib/inner.jar", b"garbage")
    (tmp_path / "app/x.dist-info").mkdir()
    (tmp_path / "app/x.dist-info/METADATA").write_text("Summary: no name\n")
    ours = catalog_tree(tmp_path, [NpmCataloger(), JavaCataloger(), PythonCataloger()])
    assert {p.purl for p in ours.packages} == {"pkg:npm/good@1.0.0", "pkg:maven/g/outer@1.0"}
    errors = dict(ours.errors)
    assert set(errors) == {
        "/app/node_modules/bad/package.json",
        "/app/broken.jar",
        "/app/outer-1.0.jar!/lib/inner.jar",
        "/app/x.dist-info/METADATA",
    }
    assert "not JSON" in errors["/app/node_modules/bad/package.json"]


# -- Rust --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cargo_auditable_matches_trivy(trivy_cache: Path) -> None:
    root = trees.rust_tree()
    ours = catalog_tree(root)
    assert_matches_trivy("rust", ours, trivy_rootfs(root, trivy_cache))
    binary = {p.purl for p in ours.packages if p.found_by == "rustbinary"}
    # the build dependency (cc) is not in the binary's runtime set
    assert binary == {"pkg:cargo/app@0.1.0", "pkg:cargo/serde@1.0.100", "pkg:cargo/smallvec@1.6.0"}
    lock = {p.purl for p in ours.packages if p.found_by == "cargo-lock"}
    assert lock == {"pkg:cargo/app@0.1.0", "pkg:cargo/time@0.1.44"}
    assert all(p.ecosystem == "crates.io" for p in ours.packages)


def test_manifest_names_a_jar_only_when_no_pom_properties_is_its_own(tmp_path: Path) -> None:
    import zipfile

    mf = (
        "Manifest-Version: 1.0\nBundle-SymbolicName: com.google.inject;singleton:=true\n"
        "Bundle-Name: guice\nBundle-Version: 4.2.3\nImplementation-Title: Google Guice \n"
        " - Core Library\nImplementation-Version: 4.2.3\n\nName: com/x\nImplementation-Version: 9\n"
    )
    # Debian names the real file without a version: its own pom.properties is then the artifactId's
    with zipfile.ZipFile(tmp_path / "gson.jar", "w") as z:
        z.writestr("META-INF/MANIFEST.MF", mf)
        z.writestr(
            "META-INF/maven/com.google.code.gson/gson/pom.properties",
            "artifactId=gson\ngroupId=com.google.code.gson\nversion=2.10\n",
        )
    # a jar carrying only a shaded dependency's pom.properties: the manifest names the jar itself
    with zipfile.ZipFile(tmp_path / "guice.jar", "w") as z:
        z.writestr("META-INF/MANIFEST.MF", mf)
        z.writestr(
            "META-INF/maven/cglib/cglib/pom.properties", "groupId=cglib\nartifactId=cglib\nversion=3.3\n"
        )
    found = {(p.name, p.version, p.path) for p in catalog_tree(tmp_path, [JavaCataloger()]).packages}
    assert found == {
        ("com.google.code.gson:gson", "2.10", "/gson.jar"),
        ("cglib:cglib", "3.3", "/guice.jar"),
        # Implementation-Title (folded over two lines) before Bundle-Name; the group is the
        # symbolic name up to its last dot; the per-entry section after the blank line is not read
        ("com.google:Google Guice - Core Library", "4.2.3", "/guice.jar"),
    }


def test_python_purl_and_pep503_names(tmp_path: Path) -> None:
    from stockade.packages.python import pypi_name

    d = tmp_path / "site-packages/jaraco.text-3.12.1.dist-info"
    d.mkdir(parents=True)
    (d / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: jaraco.text\nVersion: 3.12.1\n\nName: not this\n"
    )
    (pkg,) = catalog_tree(tmp_path, [PythonCataloger()]).packages
    assert (pkg.name, pkg.purl) == ("jaraco.text", "pkg:pypi/jaraco.text@3.12.1")
    assert pypi_name("Jaraco_Text.x") == "jaraco-text-x"


@pytest.mark.slow
def test_zipped_egg_matches_trivy(tmp_path: Path, trivy_cache: Path) -> None:
    import sys

    proj = tmp_path / "proj"
    (proj / "eggy").mkdir(parents=True)
    (proj / "eggy/__init__.py").write_text("")
    (proj / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='eggy', version='1.4', packages=['eggy'])\n"
    )
    r = subprocess.run(
        [sys.executable, "setup.py", "-q", "bdist_egg", "--dist-dir", str(tmp_path / "root/eggs")],
        cwd=proj,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (egg,) = (tmp_path / "root/eggs").iterdir()
    ours = catalog_tree(tmp_path / "root")
    assert {p.purl for p in ours.packages} == {"pkg:pypi/eggy@1.4"}
    assert ours.packages[0].path == f"/eggs/{egg.name}" and ours.packages[0].files == (f"/eggs/{egg.name}",)
    assert_matches_trivy("egg-info", ours, trivy_rootfs(tmp_path / "root", trivy_cache))


def test_egg_info_installed_files_are_resolved_from_the_egg_info(tmp_path: Path) -> None:
    site = tmp_path / "usr/lib/python3/dist-packages"
    egg = site / "six-1.16.0.egg-info"
    egg.mkdir(parents=True)
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\n")
    # pip's record of a legacy install: relative to the egg-info directory
    (egg / "installed-files.txt").write_text("../six.py\n../__pycache__/six.cpython-311.pyc\nPKG-INFO\n")
    (egg / "SOURCES.txt").write_text("setup.py\nsix.py\n")
    (pkg,) = catalog_tree(tmp_path, [PythonCataloger()]).packages
    assert pkg.files == (
        "/usr/lib/python3/dist-packages/six.py",
        "/usr/lib/python3/dist-packages/__pycache__/six.cpython-311.pyc",
        "/usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
    )
