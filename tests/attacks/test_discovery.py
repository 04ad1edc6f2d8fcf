"""Discovery inside a container, performed for real (stockade_60_discovery.yaml): each procedure
runs in a fresh container of the attack image under the eBPF sensor, and its alert must name the
procedure's container and the acting process. Variants differ in tool, shell and how the container
is entered (``podman exec`` or the container's own ``sh -c`` as pid 1)."""

from __future__ import annotations

from typing import Any

import pytest

from attack_harness import Procedure

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

SECURITY = "Security Software Discovery in Container"
SYSTEM = "System Information Discovery in Container"
POLICY = "Password Policy Discovery in Container"
COMMAND = "Discovery Command Run in Container"
CAPTURE = "Packet Capture Tool Run in Container"
BURST = "Discovery Burst in Container"

PROCEDURES = [
    # -- T1518.001 security software ------------------------------------------------------------
    Procedure(
        "pgrep-agents",
        rule=SECURITY,
        script="pgrep -l 'wazuh-agent|packetbeat|filebeat|osqueryd' || true",
        proc="pgrep",
        shell="sh",
        how="run",
    ),
    Procedure(
        "grep-bracket-trick",
        rule=SECURITY,
        script="ps -ef | grep -E '[f]alco|[t]etragon|[c]bagentd'; true",
        proc="grep",
        shell="bash",
        how="exec",
    ),
    Procedure(
        "lsm-status-file",
        rule=SECURITY,
        script="cat /sys/kernel/security/lsm 2>/dev/null; true",
        proc="cat",
        shell="sh",
        how="exec",
    ),
    # -- T1082 system information ---------------------------------------------------------------
    Procedure(
        "uname-os-release",
        rule=SYSTEM,
        script="uname -a >> /tmp/si.txt; cat /etc/os-release >> /tmp/si.txt; cat /tmp/si.txt",
        proc="uname",
        shell="sh",
        how="exec",
    ),
    Procedure(
        "lsmod-vm-check",
        rule=SYSTEM,
        script="lsmod | grep -i 'virtio\\|vboxguest'; true",
        proc="lsmod",
        shell="bash",
        how="run",
    ),
    Procedure(
        "hostname-run", rule=SYSTEM, script="hostname", proc="hostname", how="run", techniques=("T1082",)
    ),
    Procedure("env-exec", rule=SYSTEM, script="env", proc="env", shell="bash", techniques=("T1082",)),
    Procedure("kmod-list", rule=SYSTEM, script="kmod list", proc="kmod", shell="sh", how="exec"),
    # -- T1201 password policy ------------------------------------------------------------------
    Procedure(
        "cat-common-password",
        rule=POLICY,
        script="cat /etc/pam.d/common-password",
        proc="cat",
        shell="bash",
        how="exec",
    ),
    Procedure(
        "python-login-defs",
        rule=POLICY,
        script="python3 -c \"print(open('/etc/login.defs').read()[:40])\"",
        proc="python3",
        shell="sh",
        how="run",
    ),
    Procedure(
        "redirect-login-defs",
        rule=POLICY,
        script="while read -r l; do :; done < /etc/login.defs",
        proc="bash",
        shell="bash",
        how="exec",
    ),
    # -- accounts, groups, network, connections, files ------------------------------------------
    Procedure(
        "groups-id",
        rule=COMMAND,
        script="groups; id",
        proc="id",
        shell="sh",
        how="run",
        techniques=("T1033", "T1069.001"),
    ),
    Procedure(
        "passwd-uid0",
        rule=COMMAND,
        script="grep 'x:0:' /etc/passwd",
        proc="grep",
        shell="sh",
        how="exec",
        techniques=("T1087.001",),
    ),
    Procedure(
        "ss-ip",
        rule=COMMAND,
        script="ss -ant; ip addr",
        proc="ss",
        shell="bash",
        how="exec",
        techniques=("T1016", "T1049"),
    ),
    Procedure(
        "suid-search",
        rule=COMMAND,
        script="find / -xdev -perm -4000 -type f 2>/dev/null | head -3",
        proc="find",
        shell="sh",
        how="run",
        techniques=("T1083",),
    ),
    # -- T1040 sniffing (the image has no sniffer: a copy and a link of true under their names) --
    Procedure(
        "tcpdump-copy",
        rule=CAPTURE,
        script="cp /bin/true /tmp/tcpdump; /tmp/tcpdump -c 5 -nnni eth0",
        proc="tcpdump",
        shell="sh",
        how="exec",
    ),
    Procedure(
        "tshark-link",
        rule=CAPTURE,
        script="ln -s /bin/true /tmp/tshark; /tmp/tshark -c 5 -i any",
        proc="tshark",
        shell="bash",
        how="run",
    ),
    # -- the burst ------------------------------------------------------------------------------
    Procedure("burst-exec", rule=BURST, script="id; uname -a; ip addr", proc="ip", shell="sh", how="exec"),
    Procedure(
        "burst-run", rule=BURST, script="whoami; hostname; ss -tln", proc="ss", shell="bash", how="run"
    ),
]


@pytest.mark.parametrize("p", PROCEDURES, ids=lambda p: p.id)
def test_procedure_raises_its_alert(p: Procedure, attacks: Any) -> None:
    attacks.check(p)
