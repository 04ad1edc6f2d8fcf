"""Permissions, accounts, destruction, tunnels, brute force and sudo, performed for real in podman
containers with the eBPF sensor (rules of src/stockade/rules/builtin/stockade_55_more.yaml): file
permission modification (T1222.002), account access removal and local accounts (T1531, T1098,
T1078.003), data destruction (T1485), encryption for impact (T1486), proxies and tunnels (T1090,
T1572), password guessing (T1110) and sudo probing and caching (T1548.003). Each rule gets several
ways of doing it, through `podman exec` and as the container's own command, with sh (dash) and
bash; tools the image lacks (sudo, sshpass, cloudflared) are seen on the shell's command line."""

from __future__ import annotations

from typing import Any

import pytest

from attack_harness import Procedure

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

PERM = "File Permissions Weakened in Container"
ACCOUNT = "Account Access Modified in Container"
DESTROY = "Data Destruction Command in Container"
ENCRYPT = "Files Encrypted for Impact in Container"
TUNNEL = "Proxy or Tunnel Started in Container"
BRUTE = "Brute Force or Password Cracking in Container"
SUDO = "Sudo Rights Probed or Sudo Settings Changed in Container"

DATA = {"/opt/customers.db": "alice,4111111111111111\nbob,5500000000000004\n", "/opt/notes.txt": "q4\n"}
SUDOERS = {"/etc/sudoers": "Defaults\tenv_reset\nroot\tALL=(ALL:ALL) ALL\n"}

PROCEDURES = [
    # -- permissions ----------------------------------------------------------------------------
    Procedure(
        "perm-chmod-a-plus-w", rule=PERM, script="chmod a+w /opt/customers.db", proc="chmod", files=DATA
    ),
    Procedure(
        "perm-chmod-R-777-varlog",
        rule=PERM,
        script="chmod -R 777 /var/log",
        proc="chmod",
        shell="bash",
        how="run",
    ),
    Procedure(
        "perm-python-chmod-passwd",
        rule=PERM,
        script="python3 -c \"import os; os.chmod('/etc/passwd', 0o666)\"",
        proc="python3",
    ),
    Procedure("perm-chown-shadow", rule=PERM, script="chown nobody /etc/shadow", proc="chown", how="run"),
    # -- accounts -------------------------------------------------------------------------------
    Procedure("acct-passwd-lock", rule=ACCOUNT, script="passwd -l root", proc="passwd"),
    Procedure(
        "acct-chpasswd-root",
        rule=ACCOUNT,
        script="echo root:Winter2026 | chpasswd",
        proc="chpasswd",
        shell="bash",
        how="run",
    ),
    Procedure(
        "acct-usermod-expire", rule=ACCOUNT, script="usermod --expiredate 1 nobody", proc="usermod", how="run"
    ),
    # -- destruction ----------------------------------------------------------------------------
    Procedure(
        "destroy-shred", rule=DESTROY, script="shred -u -n 1 /opt/customers.db", proc="shred", files=DATA
    ),
    Procedure(
        "destroy-dd-zero",
        rule=DESTROY,
        script="dd if=/dev/zero of=/opt/customers.db bs=1 count=$(stat -c %s /opt/customers.db)",
        proc="dd",
        shell="bash",
        how="run",
        files=DATA,
    ),
    # -- encryption for impact ------------------------------------------------------------------
    Procedure(
        "encrypt-find-exec",
        rule=ENCRYPT,
        script="find /opt -type f -exec openssl enc -aes-256-cbc -pbkdf2 -k pw -in {} -out {}.enc \\;",
        proc="sh",
        files=DATA,
    ),
    Procedure(
        "encrypt-bash-loop",
        rule=ENCRYPT,
        script='for f in /opt/*; do openssl enc -aes-256-cbc -pbkdf2 -k pw -in "$f" -out "$f.x" && rm -f "$f"; done',
        proc="bash",
        shell="bash",
        how="run",
        files=DATA,
    ),
    Procedure(
        "encrypt-mv-locked",
        rule=ENCRYPT,
        script="mv /opt/notes.txt /opt/notes.txt.locked",
        proc="mv",
        files=DATA,
    ),
    # -- proxies and tunnels --------------------------------------------------------------------
    Procedure(
        "tunnel-ssh-D", rule=TUNNEL, script="ssh -N -o ConnectTimeout=1 -D 1080 u@10.0.0.5", proc="ssh"
    ),
    Procedure(
        "tunnel-cloudflared-missing",
        rule=TUNNEL,
        script="nohup ./cloudflared tunnel --url localhost:8080 >/dev/null 2>&1 &",
        proc="sh",
        how="run",
        techniques=("T1572",),
    ),
    Procedure(
        "tunnel-http-proxy-env",
        rule=TUNNEL,
        script="export http_proxy=127.0.0.1:3128; curl -s -m 2 http://example.com",
        proc="bash",
        shell="bash",
        techniques=("T1090.001",),
    ),
    # -- brute force ----------------------------------------------------------------------------
    Procedure(
        "brute-sshpass-loop",
        rule=BRUTE,
        script=(
            "printf 'root:toor\\nadmin:admin\\n' > /tmp/c.txt; for up in $(cat /tmp/c.txt); do "
            'sshpass -p "${up#*:}" ssh -o StrictHostKeyChecking=no "${up%%:*}"@localhost id; done'
        ),
        proc="bash",
        shell="bash",
        techniques=("T1110.004",),
    ),
    Procedure(
        "brute-su-loop",
        rule=BRUTE,
        script="for p in 123456 password toor; do echo $p | su nobody -c id; done",
        proc="sh",
        how="run",
        techniques=("T1110.001",),
    ),
    # -- sudo -----------------------------------------------------------------------------------
    Procedure("sudo-list", rule=SUDO, script="sudo -l ; sudo -n true", proc="sh"),
    Procedure(
        "sudo-timestamp-timeout",
        rule=SUDO,
        script="sed -i 's/env_reset.*$/env_reset,timestamp_timeout=-1/' /etc/sudoers",
        proc="bash",
        shell="bash",
        how="run",
        files=SUDOERS,
    ),
]


@pytest.mark.parametrize("p", PROCEDURES, ids=lambda p: p.id)
def test_procedure_raises_its_alert(p: Procedure, attacks: Any) -> None:
    attacks.check(p)
