"""Shell history and shell persistence, performed for real in podman containers with the eBPF
sensor (rules of src/stockade/rules/builtin/stockade_20_history.yaml): history files cleared
(T1070.003), history clearing commands and history logging turned off (T1562.003/T1690), history
read (T1552.003), shell configuration written (T1546.004) and traps that run a program
(T1546.005). Each rule gets several ways of doing it, through `podman exec` and as the container's
own command, with sh (dash) and bash; the alert's rule, container and process are checked."""

from __future__ import annotations

from typing import Any

import pytest

from attack_harness import Procedure

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

HISTORY = {"/root/.bash_history": "ls\nmysql -uroot -pS3cret\nssh admin@10.0.0.4\n"}
CLEARED = "Shell History Cleared in Container"
CLEAR_CMD = "Shell History Clear Command in Container"
DISABLED = "Shell History Disabled in Container"
READ = "Shell History Read in Container"
RC = "Shell Configuration Modified in Container"
TRAP = "Shell Trap Persistence in Container"

PROCEDURES = [
    # -- history files cleared ------------------------------------------------------------------
    Procedure("hist-rm", rule=CLEARED, script="rm ~/.bash_history", proc="rm", files=HISTORY),
    Procedure(
        "hist-echo-redirect",
        rule=CLEARED,
        script='echo "" > ~/.bash_history',
        proc="bash",
        shell="bash",
        how="run",
        files=HISTORY,
    ),
    Procedure(
        "hist-truncate", rule=CLEARED, script="truncate -s0 ~/.bash_history", proc="truncate", files=HISTORY
    ),
    Procedure(
        "hist-ln-devnull-over",
        rule=CLEARED,
        script="ln -sf /dev/null ~/.bash_history",
        proc="ln",
        shell="bash",
        files=HISTORY,
    ),
    Procedure(
        "hist-python-truncate",
        rule=CLEARED,
        script="python3 -c \"open('/root/.zsh_history', 'w').close()\"",
        proc="python3",
        how="run",
        files={"/root/.zsh_history": ": 1700000000:0;id\n"},
    ),
    Procedure("hist-mv-away", rule=CLEARED, script="mv ~/.bash_history /tmp/.h", proc="mv", files=HISTORY),
    # -- history cleared by a command string ----------------------------------------------------
    Procedure("histc-sh", rule=CLEAR_CMD, script="history -c", proc="sh"),
    Procedure(
        "histc-bash-run",
        rule=CLEAR_CMD,
        script="history -c\nhistory -w /dev/null\nid",
        proc="bash",
        shell="bash",
        how="run",
    ),
    # -- history logging disabled ---------------------------------------------------------------
    Procedure(
        "histoff-histcontrol", rule=DISABLED, script="export HISTCONTROL=ignoreboth\nwhoami", proc="sh"
    ),
    Procedure(
        "histoff-histfile-run",
        rule=DISABLED,
        script='export HISTFILE="/dev/null"\nwhoami\ngroups',
        proc="bash",
        shell="bash",
        how="run",
    ),
    Procedure("histoff-set-o", rule=DISABLED, script="set +o history; id", proc="bash", shell="bash"),
    Procedure(
        "histoff-env-of-child-shell",
        rule=DISABLED,
        script="v=HIST; export ${v}SIZE=0; bash -c id",
        proc="bash",
    ),
    # -- history read ---------------------------------------------------------------------------
    Procedure(
        "histread-cat-grep",
        rule=READ,
        script="cat ~/.bash_history | grep -e pass -e ssh > ~/loot.txt",
        proc="cat",
        files=HISTORY,
    ),
    Procedure(
        "histread-grep-other-user",
        rule=READ,
        script="grep -i pass /home/app/.bash_history",
        proc="grep",
        shell="bash",
        setup="mkdir -p /home/app && echo 'export DB_PASS=hunter2' > /home/app/.bash_history",
    ),
    Procedure(
        "histread-python-run",
        rule=READ,
        script="python3 -c \"import os; print(open(os.path.expanduser('~/.zsh_history')).read())\"",
        proc="python3",
        how="run",
        files={"/root/.zsh_history": ": 1700000000:0;ssh -i key admin@db\n"},
    ),
    Procedure("histread-missing-sh-history", rule=READ, script="cat ~/.history | grep pass", proc="cat"),
    # -- shell configuration --------------------------------------------------------------------
    Procedure(
        "rc-bashrc-append",
        rule=RC,
        script="echo 'set +o history' >> ~/.bashrc",
        proc="bash",
        shell="bash",
    ),
    Procedure(
        "rc-profile-d-run",
        rule=RC,
        script="echo 'nohup /tmp/.x >/dev/null 2>&1 &' > /etc/profile.d/zz-update.sh",
        proc="sh",
        how="run",
    ),
    Procedure("rc-sed-profile", rule=RC, script="sed -i '$a /tmp/.x &' ~/.profile", proc="sed"),
    # -- traps ----------------------------------------------------------------------------------
    Procedure(
        "trap-exit-nohup",
        rule=TRAP,
        script="bash -c 'trap \"nohup sh /tmp/payload.sh\" EXIT'",
        proc="sh",
    ),
    Procedure(
        "trap-debug-run",
        rule=TRAP,
        script="trap 'echo \"$BASH_COMMAND\" >> /tmp/keys.txt' DEBUG\nwhoami\nid",
        proc="bash",
        shell="bash",
        how="run",
    ),
    Procedure(
        "trap-sigint",
        rule=TRAP,
        script='trap "nohup sh /tmp/payload.sh" SIGINT && kill -SIGINT $$',
        proc="bash",
        shell="bash",
    ),
]


@pytest.mark.parametrize("p", PROCEDURES, ids=lambda p: p.id)
def test_procedure_raises_its_alert(p: Procedure, attacks: Any) -> None:
    attacks.check(p)
