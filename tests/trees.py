"""Real trees for the package, SBOM and vulnerability tests, built once and cached across runs.

* :func:`debian_minbase`: ``debootstrap --variant=minbase bookworm`` from the machine's Debian
  mirror (a minute or two the first time).
* :func:`debian_python`: the same with ``--include=python3``: a tree podman can import
  as an image whose processes run Python (the minbase tree has none).
* :func:`debian_attack`: the same with the tools attack procedures use (:data:`ATTACK_PACKAGES`):
  tests/attacks' image.
* :func:`old_pypi_venv`: a venv with real old releases from PyPI (pure Python, ``--no-deps``) of
  packages that have advisories in ../shared/data/osv: :data:`OLD_PYPI`.
* :func:`checkov_venv`: Checkov from PyPI in a venv of its own, every version pinned (a few
  minutes the first time): the peer of ``stockade k8s scan``.

Each tree is built into ``/var/tmp/stockade-test-cache/<name>-<key>`` (the key is a hash of what
builds it), under a lock, renamed into place only when complete: parallel test sessions on the
machine share one build, and a half-built tree is never used. conftest.py turns them into
session fixtures (``debian_rootfs``, ``old_venv``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from helpers import need

CACHE: Final = Path(os.environ.get("STOCKADE_TEST_CACHE", "/var/tmp/stockade-test-cache"))

#: (name, version) of old pure-Python releases with advisories in ../shared/data/osv/pypa
OLD_PYPI: Final = (
    ("django", "3.2"),
    ("flask", "0.12.2"),
    ("bleach", "3.1.0"),
    ("certifi", "2022.9.24"),
    ("future", "0.18.2"),
    ("cookiecutter", "2.1.0"),
    ("bottle", "0.12.18"),
    ("babel", "2.9.0"),
)


def cached_tree(name: str, recipe: str, build: Callable[[Path], None]) -> Path:
    """The cached directory for `name` built by `build(dest)` (`recipe` names what it builds: a
    change to it builds anew)."""
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    final = CACHE / f"{name}-{key}"
    if final.is_dir():
        return final
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir():
            return final
        work = CACHE / f"{name}-{key}.part"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            build(work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        work.rename(final)
    return final


def _run(args: list[str], what: str, timeout: float = 900) -> None:
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed ({r.returncode}): {(r.stderr or r.stdout)[-2000:]}")


def debian_minbase() -> Path:
    """A Debian bookworm minbase root filesystem (root needed; debootstrap from DEBS)."""
    need(os.geteuid() == 0, "debootstrap needs root")
    need(shutil.which("debootstrap"), "debootstrap is not installed (scripts/install.sh installs it)")
    mirror = os.environ.get("STOCKADE_DEBIAN_MIRROR", "http://deb.debian.org/debian")

    def build(dest: Path) -> None:
        root = dest / "rootfs"
        _run(["debootstrap", "--variant=minbase", "bookworm", str(root), mirror], "debootstrap")
        # the apt caches are not part of what a scanner should see
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)

    return cached_tree("debian-minbase", f"bookworm minbase {mirror}", build) / "rootfs"


def debian_python() -> Path:
    """A Debian bookworm minbase root filesystem with ``python3`` and its standard library (root;
    debootstrap)."""
    return _debian_with("debian-python", ["python3"])


#: the tools of tests/attacks' image: what attack procedures for Linux run (shells, file tools,
#: interpreters, archivers, encoders, schedulers, process and network tools)
ATTACK_PACKAGES: Final = [
    "bash",
    "dash",
    "coreutils",
    "util-linux",
    "procps",
    "psmisc",
    "python3",
    "perl",
    "xxd",
    "zip",
    "unzip",
    "bzip2",
    "xz-utils",
    "at",
    "openssl",
    "curl",
    "wget",
    "netcat-openbsd",
    "iproute2",
    "kmod",
    "findutils",
    "gawk",
    "openssh-client",
    "ed",
]


def debian_attack() -> Path:
    """A Debian bookworm minbase root filesystem with :data:`ATTACK_PACKAGES` (root; debootstrap):
    the image tests/attacks performs attack procedures in."""
    return _debian_with("debian-attack", list(ATTACK_PACKAGES))


def _debian_with(name: str, packages: list[str]) -> Path:
    need(os.geteuid() == 0, "debootstrap needs root")
    need(shutil.which("debootstrap"), "debootstrap is not installed (scripts/install.sh installs it)")
    mirror = os.environ.get("STOCKADE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    include = ",".join(packages)

    def build(dest: Path) -> None:
        root = dest / "rootfs"
        _run(
            ["debootstrap", "--variant=minbase", f"--include={include}", "bookworm", str(root), mirror],
            "debootstrap",
        )
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)

    recipe = f"bookworm minbase {' '.join(packages)} {mirror}"
    return cached_tree(name, recipe, build) / "rootfs"


def _venv_with(venv: Path, pip_args: list[str], what: str) -> None:
    """A venv at `venv` (no pip of its own) with what ``pip install --no-deps pip_args`` installs."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "venv")
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install", "-q", "--no-deps"]
    _run([*pip, "--disable-pip-version-check", *pip_args], what)


