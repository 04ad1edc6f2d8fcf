"""Persistence and defense evasion on files, performed for real (stockade_30_evasion.yaml): each
rule's procedures in fresh podman containers with the eBPF sensor, by different tools, shells and
library calls, as the container's own command (``how="run"``, the shell is pid 1) and through
``podman exec``. The alert's rule, container and process are checked (tests/attack_harness.py)."""

from __future__ import annotations

import pytest

from attack_harness import Attacks, Procedure

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

SSH = "SSH Authorized Keys Modified in Container"
AT = "At Job Scheduled in Container"
STOMP = "File Timestamp Changed in Container"
HIDDEN = "Hidden File or Directory Created in Container"
MASQ_FILE = "Masqueraded File Executed in Container"
MASQ_PROC = "Process Masquerading as System Process in Container"
PAD = "Binary Padding in Container"

#: an authorized_keys file already there, as in the images the reference procedures use (podman cp
#: cannot make ~/.ssh, so the unwatched setup of an exec procedure or the script itself does)
OLD_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyOnly ops@example"
KEYS_SETUP = f"mkdir -p /root/.ssh && echo '{OLD_KEY}' > /root/.ssh/authorized_keys"
NEW_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlantedKeyForTest intruder@example"

PROCEDURES = [
    # -- SSH authorized keys (T1098.004) ----------------------------------------------------------
    Procedure(
        "keys-rewritten-in-place",
        rule=SSH,
        script='f=$HOME/.ssh/authorized_keys; [ -f "$f" ] && { keys=$(cat "$f"); printf "%s\\n" "$keys" > "$f"; }',
        proc="sh",
        setup=KEYS_SETUP,
    ),
    Procedure(
        "keys-tee-append",
        rule=SSH,
        script=f"mkdir -p /root/.ssh && echo '{NEW_KEY}' | tee -a /root/.ssh/authorized_keys >/dev/null",
        proc="tee",
        shell="bash",
        how="run",
    ),
    Procedure(
        "keys-sed-in-place",
        rule=SSH,
        script=f"{KEYS_SETUP}; sed -i 's/^ssh-/no-pty ssh-/' /root/.ssh/authorized_keys",
        proc="sed",
        how="run",
    ),
    Procedure(
        "keys-mv-onto",
        rule=SSH,
        script=f"echo '{NEW_KEY}' > /var/tmp/k.pub; mkdir -p ~/.ssh; mv /var/tmp/k.pub ~/.ssh/authorized_keys",
        proc="mv",
    ),
    Procedure(
        "keys-python-append",
        rule=SSH,
        script=f"python3 -c \"open('/root/.ssh/authorized_keys', 'a').write('{NEW_KEY}\\n')\"",
        proc="python3",
        setup=KEYS_SETUP,
    ),
    # -- at jobs (T1053.002) ---------------------------------------------------------------------
    Procedure("at-from-stdin", rule=AT, script="echo 'id > /tmp/at.out' | at now + 1 minute", proc="at"),
    Procedure(
        "at-from-file",
        rule=AT,
        script="printf 'touch /tmp/at-ran\\n' > /tmp/job; at -f /tmp/job now + 5 minutes",
        proc="at",
        shell="bash",
        how="run",
    ),
    Procedure("batch", rule=AT, script="echo true | batch", proc="batch"),
    # -- timestomp (T1070.006) -------------------------------------------------------------------
    Procedure(
        "touch-t-epoch",
        rule=STOMP,
        script="echo x > /tmp/t1; touch -a -t 197001010000.00 /tmp/t1",
        proc="touch",
    ),
    Procedure(
        "touch-reference",
        rule=STOMP,
        script="touch /tmp/t2; touch -acmr /bin/sh /tmp/t2",
        proc="touch",
        how="run",
    ),
    Procedure(
        "python-os-utime",
        rule=STOMP,
        script="echo x > /tmp/t3; python3 -c \"import os; os.utime('/tmp/t3', (86400, 86400))\"",
        proc="python3",
    ),
    Procedure(
        "perl-utime",
        rule=STOMP,
        script="echo x > /tmp/t4; perl -e 'utime 86400, 86400, \"/tmp/t4\"'",
        proc="perl",
        shell="bash",
        how="run",
    ),
    # -- hidden files and directories (T1564.001) ------------------------------------------------
    Procedure(
        "hidden-dir-var-tmp",
        rule=HIDDEN,
        script="mkdir /var/tmp/.store && echo data > /var/tmp/.store/.blob",
        proc="mkdir",
    ),
    Procedure(
        "dots-dir-in-home",
        rule=HIDDEN,
        script='mkdir "$HOME/..." && cp /bin/true "$HOME/.../t"',
        proc="mkdir",
        how="run",
    ),
    Procedure(
        "python-hidden-shm",
        rule=HIDDEN,
        script="python3 -c \"import os; os.makedirs('/dev/shm/.s', exist_ok=True)\"",
        proc="python3",
    ),
    Procedure(
        "mv-to-dot-name",
        rule=HIDDEN,
        script="echo x > /tmp/notes; mv /tmp/notes /tmp/.notes",
        proc="mv",
        shell="bash",
        how="run",
    ),
    # -- masquerading by file (T1036.005/.006/.007/.008) -----------------------------------------
    Procedure(
        "double-extension",
        rule=MASQ_FILE,
        techniques=("T1036.007",),
        script="printf '#!/bin/sh\\necho invoice\\n' > /tmp/invoice.pdf.sh; chmod +x /tmp/invoice.pdf.sh; /tmp/invoice.pdf.sh",
        proc="invoice.pdf.sh",
    ),
    Procedure(
        "png-run-by-sh",
        rule=MASQ_FILE,
        techniques=("T1036.008",),
        script="printf 'echo not an image\\n' > /tmp/photo.png; sh /tmp/photo.png",
        proc="sh",
        how="run",
    ),
    Procedure(
        "txt-run-by-python",
        rule=MASQ_FILE,
        techniques=("T1036.008",),
        script="printf 'print(42)\\n' > /tmp/readme.txt; python3 /tmp/readme.txt",
        proc="python3",
    ),
    Procedure(
        "trailing-space-name",
        rule=MASQ_FILE,
        techniques=("T1036.006",),
        script="cp /bin/sleep '/tmp/init '; '/tmp/init ' 1",
        proc="init ",
        shell="bash",
    ),
    Procedure(
        "run-from-dots-dir",
        rule=MASQ_FILE,
        techniques=("T1036.005",),
        script="mkdir -p /root/... && cp /bin/sh /root/.../sh && /root/.../sh -c 'echo hi'",
        proc="sh",
        how="run",
    ),
    # -- masquerading as a system process (T1036.003/.004) ---------------------------------------
    Procedure(
        "sh-copied-as-crond",
        rule=MASQ_PROC,
        techniques=("T1036.003",),
        script="cp /bin/sh /tmp/crond; echo 'sleep 1' | /tmp/crond",
        proc="crond",
    ),
    Procedure(
        "sleep-as-sshd-in-home",
        rule=MASQ_PROC,
        techniques=("T1036.003",),
        script="cp /bin/sleep /root/sshd && /root/sshd 1",
        proc="sshd",
        how="run",
    ),
    Procedure(
        "kernel-thread-argv0",
        rule=MASQ_PROC,
        techniques=("T1036.004",),
        script="(exec -a '[kworker/0:2]' sleep 1)",
        proc="sleep",
        shell="bash",
    ),
    # -- binary padding (T1027.001) ---------------------------------------------------------------
    Procedure(
        "dd-append-zero",
        rule=PAD,
        script="dd if=/dev/zero bs=1 count=1 >> /tmp/evil-bin",
        proc="sh",
        setup="cp /bin/ls /tmp/evil-bin",
    ),
    Procedure(
        "truncate-grow",
        rule=PAD,
        script="cp /bin/ls /tmp/evil-bin2; truncate -s +1 /tmp/evil-bin2",
        proc="truncate",
        how="run",
    ),
    Procedure(
        "printf-append-bash",
        rule=PAD,
        script="printf '\\0' >> /var/tmp/kit",
        proc="bash",
        shell="bash",
        setup="cp /bin/true /var/tmp/kit",
    ),
    Procedure(
        "python-append-bytes",
        rule=PAD,
        script="cp /bin/true /tmp/tool; python3 -c \"open('/tmp/tool', 'ab').write(bytes(8))\"",
        proc="python3",
        how="run",
    ),
]


@pytest.mark.parametrize("p", PROCEDURES, ids=lambda p: p.id)
def test_procedure_raises_its_alert(p: Procedure, attacks: Attacks) -> None:
    attacks.check(p)
