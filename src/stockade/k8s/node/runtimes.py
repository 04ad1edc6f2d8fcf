"""The container runtimes' configuration: containerd, CRI-O, Podman (containers.conf and
registries.conf) and Docker (daemon.json and dockerd's flags).

The CIS Kubernetes benchmark has no runtime section; Docker items carry the CIS Docker Benchmark
1.6.0 ids (``docker:2.2``), the others none. What is checked is what weakens isolation or trust:
AppArmor or seccomp turned off by default, dangerous default capabilities, registries reached
without TLS verification, and Docker's inter-container traffic, user namespaces,
no-new-privileges, live restore, userland proxy and experimental features. A runtime whose
configuration file is absent and which does not run is not-applicable; one running without a file
has its defaults, which pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from stockade.k8s.node.flags import Item, Rule, equals, is_set, not_set, verdict
from stockade.k8s.node.reader import Flags, NodeFS, yaml_lookup
from stockade.k8s.node.result import Evidence, NodeResult
from stockade.rules.yamldoc import YSeq

__all__ = ["DANGEROUS_CAPABILITIES", "check_runtimes"]

CONTAINERD = "/etc/containerd/config.toml"
CRIO = "/etc/crio/crio.conf"
CONTAINERS_CONF = "/etc/containers/containers.conf"
REGISTRIES_CONF = "/etc/containers/registries.conf"
DOCKER = "/etc/docker/daemon.json"

#: default capabilities no runtime should hand every container (NSA/CISA: drop what is not needed)
DANGEROUS_CAPABILITIES = frozenset(
    ("SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH", "NET_RAW", "BPF", "PERFMON",
     "SYS_RAWIO", "SYS_BOOT", "SYS_TIME", "MAC_ADMIN", "MAC_OVERRIDE")
)  # fmt: skip

_CD_APPARMOR = Item("containerd-apparmor", "", "containerd", "containerd applies AppArmor", "HIGH",
                    f"Remove disable_apparmor = true from {CONTAINERD}.")  # fmt: skip
_CD_TLS = Item("containerd-registry-tls", "", "containerd", "containerd verifies registry certificates", "HIGH",
               "Remove insecure_skip_verify / skip_verify = true from the registry configuration "
               "(config.toml, /etc/containerd/certs.d/*/hosts.toml).")  # fmt: skip
_CRIO_APPARMOR = Item("crio-apparmor", "", "cri-o", "CRI-O's default AppArmor profile confines", "HIGH",
                      "Set apparmor_profile to crio-default (not unconfined) in [crio.runtime].")  # fmt: skip
_CRIO_CAPS = Item("crio-default-capabilities", "", "cri-o", "CRI-O's default capabilities are narrow", "HIGH",
                  "Remove " + ", ".join(sorted(DANGEROUS_CAPABILITIES)) + " from default_capabilities.")  # fmt: skip
_PODMAN_CONFINED = Item("podman-confinement", "", "podman", "Podman's defaults keep seccomp and AppArmor",
                        "HIGH", f"Remove seccomp_profile / apparmor_profile = \"unconfined\" from {CONTAINERS_CONF}.")  # fmt: skip
_PODMAN_CAPS = Item("podman-default-capabilities", "", "podman", "Podman's default capabilities are narrow", "HIGH",
                    "Remove " + ", ".join(sorted(DANGEROUS_CAPABILITIES)) + " from default_capabilities.")  # fmt: skip
_INSECURE_REG = Item("containers-insecure-registries", "", "containers", "No registry is reached without TLS",
                     "HIGH", f"Remove insecure = true from the [[registry]] entries of {REGISTRIES_CONF}.")  # fmt: skip

_DOCKER = "Set in /etc/docker/daemon.json (then restart dockerd): "
#: (item, daemon.json key, dockerd flag, rule, default)
DOCKER_ITEMS: tuple[tuple[Item, str, str, Rule, str | None], ...] = (
    (Item("docker-icc", "docker:2.2", "docker", "No traffic between containers on the default bridge", "MEDIUM",
          _DOCKER + '"icc": false.'), "icc", "icc", equals("false"), "true"),
    (Item("docker-insecure-registries", "docker:2.5", "docker", "No insecure registries", "HIGH",
          _DOCKER + 'remove "insecure-registries".'), "insecure-registries", "insecure-registry", not_set(), None),
    (Item("docker-userns-remap", "docker:2.9", "docker", "User namespaces remap container root", "MEDIUM",
          _DOCKER + '"userns-remap": "default".'), "userns-remap", "userns-remap", is_set("warn"), None),
    (Item("docker-no-new-privileges", "docker:2.14", "docker", "Containers cannot gain new privileges", "MEDIUM",
          _DOCKER + '"no-new-privileges": true.'), "no-new-privileges", "no-new-privileges", equals("true"), "false"),
    (Item("docker-live-restore", "docker:2.15", "docker", "Live restore is on", "LOW",
          _DOCKER + '"live-restore": true.'), "live-restore", "live-restore", equals("true", "warn"), "false"),
    (Item("docker-userland-proxy", "docker:2.16", "docker", "The userland proxy is off", "LOW",
          _DOCKER + '"userland-proxy": false.'), "userland-proxy", "userland-proxy", equals("false", "warn"), "true"),
    (Item("docker-experimental", "docker:2.18", "docker", "Experimental features are off", "LOW",
          _DOCKER + '"experimental": false.'), "experimental", "experimental", equals("false"), "false"),
)  # fmt: skip
_DOCKER_TLS = Item("docker-tls", "docker:2.7", "docker", "A TCP socket of dockerd requires TLS client certificates",
                   "CRITICAL", _DOCKER + '"tlsverify": true with tlscacert, tlscert, tlskey, or no tcp:// host.')  # fmt: skip


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, (*path, str(k)))
    else:
        yield path, node


def _containerd(fs: NodeFS) -> list[NodeResult]:
    running = any(True for _ in fs.processes("containerd"))
    if not fs.exists(CONTAINERD) and not running:
        return [i.result("not-applicable", "no containerd on this node") for i in (_CD_APPARMOR, _CD_TLS)]
    doc = fs.toml(CONTAINERD)
    conf = doc[0] if doc else {}
    off = [(p, v) for p, v in _walk(conf) if p[-1:] == ("disable_apparmor",) and v is True]
    out = []
    if off:
        ev = [fs.toml_value(CONTAINERD, p) for p, _ in off]
        out.append(_CD_APPARMOR.result("fail", "disable_apparmor = true", *(e[1] for e in ev if e)))
    else:
        out.append(_CD_APPARMOR.result("pass", "AppArmor is not disabled"))
    skip = [p for p, v in _walk(conf) if p[-1:] == ("insecure_skip_verify",) and v is True]
    bad = [e[1] for p in skip if (e := fs.toml_value(CONTAINERD, p))]
    for hosts in fs.glob("/etc/containerd/certs.d/*/hosts.toml"):
        hd = fs.toml(hosts)
        for p, v in _walk(hd[0] if hd else {}):
            if p[-1:] == ("skip_verify",) and v is True and (e := fs.toml_value(hosts, p)):
                bad.append(e[1])
    if bad:
        out.append(_CD_TLS.result("fail", "TLS verification is skipped for a registry", *bad))
    else:
        out.append(_CD_TLS.result("pass", "every registry's certificate is verified"))
    return out


def _caps(item: Item, fs: NodeFS, path: str, keys: tuple[str, ...]) -> NodeResult:
    got = fs.toml_value(path, keys)
    if got is None:
        return item.result("pass", "default_capabilities not set (the runtime's default list)")
    caps = {str(c).upper().removeprefix("CAP_") for c in got[0]} if isinstance(got[0], list) else set()
    bad = sorted(caps & DANGEROUS_CAPABILITIES)
    if bad:
        return item.result("fail", f"default capabilities include {', '.join(bad)}", got[1])
    return item.result("pass", "no dangerous default capability", got[1])


def _unconfined(item: Item, fs: NodeFS, path: str, keyss: tuple[tuple[str, ...], ...]) -> NodeResult:
    ev = [
        got[1] for keys in keyss if (got := fs.toml_value(path, keys)) is not None and got[0] == "unconfined"
    ]
    if ev:
        return item.result("fail", "a default profile is unconfined", *ev)
    return item.result("pass", "default profiles confine")


def _crio_and_podman(fs: NodeFS) -> list[NodeResult]:
    out = []
    crio_files = [p for p in [CRIO, *fs.glob("/etc/crio/crio.conf.d/*.conf")] if fs.exists(p)]
    if not crio_files and not any(True for _ in fs.processes("crio")):
        out += [i.result("not-applicable", "no CRI-O on this node") for i in (_CRIO_APPARMOR, _CRIO_CAPS)]
    else:
        last = crio_files[-1] if crio_files else CRIO  # drop-ins override crio.conf
        out.append(_unconfined(_CRIO_APPARMOR, fs, last, (("crio", "runtime", "apparmor_profile"),)))
        out.append(_caps(_CRIO_CAPS, fs, last, ("crio", "runtime", "default_capabilities")))
    if not fs.exists(CONTAINERS_CONF):
        out += [i.result("not-applicable", f"no {CONTAINERS_CONF}") for i in (_PODMAN_CONFINED, _PODMAN_CAPS)]
    else:
        keys = (("containers", "seccomp_profile"), ("containers", "apparmor_profile"))
        out.append(_unconfined(_PODMAN_CONFINED, fs, CONTAINERS_CONF, keys))
        out.append(_caps(_PODMAN_CAPS, fs, CONTAINERS_CONF, ("containers", "default_capabilities")))
    reg = fs.toml(REGISTRIES_CONF)
    if reg is None:
        out.append(_INSECURE_REG.result("not-applicable", f"no {REGISTRIES_CONF}"))
    else:
        entries = reg[0].get("registry", [])
        bad = [e for e in entries if isinstance(e, dict) and e.get("insecure") is True]
        if bad:
            names = [str(e.get("location") or e.get("prefix") or "?") for e in bad]
            line = [
                n for n, ln in enumerate(reg[1].splitlines(), 1) if re.match(r"\s*insecure\s*=\s*true", ln)
            ]
            ev = [
                Evidence(REGISTRIES_CONF, ln, f"insecure = true ({n})")
                for ln, n in zip(line, names, strict=False)
            ]
            out.append(_INSECURE_REG.result("fail", f"insecure registries: {', '.join(names)}", *ev))
        else:
            out.append(_INSECURE_REG.result("pass", "every registry is reached over verified TLS"))
    return out


def _docker(fs: NodeFS) -> list[NodeResult]:
    flags: Flags | None = fs.process_flags("dockerd")
    if not fs.exists(DOCKER) and flags is None:
        return [i.result("not-applicable", "no Docker on this node") for i, *_ in DOCKER_ITEMS] + [
            _DOCKER_TLS.result("not-applicable", "no Docker on this node")
        ]
    doc = fs.yaml(DOCKER)

    def value(key: str, flag: str) -> tuple[str | None, Evidence | None]:
        if flags is not None and (got := flags.get(flag)) is not None:
            return got
        v, line = yaml_lookup(doc, (key,)) if doc is not None else (None, None)
        if v is None or (isinstance(v, YSeq) and not v):
            return None, None
        text = ",".join(map(str, v)) if isinstance(v, YSeq) else str(v)
        return text, Evidence(DOCKER, line, text)

    out = [
        verdict(item, rule, key, *value(key, flag), default)
        for item, key, flag, rule, default in DOCKER_ITEMS
    ]
    hosts, hosts_at = value("hosts", "host")
    tcp = [h for h in (hosts or "").split(",") if h.startswith("tcp://")]
    verify, verify_at = value("tlsverify", "tlsverify")
    if not tcp:
        out.append(_DOCKER_TLS.result("pass", "no TCP socket", *([hosts_at] if hosts_at else [])))
    elif verify is not None and verify.lower() == "true" and verify_at is not None:
        out.append(
            _DOCKER_TLS.result("pass", "TCP socket with tlsverify", *[e for e in (hosts_at, verify_at) if e])
        )
    else:
        out.append(
            _DOCKER_TLS.result(
                "fail", f"{','.join(tcp)} without tlsverify", *([hosts_at] if hosts_at else [])
            )
        )
    return out


def check_runtimes(fs: NodeFS) -> list[NodeResult]:
    """Every container runtime item."""
    return _containerd(fs) + _crio_and_podman(fs) + _docker(fs)