def old_pypi_venv() -> Path:
    """A venv holding :data:`OLD_PYPI` (real wheels and sdists from PyPI, no dependencies)."""
    specs = [f"{n}=={v}" for n, v in OLD_PYPI]

    def build(dest: Path) -> None:
        _venv_with(dest / "venv", specs, "pip install of old releases")

    return cached_tree("old-pypi-venv", " ".join(specs) + sys.version, build) / "venv"


# -- language ecosystems (the golden tests of tests/packages/test_lang_*) ----------------------------

#: npm packages installed into :func:`node_project` (``ms`` twice: a nested node_modules)
NPM_DEPS: Final = {
    "lodash": "4.17.20",
    "debug": "2.6.9",
    "ms": "2.1.3",
    "@babel/helper-validator-identifier": "7.10.4",
}
NPM_DEV_DEPS: Final = {"is-number": "7.0.0"}


def node_project() -> Path:
    """A project with real npm packages installed from the npm registry (and its package-lock.json)."""
    need(shutil.which("npm"), "npm is not installed")
    manifest = {
        "name": "stockade-fixture-app",
        "version": "1.0.0",
        "private": True,
        "dependencies": NPM_DEPS,
        "devDependencies": NPM_DEV_DEPS,
    }

    def build(dest: Path) -> None:
        import json

        app = dest / "srv/app"
        app.mkdir(parents=True)
        (app / "package.json").write_text(json.dumps(manifest, indent=2))
        _run(
            [
                "npm",
                "install",
                "--prefix",
                str(app),
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--cache",
                str(dest / ".npm-cache"),
                "--loglevel=error",
            ],
            "npm install",
        )
        shutil.rmtree(dest / ".npm-cache", ignore_errors=True)

    return cached_tree("node-project", repr(sorted(manifest.items())), build)


def npm_lockfiles() -> Path:
    """The fixture project's lock file written by npm in each lockfileVersion (1, 2, 3), one
    directory each (``v1/``...), with its package.json, and no node_modules."""
    need(shutil.which("npm"), "npm is not installed")
    manifest = {
        "name": "stockade-lock-app",
        "version": "1.0.0",
        "private": True,
        "dependencies": NPM_DEPS,
        "devDependencies": NPM_DEV_DEPS,
    }

    def build(dest: Path) -> None:
        import json

        for v in (1, 2, 3):
            d = dest / f"v{v}"
            d.mkdir()
            (d / "package.json").write_text(json.dumps(manifest, indent=2))
            _run(
                [
                    "npm",
                    "install",
                    "--prefix",
                    str(d),
                    "--package-lock-only",
                    f"--lockfile-version={v}",
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    "--cache",
                    str(dest / ".npm-cache"),
                    "--loglevel=error",
                ],
                f"npm lockfile v{v}",
            )
        shutil.rmtree(dest / ".npm-cache", ignore_errors=True)

    return cached_tree("npm-lockfiles", repr(sorted(manifest.items())), build)


#: the Go fixture: a main module with a dependency from a file proxy, a versioned replacement and a
#: local (directory) replacement, built with -ldflags -X main.version
_GO_MAIN = """package main

import (
\t"fmt"

\t"example.com/colors"
\t"example.com/greet"
\t"example.com/lib"
)

var version = "dev"

func main() { fmt.Println(greet.Hello(), colors.Name(), lib.Answer(), version) }
"""


def _go_module_zip(proxy: Path, mod: str, version: str, files: dict[str, str]) -> None:
    import json
    import zipfile

    d = proxy / mod / "@v"
    d.mkdir(parents=True, exist_ok=True)
    gomod = f"module {mod}\n\ngo 1.19\n"
    (d / f"{version}.mod").write_text(gomod)
    (d / f"{version}.info").write_text(json.dumps({"Version": version, "Time": "2021-01-01T00:00:00Z"}))
    with zipfile.ZipFile(d / f"{version}.zip", "w") as z:
        z.writestr(f"{mod}@{version}/go.mod", gomod)
        for name, text in files.items():
            z.writestr(f"{mod}@{version}/{name}", text)
    with open(d / "list", "a") as f:
        f.write(version + "\n")


