"""Golden cases of stockade_35_hijack.yaml: the dynamic linker's preload (T1574.006), Python start-up
hooks (T1546.018), root certificates (T1553.004), PAM (T1556.003), keystroke logging (T1056.001)
and process memory through /proc (T1003.007, T1055.009).

The firing variants are different ways of doing each (shell redirections, tee, cp, mv, sed -i,
symlinks, interpreters, environment variables, command strings); the near misses are what package
managers, the linker's and trust store's own tools, process viewers and ordinary images do."""

from __future__ import annotations

from typing import Any

from pack_events import (
    APPEND,
    PTS_TTY,
    UNDER_RUNTIME,
    WRITE,
    PackCase,
    call,
    exec_,
    on_host,
    open_,
    v,
)

HOST = on_host()
EXEC = UNDER_RUNTIME
RDONLY = "O_RDONLY|O_CLOEXEC"
RDWR = "O_RDWR"
SITE = "/usr/lib/python3/dist-packages"
VENV_SITE = "/tmp/venv/lib/python3.11/site-packages"
USER_SITE = "/root/.local/lib/python3.11/site-packages"


def _rename(cmdline: str, old: str, new: str, **kw: Any) -> dict[str, Any]:
    return call(
        "renameat2",
        cmdline,
        {"evt.arg.oldpath": old, "evt.arg.newpath": new, "fs.path.source": old, "fs.path.target": new},
        **kw,
    )


def _symlink(cmdline: str, target: str, link: str, **kw: Any) -> dict[str, Any]:
    return call("symlinkat", cmdline, {"evt.arg.target": target, "evt.arg.linkpath": link}, **kw)


def _env(cmdline: str, env: dict[str, str], **kw: Any) -> dict[str, Any]:
    base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", **env}
    return exec_(
        cmdline,
        {
            "proc.env": " ".join(f"{k}={val}" for k, val in base.items()),
            **{f"proc.env[{k}]": x for k, x in base.items()},
        },
        **kw,
    )


PRELOAD = "Dynamic Linker Preload Configured in Container"
LD_ENV = "Library Preloaded from Writable Directory in Container"
PYHOOK = "Python Startup Hook Written in Container"
CA = "Root Certificate Installed in Container"
KEYLOG = "Keystroke Logging Configured in Container"
PAM = "PAM Configuration Modified in Container"
MEM_W = "Process Memory Written via Proc in Container"
MEM_R = "Process Memory Read via Proc in Container"
MAPS = "Process Memory Map Read of Another Process in Container"

