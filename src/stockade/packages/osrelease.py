"""Which operating system a root filesystem holds, as the OS package catalogers and OSV name it.

Read from ``/etc/os-release`` (or ``/usr/lib/os-release``, its fallback by the spec), then the
older markers: ``/etc/alpine-release``, ``/etc/debian_version``, ``/etc/redhat-release``. The
OSV ecosystem (``Debian``, ``Ubuntu``, ``Alpine``, ``Rocky Linux``, ...) and its release suffix
(``12``, ``v3.19``, ``9``, ``Leap 15.5``) come from here, as do the purl namespace and ``distro`` qualifier.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from stockade.packages.cataloger import Tree, UnreadableFile

__all__ = ["OsRelease", "detect", "parse_os_release"]

#: os-release ID -> OSV ecosystem name (https://ossf.github.io/osv-schema/#affectedpackage-field)
OSV_ECOSYSTEMS = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "alpine": "Alpine",
    "rhel": "Red Hat",
    "rocky": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "opensuse": "openSUSE",
    "opensuse-leap": "openSUSE",
    "opensuse-tumbleweed": "openSUSE",
    "sles": "SUSE",
    "sled": "SUSE",
    "sle-micro": "SUSE",
    "mageia": "Mageia",
    "wolfi": "Wolfi",
    "chainguard": "Chainguard",
    "photon": "Photon OS",
    "azurelinux": "Azure Linux",
    "mariner": "Azure Linux",
}
#: os-release ID -> purl namespace, where they differ (purl-spec and Trivy/syft say ``redhat``)
PURL_NAMESPACES = {
    "rhel": "redhat",
    "opensuse-leap": "opensuse",
    "opensuse-tumbleweed": "opensuse",
    "sles": "suse",
    "sled": "suse",
}


@dataclass(frozen=True, slots=True)
class OsRelease:
    """An operating system release: os-release's ``ID``, ``VERSION_ID``, ``VERSION_CODENAME``."""

    id: str
    version_id: str | None = None
    codename: str | None = None
    name: str | None = None
    #: ID_LIKE, split (``rhel centos fedora`` for Rocky Linux)
    like: tuple[str, ...] = ()

    @property
    def ecosystem(self) -> str | None:
        """The OSV ecosystem of the release's packages, None for a system OSV does not cover."""
        return OSV_ECOSYSTEMS.get(self.id)

    @property
    def osv_release(self) -> str | None:
        """OSV's ``Ecosystem:release`` suffix: ``12`` for Debian, ``v3.19`` for Alpine, the major
        version for the Enterprise Linux rebuilds, VERSION_ID otherwise."""
        v = self.version_id
        if self.id == "opensuse-tumbleweed":
            return "Tumbleweed"
        if not v:
            return None
        if self.id == "alpine":
            return "v" + ".".join(v.split(".")[:2])
        if self.id in ("debian", "rhel", "rocky", "almalinux"):
            return v.split(".")[0]
        if self.id == "opensuse-leap":
            return f"Leap {v}"
        return v

    @property
    def purl_namespace(self) -> str:
        """The purl namespace of its packages (``debian``, ``alpine``, ``redhat``, ...)."""
        return PURL_NAMESPACES.get(self.id, self.id)

    @property
    def purl_distro(self) -> str | None:
        """The purl ``distro`` qualifier (``debian-12``, ``alpine-3.19.1``), None when unversioned."""
        return f"{self.id}-{self.version_id}" if self.version_id else None


_LINE = re.compile(r"^([A-Z0-9_]+)=(.*)$")


def parse_os_release(text: str) -> dict[str, str]:
    """The variables of an os-release file (shell-quoted values unquoted; bad lines skipped)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        m = _LINE.match(raw.strip())
        if not m:
            continue
        value = m.group(2)
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("'\"")]
        out[m.group(1)] = " ".join(words)
    return out


def _read(tree: Tree, inner: str) -> str | None:
    try:
        return tree.read_text(inner, limit=64 * 1024)
    except UnreadableFile:
        return None


def detect(tree: Tree) -> OsRelease | None:
    """The release of the system in `tree`, None when nothing says what it is."""
    for inner in ("/etc/os-release", "/usr/lib/os-release"):
        text = _read(tree, inner)
        if text is None:
            continue
        v = parse_os_release(text)
        if v.get("ID"):
            os_id = v["ID"].lower()
            version = v.get("VERSION_ID") or None
            return OsRelease(
                id=os_id,
                version_id=version,
                codename=v.get("VERSION_CODENAME") or None,
                name=v.get("NAME") or None,
                like=tuple(v.get("ID_LIKE", "").split()),
            )
    alpine = _read(tree, "/etc/alpine-release")
    if alpine is not None:
        return OsRelease(id="alpine", version_id=alpine.strip() or None, name="Alpine Linux")
    debian = _read(tree, "/etc/debian_version")
    if debian is not None:
        ver = debian.strip()
        return OsRelease(
            id="debian", version_id=ver.split(".")[0] if ver[:1].isdigit() else None, name="Debian"
        )
    redhat = _read(tree, "/etc/redhat-release")
    if redhat is not None:
        m = re.search(r"release (\d+(?:\.\d+)*)", redhat)
        return OsRelease(id="rhel", version_id=m.group(1) if m else None, name=redhat.strip())
    return None