def go_binary() -> Path:
    """A tree with one Go binary (``/app/server``) built offline by Debian's golang-go."""
    need(shutil.which("go"), "go is not installed (scripts/install.sh installs golang-go)")

    def build(dest: Path) -> None:
        src = dest / "src"
        proxy = src / "proxy"
        _go_module_zip(
            proxy,
            "example.com/greet",
            "v1.4.0",
            {"greet.go": 'package greet\n\nfunc Hello() string { return "hello" }\n'},
        )
        for v in ("v1.0.0", "v1.1.0"):
            _go_module_zip(
                proxy,
                "example.com/colors",
                v,
                {"colors.go": f'package colors\n\nfunc Name() string {{ return "{v}" }}\n'},
            )
        (src / "lib").mkdir()
        (src / "lib/go.mod").write_text("module example.com/lib\n\ngo 1.19\n")
        (src / "lib/lib.go").write_text("package lib\n\nfunc Answer() int { return 42 }\n")
        app = src / "app"
        app.mkdir()
        (app / "go.mod").write_text(
            "module example.com/app\n\ngo 1.19\n\nrequire (\n\texample.com/colors v1.0.0\n"
            "\texample.com/greet v1.4.0\n\texample.com/lib v0.0.0\n)\n\n"
            "replace example.com/lib => ../lib\n\nreplace example.com/colors v1.0.0 => example.com/colors v1.1.0\n"
        )
        (app / "main.go").write_text(_GO_MAIN)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(src),
            "GOPATH": str(src / "gopath"),
            "GOCACHE": str(src / "gocache"),
            "GOPROXY": f"file://{proxy}",
            "GOSUMDB": "off",
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
        }
        out = dest / "rootfs/app/server"
        out.parent.mkdir(parents=True)
        r = subprocess.run(
            ["go", "build", "-ldflags", "-X main.version=1.2.3", "-o", str(out), "."],
            cwd=app,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            raise RuntimeError(f"go build failed: {r.stderr[-2000:]}")
        subprocess.run(["chmod", "-R", "u+w", str(src / "gopath")], check=False)
        shutil.rmtree(src)

    return cached_tree("go-binary", _GO_MAIN + "v2", build) / "rootfs"


#: Debian's log4j 2 jars (liblog4j2-java): real pom.properties and MANIFEST.MF
LOG4J_JARS: Final = ("log4j-api", "log4j-core")


def java_tree() -> Path:
    """Jars: Debian's log4j jars, a war holding one (WEB-INF/lib) and a manifest-only jar, and an
    ear holding the war (a jar three deep); built with the JDK's ``jar`` tool."""
    need(shutil.which("jar"), "the JDK's jar tool is not installed")
    share = Path("/usr/share/java")
    jars = {n: next(iter(sorted(share.glob(f"{n}-2.*.jar"))), None) for n in LOG4J_JARS}
    need(all(jars.values()), "liblog4j2-java is not installed (scripts/install.sh installs it)")

    def build(dest: Path) -> None:
        root = dest / "rootfs"
        lib = root / "opt/app/lib"
        lib.mkdir(parents=True)
        for p in jars.values():
            assert p is not None
            shutil.copy(p, lib / p.name)
        work = dest / "work"
        # a jar identified only by its manifest (no pom.properties)
        plain = work / "plain"
        (plain / "com/example").mkdir(parents=True)
        (plain / "com/example/Util.class").write_bytes(b"\xca\xfe\xba\xbe")
        mf = work / "MANIFEST.MF"
        mf.write_text(
            "Implementation-Title: util\nImplementation-Version: 3.4.5\n"
            "Implementation-Vendor-Id: com.example\n"
        )
        _run(["jar", "cfm", str(lib / "util-3.4.5.jar"), str(mf), "-C", str(plain), "."], "jar")
        # a war: its own pom.properties, log4j-api in WEB-INF/lib
        war = work / "war"
        (war / "WEB-INF/lib").mkdir(parents=True)
        api = jars["log4j-api"]
        assert api is not None
        shutil.copy(api, war / "WEB-INF/lib" / api.name)
        pom = war / "META-INF/maven/com.example/webapp"
        pom.mkdir(parents=True)
        (pom / "pom.properties").write_text("groupId=com.example\nartifactId=webapp\nversion=1.0.0\n")
        (war / "index.jsp").write_text("hello\n")
        _run(["jar", "cf", str(root / "opt/app/webapp-1.0.0.war"), "-C", str(war), "."], "jar")
        # an ear holding the war: log4j-api is then three archives deep
        ear = work / "ear"
        ear.mkdir()
        shutil.copy(root / "opt/app/webapp-1.0.0.war", ear / "webapp-1.0.0.war")
        _run(["jar", "cf", str(root / "opt/app/bundle.ear"), "-C", str(ear), "."], "jar")
        shutil.rmtree(work)

    return (
        cached_tree("java-jars", repr(sorted((k, str(v)) for k, v in jars.items())) + "v1", build) / "rootfs"
    )


#: the ``cargo auditable`` data written into the Rust fixture (a build dependency Trivy leaves out)
RUST_AUDIT: Final = {
    "packages": [
        {"name": "app", "version": "0.1.0", "source": "local", "dependencies": [1, 2], "root": True},
        {"name": "serde", "version": "1.0.100", "source": "crates.io"},
        {"name": "smallvec", "version": "1.6.0", "source": "crates.io"},
        {"name": "cc", "version": "1.0.73", "source": "crates.io", "kind": "build"},
    ]
}
_CARGO_LOCK = """version = 3

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["time"]

[[package]]
name = "time"
version = "0.1.44"
source = "registry+https://github.com/rust-lang/crates.io-index"
"""


def rust_tree() -> Path:
    """A tree with an ELF carrying a ``cargo auditable`` ``.dep-v0`` section, and a Cargo.lock.

    ``cargo auditable`` cannot be installed offline (crates.io is not reachable), so the section is
    written with ``objcopy --add-section`` into a copy of a real ELF executable, exactly as
    cargo-auditable lays it out (zlib-compressed JSON)."""
    import json
    import zlib

    objcopy = shutil.which("objcopy") or shutil.which("llvm-objcopy")
    need(objcopy, "objcopy is not installed (binutils)")
    assert objcopy is not None
    data = zlib.compress(json.dumps(RUST_AUDIT).encode())

    def build(dest: Path) -> None:
        root = dest / "rootfs"
        (root / "usr/local/bin").mkdir(parents=True)
        (root / "src/app").mkdir(parents=True)
        sect = dest / "dep-v0"
        sect.write_bytes(data)
        out = root / "usr/local/bin/app"
        _run([objcopy, "--add-section", f".dep-v0={sect}", "/bin/true", str(out)], "objcopy")
        out.chmod(0o755)
        sect.unlink()
        (root / "src/app/Cargo.lock").write_text(_CARGO_LOCK)

    return cached_tree("rust-auditable", data.hex() + _CARGO_LOCK, build) / "rootfs"


#: an old sdist installed by setuptools (an egg-info directory), and a project's egg-info
EGG_SDIST: Final = ("six", "1.10.0")


def egg_info_tree() -> Path:
    """A venv with an sdist installed as egg-info by setuptools, a ``setup.py egg_info`` project, and
    a one-file egg-info (as distutils wrote them, and Debian still ships them)."""
    name, version = EGG_SDIST

    def build(dest: Path) -> None:
        venv = dest / "venv"
        _run([sys.executable, "-m", "venv", str(venv)], "venv")
        py = str(venv / "bin/python")
        dl = dest / "dl"
        _run(
            [
                py,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(dl),
                f"{name}=={version}",
            ],
            "pip download of an sdist",
        )
        tarball = next(dl.iterdir())
        shutil.unpack_archive(tarball, dl)
        srcdir = next(p for p in dl.iterdir() if p.is_dir())
        _run(
            [
                "sh",
                "-c",
                f"cd {srcdir} && {py} setup.py -q install --single-version-externally-managed "
                f"--record {dl}/record.txt",
            ],
            "setup.py install",
        )
        shutil.rmtree(dl)
        proj = dest / "srv/proj"
        (proj / "src/tool").mkdir(parents=True)
        (proj / "src/tool/__init__.py").write_text("")
        (proj / "setup.py").write_text(
            "from setuptools import setup\nsetup(name='Fixture_Tool', version='0.3.1', "
            "package_dir={'': 'src'}, packages=['tool'])\n"
        )
        _run(["sh", "-c", f"cd {proj} && {py} setup.py -q egg_info"], "setup.py egg_info")
        site = next((venv / "lib").glob("python3*/site-packages"))
        (site / "legacy_thing-2.0.egg-info").write_text(
            "Metadata-Version: 1.1\nName: legacy-thing\nVersion: 2.0\nSummary: x\nLicense: MIT\n"
        )

    return cached_tree("egg-info", f"{name}=={version} {sys.version} v1", build)


# -- the peers of `stockade k8s scan` (tests/k8s/test_k8s_peers.py) ----------------------------------

#: Checkov and its dependencies, every version pinned (installed with --no-deps: no resolution)
CHECKOV_REQUIREMENTS: Final = Path(__file__).resolve().parent / "k8s" / "checkov-requirements.txt"


def checkov_venv() -> Path:
    """A venv of its own holding Checkov (PyPI), from :data:`CHECKOV_REQUIREMENTS`; its
    ``bin/checkov`` is the command."""
    pins = CHECKOV_REQUIREMENTS.read_text()

    def build(dest: Path) -> None:
        _venv_with(dest / "venv", ["-r", str(CHECKOV_REQUIREMENTS)], "pip install of checkov")

    return cached_tree("checkov-venv", pins + sys.version, build) / "venv"
