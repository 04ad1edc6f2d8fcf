"""The eBPF sensor backend: exec/fork/exit and the syscalls the rules need, from one ring buffer.

``start(evttypes)`` loads the CO-RE object (built by scripts/build-bpf.sh), enables in the kernel
only the syscalls the event types need (adaptive selection: any other syscall returns after one
array lookup), ignores the sensor's own process in the kernel, attaches only the BTF tracepoints
needed and maps the ring buffer. ``poll()`` decodes the records available in one batch straight
from the ring buffer's memory. Records the kernel could not write (ring buffer full) are counted
per CPU in the kernel and reported in ``stats.lost["ringbuf_full"]``; syscalls whose arguments
could not be remembered (in-flight table full) in ``stats.lost["inflight_full"]``.

``drop_failed`` names the syscalls whose failed calls the kernel drops before they reach the ring
buffer (a prefilter: no loaded rule can match them, see :mod:`stockade.rules.prefilter`);
``interest`` says which calls on a path no loaded rule cares about it drops (the interest filter,
:mod:`stockade.rules.interest`, encoded by :mod:`stockade.sensor.ebpf.pathfilter`; replaced live by
:meth:`EbpfBackend.set_interest`). Both are counted per syscall in ``stats.filtered`` and per cause
in ``stats.filtered_by_cause``, apart from the losses.

**Learning** (``learning=True``, the default): :meth:`EbpfBackend.set_watched` names the cgroups
(cgroup2 ids: :func:`stockade.sensor.containers.cgroup.cgroup2_id`) whose behaviour is being
learned or monitored, live. For those, each distinct operation (an open's path and access, an
exec's program, arguments and parent, a connect's peer, a bind or listen port, an accept's peer, a
privileged syscall: :data:`~stockade.sensor.ebpf.syscalls.LEARN_KEYS`) reaches user space once,
``_novel: True``, even where the filters above would drop it; its repeats are dropped where they
would (counted per syscall in ``stats.filtered`` and as ``learned_repeat`` in
``stats.filtered_by_cause``) and delivered ``_novel: False`` where a rule wants them. The syscalls of
:data:`~stockade.sensor.ebpf.syscalls.LEARNING_EVTTYPES` the rules do not need are followed for
watched cgroups only, while some cgroup is watched: the runtime starts the backend with what the
rules need, as before. With WATCH_SYSCALLS, every syscall a cgroup makes is recorded in the kernel
(:meth:`EbpfBackend.syscalls_used`). docs/sensor-ebpf.md, "Learning", says what it costs.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from stockade.rules.interest import InterestPlan, Target
from stockade.sensor.ebpf import libbpf as lb
from stockade.sensor.ebpf import pathfilter
from stockade.sensor.ebpf.build import find_object
from stockade.sensor.ebpf.events import Decoder
from stockade.sensor.ebpf.learning import LEARNED_BASE, KernelLearning
from stockade.sensor.ebpf.ringbuf import RingBuffer
from stockade.sensor.ebpf.syscalls import (
    ALL_TYPES,
    BY_NR,
    EXEC_TYPES,
    FORK_TYPES,
    LEARN_KEYS,
    LEARNING_EVTTYPES,
    OFF_SPEC,
    PATH_TARGETS,
    SYSCALLS,
    spec_bytes,
    supported_arch,
)
from stockade.sensor.interface import (
    WATCH_LEARN,
    Backend,
    BackendContext,
    BackendStats,
    Capabilities,
    Role,
    SensorError,
)

if TYPE_CHECKING:
    from typing import Self

__all__ = ["EbpfBackend"]

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
#: fields the eBPF backend cannot fill
MISSING_FIELDS = frozenset(
    {
        "proc.exe_ino",
        "proc.is_exe_from_memfd",
        "thread.cap_effective",
    }
)
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
SW_EXEC, SW_FORK, SW_EXIT, SW_CWD, SW_WAKEUP = 0, 1, 2, 3, 4
#: switches of what an exec record holds besides: the environment, the standard fds (newer objects)
SW_ENV, SW_STDIO = 8, 9
#: the fields that need the environment read at exec (proc.env[NAME] is a proc.env field too)
ENV_FIELDS = frozenset({"proc.env", "evt.arg.env"})
#: the fields that need the standard fds looked at on exec
STDIO_FIELDS = frozenset(
    f"proc.{fd}.{what}" for fd in ("stdin", "stdout", "stderr") for what in ("type", "name")
)


def needs(fields: frozenset[str] | None, wanted: frozenset[str]) -> bool:
    """Whether rules reading `fields` (None: not known, so yes) read one of `wanted` (or an
    indexed form of one: ``proc.env[HISTFILE]``)."""
    if fields is None:
        return True
    return any(f in wanted or f.split("[", 1)[0] in wanted for f in fields)


DROP_CAUSES = ("ringbuf_full", "inflight_full")
#: the `filtered` map: failed calls at the syscall's number, calls on an uninteresting path here after
_INTEREST_BASE = 512
#: the number of each syscall with a learning key
_LEARNED_NRS = frozenset(SYSCALLS[n].nr for n in LEARN_KEYS)
#: the size of the `seen` map by default (learning keys held; docs/sensor-ebpf.md, "Learning")
SEEN_ENTRIES = 65536


def _selection(
    want: frozenset[str], cwd: bool, wakeup_bytes: int
) -> tuple[set[str], dict[str, bool], dict[int, int]]:
    """For the event types `want`: the syscalls to follow, the programs to load and the switches."""
    exec_on = bool(want & EXEC_TYPES)
    fork_on = bool(want & FORK_TYPES)
    exit_on = "procexit" in want
    # syscalls to follow: the wanted ones, plus exec/fork syscalls that name their events
    calls = {n for n in want if n in SYSCALLS}
    if exec_on:
        calls |= EXEC_TYPES
    if fork_on:
        calls |= FORK_TYPES
    sys_on = bool(calls)
    progs = {
        "sys_enter": sys_on,
        "sys_exit": sys_on,
        "sched_exec": exec_on or sys_on,
        "sched_fork": fork_on,
        "sched_exit": exit_on or sys_on,
    }
    switches = {SW_EXEC: exec_on, SW_FORK: fork_on, SW_EXIT: exit_on, SW_CWD: cwd, SW_WAKEUP: wakeup_bytes}
    return calls, progs, {k: int(v) for k, v in switches.items()}


def _exec_extras(env: bool, stdio: bool) -> dict[int, int]:
    """The switches of what an exec record holds besides (only those on: an object that predates
    them has no room for them)."""
    return {k: 1 for k, on in ((SW_ENV, env), (SW_STDIO, stdio)) if on}


def _attach(obj: lb.BpfObject, progs: dict[str, bool]) -> list[str]:
    """Attach the programs turned on; their names."""
    for prog, on in progs.items():
        if on:
            try:
                obj.attach(prog)
            except lb.BpfError as e:
                raise SensorError(f"eBPF: attaching {prog} failed: {e}") from e
    return [p for p, on in progs.items() if on]


class EbpfBackend(Backend):
    """Events from BTF tracepoints (raw_syscalls sys_enter/sys_exit, sched exec/fork/exit).

    `ringbuf_bytes`: ring buffer size (power of two); `wakeup_bytes`: wake the reader when this much
    is waiting (0: on each record once it has caught up) and otherwise every `poll_interval_s`;
    `ignore_self`: drop this process's own syscalls in the kernel; `cwd`: resolve proc.cwd on exec;
    `env`: read the environment on exec (proc.env, evt.arg.env); `stdio`: what the standard fds
    are on exec (proc.stdin/stdout/stderr .type and .name);
    `drop_failed`: syscalls whose failed calls the kernel drops and counts in `stats.filtered`;
    `interest`: the calls on paths no rule cares about that the kernel drops (counted likewise);
    `learning`: learning in the kernel for the cgroups of :meth:`set_watched`, whose distinct
    operations `seen_entries` keys remember (module docstring).
    """

    name = "ebpf"
    title = "eBPF"
    role: ClassVar[Role] = "primary"
    prefilters_failed = True
    learns_in_kernel = True
    interest_targets: ClassVar[Mapping[str, Target]] = {n: t.target for n, t in PATH_TARGETS.items()}

    def __init__(
        self,
        *,
        object_path: str | None = None,
        ringbuf_bytes: int = 16 << 20,
        wakeup_bytes: int = 256 << 10,
        poll_interval_s: float = 0.01,
        max_batch: int = 16384,
        ignore_self: bool = True,
        cwd: bool = True,
        env: bool = True,
        stdio: bool = True,
        drop_failed: Collection[str] = (),
        interest: InterestPlan | None = None,
        learning: bool = True,
        seen_entries: int = SEEN_ENTRIES,
    ) -> None:
        self.stats = BackendStats()
        self.object_path = object_path
        self.ringbuf_bytes = ringbuf_bytes
        self.wakeup_bytes = wakeup_bytes
        self.poll_interval_s = poll_interval_s
        self.max_batch = max_batch
        self.ignore_self = ignore_self
        self.cwd = cwd
        self.env = env
        self.stdio = stdio
        self.drop_failed = frozenset(drop_failed)
        self.interest = interest if interest is not None else InterestPlan()
        self.evttypes: frozenset[str] = frozenset()
        self.attached: list[str] = []
        self._obj: lb.BpfObject | None = None
        self._rb: RingBuffer | None = None
        self._drops_fd = -1
        self._filtered_fd = -1
        #: syscall number -> name, for the syscalls whose failed calls the kernel drops
        self._filtering: dict[int, str] = {}
        #: syscall number -> name, for the syscalls the interest filter drops calls of
        self._path_filtering: dict[int, str] = {}
        self._calls: set[str] = set()
        self._pf_keys: tuple[list[bytes], list[bytes]] = ([], [])
        self._ignored_fd = -1
        self._ncpu = 1
        self._decoder: Decoder | None = None
        self._last_stats = 0.0
        self.learning = learning
        self.seen_entries = seen_entries
        #: the learning maps (None: before start, learning off, or an object without them)
        self._learning: KernelLearning | None = None
        #: what set_watched asked for (applied at start when asked before)
        self._watch: dict[int, int] = {}
        #: what set_watched_parents asked for
        self._parents: dict[int, int] = {}
        #: the syscalls followed for learning only, while some cgroup is watched for learning
        self._learn_only: frozenset[str] = frozenset()
        #: the interest filter's classes the specs have now
        self._path_classes: dict[str, int] = {}
        #: some cgroup was watched for learning since start (its counters are read)
        self._learned = False

    # -- capability ------------------------------------------------------------------------------

    @classmethod
    def from_context(cls, ctx: BackendContext) -> Self:
        """Dropping in the kernel the failed calls and the paths the plan says no rule can match."""
        return cls(
            drop_failed=ctx.drop_failed,
            interest=ctx.interest,
            env=needs(ctx.fields, ENV_FIELDS),
            stdio=needs(ctx.fields, STDIO_FIELDS),
        )

    @staticmethod
    def probe() -> Capabilities:
        """x86_64, root, the kernel's BTF, the built program, and maps the kernel lets us create."""

        def no(reason: str) -> Capabilities:
            return Capabilities("ebpf", False, reason)

        if not supported_arch():
            return no(f"no syscall table for {os.uname().machine} (x86_64 only)")
        if os.geteuid() != 0:
            return no("needs root (CAP_BPF and CAP_PERFMON)")
        if not os.path.exists(VMLINUX_BTF):
            return no(f"{VMLINUX_BTF} missing: the kernel has no BTF, CO-RE cannot work")
        obj = find_object()
        if obj is None:
            return no("the eBPF program is not built (run scripts/build-bpf.sh)")
        try:
            why = lb.can_create_maps()
        except SensorError as e:
            return no(str(e))
        if why:
            return no(why)
        return Capabilities("ebpf", True, "", frozenset(ALL_TYPES), MISSING_FIELDS)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, evttypes: set[str] | None = None) -> None:
        """Load the program, enable in the kernel the syscalls `evttypes` need, attach, map the ring buffer."""
        if self._obj is not None:
            return
        want = frozenset(ALL_TYPES) if evttypes is None else frozenset(evttypes) & ALL_TYPES
        self.evttypes = want
        path = self.object_path or (str(p) if (p := find_object()) is not None else None)
        if path is None:
            raise SensorError("eBPF: the program is not built (run scripts/build-bpf.sh)")
        calls, progs, switches = _selection(want, self.cwd, self.wakeup_bytes)
        obj = lb.BpfObject(path)
        try:
            obj.set_max_entries("events", self.ringbuf_bytes)
            obj.set_max_entries("scratch_map", lb.possible_cpus())
            loads, learn = self._loads(obj, progs)
            for prog in obj.programs():
                obj.set_autoload(prog, loads.get(prog, False))
            try:
                obj.load()
            except lb.BpfError as e:
                raise SensorError(f"eBPF: loading {path} failed: {e}") from e
            self._configure(obj, calls, switches)
            self._rb = RingBuffer(obj.map_fd("events"), obj.map_max_entries("events"))
            boot = time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)
            self._decoder = Decoder(boot, want | LEARNING_EVTTYPES if learn else want)
            self.attached = _attach(obj, progs)
            if learn:
                self._learning = KernelLearning(obj, self._ncpu)
                self._filtered_fd = obj.map_fd("filtered")
        except BaseException:
            if self._rb is not None:
                self._rb.close()
                self._rb = None
            obj.close()
            raise
        self._obj = obj
        if self._watch or self._parents:
            self._rewatch()

    def _loads(self, obj: lb.BpfObject, progs: dict[str, bool]) -> tuple[dict[str, bool], bool]:
        """The programs to load (those attached at start, and for learning the syscall programs,
        attached when a cgroup is watched), and whether the kernel learns (an object built before
        learning existed cannot: learning is off, said once)."""
        loads = dict(progs)
        if not self.learning:
            return loads, False
        try:
            obj.set_max_entries("seen", self.seen_entries)
        except lb.BpfError:
            self.stats.error("kernel learning off: the eBPF program predates it (run scripts/build-bpf.sh)")
            return loads, False
        loads.update({"sys_enter": True, "sys_exit": True})
        return loads, True

    def _configure(self, obj: lb.BpfObject, calls: set[str], switches: dict[int, int]) -> None:
        """Fill the loaded program's maps: which syscalls it follows (and prefilters), its switches,
        the sensor's own pid to ignore."""
        self._filtering = self._prefilter(obj, calls)
        self._calls = calls
        self._write_specs(obj, {})
        if self.interest.active:
            self._load_interest(obj, self.interest)
        sw = obj.map_fd("switches")
        for idx, val in switches.items():
            lb.map_update(sw, _U32.pack(idx), _U32.pack(val))
        for idx, val in _exec_extras(self.env, self.stdio).items():
            try:
                lb.map_update(sw, _U32.pack(idx), _U32.pack(val))
            except lb.BpfError:
                self.stats.error(
                    "proc.env and proc.stdin/stdout/stderr off: the eBPF program predates them "
                    "(run scripts/build-bpf.sh)"
                )
                break
        self._ignored_fd = obj.map_fd("ignored")
        if self.ignore_self:
            lb.map_update(self._ignored_fd, _U32.pack(os.getpid()), b"\x01")
        self._drops_fd = obj.map_fd("drops")
        self._ncpu = lb.possible_cpus()

    def _prefilter(self, obj: lb.BpfObject, calls: set[str]) -> dict[int, str]:
        """The syscalls (number -> name) whose failed calls the kernel is to drop."""
        if not calls & self.drop_failed:
            return {}
        try:
            self._filtered_fd = obj.map_fd("filtered")
        except lb.BpfError:
            # an object built before the prefilter existed: it ignores the flag, so nothing is dropped
            self.stats.error("kernel prefilter off: the eBPF program predates it (run scripts/build-bpf.sh)")
            return {}
        return {SYSCALLS[n].nr: n for n in calls & self.drop_failed}

    def _write_specs(self, obj: lb.BpfObject, path_classes: dict[str, int]) -> None:
        """Which syscalls the program follows (for the rules, or for learning only), and what it
        drops of each."""
        self._path_classes = path_classes
        specs_fd = obj.map_fd("specs")
        for name, sc in SYSCALLS.items():
            if name in self._calls:
                row = spec_bytes(sc, sc.nr in self._filtering, path_classes.get(name, 0))
            elif name in self._learn_only:
                row = spec_bytes(sc, learn_only=True)
            else:
                row = OFF_SPEC
            lb.map_update(specs_fd, _U32.pack(sc.nr), row)

    def _load_interest(self, obj: lb.BpfObject, plan: InterestPlan) -> None:
        """Fill the interest filter's maps, then turn it on for the syscalls the plan drops."""
        try:
            fwd_fd, rev_fd, bits_fd = (obj.map_fd(m) for m in ("pf_fwd", "pf_rev", "pf_bits"))
            self._filtered_fd = obj.map_fd("filtered")
        except lb.BpfError:
            self.stats.error(
                "kernel interest filter off: the eBPF program predates it (run scripts/build-bpf.sh)"
            )
            return
        maps = pathfilter.encode(plan)
        for fd, entries in ((fwd_fd, maps.fwd), (rev_fd, maps.rev)):
            for key, mask in entries.items():
                lb.map_update(fd, key, _U32.pack(mask))
        lb.map_update(bits_fd, _U32.pack(0), maps.bits)
        self._pf_keys = (list(maps.fwd), list(maps.rev))
        classes = {n: c for n, c in plan.classes.items() if c and n in self._calls and n in PATH_TARGETS}
        self._path_filtering = {SYSCALLS[n].nr: n for n in classes}
        self._write_specs(obj, classes)

    def set_interest(self, plan: InterestPlan) -> None:
        """Replace the interest filter while running (after a rule reload): off first, so that no
        call is dropped by a mix of the old and the new plan, then the new maps, then on."""
        self.interest = plan
        obj = self._obj
        if obj is None:
            return
        self._write_specs(obj, {})
        for name, keys in zip(("pf_fwd", "pf_rev"), self._pf_keys, strict=True):
            fd = obj.map_fd(name)
            for key in keys:
                lb.map_delete(fd, key)
        self._pf_keys = ([], [])
        self._path_filtering = {}
        if plan.active:
            self._load_interest(obj, plan)

    # -- learning --------------------------------------------------------------------------------

    def set_watched(self, cgroup_ids: Mapping[int, int]) -> None:
        """Watch exactly these cgroups (cgroup2 id -> WATCH_LEARN | WATCH_SYSCALLS), live: a cgroup
        no longer given is back to the filters alone, and its syscall bitmap is gone (read
        :meth:`syscalls_used` first). Before start, applied at start. A cgroup watched again (after
        it was not) sees each of its operations as new once more."""
        self._watch = {int(c): int(f) for c, f in cgroup_ids.items() if f}
        self._rewatch()

    def set_watched_parents(self, cgroup_ids: Mapping[int, int]) -> None:
        """Watch by ancestor, live (replacing the set): a process whose own cgroup is not given to
        :meth:`set_watched` but one of whose ancestors (cgroup2 levels 1 to 6) is given here
        (cgroup2 id -> WATCH_LEARN | WATCH_SYSCALLS) is watched with those flags, keyed by its own
        cgroup id (its keys, :meth:`learned_repeats`, :meth:`syscalls_used`) as if it were listed:
        a container started under a parent is learned from its first call, before it is known.
        Parents: :func:`stockade.sensor.containers.discover.parent_dirs`. Before start, applied at
        start. Any change drops the counters of the cgroups learned through a parent only."""
        self._parents = {int(c): int(f) for c, f in cgroup_ids.items() if f}
        self._rewatch()

    def _rewatch(self) -> None:
        """Apply :meth:`set_watched` and :meth:`set_watched_parents` to the kernel."""
        lrn, obj = self._learning, self._obj
        if lrn is None or obj is None:
            return
        before = lrn.learning
        after = any(f & WATCH_LEARN for f in (*self._watch.values(), *self._parents.values()))
        if before and not after:  # off: no learn-only syscall first, then the maps
            self._learn_only = frozenset()
            self._write_specs(obj, self._path_classes)
        if self._watch or self._parents:  # the syscall programs run for a watched cgroup
            self.attached += _attach(obj, {p: p not in self.attached for p in ("sys_enter", "sys_exit")})
        lrn.apply(self._watch)
        lrn.apply_parents(self._parents)
        if after and not before:  # on: the maps first, then the learn-only syscalls
            self._learned = True
            self._learn_only = frozenset(LEARN_KEYS) - self._calls
            self._write_specs(obj, self._path_classes)

    @property
    def watched(self) -> dict[int, int]:
        """The cgroups watched now (cgroup2 id -> flags)."""
        return dict(self._learning.watched) if self._learning is not None else {}

    @property
    def watched_parents(self) -> dict[int, int]:
        """The parents watched now (cgroup2 id -> flags given to the cgroups below them)."""
        return dict(self._learning.parents) if self._learning is not None else {}

    @property
    def learning_active(self) -> bool:
        """Whether the kernel learns for the cgroups of :meth:`set_watched` (started, `learning` on,
        and a program built with it)."""
        return self._learning is not None

    @property
    def learning_only(self) -> frozenset[str]:
        """The syscalls followed now for the watched cgroups only (the rules do not need them)."""
        return self._learn_only

    def forget_seen(self, cgroup_id: int) -> None:
        """Make every operation of watched cgroup `cgroup_id` new again (its profile was reset)."""
        if self._learning is not None:
            self._learning.forget(cgroup_id)

    def learned_repeats(self, cgroup_id: int) -> int:
        """The repeats of watched cgroup `cgroup_id` since it was watched: its calls whose learning
        key was seen (dropped, or delivered ``_novel: False`` for the rules). A learner that skips the
        repeats adds the increase to its counts (``Learner.repeated``)."""
        return self._learning.repeats(cgroup_id) if self._learning is not None else 0

    def syscalls_used(self, cgroup_id: int) -> set[str]:
        """The syscalls (x86_64 names) cgroup `cgroup_id`, watched with WATCH_SYSCALLS, made since."""
        return self._learning.syscalls(cgroup_id) if self._learning is not None else set()

    def learning_stats(self, count_seen: bool = True) -> dict[str, int]:
        """The kernel's learning counters (:meth:`KernelLearning.stats`); empty when learning is off."""
        return self._learning.stats(count_seen) if self._learning is not None else {}

    def ignore_pid(self, pid: int) -> None:
        """Drop the events of process `pid` in the kernel (e.g. a helper of the sensor)."""
        if self._ignored_fd >= 0:
            lb.map_update(self._ignored_fd, _U32.pack(pid), b"\x01")

    def close(self) -> None:
        """Read the last loss counters, detach and unload (safe twice)."""
        if self._obj is None:
            return
        try:
            self._read_drops()
        except SensorError:
            pass
        obj, self._obj = self._obj, None
        self._learning = None
        for link in obj.links:
            link.destroy()
        if self._rb is not None:
            self._rb.close()
            self._rb = None
        obj.close()
        self.attached = []

    # -- reading ---------------------------------------------------------------------------------

    def _decode_error(self, e: Exception) -> None:
        """A record we cannot read is counted, never fatal."""
        self.stats.error(f"decode: {type(e).__name__}: {e}")

    def poll(self, timeout_s: float = 0.1) -> list[dict[str, Any]]:
        """The records waiting in the ring buffer, decoded (at most `max_batch`)."""
        rb = self._rb
        dec = self._decoder
        if rb is None or dec is None:
            raise SensorError("eBPF backend: not started")
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while not rb.pending():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            rb.wait(min(left, self.poll_interval_s))
        out: list[dict[str, Any]] = []
        rb.consume(dec.decode, out, self.max_batch, self._decode_error)
        self.stats.events += len(out)
        if dec.facts:
            self.stats.incomplete.update(dec.facts)
            dec.facts.clear()
        now = time.monotonic()
        if now - self._last_stats >= 0.25:
            self._last_stats = now
            self._read_drops()
        return out

    def _percpu_sum(self, fd: int, idx: int) -> int:
        raw = lb.map_lookup(fd, _U32.pack(idx), 8 * self._ncpu)
        return 0 if raw is None else sum(v for (v,) in _U64.iter_unpack(raw))

    def _read_drops(self) -> None:
        """Copy the kernel's per-CPU loss counters into stats.lost, the prefilter's into stats.filtered."""
        if self._drops_fd < 0:
            return
        for idx, cause in enumerate(DROP_CAUSES):
            if total := self._percpu_sum(self._drops_fd, idx):
                self.stats.lost[cause] = total
        if self._filtered_fd < 0:
            return
        by_cause = {"failed_call": 0, "no_interest": 0, "learned_repeat": 0}
        learned = _LEARNED_NRS if self._learned else frozenset()
        for nr in self._filtering.keys() | self._path_filtering.keys() | learned:
            failed = self._percpu_sum(self._filtered_fd, nr) if nr in self._filtering else 0
            path = self._percpu_sum(self._filtered_fd, _INTEREST_BASE + nr)
            repeats = self._percpu_sum(self._filtered_fd, LEARNED_BASE + nr) if nr in learned else 0
            by_cause["failed_call"] += failed
            by_cause["no_interest"] += path
            by_cause["learned_repeat"] += repeats
            if failed + path + repeats:
                self.stats.filtered[BY_NR[nr].name] = failed + path + repeats
        for cause, n in by_cause.items():
            if n:
                self.stats.filtered_by_cause[cause] = n

    def refresh_stats(self) -> BackendStats:
        """Read the loss and filter counters now (poll() does it at most 4 times a second)."""
        self._read_drops()
        return self.stats

    @property
    def dropping_failed(self) -> frozenset[str]:
        """The syscalls whose failed calls the kernel drops now (empty before start)."""
        return frozenset(self._filtering.values())

    @property
    def dropping_paths(self) -> dict[str, int]:
        """The syscalls whose calls on uninteresting paths the kernel drops now, with the classes."""
        return {n: self.interest.classes[n] for n in self._path_filtering.values()}

    @property
    def undecodable(self) -> int:
        """Records the decoder could not read so far."""
        return self._decoder.undecodable if self._decoder is not None else 0