CASES: list[PackCase] = [
    PackCase(
        PRELOAD,
        fires=[
            v(
                "sh -c 'echo /tmp/x.so > /etc/ld.so.preload' (the shell opens it O_TRUNC)",
                open_(
                    "/etc/ld.so.preload", "sh -c echo /tmp/x.so > /etc/ld.so.preload", WRITE, ancestors=EXEC
                ),
            ),
            v(
                "appended by bash as the container's command (pid 1)",
                open_(
                    "/etc/ld.so.preload",
                    "bash -c echo /dev/shm/l.so >> /etc/ld.so.preload",
                    APPEND,
                    vpid=1,
                    ancestors=[],
                ),
            ),
            v("tee -a", open_("/etc/ld.so.preload", "tee -a /etc/ld.so.preload", APPEND)),
            v(
                "mv a prepared file over it",
                _rename("mv /tmp/p /etc/ld.so.preload", "/tmp/p", "/etc/ld.so.preload"),
            ),
            v(
                "ln -s a file in /tmp as the preload file",
                _symlink("ln -sf /tmp/p /etc/ld.so.preload", "/tmp/p", "/etc/ld.so.preload"),
            ),
            v(
                "python writes it",
                open_("/etc/ld.so.preload", "python3 -c open('/etc/ld.so.preload','w')", WRITE),
            ),
            v(
                "a new library directory in ld.so.conf.d",
                open_("/etc/ld.so.conf.d/zz.conf", "sh -c echo /tmp/lib > /etc/ld.so.conf.d/zz.conf", WRITE),
            ),
        ],
        near_misses=[
            v("read by the linker", open_("/etc/ld.so.preload", "ls -la", RDONLY)),
            v("ldconfig writes its cache", open_("/etc/ld.so.cache~", "ldconfig", WRITE)),
            v(
                "dpkg installs a ld.so.conf.d file",
                open_("/etc/ld.so.conf.d/x86_64-linux-gnu.conf.dpkg-new", "dpkg -i libc6.deb", WRITE),
                _rename(
                    "dpkg -i libc6.deb",
                    "/etc/ld.so.conf.d/x86_64-linux-gnu.conf.dpkg-new",
                    "/etc/ld.so.conf.d/x86_64-linux-gnu.conf",
                ),
            ),
            v(
                "on the host",
                open_("/etc/ld.so.preload", "sh -c echo /tmp/x.so > /etc/ld.so.preload", WRITE, where=HOST),
            ),
        ],
    ),
    PackCase(
        LD_ENV,
        fires=[
            v("ls started with LD_PRELOAD=/tmp/x.so", _env("ls", {"LD_PRELOAD": "/tmp/T.so"})),
            v(
                "sh -c 'LD_PRELOAD=/tmp/x.so ls' (the command string)",
                exec_("sh -c LD_PRELOAD=/tmp/x.so ls", ancestors=EXEC),
            ),
            v(
                "bash -c 'export LD_PRELOAD=/dev/shm/h.so; id' as pid 1",
                exec_("bash -c export LD_PRELOAD=/dev/shm/h.so; id", vpid=1, ancestors=[]),
            ),
            v("env LD_AUDIT=./a.so whoami", exec_("env LD_AUDIT=./a.so whoami")),
            v(
                "LD_PRELOAD with a library list, the planted one second",
                _env("curl localhost", {"LD_PRELOAD": "/usr/lib/libfoo.so:/var/tmp/.x/h.so"}),
            ),
            v("LD_AUDIT in the environment", _env("id", {"LD_AUDIT": "/root/audit.so"})),
            v("LD_LIBRARY_PATH=/tmp", _env("ssh host", {"LD_LIBRARY_PATH": "/tmp"})),
            v(
                "LD_LIBRARY_PATH with /dev/shm second",
                _env("sudo -l", {"LD_LIBRARY_PATH": "/usr/lib:/dev/shm/l"}),
            ),
            v("relative preload", _env("cat /etc/hostname", {"LD_PRELOAD": "lib/evil.so"})),
            v("command string with $HOME", exec_('sh -c LD_PRELOAD="$HOME/.cache/x.so" /usr/bin/passwd')),
        ],
        near_misses=[
            v(
                "jemalloc preloaded from /usr/lib",
                _env("redis-server", {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}),
            ),
            v(
                "LD_LIBRARY_PATH=/usr/local/lib",
                _env("nginx -g daemon off;", {"LD_LIBRARY_PATH": "/usr/local/lib"}),
            ),
            v(
                "LD_LIBRARY_PATH=/opt/app/lib:/usr/lib",
                _env("java -jar app.jar", {"LD_LIBRARY_PATH": "/opt/app/lib:/usr/lib"}),
            ),
            v(
                "a bare soname is looked up in the system dirs",
                _env("python3 app.py", {"LD_PRELOAD": "libtcmalloc.so.4"}),
            ),
            v("ordinary environment", _env("ls", {"LANG": "C.UTF-8"})),
            v(
                "shell command string with a system library",
                exec_("sh -c LD_PRELOAD=/usr/lib/libasan.so.8 ./test"),
            ),
            v("on the host", _env("ls", {"LD_PRELOAD": "/tmp/T.so"}, where=HOST)),
        ],
    ),
    PackCase(
        PYHOOK,
        fires=[
            v(
                "a .pth dropped in a venv's site-packages by a shell redirection",
                open_(
                    f"{VENV_SITE}/hook.pth",
                    f"sh -c echo 'import os' > {VENV_SITE}/hook.pth",
                    WRITE,
                    ancestors=EXEC,
                ),
            ),
            v(
                "usercustomize.py in the user site, bash as pid 1",
                open_(
                    f"{USER_SITE}/usercustomize.py",
                    "bash -c echo x > $U/usercustomize.py",
                    WRITE,
                    vpid=1,
                    ancestors=[],
                ),
            ),
            v(
                "sitecustomize.py by cp",
                open_(
                    f"{SITE}/sitecustomize.py",
                    "cp /tmp/s.py /usr/lib/python3/dist-packages/sitecustomize.py",
                    WRITE,
                ),
            ),
            v(
                "appended to an existing .pth",
                open_(f"{SITE}/distutils-precedence.pth", "tee -a x.pth", APPEND),
            ),
            v(
                "python writes a .pth",
                open_(
                    "/usr/local/lib/python3.11/site-packages/zz.pth", "python3 -c open(p,'w').write(s)", WRITE
                ),
            ),
            v(
                "mv into place",
                _rename(
                    "mv /tmp/a /usr/local/lib/python3.11/site-packages/a.pth",
                    "/tmp/a",
                    "/usr/local/lib/python3.11/site-packages/a.pth",
                ),
            ),
            v(
                "sitecustomize.py symlinked",
                _symlink("ln -s /tmp/s.py x", "/tmp/s.py", "/usr/lib/python3.11/sitecustomize.py"),
            ),
        ],
        near_misses=[
            v(
                "pip installs a .pth",
                open_(f"{VENV_SITE}/distutils-precedence.pth", "pip install setuptools", WRITE),
            ),
            v(
                "ensurepip's pip run by python -m venv",
                open_(
                    f"{VENV_SITE}/distutils-precedence.pth",
                    "python3 -W ignore::DeprecationWarning -c import runpy; runpy.run_module('pip')",
                    WRITE,
                    ancestors=["python3", "sh"],
                ),
            ),
            v(
                "apt's dpkg",
                open_(
                    f"{SITE}/zope.interface-nspkg.pth",
                    "dpkg --unpack x.deb",
                    WRITE,
                    ancestors=["apt-get", "sh"],
                ),
            ),
            v("python reads its hooks", open_(f"{SITE}/distutils-precedence.pth", "python3 app.py", RDONLY)),
            v("a .pth outside site-packages", open_("/srv/app/paths.pth", "python3 build.py", WRITE)),
            v("on the host", open_(f"{SITE}/sitecustomize.py", "cp a b", WRITE, where=HOST)),
        ],
    ),
    PackCase(
        CA,
        fires=[
            v(
                "mv a certificate into /usr/local/share/ca-certificates",
                _rename(
                    "mv rootCA.crt /usr/local/share/ca-certificates",
                    "/root/rootCA.crt",
                    "/usr/local/share/ca-certificates/rootCA.crt",
                ),
            ),
            v(
                "cp into the RHEL anchors",
                open_(
                    "/etc/pki/ca-trust/source/anchors/rootCA.crt",
                    "cp rootCA.crt /etc/pki/ca-trust/source/anchors/",
                    WRITE,
                ),
            ),
            v(
                "cat >> the bundle as pid 1",
                open_(
                    "/etc/ssl/certs/ca-certificates.crt",
                    "sh -c cat ca.pem >> /etc/ssl/certs/ca-certificates.crt",
                    APPEND,
                    vpid=1,
                    ancestors=[],
                ),
            ),
            v(
                "ln -s into /etc/ssl/certs",
                _symlink(
                    "ln -s /tmp/ca.pem /etc/ssl/certs/abcd1234.0", "/tmp/ca.pem", "/etc/ssl/certs/abcd1234.0"
                ),
            ),
            v("update-ca-certificates run by hand", exec_("update-ca-certificates", ancestors=EXEC)),
            v("update-ca-trust run by hand", exec_("update-ca-trust extract")),
            v("trust anchor", exec_("trust anchor /tmp/ca.crt")),
            v("openssl rehash", exec_("openssl rehash /etc/ssl/certs")),
            v(
                "python writes a certificate",
                open_("/usr/local/share/ca-certificates/x.crt", "python3 -c open(p,'w')", WRITE),
            ),
        ],
        near_misses=[
            v(
                "TLS client reads the bundle",
                open_("/etc/ssl/certs/ca-certificates.crt", "curl https://x", RDONLY),
            ),
            v(
                "update-ca-certificates rebuilds the bundle",
                open_("/etc/ssl/certs/ca-certificates.crt.new", "update-ca-certificates", WRITE),
            ),
            v(
                "its openssl rehash child",
                _symlink(
                    "openssl rehash .",
                    "ca.pem",
                    "/etc/ssl/certs/abcd1234.0",
                    ancestors=["run-parts", "update-ca-certi", "sh"],
                ),
            ),
            v(
                "dpkg installs ca-certificates",
                open_(
                    "/usr/share/ca-certificates/mozilla/X.crt.dpkg-new",
                    "dpkg --unpack ca.deb",
                    WRITE,
                    ancestors=["apt-get"],
                ),
            ),
            v(
                "update-ca-certificates run by the package's postinst",
                exec_("update-ca-certificates", ancestors=["sh", "dpkg", "apt-get"]),
            ),
            v("on the host", exec_("update-ca-certificates", where=HOST)),
        ],
    ),
    PackCase(
        KEYLOG,
        fires=[
            v(
                "pam_tty_audit appended to a PAM file by a shell",
                open_(
                    "/etc/pam.d/password-auth",
                    'sh -c echo "session required pam_tty_audit.so enable=*" >> /etc/pam.d/password-auth',
                    APPEND,
                    ancestors=EXEC,
                ),
            ),
            v(
                "PROMPT_COMMAND logging history (bash command string)",
                exec_(
                    "bash -c PROMPT_COMMAND='history -a >(tee -a ~/.bash_history | logger -t x)'",
                    ancestors=EXEC,
                ),
            ),
            v(
                "export PROMPT_COMMAND to a file as pid 1",
                exec_(
                    "sh -c export PROMPT_COMMAND='echo $(history 1) >> /tmp/.k'; bash -i",
                    vpid=1,
                    ancestors=[],
                ),
            ),
            v(
                "a shell started with such a PROMPT_COMMAND",
                _env("bash -i", {"PROMPT_COMMAND": "history 1 | logger"}, ancestors=["bash", "runc"]),
            ),
            v("script -f on a log", exec_("script -q -f /tmp/.s.log")),
            v("strace reading another process's input", exec_("strace -p 412 -e trace=read -o /tmp/r")),
            v(
                "auditctl recording every execve",
                exec_("auditctl -a always,exit -F arch=b64 -S execve -k CMDS"),
            ),
            v("logkeys", exec_("logkeys --start")),
        ],
        near_misses=[
            v(
                "a prompt title PROMPT_COMMAND",
                _env(
                    "bash -i",
                    {"PROMPT_COMMAND": 'printf "\\033]0;%s\\007" "$PWD"'},
                    ancestors=["bash", "runc"],
                ),
            ),
            v("script without flushing (a transcript)", exec_("script -q -c make build.log")),
            v("strace of a command", exec_("strace -f -o /tmp/t ls")),
            v("pam file read by login", open_("/etc/pam.d/login", "login", RDONLY)),
            v("on the host", exec_("auditctl -a always,exit -S execve", where=HOST)),
        ],
    ),
    PackCase(
        PAM,
        fires=[
            v(
                "sed -i renames the edited file onto /etc/pam.d/su-l",
                _rename(
                    "sed -i 1s,^,auth sufficient pam_permit.so\\n,g /etc/pam.d/su-l",
                    "/etc/pam.d/sedAbC12",
                    "/etc/pam.d/su-l",
                ),
            ),
            v(
                "sed -i's temporary file",
                open_("/etc/pam.d/sedAbC12", "sed -i x /etc/pam.d/su-l", "O_RDWR|O_CREAT|O_EXCL"),
            ),
            v(
                "appended by a shell as pid 1",
                open_(
                    "/etc/pam.d/common-auth",
                    "sh -c echo auth sufficient /tmp/pam_evil.so >> /etc/pam.d/common-auth",
                    APPEND,
                    vpid=1,
                    ancestors=[],
                ),
            ),
            v(
                "a module copied into /lib/x86_64-linux-gnu/security",
                open_(
                    "/lib/x86_64-linux-gnu/security/pam_unix2.so",
                    "cp /tmp/p.so /lib/x86_64-linux-gnu/security/pam_unix2.so",
                    WRITE,
                ),
            ),
            v(
                "a module moved into /usr/lib64/security",
                _rename("mv /tmp/p.so x", "/tmp/p.so", "/usr/lib64/security/pam_x.so"),
            ),
            v("python rewrites /etc/pam.d/sshd", open_("/etc/pam.d/sshd", "python3 edit.py", WRITE)),
            v(
                "perl -i",
                _rename("perl -pi -e s/x/y/ /etc/pam.d/sudo", "/etc/pam.d/sudoXyZ", "/etc/pam.d/sudo"),
            ),
        ],
        near_misses=[
            v("read by su", open_("/etc/pam.d/su", "su app", RDONLY)),
            v("pam-auth-update", open_("/etc/pam.d/common-auth.pam-new", "pam-auth-update --package", WRITE)),
            v(
                "dpkg installs libpam-modules",
                open_("/lib/x86_64-linux-gnu/security/pam_unix.so.dpkg-new", "dpkg --unpack x.deb", WRITE),
            ),
            v("on the host", open_("/etc/pam.d/sshd", "vim /etc/pam.d/sshd", WRITE, where=HOST)),
        ],
    ),
    PackCase(
        MEM_W,
        fires=[
            v(
                "a binary writes its own code through /proc/self/mem",
                open_("/proc/self/mem", "/tmp/inplace", RDWR),
            ),
            v(
                "write-only open of another process's memory",
                open_("/proc/31/mem", "python3 inject.py 31", "O_WRONLY"),
            ),
            v(
                "dd of=/proc/N/mem",
                open_("/proc/7/mem", "dd of=/proc/7/mem bs=1 seek=4198400 conv=notrunc", "O_WRONLY|O_CREAT"),
            ),
            v("a thread's memory file", open_("/proc/12/task/13/mem", "perl x.pl", RDWR)),
        ],
        near_misses=[
            v("read of maps", open_("/proc/self/maps", "java -jar app.jar", RDONLY)),
            v("a file named mem", open_("/var/lib/app/mem", "app --store", WRITE)),
            v("on the host", open_("/proc/self/mem", "/tmp/inplace", RDWR, where=HOST)),
        ],
    ),
    PackCase(
        MEM_R,
        fires=[
            v(
                "dd if=/proc/N/mem (the open)",
                open_("/proc/41/mem", "dd if=/proc/41/mem of=/tmp/d ibs=1 skip=94000 count=1000", RDONLY),
            ),
            v("dd's exec", exec_("dd if=/proc/41/mem of=/tmp/d ibs=1 skip=94000 count=1000")),
            v(
                "python reads another process's heap",
                open_("/proc/41/mem", "python3 dump_heap.py 41 /tmp/o", "O_RDONLY|O_CLOEXEC"),
            ),
            v("cat of /proc/1/mem as pid 1's child", open_("/proc/1/mem", "cat /proc/1/mem", RDONLY)),
            v("gcore", exec_("gcore -o /tmp/core 41")),
            v("gdb -p", exec_("gdb -p 41 -batch -ex dump memory /tmp/h 0x1000 0x2000")),
            v("mimipenguin run by bash", exec_("bash mimipenguin.sh")),
            v(
                "failed open (not permitted) still shows intent",
                {
                    **open_("/proc/1/mem", "tail -c 100 /proc/1/mem", RDONLY),
                    "evt.rawres": -13,
                    "evt.res": "EACCES",
                },
            ),
        ],
        near_misses=[
            v("/proc/meminfo", open_("/proc/meminfo", "free -m", RDONLY)),
            v("gdb on a program", exec_("gdb ./a.out")),
            v("dd of a disk image", exec_("dd if=/dev/zero of=/tmp/f bs=1M count=1")),
            v("on the host", open_("/proc/41/mem", "dd if=/proc/41/mem", RDONLY, where=HOST)),
        ],
    ),
    PackCase(
        MAPS,
        fires=[
            v("grep of another process's maps", open_("/proc/41/maps", "grep heap /proc/41/maps", RDONLY)),
            v("cat of pid 1's environment", open_("/proc/1/environ", "cat /proc/1/environ", RDONLY, vpid=77)),
            v("python reads smaps", open_("/proc/9/smaps", "python3 -c open('/proc/9/smaps')", RDONLY)),
            v("a thread's maps", open_("/proc/9/task/10/maps", "head /proc/9/task/10/maps", RDONLY)),
            v(
                "strings of environ as pid 1's child",
                open_("/proc/1/environ", "strings /proc/1/environ", RDONLY, tty=PTS_TTY),
            ),
        ],
        near_misses=[
            v("the process's own maps by pid", open_("/proc/57/maps", "java -jar app.jar", RDONLY, vpid=57)),
            v("own thread's maps", open_("/proc/57/task/58/maps", "java -jar app.jar", RDONLY, vpid=57)),
            v("/proc/self/maps", open_("/proc/self/maps", "python3 app.py", RDONLY)),
            v("ps e reads environ", open_("/proc/41/environ", "ps eww", RDONLY)),
            v("lsof reads maps", open_("/proc/41/maps", "lsof -p 41", RDONLY)),
            v("pgrep reads cmdline", open_("/proc/41/cmdline", "pgrep -f T1003", RDONLY)),
            v("on the host", open_("/proc/41/maps", "grep heap /proc/41/maps", RDONLY, where=HOST)),
        ],
    ),
]
