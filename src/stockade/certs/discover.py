"""Finding certificate files under a root: the host's ``/``, a container's ``/proc/<pid>/root``, or
any directory (``stockade certs --path``).

Bounded: only the known locations under the root are walked (:data:`DEFAULT_LOCATIONS`, globs
allowed), at most ``max_depth`` directories deep and ``max_entries`` directory entries per root;
only files named like certificates are read (:data:`CERT_EXTENSIONS`, :data:`CERT_NAMES`; private
keys, ``.key``, are never opened), each up to ``max_file_bytes``. Symbolic links are not followed
(a container's absolute link would point into the host; the OS trust store's hashed links would
count every CA twice): they are counted. Files are opened with ``O_NOFOLLOW | O_NONBLOCK``.

Trust stores (:func:`is_trust_store`): the OS's CA bundles and directories, Java's ``cacerts``,
the bundles of language runtimes (certifi, ...), and any file of at least
:data:`TRUST_BUNDLE_MIN` CA certificates. Their certificates are listed with ``trust_store`` true
and counted, never alerted one by one: nobody wants 140 alerts for ca-certificates.

A file that cannot be read or parsed is a problem with its path (:attr:`DiskScan.problems`), and the
scan goes on; what was skipped is counted (:attr:`DiskScan.counts`): a well-formed file without a
certificate (a PEM of keys only, an empty file, a ``cacerts`` that is no keystore) is counted as
``no_certificate``, not reported.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from collections import Counter
from dataclasses import dataclass, field

from stockade.certs.formats import read_certificates
from stockade.certs.interface import CertError, NoCertificate
from stockade.certs.record import CertRecord, Place, describe

__all__ = [
    "CERT_EXTENSIONS",
    "CERT_NAMES",
    "DEFAULT_EXCLUDE",
    "DEFAULT_LOCATIONS",
    "TRUST_BUNDLE_MIN",
    "DiskScan",
    "Limits",
    "is_trust_store",
    "scan_root",
]

#: where certificates are looked for under each root
DEFAULT_LOCATIONS: tuple[str, ...] = (
    "/etc",
    "/usr/local/share/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/etc",
    "/opt",
    "/srv",
    "/app",
    "/home",
    "/root",
    "/var/lib/*/certs",
    "/var/lib/*/ssl",
)
CERT_EXTENSIONS = frozenset(
    {".pem", ".crt", ".cer", ".der", ".p12", ".pfx", ".jks", ".jceks", ".keystore", ".truststore", ".p7b"}
)
#: file names read whatever their extension (Java's trust store)
CERT_NAMES = frozenset({"cacerts", "truststore"})
#: paths (inside the root) of trust stores, as globs
TRUST_STORE_GLOBS: tuple[str, ...] = (
    "/etc/ssl/certs/*",
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/*",
    "/etc/pki/tls/certs/ca-bundle*",
    "/etc/pki/tls/cert.pem",
    "/etc/pki/java/cacerts",
    "/etc/ca-certificates/*",
    "/usr/share/ca-certificates/*",
    "/usr/local/share/ca-certificates/*",
    "*/certifi/cacert.pem",
    "*/cacerts",
    "*/botocore/cacert.pem",
    "*/lib/security/cacerts",
)
#: test data of language runtimes and packages (Python's test suite ships expired certificates on
#: purpose): not certificates anybody serves; counted as ``excluded``
DEFAULT_EXCLUDE: tuple[str, ...] = ("*/test/*", "*/tests/*", "*/testdata/*", "*/test_data/*", "*/testing/*")
#: a file of at least this many CA certificates is a trust bundle wherever it is
TRUST_BUNDLE_MIN = 20


@dataclass(frozen=True, slots=True)
class Limits:
    """How far a disk scan goes (config ``certs``)."""

    locations: tuple[str, ...] = DEFAULT_LOCATIONS
    max_depth: int = 8
    max_entries: int = 200_000
    max_file_bytes: int = 4 * 2**20
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE


@dataclass(slots=True)
class DiskScan:
    """What one root's scan found: certificates, problems (with paths) and counts."""

    root: str
    certs: list[CertRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def is_trust_store(path: str) -> bool:
    """Whether `path` (inside its root) is a known trust store of the OS or a language runtime."""
    return any(fnmatch.fnmatchcase(path, g) for g in TRUST_STORE_GLOBS)


def _wanted(name: str) -> bool:
    if name in CERT_NAMES:
        return True
    return os.path.splitext(name)[1].lower() in CERT_EXTENSIONS


def _read(full: str, cap: int) -> bytes:
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(cap + 1)
    finally:
        os.close(fd)


def _locations(root: str, locations: tuple[str, ...]) -> list[str]:
    """The existing directories (inside the root) the locations name, globs expanded, nested ones
    dropped (each walked once)."""
    found: set[str] = set()
    for loc in locations:
        pattern = os.path.join(root, loc.lstrip("/"))
        for full in glob.glob(pattern) if glob.has_magic(loc) else [pattern]:
            if os.path.isdir(full) and not os.path.islink(full):
                found.add("/" + os.path.relpath(full, root) if root != "/" else full)
    out: list[str] = []
    for d in sorted(found):
        if not any(d.startswith(p.rstrip("/") + "/") for p in out):
            out.append(d)
    return out


def scan_file(
    root: str, inner: str, scan: DiskScan, limits: Limits, container: tuple[str, str | None] = ("", None)
) -> None:
    """Read one file (`inner`: its path inside `root`) into `scan`."""
    full = os.path.join(root, inner.lstrip("/"))
    try:
        data = _read(full, limits.max_file_bytes)
    except OSError as e:
        scan.counts["unreadable"] += 1
        scan.problems.append(f"{inner}: {e.strerror or e}")
        return
    if len(data) > limits.max_file_bytes:
        scan.counts["too_large"] += 1
        scan.problems.append(f"{inner}: larger than {limits.max_file_bytes} bytes: not read")
        return
    scan.counts["files_read"] += 1
    try:
        fmt, certs, problems = read_certificates(data, inner)
    except NoCertificate:
        scan.counts["no_certificate"] += 1
        return
    except CertError as e:
        if os.path.basename(inner) in CERT_NAMES:  # a file named like a keystore that is not one
            scan.counts["no_certificate"] += 1
            return
        scan.counts["unparsable"] += 1
        scan.problems.append(str(e))
        return
    scan.problems.extend(problems)
    scan.counts["unparsable"] += len(problems)
    trust = is_trust_store(inner) or sum(1 for _, c in certs if _ca(c)) >= TRUST_BUNDLE_MIN
    cid, cname = container
    for entry, cert in certs:
        place = Place("file", inner, fmt, entry, cid, cname, trust)
        scan.certs.append(describe(cert, place))
    scan.counts["trust_store_certs" if trust else "certs"] += len(certs)


def _ca(cert: object) -> bool:
    from cryptography import x509

    assert isinstance(cert, x509.Certificate)
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return cert.issuer == cert.subject


def scan_root(
    root: str, limits: Limits | None = None, *, container: tuple[str, str | None] = ("", None)
) -> DiskScan:
    """Every certificate under the known locations of `root` (module docstring). `container`:
    (full id, name) of the container whose root this is."""
    limits = limits or Limits()
    root = os.path.abspath(root)
    scan = DiskScan(root)
    budget = limits.max_entries
    for loc in _locations(root, limits.locations):
        base = os.path.join(root, loc.lstrip("/"))
        base_depth = base.rstrip("/").count("/")
        for dirpath, dirnames, filenames in os.walk(base, onerror=lambda e: _walk_error(scan, root, e)):
            budget -= len(dirnames) + len(filenames)
            if budget < 0:
                scan.counts["entries_cap_reached"] += 1
                scan.problems.append(
                    f"{loc}: stopped after {limits.max_entries} directory entries (certs.max_entries)"
                )
                return scan
            if dirpath.count("/") - base_depth >= limits.max_depth:
                scan.counts["depth_cap_dirs"] += len(dirnames)
                dirnames[:] = []
            dirnames.sort()
            for name in sorted(filenames):
                if not _wanted(name):
                    if name.endswith(".key"):
                        scan.counts["keys_not_read"] += 1
                    continue
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    scan.counts["symlinks_skipped"] += 1
                    continue
                inner = "/" + os.path.relpath(full, root) if root != "/" else full
                if any(fnmatch.fnmatchcase(inner, g) for g in limits.exclude):
                    scan.counts["excluded"] += 1
                    continue
                scan_file(root, inner, scan, limits, container)
    return scan


def _walk_error(scan: DiskScan, root: str, e: OSError) -> None:
    scan.counts["unreadable"] += 1
    where = e.filename if isinstance(e.filename, str) else "?"
    inner = "/" + os.path.relpath(where, root) if root != "/" and where != "?" else where
    scan.problems.append(f"{inner}: {e.strerror or e}")
