"""Golden cases of the discovery family (src/stockade/rules/builtin/stockade_60_discovery.yaml).

Processes are placed as the sensor's process table places them: `proc.pcmdline` is the parent's
command line, so a command run from `sh -c '...'` (kubectl/podman exec, a web shell, a one-off
container command) differs from one run by an entrypoint script or a shell loop.
"""

from __future__ import annotations

from typing import Any

from pack_events import (
    OTHER_CID,
    PTS_TTY,
    UNDER_RUNTIME,
    PackCase,
    Variant,
    exec_,
    in_container,
    on_host,
    open_,
    v,
)

HOST = on_host()
#: the parent shell of `podman exec c sh -c '<script>'` (or of the container's own `sh -c`)
EXEC_SH = ["sh", "runc", "conmon", "systemd"]
#: `podman run img sh -c '<script>'`: the shell is the container's pid 1, below conmon
RUN_SH = ["sh", "conmon", "systemd"]
#: an image's entrypoint script run by name (comm is the script's name)
ENTRYPOINT = ["docker-entrypoi", "containerd-shim", "systemd"]


def under(shell_cmdline: str, ancestors: list[str] | None = None) -> dict[str, Any]:
    """Keyword arguments placing a process below the shell running `shell_cmdline`."""
    anc = ancestors or EXEC_SH
    return {"ancestors": anc, "fields": {"proc.pcmdline": shell_cmdline}}


