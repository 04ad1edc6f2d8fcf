"""Hijacked execution, start-up hooks, trust and authentication changes, keystroke logging and
process memory, performed for real in podman containers with the eBPF sensor (rules of
src/stockade/rules/builtin/stockade_35_hijack.yaml): the linker's preload file and LD_PRELOAD
(T1574.006), Python start-up hooks (T1546.018), a root certificate (T1553.004), PAM (T1556.003),
keystroke logging (T1056.001) and /proc/<pid>/mem, maps and environ (T1003.007, T1055.009). Each
rule gets several ways of doing it, through `podman exec` and as the container's own command, with
sh (dash) and bash; the alert's rule, container and process are checked."""

from __future__ import annotations

from typing import Any

import pytest

from attack_harness import Procedure

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

PRELOAD = "Dynamic Linker Preload Configured in Container"
LD_ENV = "Library Preloaded from Writable Directory in Container"
PYHOOK = "Python Startup Hook Written in Container"
CA = "Root Certificate Installed in Container"
KEYLOG = "Keystroke Logging Configured in Container"
PAM = "PAM Configuration Modified in Container"
MEM_W = "Process Memory Written via Proc in Container"
MEM_R = "Process Memory Read via Proc in Container"
MAPS = "Process Memory Map Read of Another Process in Container"

#: not a real certificate: the rules look at where it goes, not what it is
FAKE_CA = {"/root/corpCA.crt": "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"}
PAM_SU = {"/etc/pam.d/su-l": "auth include su\naccount include su\nsession include su\n"}

