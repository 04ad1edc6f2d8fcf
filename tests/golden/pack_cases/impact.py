"""Golden cases of the impact and impair-defenses family (stockade_50_impact.yaml): service stop
(T1489), shutdown and SysRq (T1529), security services, controls, firewall and logging
configuration (T1562.001/.004/.006/.012), clearing logs (T1070.002), resource hijacking (T1496).

Procedures arrive as `sh -c '<text>'` (podman exec: the shell's parent is the runtime; podman run:
the shell is pid 1), often naming a tool the container lacks: the shell's own exec is then the only
trace, so most rules have a variant on the shell's command line as well as on the tool's exec."""

from __future__ import annotations

from typing import Any

from pack_events import (
    APPEND,
    UNDER_RUNTIME,
    WRITE,
    PackCase,
    call,
    connect_,
    exec_,
    on_host,
    open_,
    v,
)

HOST = on_host()
#: the ancestors of a container's own command (podman run img sh -c ...): conmon
UNDER_CONMON = ["conmon", "systemd"]


def sh(text: str, shell: str = "sh", **kw: Any) -> dict[str, Any]:
    """`podman exec c sh -c '<text>'`: the shell's exec, its parent the runtime."""
    kw.setdefault("ancestors", UNDER_RUNTIME)
    return exec_(f"{shell} -c {text}", **kw)


def pid1(text: str, shell: str = "sh", **kw: Any) -> dict[str, Any]:
    """`podman run img sh -c '<text>'`: the shell is the container's pid 1."""
    return exec_(f"{shell} -c {text}", ancestors=UNDER_CONMON, vpid=1, **kw)


def out_to(path: str, kind: str = "file", stdin: str | None = None) -> dict[str, Any]:
    """proc.stdout.* (and stdin) of a process whose stdout is `path`."""
    d: dict[str, Any] = {"proc.stdout.name": path, "proc.stdout.type": kind}
    if stdin is not None:
        d["proc.stdin.name"] = stdin
        d["proc.stdin.type"] = "file" if stdin.startswith("/") else "pipe"
    return d


PIPE = "pipe:[412345]"


def unlink(path: str, cmdline: str, **kw: Any) -> dict[str, Any]:
    return call("unlinkat", cmdline, {"evt.arg.name": path, "fs.path.name": path}, **kw)


def rename(old: str, new: str, cmdline: str, **kw: Any) -> dict[str, Any]:
    return call(
        "renameat2",
        cmdline,
        {"evt.arg.oldpath": old, "evt.arg.newpath": new, "fs.path.source": old, "fs.path.target": new},
        **kw,
    )


def failed_open(path: str, cmdline: str, flags: str = WRITE, **kw: Any) -> dict[str, Any]:
    """An open refused by a read-only /proc (EROFS): the attempt is the signal."""
    ev = open_(path, cmdline, flags, **kw)
    ev.update({"evt.rawres": -30, "evt.res": "EROFS", "evt.failed": True})
    del ev["fd.num"]
    return ev


