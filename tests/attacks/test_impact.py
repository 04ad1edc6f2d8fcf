"""Impact and impair-defenses procedures performed for real (stockade_50_impact.yaml): each in a
fresh podman container of the attack image, with the eBPF sensor and the whole pack
(tests/attack_harness.py).

The image has no systemd, sudo, auditctl, journalctl or SELinux tools: those procedures fail, and
their only trace is the command line of the shell that carries them (the alert's process is the
shell). Nothing here can harm the node: the container has no capabilities to write /proc/sys or
/proc/sysrq-trigger (read-only in a podman container), the SysRq letter is `h` (help) and the swap
device does not exist. The mining-pool connection is not performed here (``--network none``: a
connect to a pool address fails at once and a failed connect is not an alert):
tests/sensor/test_rule_families.py performs it in a namespace with an address.
"""

from __future__ import annotations

import pytest

from attack_harness import Attacks, Procedure

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

SYSRQ = "System Shutdown or SysRq Triggered in Container"
SECURITY_STOP = "Security Service Stopped in Container"
CONTROL = "Security Control Disabled in Container"
FIREWALL = "Firewall Disabled in Container"
LOG_CONFIG = "Logging Configuration Modified in Container"
LOGS = "Log File Tampering in Container"
STOP = "Service Stopped in Container"
CACHE = "Page Cache Dropped or Swap Disabled in Container"
MINER = "Crypto Miner Run in Container"
BURNER = "CPU Burner Run in Container"

LOG = "Dec  7 10:00:01 node sshd[812]: Accepted password for root from 203.0.113.7 port 50122\n"

PROCEDURES = [
    # -- shutdown / SysRq (T1529, T1489) -----------------------------------------------------
    Procedure("sysrq-echo", rule=SYSRQ, script='echo "h" > /proc/sysrq-trigger', proc="bash", shell="bash"),
    Procedure(
        "sysrq-tee-pid1", rule=SYSRQ, script="printf h | tee /proc/sysrq-trigger", proc="sh", how="run"
    ),
    # -- security services stopped (T1562.001) ----------------------------------------------
    Procedure(
        "falcon-systemctl",
        rule=SECURITY_STOP,
        script="systemctl stop falcon-sensor.service\nsystemctl disable falcon-sensor.service",
        proc="sh",
    ),
    Procedure(
        "auditd-pkill-pid1",
        rule=SECURITY_STOP,
        script="pkill -9 auditd",
        proc="pkill",
        shell="bash",
        how="run",
    ),
    Procedure("rsyslog-killall", rule=SECURITY_STOP, script="killall -q rsyslogd", proc="killall"),
    # -- security controls disabled (T1562.001, T1562.012) ----------------------------------
    Procedure("auditctl-delete", rule=CONTROL, script="auditctl -D", proc="sh"),
    Procedure("setenforce-pid1", rule=CONTROL, script="setenforce 0", proc="sh", how="run"),
    Procedure(
        "mdatp-rtp-off",
        rule=CONTROL,
        script="mdatp config real-time-protection --value disabled",
        proc="bash",
        shell="bash",
    ),
    # -- firewall (T1562.004) ----------------------------------------------------------------
    Procedure("iptables-flush", rule=FIREWALL, script="iptables -P INPUT ACCEPT; iptables -F", proc="sh"),
    Procedure(
        "nft-ufw-pid1",
        rule=FIREWALL,
        script="nft flush ruleset\nufw disable",
        proc="bash",
        shell="bash",
        how="run",
    ),
    # -- logging configuration (T1562.006) ---------------------------------------------------
    Procedure(
        "rsyslog-sed",
        rule=LOG_CONFIG,
        script="sed -i '$ a #impact_test' /etc/rsyslog.conf",
        proc="sed",
        files={"/etc/rsyslog.conf": "*.* /var/log/syslog\n"},
    ),
    Procedure(
        "libaudit-append-pid1",
        rule=LOG_CONFIG,
        script="echo '#impact_test' >> /etc/libaudit.conf",
        proc="bash",
        shell="bash",
        how="run",
    ),
    # -- clearing logs (T1070.002) -----------------------------------------------------------
    Procedure(
        "rm-rf-messages",
        rule=LOGS,
        script="rm -rf /var/log/messages",
        proc="rm",
        files={"/var/log/messages": LOG},
    ),
    Procedure(
        "echo0-secure-pid1",
        rule=LOGS,
        script="echo 0> /var/log/secure",
        proc="bash",
        shell="bash",
        how="run",
        files={"/var/log/secure": LOG},
    ),
    Procedure(
        "truncate-syslog",
        rule=LOGS,
        script="truncate -s 0 /var/log/syslog",
        proc="truncate",
        files={"/var/log/syslog": LOG},
    ),
    Procedure(
        "sed-drop-lines",
        rule=LOGS,
        script="sed -i '/203.0.113.7/d' /var/log/auth.log",
        proc="sed",
        shell="bash",
        files={"/var/log/auth.log": LOG},
    ),
    Procedure("journal-vacuum", rule=LOGS, script="journalctl --vacuum-time=1s", proc="sh"),
    # -- service stop (T1489) ----------------------------------------------------------------
    Procedure("killall-term", rule=STOP, script="killall -SIGTERM crond", proc="killall"),
    Procedure(
        "kill-pgrep-pid1",
        rule=STOP,
        script="kill -SIGTERM $(pgrep -x crond)",
        proc="bash",
        shell="bash",
        how="run",
    ),
    Procedure("systemctl-stop-cron", rule=STOP, script="systemctl stop cron", proc="sh"),
    Procedure("pgrep-xargs-kill", rule=STOP, script="pgrep -x crond | xargs -r kill -9", proc="sh"),
    # -- page cache and swap (T1562.001) -----------------------------------------------------
    Procedure(
        "drop-caches", rule=CACHE, script="free && echo 3 > /proc/sys/vm/drop_caches && free", proc="sh"
    ),
    Procedure(
        "swapoff-pid1",
        rule=CACHE,
        script="swapoff /tmp/no-such-swapfile",
        proc="swapoff",
        shell="bash",
        how="run",
    ),
    # -- resource hijacking (T1496) ----------------------------------------------------------
    Procedure(
        "renamed-miner-args",
        rule=MINER,
        script="cp /bin/true /tmp/kworker && /tmp/kworker --donate-level 1 -o stratum+tcp://192.0.2.10:3333",
        proc="kworker",
    ),
    Procedure(
        "xmrig-rx0-pid1",
        rule=MINER,
        script="cp /bin/true /tmp/xmrig && /tmp/xmrig -a rx/0 -o 192.0.2.10:443 -u 4A",
        proc="xmrig",
        shell="bash",
        how="run",
    ),
    Procedure("yes-devnull", rule=BURNER, script="timeout 3 yes > /dev/null", proc="yes"),
    Procedure(
        "dd-zero-null-pid1",
        rule=BURNER,
        script="timeout 3 dd if=/dev/zero of=/dev/null bs=1M",
        proc="dd",
        shell="bash",
        how="run",
    ),
    Procedure("busy-loop", rule=BURNER, script="timeout 3 sh -c 'while :; do :; done'", proc="sh"),
]


@pytest.mark.parametrize("p", PROCEDURES, ids=lambda p: p.id)
def test_procedure_raises_its_alert(p: Procedure, attacks: Attacks) -> None:
    attacks.check(p)