PROCEDURES = [
    # -- the linker's configuration and environment ----------------------------------------------
    Procedure("ldpre-echo", rule=PRELOAD, script="echo /tmp/hk.so > /etc/ld.so.preload", proc="sh"),
    Procedure(
        "ldpre-tee-run",
        rule=PRELOAD,
        script="printf '/dev/shm/x.so\\n' | tee -a /etc/ld.so.preload >/dev/null",
        proc="tee",
        shell="bash",
        how="run",
    ),
    Procedure(
        "ldpre-mv-conf-d",
        rule=PRELOAD,
        script="echo /tmp/lib > /tmp/zz.conf && mv /tmp/zz.conf /etc/ld.so.conf.d/zz.conf",
        proc="mv",
        shell="bash",
    ),
    Procedure("ldenv-ls", rule=LD_ENV, script="LD_PRELOAD=/tmp/hk.so ls /", proc="ls", shell="bash"),
    Procedure("ldenv-cmdline-run", rule=LD_ENV, script="LD_PRELOAD=/tmp/hk.so ls /", proc="sh", how="run"),
    Procedure("ldenv-env-audit", rule=LD_ENV, script="env LD_AUDIT=/dev/shm/a.so id", proc="env"),
    Procedure(
        "ldenv-export-libpath",
        rule=LD_ENV,
        script="export LD_LIBRARY_PATH=/var/tmp/.l\nwhoami",
        proc="whoami",
        shell="bash",
        how="run",
    ),
    # -- Python start-up hooks ----------------------------------------------------------------
    Procedure(
        "pyhook-usercustomize",
        rule=PYHOOK,
        script=(
            'U=$(python3 -c "import site; print(site.getusersitepackages())")\n'
            'mkdir -p "$U"\necho "import os" > "$U/usercustomize.py"\npython3 -c pass'
        ),
        proc="sh",
    ),
    Procedure(
        "pyhook-pth-python-run",
        rule=PYHOOK,
        script=(
            'mkdir -p /usr/local/lib/python3.11/dist-packages && python3 -c "open('
            "'/usr/local/lib/python3.11/dist-packages/zz_hook.pth', 'w').write('import os\\n')\""
        ),
        proc="python3",
        shell="bash",
        how="run",
    ),
    Procedure(
        "pyhook-cp-sitecustomize",
        rule=PYHOOK,
        script="echo 'import os' > /tmp/s.py; cp /tmp/s.py /usr/lib/python3/dist-packages/sitecustomize.py",
        proc="cp",
        shell="bash",
    ),
    # -- root certificate -----------------------------------------------------------------------
    Procedure(
        "ca-mv-local",
        rule=CA,
        script="mkdir -p /usr/local/share/ca-certificates && mv /root/corpCA.crt /usr/local/share/ca-certificates/",
        proc="mv",
        files=FAKE_CA,
    ),
    Procedure(
        "ca-append-bundle-run",
        rule=CA,
        script="mkdir -p /etc/ssl/certs; cat /root/corpCA.crt >> /etc/ssl/certs/ca-certificates.crt",
        proc="bash",
        shell="bash",
        how="run",
        files=FAKE_CA,
    ),
    Procedure(
        "ca-ln-hash",
        rule=CA,
        script="cp /root/corpCA.crt /tmp/c.pem; ln -sf /tmp/c.pem /etc/ssl/certs/1a2b3c4d.0",
        proc="ln",
        files=FAKE_CA,
    ),
    # -- PAM -------------------------------------------------------------------------------------
    Procedure(
        "pam-sed-su-l",
        rule=PAM,
        script='sed -i "1s,^,auth sufficient pam_succeed_if.so uid >= 0\\n,g" /etc/pam.d/su-l',
        proc="sed",
        files=PAM_SU,
    ),
    Procedure(
        "pam-module-run",
        rule=PAM,
        script="mkdir -p /usr/lib64/security && cp /bin/true /usr/lib64/security/pam_evil.so",
        proc="cp",
        shell="bash",
        how="run",
    ),
    Procedure(
        "pam-append-permit",
        rule=PAM,
        script="echo 'auth sufficient pam_permit.so' >> /etc/pam.d/su-l",
        proc="bash",
        shell="bash",
        files=PAM_SU,
    ),
    # -- keystroke logging ----------------------------------------------------------------------
    Procedure(
        "keylog-pam-tty-audit",
        rule=KEYLOG,
        script='echo "session required pam_tty_audit.so enable=* log_passwd" >> /etc/pam.d/su-l',
        proc="sh",
        files=PAM_SU,
    ),
    Procedure(
        "keylog-prompt-command-run",
        rule=KEYLOG,
        script="PROMPT_COMMAND='history -a >(tee -a ~/.bash_history | logger -t keys)'\necho \"$PROMPT_COMMAND\"",
        proc="bash",
        shell="bash",
        how="run",
    ),
    Procedure("keylog-script-flush", rule=KEYLOG, script="script -q -f -c true /tmp/.s.log", proc="script"),
    # -- process memory -------------------------------------------------------------------------
    Procedure(
        "memw-sh-self",
        rule=MEM_W,
        script="exec 3<>/proc/self/mem; echo done",
        proc="sh",
        techniques=("T1055.009",),
    ),
    Procedure(
        "memw-python-run",
        rule=MEM_W,
        script="python3 -c \"f = open('/proc/self/mem', 'r+b'); print(f)\"",
        proc="python3",
        shell="bash",
        how="run",
    ),
    Procedure(
        "memr-dd",
        rule=MEM_R,
        script=(
            "sleep 120 & P=$!\nsleep 1\ndd if=/proc/$P/mem of=/tmp/o.bin ibs=1 skip=4194304 count=64 2>/dev/null"
            "\nkill $P; true"
        ),
        proc="dd",
    ),
    Procedure(
        "memr-python-run",
        rule=MEM_R,
        script="python3 -c \"import os; f = open('/proc/%d/mem' % os.getpid(), 'rb'); print(f)\"",
        proc="python3",
        shell="bash",
        how="run",
    ),
    Procedure(
        "maps-grep-heap",
        rule=MAPS,
        script="sleep 120 & P=$!\nsleep 1\ngrep heap /proc/$P/maps; kill $P; true",
        proc="grep",
        shell="bash",
    ),
    Procedure(
        "maps-environ-run",
        rule=MAPS,
        script="sleep 120 & P=$!\nsleep 1\ncat /proc/$P/environ | tr '\\0' '\\n'; kill $P; true",
        proc="cat",
        how="run",
    ),
]


@pytest.mark.parametrize("p", PROCEDURES, ids=lambda p: p.id)
def test_procedure_raises_its_alert(p: Procedure, attacks: Any) -> None:
    attacks.check(p)