def run(cmdline: str, shell_cmdline: str, ancestors: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    """An exec of `cmdline` by the shell running `shell_cmdline`."""
    u = under(shell_cmdline, ancestors)
    return exec_(cmdline, {**u["fields"], **kw.pop("fields", {})}, ancestors=u["ancestors"], **kw)


def sh_c(script: str) -> str:
    return f"sh -c {script}"


def bash_c(script: str) -> str:
    return f"bash -c {script}"


def exec_direct(cmdline: str, **kw: Any) -> dict[str, Any]:
    """`podman exec c <cmdline>`, or the last command of `sh -c`, which the shell execs in place."""
    return exec_(cmdline, {"proc.pcmdline": "conmon --api-version 1"}, ancestors=["conmon", "systemd"], **kw)


def in_loop(cmdline: str) -> dict[str, Any]:
    """Run by a shell loop (the container's own periodic work, pid 1's `sh -c 'while ...'`)."""
    return run(
        cmdline,
        sh_c('while true; do echo "$(date) $(hostname) ok" >> /var/log/app.log; sleep 1; done'),
        RUN_SH,
    )


def by_entrypoint(cmdline: str) -> dict[str, Any]:
    """Run by the image's entrypoint script."""
    return exec_(cmdline, {"proc.pcmdline": "docker-entrypoi nginx -g daemon off;"}, ancestors=ENTRYPOINT)


def by_script(cmdline: str) -> dict[str, Any]:
    """Run by `sh /entrypoint.sh` (a script file, not a command string)."""
    return run(cmdline, "sh /entrypoint.sh", RUN_SH)


PS_EGREP = "ps aux | egrep 'falcond|nessusd|cbagentd|osqueryd'"
PGREP = "pgrep -l 'wazuh-agent|packetbeat|filebeat'"
HEALTH = "wget -qO- localhost:8080"
UNAME_SCRIPT = "uname -a >> /tmp/sys.txt; cat /etc/os-release >> /tmp/sys.txt; uptime"
VM_SCRIPT = "sudo lsmod | grep -i 'vboxsf\\|vboxguest'"


def _burst(cmds: list[str], times: list[float], where: list[dict[str, Any]] | None = None) -> Variant:
    places = where or [in_container()] * len(cmds)
    evs = tuple(
        run(c, sh_c("; ".join(cmds)), at=t, where=w) for c, t, w in zip(cmds, times, places, strict=True)
    )
    return Variant(f"{len(cmds)} discovery commands at {times}", evs)


CASES: list[PackCase] = [
    PackCase(
        "Security Software Discovery in Container",
        fires=[
            v("ps | egrep (the egrep)", run("egrep falcond|nessusd|cbagentd|osqueryd", sh_c(PS_EGREP))),
            v("pgrep -l for agents", run(PGREP.replace("'", ""), sh_c(PGREP))),
            v("pidof as pid 1's child", run("pidof falco", sh_c("pidof falco || echo none"), RUN_SH)),
            v(
                "grep -E on ps output",
                run("grep -Ei crowdstrike|sentinelone", bash_c("ps -ef | grep -Ei ...")),
            ),
            v("systemctl status auditd", exec_direct("systemctl status auditd")),
            v("ls /opt/CrowdStrike", exec_direct("ls -la /opt/CrowdStrike")),
            v("find an agent's directory", run("find / -maxdepth 3 -iname *osquery*", sh_c("find ..."))),
            v("awk over the process list", run("awk /[t]etragon|[k]ubearmor/", sh_c("ps -e | awk ..."))),
            v("dpkg-query for a product", run("dpkg-query -W clamav-daemon", sh_c("dpkg-query ..."))),
            v("getenforce", exec_direct("getenforce")),
            v("aa-status", run("aa-status", bash_c("aa-status; sestatus"))),
            v("cat the LSM list", run("cat /sys/kernel/security/lsm", sh_c("cat /sys/kernel/security/lsm"))),
            v(
                "python walking /proc for agents",
                exec_direct(
                    "python3 -c import os;print([p for p in os.listdir('/proc') if p.isdigit() "
                    "and 'falco' in open('/proc/'+p+'/comm').read()])"
                ),
            ),
            v(
                "with a terminal",
                exec_("pgrep -a auditbeat", tty=PTS_TTY, ancestors=["bash", *UNDER_RUNTIME]),
            ),
        ],
        near_misses=[
            v("a health check's pgrep", exec_direct("pgrep -x nginx")),
            v("ps | grep for the app", run("grep -q [n]ginx", sh_c("ps aux | grep -q [n]ginx"))),
            v("on the host", run("egrep falcond|osqueryd", sh_c(PS_EGREP), where=HOST)),
            v("cat of an application file", exec_direct("cat /etc/nginx/nginx.conf")),
            v("a shell running the product", exec_("sh -c falco --modern-bpf", ancestors=["conmon"])),
            v("an unrelated grep", run("grep -r error /var/log/nginx", sh_c("grep -r error /var/log/nginx"))),
        ],
    ),
    PackCase(
        "System Information Discovery in Container",
        fires=[
            v("uname -a from sh -c (exec)", run("uname -a", sh_c(UNAME_SCRIPT))),
            v("uname -a as pid 1's child (run)", run("uname -a", sh_c(UNAME_SCRIPT), RUN_SH)),
            v("uname -snrvm", run("uname -snrvm", bash_c("uname -snrvm"))),
            v("cat /etc/os-release", run("cat /etc/os-release", sh_c(UNAME_SCRIPT))),
            v("head /proc/version", run("head -1 /proc/version", bash_c("head -1 /proc/version"))),
            v("hostname exec'd in place by sh -c", exec_direct("hostname")),
            v("hostname -I from sh -c", run("hostname -I", sh_c("hostname -I; echo"))),
            v("env with no arguments", exec_direct("env")),
            v("printenv LANG", run("printenv LANG", sh_c("env | grep LANG; printenv LANG"))),
            v("lsmod anywhere", by_script("lsmod")),
            v("kmod list", run("kmod list", sh_c("lsmod; kmod list"))),
            v("dmidecode", exec_direct("dmidecode -s system-product-name")),
            v("lspci", run("lspci", bash_c("lspci | grep -i vmware"))),
            v("systemd-detect-virt", exec_direct("systemd-detect-virt")),
            v("lscpu from sh -c", run("lscpu", sh_c("lscpu | grep -i hypervisor"))),
            v("grep for VM modules", run("grep -i vboxsf\\|vboxguest", bash_c(VM_SCRIPT))),
            v("grep vmw /proc/modules", run("grep vmw /proc/modules", sh_c("grep vmw /proc/modules"))),
            v(
                "cat a DMI file (open)",
                open_(
                    "/sys/devices/virtual/dmi/id/product_name",
                    "cat /sys/class/dmi/id/product_name",
                    ancestors=EXEC_SH,
                ),
            ),
            v(
                "a shell reads /proc/scsi/scsi (< redirection)",
                open_("/proc/scsi/scsi", "bash -c read l < /proc/scsi/scsi"),
            ),
            v(
                "the bash -c text naming lsmod (sudo missing)",
                exec_(f"bash -c {VM_SCRIPT}", ancestors=["runc", "conmon"]),
            ),
            v(
                "the pid 1 sh -c text naming DMI files",
                exec_(
                    "sh -c cat /sys/class/dmi/id/bios_version | grep -i amazon", ancestors=["conmon"], vpid=1
                ),
            ),
        ],
        near_misses=[
            v("uname -m in a start-up script", by_script("uname -m")),
            v("uname -m from sh -c", run("uname -m", sh_c("ARCH=$(uname -m); exec app"))),
            v("uname -r exec'd", exec_direct("uname -r")),
            v("hostname in the entrypoint", by_entrypoint("hostname -f")),
            v("hostname in a start-up script", by_script("hostname -i")),
            v("hostname in a log loop", in_loop("hostname")),
            v("env as a launcher", run("env FOO=1 app --serve", sh_c("env FOO=1 app --serve"))),
            v("printenv in a loop", in_loop("printenv HOME")),
            v("cat /etc/os-release by a script", by_script("cat /etc/os-release")),
            v(
                "python reads a DMI file (cloud SDK)",
                open_("/sys/class/dmi/id/product_name", "python3 app.py"),
            ),
            v(
                "kube-proxy reads /proc/modules",
                open_("/proc/modules", "kube-proxy --config=/var/lib/kube-proxy"),
            ),
            v("on the host", exec_("lsmod", where=HOST)),
            v("a health check", exec_direct(f"sh -c {HEALTH}")),
        ],
    ),
    PackCase(
        "Password Policy Discovery in Container",
        fires=[
            v("cat common-password", open_("/etc/pam.d/common-password", "cat /etc/pam.d/common-password")),
            v("grep login.defs", open_("/etc/login.defs", "grep -E ^PASS_ /etc/login.defs")),
            v(
                "a shell's < redirection",
                open_("/etc/security/pwquality.conf", "bash -c while read l; do :; done < x"),
            ),
            v(
                "python reads system-auth",
                open_("/etc/pam.d/system-auth", "python3 -c print(open('/etc/pam.d/system-auth').read())"),
            ),
        ],
        near_misses=[
            v("useradd reads login.defs", open_("/etc/login.defs", "useradd -m app")),
            v("su reads the PAM stack", open_("/etc/pam.d/common-password", "su - app")),
            v("on the host", open_("/etc/login.defs", "cat /etc/login.defs", where=HOST)),
            v("another PAM file", open_("/etc/pam.d/common-session", "cat /etc/pam.d/common-session")),
        ],
    ),
    PackCase(
        "Discovery Command Run in Container",
        fires=[
            v("id from sh -c", run("id", sh_c("groups; id"))),
            v("groups as pid 1's child", run("groups", sh_c("groups; id"), RUN_SH)),
            v("whoami exec'd", exec_direct("whoami")),
            v("ps aux", run("ps aux", sh_c("ps >> /tmp/p.txt; ps aux >> /tmp/p.txt"))),
            v("cat /etc/passwd", run("cat /etc/passwd", sh_c("cat /etc/passwd > /tmp/u.txt"))),
            v("grep uid 0 in passwd", run("grep x:0: /etc/passwd", sh_c("grep 'x:0:' /etc/passwd"))),
            v("getent passwd", exec_direct("getent passwd")),
            v("lastlog anywhere", by_script("lastlog")),
            v("lsof -u", run("lsof -u root", sh_c("lsof -u $(id -u -n)"))),
            v("ip addr", run("ip addr", sh_c("ip addr; netstat -ant"))),
            v("netstat -ant", run("netstat -ant", sh_c("ip addr; netstat -ant"))),
            v("ss -antp", run("ss -antp", bash_c("ss -antp || ss -ant"))),
            v("cat /proc/net/tcp", run("cat /proc/net/tcp", sh_c("cat /proc/net/tcp"))),
            v("who -a", run("who -a", sh_c("netstat; who -a"))),
            v("systemctl --type=service", exec_direct("systemctl --type=service")),
            v("service --status-all", by_script("service --status-all")),
            v("ls /etc/init.d", run("ls -l /etc/init.d", sh_c("ls -l /etc/init.d"))),
            v("SUID search", by_script("find / -perm -4000 -type f")),
            v("SUID search, symbolic mode", exec_direct("find / -perm -u=s")),
            v("bookmark search", run("find / -path *.mozilla/firefox/*/places.sqlite", sh_c("find ..."))),
            v("ls -laR /", run("ls -laR /", sh_c("ls -laR / > /tmp/l.txt"))),
            v("smbstatus", exec_direct("smbstatus --shares")),
            v("locale", exec_direct("locale")),
            v("localectl", by_script("localectl status")),
            v("with a terminal", exec_("ip route", tty=PTS_TTY, ancestors=["bash", *UNDER_RUNTIME])),
        ],
        near_misses=[
            v("id -u in a start-up script", by_script("id -u")),
            v("id in the entrypoint", by_entrypoint("id -un")),
            v("ps in a shell loop", in_loop("ps")),
            v("a health check", exec_direct(f"sh -c {HEALTH}")),
            v("the health check's wget", run(HEALTH, sh_c(HEALTH))),
            v(
                "log rotation",
                run(
                    "gzip -9 /var/log/app.log.1",
                    sh_c("mv /var/log/app.log /var/log/app.log.1; gzip -9 /var/log/app.log.1"),
                ),
            ),
            v(
                "find in a directory",
                run("find /var/log -name *.gz -mtime +7", sh_c("find /var/log ... -delete")),
            ),
            v(
                "on the host",
                exec_("id", where=HOST, ancestors=["bash", "sshd"], fields={"proc.pcmdline": "bash"}),
            ),
            v("an application's ps", exec_("ps -o rss= -p 1", ancestors=["java", "conmon"])),
        ],
    ),
    PackCase(
        "Packet Capture Tool Run in Container",
        fires=[
            v("tcpdump", run("tcpdump -c 5 -nnni eth0", bash_c("tcpdump -c 5 -nnni eth0"))),
            v("tshark", exec_direct("tshark -c 5 -i any")),
            v("dumpcap from a script", by_script("dumpcap -i eth0 -w /tmp/c.pcap")),
            v("ngrep", exec_direct("ngrep -q -d any password")),
        ],
        near_misses=[
            v("tcpdump --version", exec_direct("tcpdump --version")),
            v("on the host", exec_("tcpdump -i eth0", where=HOST)),
            v("tshark -h", exec_direct("tshark -h")),
        ],
    ),
    PackCase(
        "Discovery Burst in Container",
        fires=[
            _burst(["id", "uname -a", "cat /etc/os-release", "ip addr"], [0, 5, 10, 15]),
            _burst(["whoami", "hostname", "netstat -tlnp"], [100, 101, 159]),
            _burst(["ip addr", "uname -a", "id"], [0, 1, 2]),  # in any order
            _burst(["getent passwd", "lsmod", "cat /proc/net/tcp"], [0, 1, 2]),
            v(
                "podman exec one command at a time",
                exec_direct("id", at=0),
                exec_direct("hostname", at=3),
                exec_direct("ss -tlnp", at=6),
            ),
        ],
        near_misses=[
            _burst(["id", "uname -a", "cat /etc/os-release", "ip addr"], [0, 40, 80, 120]),
            _burst(["id", "uname -a", "cat /etc/os-release", "ip addr"], [0, 1, 2, 3], [HOST] * 4),
            _burst(["id", "uname -a", "cat /etc/os-release"], [0, 1, 2]),
            _burst(
                ["id", "uname -a", "cat /etc/os-release", "ip addr"],
                [0, 1, 2, 3],
                [in_container(), in_container(cid=OTHER_CID), in_container(), in_container(cid=OTHER_CID)],
            ),
            v(
                "harmless commands in between",
                run("id", sh_c("x"), at=0),
                run("ls /", sh_c("x"), at=1),
                run("cat /etc/hosts", sh_c("x"), at=2),
                run("uname -a", sh_c("x"), at=3),
            ),
            _burst(["uname -m", "uname -m", "uname -m", "uname -m"], [0, 1, 2, 3]),
            v(
                "an entrypoint script working out its address",
                by_script("id -u"),
                by_script("hostname -i"),
                by_script("ip -4 addr show eth0"),
            ),
        ],
    ),
]