CASES: list[PackCase] = [
    PackCase(
        "System Shutdown or SysRq Triggered in Container",
        fires=[
            v("echo e > sysrq-trigger (bash -c)", sh('echo "e" > /proc/sysrq-trigger', shell="bash")),
            v("echo b> sysrq-trigger as pid 1", pid1("echo b> /proc/sysrq-trigger")),
            v(
                "the shell's open, refused",
                failed_open("/proc/sysrq-trigger", "sh -c echo o > /proc/sysrq-trigger"),
            ),
            v("the shell's open, allowed (privileged)", open_("/proc/sysrq-trigger", "bash", WRITE)),
            v("printf | tee", exec_("tee /proc/sysrq-trigger")),
            v("python writes it", exec_("python3 -c open('/proc/sysrq-trigger','w').write('i')")),
            v("enable sysrq", sh("echo 1 > /proc/sys/kernel/sysrq")),
            v(
                "multi-line, enable then reboot",
                pid1("echo 1> /proc/sys/kernel/sysrq \necho b> /proc/sysrq-trigger \nsleep 60"),
            ),
            v("sysctl kernel.sysrq", exec_("sysctl -w kernel.sysrq=1")),
            v("reboot", exec_("reboot -f")),
            v("systemctl poweroff on a command line", sh("sudo systemctl poweroff")),
        ],
        near_misses=[
            v("reading sysrq setting", open_("/proc/sys/kernel/sysrq", "cat /proc/sys/kernel/sysrq")),
            v("on the host", sh('echo "e" > /proc/sysrq-trigger', where=HOST)),
            v("a word in a log line", sh("echo rebooting soon >> /var/log/app.log")),
        ],
    ),
    PackCase(
        "Security Service Stopped in Container",
        fires=[
            v("systemctl stop falcon-sensor", exec_("systemctl stop falcon-sensor.service")),
            v(
                "systemctl disable on sh -c (no systemd)",
                sh("systemctl stop rsyslog ; systemctl disable rsyslog"),
            ),
            v("sudo systemctl stop journald", sh("sudo systemctl stop systemd-journald")),
            v("service auditd stop", exec_("service auditd stop")),
            v("service cbdaemon stop as pid 1", pid1("service cbdaemon stop")),
            v("pkill falco", exec_("pkill -9 falco")),
            v("killall osqueryd", exec_("killall osqueryd")),
            v("kill $(pidof wazuh)", sh("kill -9 $(pidof wazuh-agentd)", shell="bash")),
            v("supervisorctl stop filebeat", exec_("supervisorctl stop filebeat")),
            v("sv down fluent-bit", exec_("sv down /etc/service/fluent-bit")),
        ],
        near_misses=[
            v("rsyslog reopen on HUP", exec_("pkill -HUP rsyslogd")),
            v("status query", exec_("systemctl status auditd")),
            v("on the host", exec_("systemctl stop falcon-sensor", where=HOST)),
        ],
    ),
    PackCase(
        "Security Control Disabled in Container",
        fires=[
            v("auditctl -D", exec_("auditctl -D")),
            v("auditctl -e 0", exec_("auditctl -e 0")),
            v("auditctl -D on sh -c (tool missing)", sh("auditctl -D")),
            v("setenforce 0", exec_("setenforce 0")),
            v("setenforce Permissive on a command line", pid1("setenforce Permissive")),
            v("aa-teardown", exec_("aa-teardown")),
            v("apparmor_parser -R", exec_("apparmor_parser -R /etc/apparmor.d/usr.sbin.nginx")),
            v("sysctl ASLR off", exec_("sysctl -w kernel.randomize_va_space=0")),
            v("sysctl ASLR off, bash -c", sh("sysctl -w kernel.randomize_va_space=0", shell="bash")),
            v("echo 0 > randomize_va_space", sh("echo 0 > /proc/sys/kernel/randomize_va_space")),
            v(
                "the open of randomize_va_space, refused",
                failed_open("/proc/sys/kernel/randomize_va_space", "sh -c echo 0 > x"),
            ),
            v("ptrace scope off", exec_("sysctl kernel.yama.ptrace_scope=0")),
            v("mdatp real-time protection off", exec_("mdatp config real-time-protection --value disabled")),
            v("mdatp on sudo", sh("sudo mdatp config real-time-protection --value disabled")),
        ],
        near_misses=[
            v("auditctl -l lists rules", exec_("auditctl -l")),
            v(
                "reading ASLR",
                open_("/proc/sys/kernel/randomize_va_space", "cat /proc/sys/kernel/randomize_va_space"),
            ),
            v("sysctl ASLR on", exec_("sysctl -w kernel.randomize_va_space=2")),
            v("getenforce", exec_("getenforce")),
            v("on the host", exec_("auditctl -D", where=HOST)),
        ],
    ),
    PackCase(
        "Firewall Disabled in Container",
        fires=[
            v("iptables -F", exec_("iptables -F")),
            v("iptables -P INPUT ACCEPT", exec_("iptables -P INPUT ACCEPT")),
            v("ip6tables-legacy -t nat --flush", exec_("ip6tables-legacy -t nat --flush")),
            v("nft flush ruleset", exec_("nft flush ruleset")),
            v("ufw disable", exec_("ufw disable")),
            v("on sh -c (tool missing)", sh("iptables -P FORWARD ACCEPT && iptables -F")),
        ],
        near_misses=[
            v("iptables -L", exec_("iptables -L -n")),
            v("adding a rule", exec_("iptables -A INPUT -p tcp --dport 22 -j DROP")),
            v(
                "kube-proxy",
                exec_(
                    "iptables -t nat -F KUBE-SERVICES",
                    where={
                        "container.id": "7a1b2c3d4e5f",
                        "container.name": "kube-proxy",
                        "container.image.repository": "registry.k8s.io/kube-proxy",
                        "container.image.tag": "v1.31.0",
                        "k8s.ns.name": "kube-system",
                        "k8s.pod.name": "kube-proxy-x2",
                    },
                ),
            ),
            v("on the host", exec_("iptables -F", where=HOST)),
        ],
    ),
    PackCase(
        "Logging Configuration Modified in Container",
        fires=[
            v(
                "sed -i renames its temp file over journald.conf",
                rename(
                    "/etc/systemd/sedX1a2b3",
                    "/etc/systemd/journald.conf",
                    "sed -i s/Storage=auto/Storage=none/ /etc/systemd/journald.conf",
                ),
            ),
            v("sed -i exec (file missing)", exec_("sed -i $ a #x /etc/audisp/audispd.conf")),
            v(
                "echo >> rsyslog.conf (the shell's open)",
                open_("/etc/rsyslog.conf", "sh -c echo '#x' >> /etc/rsyslog.conf", APPEND),
            ),
            v("redirect on the command line", sh("echo '*.* ~' >> /etc/rsyslog.d/00-drop.conf")),
            v(
                "tee into audit rules",
                open_("/etc/audit/rules.d/audit.rules", "tee /etc/audit/rules.d/audit.rules", WRITE),
            ),
            v("perl -pi on syslog-ng", exec_("perl -pi -e s/^log/#log/ /etc/syslog-ng/syslog-ng.conf")),
            v(
                "rm an rsyslog drop-in",
                unlink("/etc/rsyslog.d/50-default.conf", "rm -f /etc/rsyslog.d/50-default.conf"),
            ),
            v(
                "ln -sf /dev/null",
                call(
                    "symlinkat",
                    "ln -sf /dev/null /etc/audit/auditd.conf",
                    {"evt.arg.target": "/dev/null", "evt.arg.linkpath": "/etc/audit/auditd.conf"},
                ),
            ),
            v(
                "libaudit.conf written by python",
                open_("/etc/libaudit.conf", "python3 -c open('/etc/libaudit.conf','a')", APPEND),
            ),
        ],
        near_misses=[
            v("reading rsyslog.conf", open_("/etc/rsyslog.conf", "rsyslogd -n")),
            v(
                "package install",
                open_("/etc/rsyslog.conf", "dpkg --unpack rsyslog.deb", WRITE, ancestors=["apt-get", "bash"]),
            ),
            v("other /etc file by sed", exec_("sed -i s/a/b/ /etc/nginx/nginx.conf")),
            v("grep of the config", exec_("grep -v ^# /etc/rsyslog.conf")),
            v(
                "on the host",
                open_("/etc/rsyslog.conf", "sh -c echo x >> /etc/rsyslog.conf", APPEND, where=HOST),
            ),
        ],
    ),
    PackCase(
        "Log File Tampering in Container",
        fires=[
            v(
                "> file (the shell's O_TRUNC open)",
                open_("/var/log/nginx/access.log", "sh -c > /var/log/nginx/access.log", WRITE),
            ),
            v(
                "cat /dev/null > messages",
                open_("/var/log/messages", "sh -c cat /dev/null > /var/log/messages", WRITE),
            ),
            v(
                "echo 0> secure (bash)",
                open_("/var/log/secure", "bash -c echo 0> /var/log/secure", "O_WRONLY|O_CREAT|O_TRUNC"),
            ),
            v(
                "mail spool overwritten",
                open_("/var/spool/mail/root", "bash -c echo 0> /var/spool/mail/root", WRITE),
            ),
            v("wtmp emptied", open_("/var/log/wtmp", "sh -c : > /var/log/wtmp", WRITE)),
            v("utmp emptied", open_("/var/run/utmp", "sh -c : > /var/run/utmp", WRITE)),
            v("rm -f auth.log", unlink("/var/log/auth.log", "rm -f /var/log/auth.log")),
            v("rm -rf a log directory", unlink("/var/log/apt", "rm -rf /var/log/apt")),
            v("unlink", unlink("/var/log/messages", "unlink /var/log/messages")),
            v(
                "journal files removed",
                unlink("/var/log/journal/1f2e/system.journal", "rm /var/log/journal/1f2e/system.journal"),
            ),
            v(
                "truncate(2)",
                call(
                    "truncate",
                    "truncate -s 0 /var/log/syslog",
                    {"fd.name": "/var/log/syslog", "evt.arg.length": 0},
                ),
            ),
            v(
                "ftruncate after open",
                call(
                    "ftruncate",
                    "truncate --size=0 /var/log/security",
                    {"fd.name": "/var/log/security", "evt.arg.length": 0},
                ),
            ),
            v(
                "python truncates",
                call(
                    "ftruncate",
                    "python3 -c open('/var/log/auth.log','r+').truncate(0)",
                    {"fd.name": "/var/log/auth.log", "evt.arg.length": 0},
                ),
            ),
            v("moved away", rename("/var/log/secure", "/tmp/s", "mv /var/log/secure /tmp/s")),
            v(
                "lines removed by sed -i",
                rename("/var/log/sedAb12Cd", "/var/log/auth.log", "sed -i /203.0.113.7/d /var/log/auth.log"),
            ),
            v("shred", exec_("shred -n 1 /var/log/auth.log")),
            v("truncate's exec", exec_("truncate --size=0 /var/log/security")),
            v(
                "journalctl --vacuum-time (tool missing, sh -c)",
                sh("rm /var/log/journal/* ; journalctl --vacuum-time=0"),
            ),
            v("journalctl --vacuum-size", exec_("journalctl --vacuum-size=1K")),
        ],
        near_misses=[
            v("appending", open_("/var/log/app.log", "app --serve", APPEND)),
            v(
                "creating without O_TRUNC",
                open_("/var/log/app/app.log", "app --serve", "O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC"),
            ),
            v(
                "rotation: mv app.log app.log.1",
                rename(
                    "/var/log/app/app.log",
                    "/var/log/app/app.log.1",
                    "mv /var/log/app/app.log /var/log/app/app.log.1",
                ),
            ),
            v(
                "rotation: mv .1 .2",
                rename("/var/log/app/app.log.1", "/var/log/app/app.log.2", "mv app.log.1 app.log.2"),
            ),
            v(
                "rotation: dated name",
                rename(
                    "/var/log/app/app.log", "/var/log/app/app.log-20261207", "mv app.log app.log-20261207"
                ),
            ),
            v(
                "rotation: gzip removes its input",
                unlink("/var/log/app/app.log.1", "gzip /var/log/app/app.log.1"),
            ),
            v("rotation: gzip of any name", unlink("/var/log/app/app.log", "gzip -9 /var/log/app/app.log")),
            v(
                "rotation: gzip -c > .gz",
                open_("/var/log/app/app.log.1.gz", "sh -c gzip -c app.log.1 > app.log.1.gz", WRITE),
            ),
            v(
                "rotation: rm an old archive",
                unlink("/var/log/app/app.log.5.gz", "rm -f /var/log/app/app.log.5.gz"),
            ),
            v(
                "rotation: find -delete",
                unlink("/var/log/app/app.log.3.gz", "find /var/log/app -name *.gz -mtime +7 -delete"),
            ),
            v(
                "copytruncate by logrotate",
                call(
                    "ftruncate",
                    "logrotate /etc/logrotate.conf",
                    {"fd.name": "/var/log/app.log", "evt.arg.length": 0},
                ),
            ),
            v("logrotate removes", unlink("/var/log/app.log.7", "logrotate /etc/logrotate.conf")),
            v("savelog", open_("/var/log/app.log", "savelog -c 7 /var/log/app.log", WRITE)),
            v("journalctl reads", exec_("journalctl -u nginx --since today")),
            v("truncate of a tmp file", exec_("truncate -s 0 /tmp/app.out")),
            v("tmp file truncated", open_("/tmp/out.txt", "sh -c date > /tmp/out.txt", WRITE)),
            v("on the host", open_("/var/log/syslog", "sh -c > /var/log/syslog", WRITE, where=HOST)),
        ],
    ),
    PackCase(
        "Service Stopped in Container",
        fires=[
            v("systemctl stop cron (exec)", exec_("systemctl stop cron")),
            v("systemctl stop on sh -c (no systemd)", sh("sudo systemctl stop cron")),
            v("systemctl mask as pid 1", pid1("systemctl mask --now nginx")),
            v("service cron stop", exec_("service cron stop")),
            v("invoke-rc.d", exec_("invoke-rc.d cron stop")),
            v("rc-service", sh("rc-service crond stop")),
            v("init script", exec_("/etc/init.d/cron stop", exepath="/etc/init.d/cron")),
            v("sv down", exec_("sv down nginx")),
            v("supervisorctl stop all", exec_("supervisorctl stop all")),
            v("s6-svc -d", exec_("s6-svc -d /run/service/app")),
            v("start-stop-daemon --stop", exec_("start-stop-daemon --stop --name cron")),
            v("killall -SIGTERM cron", exec_("killall -SIGTERM cron")),
            v("killall (default TERM)", exec_("killall cron")),
            v("pkill -SIGTERM ^cron$", exec_("pkill -SIGTERM ^cron$")),
            v("pkill -KILL -f", exec_("pkill -KILL -f nginx")),
            v("pkill --signal INT", exec_("pkill --signal INT python3")),
            v("killall on sudo, sudo missing", sh("sudo killall -SIGTERM cron")),
            v("kill -SIGTERM $(pgrep cron)", sh("sudo kill -SIGTERM $(pgrep cron)")),
            v("kill -9 `pidof nginx` (bash)", sh("kill -9 `pidof nginx`", shell="bash")),
            v("pgrep | xargs kill", sh("pgrep nginx | xargs kill -9")),
            v("/bin/kill run by xargs", exec_("kill -9 812 813", ancestors=["xargs", "sh", "runc"])),
            v("kill -9 -1", sh("kill -9 -1")),
            v("multi-line script as pid 1", pid1("echo stopping\nsystemctl stop cron\nsleep 60")),
            v("kill $(pgrep) as pid 1", pid1("kill -TERM $(pgrep -x nginx)")),
            v(
                "python os.kill",
                exec_(
                    "python3 -c import os,signal,subprocess;[os.kill(int(p),signal.SIGKILL) for p in subprocess.check_output(['pgrep','cron']).split()]"
                ),
            ),
        ],
        near_misses=[
            v("log rotation: kill -HUP $(cat pid)", sh("kill -HUP $(cat /run/nginx.pid)")),
            v("reopen: kill -USR1 $(pgrep)", sh("kill -USR1 $(pgrep -x nginx)")),
            v("pkill -HUP", exec_("pkill -HUP nginx")),
            v("killall -USR1", exec_("killall -USR1 gunicorn")),
            v("killall -s USR2", exec_("killall -s USR2 unicorn")),
            v("probe: kill -0 $(pgrep)", sh("kill -0 $(pgrep nginx)")),
            v("probe: pkill -0", exec_("pkill -0 nginx")),
            v("nginx -s reopen", exec_("nginx -s reopen")),
            v("nginx -s reload via sh", sh("nginx -s reload")),
            v("health check", sh("wget -qO- localhost:8080")),
            v("pgrep alone", exec_("pgrep -x nginx")),
            v("systemctl status", exec_("systemctl status cron")),
            v("service restart", exec_("service nginx reload")),
            v(
                "entrypoint forwarding TERM",
                pid1("trap 'kill -TERM $(pidof nginx)' TERM; nginx -g 'daemon off;' & wait"),
            ),
            v(
                "entrypoint script's pkill",
                exec_("pkill -TERM worker", ancestors=["entrypoint.sh", "conmon"]),
            ),
            v("on the host", exec_("systemctl stop cron", where=HOST)),
        ],
    ),
    PackCase(
        "Page Cache Dropped or Swap Disabled in Container",
        fires=[
            v("echo 3 > drop_caches", sh("free && echo 3 > /proc/sys/vm/drop_caches && free")),
            v(
                "the open, refused",
                failed_open("/proc/sys/vm/drop_caches", "sh -c echo 3> /proc/sys/vm/drop_caches"),
            ),
            v("sysctl vm.drop_caches", exec_("sysctl -w vm.drop_caches=3")),
            v("swapoff -a", exec_("swapoff -a")),
            v("swapoff on sh -c", pid1("swapon -a ; sleep 2 ; swapoff -a ; sync")),
        ],
        near_misses=[
            v("free", exec_("free -m")),
            v("reading drop_caches", open_("/proc/sys/vm/drop_caches", "cat /proc/sys/vm/drop_caches")),
            v("swapon -s", exec_("swapon -s")),
            v("on the host", exec_("swapoff -a", where=HOST)),
        ],
    ),
    PackCase(
        "Crypto Miner Run in Container",
        fires=[
            v("xmrig", exec_("xmrig -o pool.supportxmr.com:443 -u 4A")),
            v(
                "renamed miner with a stratum URL",
                exec_("/tmp/kworker -o stratum+tcp://198.51.100.3:3333 -u w"),
            ),
            v("xmrig options", exec_("/tmp/sysd --donate-level 1 -o 198.51.100.3:80")),
            v("-a rx/0 with a pool", exec_("/var/tmp/.x/httpd -a rx/0 -o 198.51.100.3:80 -u 4A -k")),
            v("--algo=cryptonight", exec_("/tmp/.k/systemd-logind --algo=cryptonight -o 198.51.100.3:443")),
            v("--coin monero", exec_("/var/tmp/x --coin monero -o 198.51.100.3:443 -u 4A")),
            v("--cpu-max-threads-hint", exec_("/tmp/php-fpm --cpu-max-threads-hint=75 -B")),
            v("on a sh -c line", sh("nohup /tmp/.cache/kthreadd -o stratum+ssl://203.0.113.9:443 -B &")),
        ],
        near_misses=[
            v("on the host", exec_("xmrig -o pool.supportxmr.com:443", where=HOST)),
            v("a harmless tool", exec_("xmllint --noout config.xml")),
            v("tar -a", exec_("tar -a -cf backup.tar.gz /srv")),
            v("a coin word without a pool", exec_("python3 wallet.py --coin monero")),
        ],
    ),
    PackCase(
        "Mining Pool Connection from Container",
        fires=[
            v("stratum port", connect_("198.51.100.23:3333", "/tmp/kworker")),
            v(
                "known pool host",
                connect_("203.0.113.9:443", "/tmp/kworker") | {"fd.sip.name": "pool.supportxmr.com"},
            ),
        ],
        near_misses=[
            v("https elsewhere", connect_("203.0.113.9:443", "curl https://example.com")),
            v("loopback", connect_("127.0.0.1:3333", "grafana-server", client="127.0.0.1:51000")),
            v("on the host", connect_("198.51.100.23:3333", "/tmp/kworker", where=HOST)),
        ],
    ),
    PackCase(
        "CPU Burner Run in Container",
        fires=[
            v("yes > /dev/null", exec_("yes", out_to("/dev/null"))),
            v("yes y > file", exec_("yes y", out_to("/tmp/fill"))),
            v("yes > /dev/null on sh -c", sh("yes > /dev/null")),
            v("yes in background as pid 1", pid1("yes >/dev/null & yes >/dev/null & wait")),
            v("stress-ng", exec_("stress-ng --cpu 0 --timeout 600")),
            v("stress", exec_("stress -c 4")),
            v("burnP6", exec_("burnP6")),
            v("openssl speed", exec_("openssl speed -multi 4")),
            v("dd zero to null", exec_("dd if=/dev/zero of=/dev/null bs=1M")),
            v("dd urandom to stdout /dev/null", exec_("dd if=/dev/urandom", out_to("/dev/null"))),
            v("cat /dev/urandom > /dev/null", exec_("cat /dev/urandom", out_to("/dev/null"))),
            v("gzip < /dev/urandom > /dev/null", exec_("gzip -9", out_to("/dev/null", stdin="/dev/urandom"))),
            v("sha256sum /dev/zero", exec_("sha256sum /dev/zero", out_to(PIPE, "pipe"))),
            v("md5sum < /dev/urandom", exec_("md5sum", out_to("/dev/null", stdin="/dev/urandom"))),
            v("while :; do :; done &", sh("while :; do :; done & while :; do :; done")),
            v("while true (bash)", sh("while true; do true; done", shell="bash")),
            v("multi-line, pid 1", pid1("echo go\nwhile :; do :; done &\nsleep 60")),
            v("for ((;;))", sh("for ((;;)); do :; done", shell="bash")),
            v("python busy loop", exec_("python3 -c while True: pass")),
            v("perl busy loop", exec_("perl -e 1 while 1")),
        ],
        near_misses=[
            v("yes | apt-get", exec_("yes", out_to(PIPE, "pipe"))),
            v("yes | on a command line", sh("yes | apt-get install -y curl")),
            v("yes 2>/dev/null |", sh("yes 2>/dev/null | head -n 3")),
            v("dd writes a file", exec_("dd if=/dev/zero of=/tmp/disk.img bs=1M count=10")),
            v("head -c 32 /dev/urandom | sha256sum", exec_("sha256sum", out_to(PIPE, "pipe", stdin=PIPE))),
            v("tr < /dev/urandom | head", exec_("tr -dc a-z", out_to(PIPE, "pipe", stdin="/dev/urandom"))),
            v("base64 /dev/urandom | head", exec_("base64 /dev/urandom", out_to(PIPE, "pipe"))),
            v("openssl rand", exec_("openssl rand -hex 16")),
            v("client loop with sleep", pid1("while true; do wget -qO- localhost:8080; sleep 1; done")),
            v("while read", sh("while read l; do echo $l; done < /etc/hosts")),
            v(
                "the ordinary client loop",
                pid1('while true; do\n  wget -q -O /dev/null "http://$WEB:8080/"\n  sleep 1\ndone\n'),
            ),
            v("on the host", exec_("stress-ng --cpu 0", where=HOST)),
        ],
    ),
]
