"""Runtime-aware vulnerabilities: what runs here, which of its vulnerable packages are really used,
which workloads are exposed, ranked; the emergency question; the reaction.

Every ``vulnerabilities.interval_s`` a round (:meth:`VulnWatch.tick`, in the ``stockade-vulns``
thread) catalogs each running container (:class:`~stockade.inventory.assets.AssetScanner`: a walk
only for a new image or changed upper layer) and each podman image; the host is cataloged in its
own thread every ``host_interval_s``. Each asset's packages are matched against the advisory
database; for a running container, the packages its processes use (executable and
``/proc/<pid>/maps``: :mod:`stockade.inventory.loaded`; files the sensor saw opened:
:class:`~stockade.inventory.opens.OpenTracker`) and the ports it listens on
(:mod:`stockade.inventory.exposure`) make the context the ranking
(:mod:`stockade.vulns.priority`) scores.

**Reaction** (``vulnerabilities.react``): a running container with a finding at or above the
severity, loaded and exposed (as required), raises :data:`RULE` once per finding while it lasts;
with ``action: isolate`` the container is isolated (the responder's ``isolate``, recorded like
any response action) until a round finds it no longer affected: the isolation is then lifted
(``unisolate``, recorded). Every reaction is also an audit record of kind ``vulnerability``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Final

from stockade.behavior.workload import workload_of_event
from stockade.config import StockadeConfig
from stockade.errors import StockadeError, UsageError
from stockade.inventory.assets import Asset, AssetScanner, podman_images
from stockade.inventory.exposure import listening_ports
from stockade.inventory.loaded import used_files
from stockade.inventory.opens import HOST, OpenTracker
from stockade.inventory.versionspec import VersionSpec
from stockade.model.alert import Alert
from stockade.model.errorlog import ErrorLog
from stockade.model.package import Finding, Package
from stockade.sensor.containers.discover import RunningContainer, running_containers
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.storage.advisories import AdvisoryStore
from stockade.vulns.match import match_packages
from stockade.vulns.priority import Context, Loader, Ranked, at_least, by_workload, order, rank
from stockade.vulns.versions import compare

__all__ = ["RULE", "RULE_NAMES", "NoVulnWatch", "VulnWatch"]

log = logging.getLogger("stockade.vulns")

#: the builtin rule of the reaction (mutable like any rule)
RULE: Final = "Vulnerable package loaded and exposed"
RULE_NAMES: Final = frozenset({RULE})
_PRIORITY = {"CRITICAL": "Critical", "HIGH": "Error", "MEDIUM": "Warning", "LOW": "Notice"}

Matcher = Callable[[Sequence[Package]], list[Finding]]
Emit = Callable[[list[Alert]], object]
Audit = Callable[[str, str, dict[str, Any], str], None]


class NoVulnWatch(StockadeError):
    """A vulnerabilities request to an instance that watches nothing (no sensor, or disabled)."""

    http_status = 409
    problem_type = "no-vulnerabilities"
    title = "Running workloads are not watched here"


def advisory_matcher(store: Any) -> Matcher:
    """Matching against the store's advisory database (stockade.vulns.match)."""
    db = AdvisoryStore(store)

    def run(packages: Sequence[Package]) -> list[Finding]:
        return match_packages(list(packages), db)

    return run


class VulnWatch:
    """The node's assets, their ranked findings and the reaction (module docstring)."""

    def __init__(
        self,
        cfg: StockadeConfig,
        emit: Emit,
        *,
        matcher: Matcher | None = None,
        store: Any = None,
        tracker: OpenTracker | None = None,
        scanner: AssetScanner | None = None,
        responder: Any = None,
        audit: Audit | None = None,
        discover: Callable[[], list[RunningContainer]] = running_containers,
        resolver: ContainerResolver | None = None,
        images: Callable[[], list[tuple[str, str]]] = podman_images,
    ) -> None:
        self.cfg = cfg
        self.vc = cfg.vulnerabilities
        self.emit = emit
        self.store = store
        self._matcher = matcher
        self.tracker = tracker
        self.scanner = scanner or AssetScanner(
            hostname=cfg.hostname, host_root=self.vc.host_root, host_skip=self.vc.host_skip
        )
        self.responder = responder
        self.audit = audit
        self._discover = discover
        self.resolver = resolver or ContainerResolver()
        self._images = images
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: asset id -> asset, as of the latest round (the host's from its own thread)
        self.assets: dict[str, Asset] = {}
        self._host: Asset | None = None
        #: the images' assets (their own thread), and the images running containers use
        self._image_assets: dict[str, Asset] = {}
        self._in_use: set[str] = set()
        self._first_round = threading.Event()
        self.ranked: list[Ranked] = []
        self._ranked_by: dict[str, list[Ranked]] = {}
        #: container id -> the finding ids reacted to (alerted) while they last
        self.reacted: dict[str, set[str]] = {}
        #: containers this watch isolated
        self.isolated: set[str] = set()
        self.rounds = 0
        self.stats: Counter[str] = Counter()
        self.errors = ErrorLog("vulnerabilities", logger="stockade.vulns")
        self.round_done = threading.Condition()

    # -- start and stop --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the rounds (and the host's walks) in their threads."""
        t = threading.Thread(target=self._run, name="stockade-vulns", daemon=True)
        t.start()
        self._threads.append(t)
        if self.vc.images:
            i = threading.Thread(target=self._run_images, name="stockade-vulns-images", daemon=True)
            i.start()
            self._threads.append(i)
        if self.vc.host:
            h = threading.Thread(target=self._run_host, name="stockade-vulns-host", daemon=True)
            h.start()
            self._threads.append(h)

    def close(self) -> None:
        """Stop (a walk under way is killed: a stop takes no longer than a round's other work)."""
        self._stop.set()
        self.scanner.close()
        for t in self._threads:
            t.join(timeout=10)
        self._threads = []

    def _walk_failed(self, what: str) -> None:
        """A walk failed: reported, unless the stop killed it."""
        if not self._stop.is_set():
            self.errors.report(what)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception as e:  # the next round runs: counted and reported
                self.stats["failed_rounds"] += 1
                self.errors.report(f"{type(e).__name__}: {e}")
            self._stop.wait(max(0.0, self.vc.interval_s - (time.monotonic() - started)))

    def _run_host(self) -> None:
        while not self._stop.is_set():
            try:
                host = self.scanner.host()
                with self._lock:
                    self._host = host
                self._save([host])
            except Exception as e:
                self._walk_failed(f"host: {type(e).__name__}: {e}")
            self._stop.wait(self.vc.host_interval_s)

    def matcher(self) -> Matcher:
        """The advisory matcher (made on first use)."""
        if self._matcher is None:
            if self.store is None:
                raise UsageError("no store to read advisories from")
            self._matcher = advisory_matcher(self.store)
        return self._matcher

    # -- one round -------------------------------------------------------------------------------
    def tick(self) -> list[Ranked]:
        """Catalog, match, rank and react once; the ranked findings. Each container's findings
        are published as soon as it is ranked (a first round over many containers takes a while)."""
        listed_at = time.monotonic()
        running = self._discover()
        # the newest containers first (the highest pids): those not cataloged yet, most likely
        running.sort(key=lambda rc: -max(rc.pids, default=0))
        with self._lock:
            assets = {aid: a for aid, a in self.assets.items() if not aid.startswith("container:")}
            assets.update(self._image_assets)
            if self._host is not None:
                assets[self._host.id] = self._host
            per_asset = {aid: rs for aid, rs in self._ranked_by.items() if aid in assets}
        for a in assets.values():
            per_asset[a.id] = self._rank([a])
        for rc in running:
            try:
                a = self._container(rc)
            except StockadeError as e:
                self._walk_failed(f"container {rc.full_id[:12]}: {e}")
                continue
            assets[a.id] = a
            per_asset[a.id] = self._rank([a])
            self._publish(assets, per_asset, final=False)
        with self._lock:
            self._in_use = {a.image for a in assets.values() if a.image}
        if self.tracker is not None:
            self.tracker.forget({rc.full_id for rc in running}, listed_at)
        ranked = self._publish(assets, per_asset, final=True)
        self._save([a for a in assets.values() if a.kind != "host"])
        self._react(ranked, {rc.full_id for rc in running})
        self._first_round.set()
        with self.round_done:
            self.round_done.notify_all()
        return ranked

    def _publish(
        self, assets: dict[str, Asset], per_asset: dict[str, list[Ranked]], *, final: bool
    ) -> list[Ranked]:
        """Make the assets and their ranked findings the ones served (merged with the previous
        round's containers until the round is `final`)."""
        with self._lock:
            if final:
                self.assets, self._ranked_by = dict(assets), dict(per_asset)
                self.rounds += 1
            else:
                self.assets = {**self.assets, **assets}
                self._ranked_by = {**self._ranked_by, **per_asset}
            ranked = sorted((r for rs in self._ranked_by.values() for r in rs), key=order)
            self.ranked = ranked
        return ranked

    def _run_images(self) -> None:
        # after the first round: the images of running containers are known, and walked first
        self._first_round.wait(self.vc.interval_s * 3)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.scan_images()
            except Exception as e:
                self.errors.report(f"images: {type(e).__name__}: {e}")
            self._stop.wait(max(0.0, self.vc.interval_s - (time.monotonic() - started)))

    def scan_images(self) -> None:
        """The named images (those of running containers first); at most
        ``image_walks_per_round`` new walks a round, the others' last catalogs kept."""
        try:
            images = self._images()
        except StockadeError as e:
            self.errors.report(f"images: {e}")
            return
        with self._lock:
            in_use = set(self._in_use)
            before = dict(self._image_assets)
        images.sort(key=lambda i: (i[1] not in in_use, i[1]))
        assets: dict[str, Asset] = {}
        walks = 0
        for image_id, ref in images:
            aid = f"image:{image_id}"
            known = before.get(aid)
            if not self.scanner.has(f"image:{image_id}"):
                if walks >= self.vc.image_walks_per_round:
                    if known is not None:
                        assets[aid] = known
                    self.stats["images_deferred"] += 1
                    continue
                walks += 1
            try:
                assets[aid] = self.scanner.image(image_id, ref)
            except StockadeError as e:
                self._walk_failed(f"image {ref}: {e}")
            with self._lock:
                self._image_assets = {**before, **assets}
        with self._lock:
            self._image_assets = assets

    def _container(self, rc: RunningContainer) -> Asset:
        info = self.resolver.by_id(rc.full_id, rc.runtime)
        workload = workload_of_event(info.fields()).id if info.complete else None
        # a process whose root can be read (the first may be a runtime's helper, gone meanwhile)
        pid = next((p for p in rc.pids if os.path.isdir(f"/proc/{p}/root/")), rc.pid)
        return self.scanner.container(
            rc.full_id,
            pid,
            pids=rc.pids,
            name=info.name,
            image=info.image,
            image_id=info.image_id,
            upperdir=info.upperdir,
            workload=workload,
        )

    def loaders(self, asset: Asset) -> dict[tuple[str, str, str, str], list[Loader]]:
        """Per package (key and path), the processes of a running asset that use it."""
        out: dict[tuple[str, str, str, str], list[Loader]] = {}
        index = asset.index

        def add(path: str, ld: Loader) -> None:
            for p in index.lookup(path):
                lst = out.setdefault((*p.key, p.path), [])
                if len(lst) < 16 and ld not in lst:
                    lst.append(ld)

        for pid in asset.pids:
            for uf in used_files(pid):
                add(uf.path, Loader(uf.pid, uf.comm, uf.via, uf.path))
        if self.tracker is not None:
            cid = asset.id.split(":", 1)[1] if asset.kind == "container" else HOST
            for path, o in self.tracker.opened(cid).items():
                add(path, Loader(o.pid, o.comm, "open", path))
        return out

    def _rank(self, assets: list[Asset]) -> list[Ranked]:
        items: list[tuple[Finding, Context]] = []
        matcher = self.matcher()
        for a in assets:
            findings = matcher(a.packages)
            if not findings:
                continue
            running = a.kind in ("container", "host")
            loaders = self.loaders(a) if a.kind == "container" or (a.kind == "host" and self.tracker) else {}
            exposed = tuple(listening_ports(a.pids[0])) if a.kind == "container" and a.pids else ()
            exposed = tuple(f"{p} listening" for p in exposed)
            for f in findings:
                p = f.package
                ctx = Context(
                    a.id,
                    a.workload,
                    a.name,
                    running,
                    tuple(loaders.get((*p.key, p.path), ())),
                    exposed,
                )
                items.append((f, ctx))
        return rank(items)

    def _save(self, assets: list[Asset]) -> None:
        if self.store is None or not assets:
            return
        from stockade.storage.packages import PackageSetStore

        rows = [
            {
                "asset": a.id,
                "kind": a.kind,
                "name": a.name,
                "image": a.image,
                "workload": a.workload,
                "scan_key": a.key,
                "scanned_ns": a.scanned_ns,
                "running": a.kind != "image",
                "packages": [p.as_dict() for p in a.packages],
                "errors": [list(e) for e in a.errors],
            }
            for a in assets
        ]
        try:
            ps = PackageSetStore(self.store)
            ps.save(rows)
            ps.mark_gone(
                {a.id for a in assets if a.kind == "container"} | {a.id for a in self.assets.values()}
            )
        except StockadeError as e:
            self.errors.report(str(e))

    # -- the reaction ----------------------------------------------------------------------------
    def _qualifies(self, r: Ranked) -> bool:
        rc = self.vc.react
        return (
            r.context.asset.startswith("container:")
            and at_least(r.finding.severity, rc.severity)
            and (r.loaded or not rc.require_loaded)
            and (r.exposed or not rc.require_exposed)
        )

    def _react(self, ranked: list[Ranked], running: set[str]) -> None:
        rc = self.vc.react
        if not rc.enabled:
            return
        now: dict[str, list[Ranked]] = {}
        for r in ranked:
            if self._qualifies(r):
                now.setdefault(r.context.asset.split(":", 1)[1], []).append(r)
        alerts: list[Alert] = []
        for cid, rs in now.items():
            seen = self.reacted.setdefault(cid, set())
            new = [r for r in rs if r.finding.id not in seen]
            for r in new:
                seen.add(r.finding.id)
                alerts.append(self._alert(r))
                self._record("alerted", cid, r)
            if rc.action == "isolate" and cid not in self.isolated and self.responder is not None:
                self._isolate(cid, rs[0])
        for cid in [c for c in self.reacted if c not in now]:
            if cid in running:
                self._record("fixed", cid, None)
            if cid in self.isolated and cid in running:
                self._lift(cid)
            self.isolated.discard(cid)
            del self.reacted[cid]
        if alerts:
            self.stats["alerts"] += len(alerts)
            self.emit(alerts)

    def _alert(self, r: Ranked) -> Alert:
        f, c = r.finding, r.context
        cid = c.asset.split(":", 1)[1]
        who = ", ".join(sorted({f"{ld.comm}[{ld.pid}]" for ld in c.loaded_by})) or "-"
        output = (
            f"{f.severity} {f.id} in {f.package.name} {f.package.version} is loaded by {who} in container "
            f"{c.name or cid[:12]} that is exposed ({', '.join(c.exposed_by) or '-'}); "
            f"fixed in {', '.join(f.fixed) or 'no release yet'} (score {r.score:g})"
        )
        return Alert(
            time_ns=time.time_ns(),
            rule=RULE,
            priority=_PRIORITY.get(f.severity.upper(), "Warning"),
            output=output,
            output_fields={
                "container.id": cid[:12],
                "container.full_id": cid,
                "container.name": c.name,
                "vuln.id": f.id,
                "vuln.aliases": list(f.aliases),
                "vuln.severity": f.severity,
                "vuln.fixed": list(f.fixed) or None,
                "package.name": f.package.name,
                "package.version": f.package.version,
                "package.purl": f.package.purl,
                "package.path": f.package.path,
                "vuln.score": r.score,
                "vuln.loaded_by": [ld.as_dict() for ld in c.loaded_by],
                "vuln.exposed_by": list(c.exposed_by),
            },
            source="vulnerabilities",
            tags=["vulnerability", "runtime"],
            hostname=self.cfg.hostname,
            workload=c.workload,
        )

    def _record(self, what: str, cid: str, r: Ranked | None) -> None:
        if self.audit is None:
            return
        data: dict[str, Any] = {"action": what, "container": cid}
        if r is not None:
            data.update(
                {"id": r.finding.id, "package": r.finding.package.name, "version": r.finding.package.version}
            )
        self.audit("vulnerability", cid[:12], data, "vulnerabilities")

    def _isolate(self, cid: str, r: Ranked) -> None:
        try:
            out = self.responder.act(
                "isolate",
                cid,
                actor="vulnerabilities",
                allow=self.vc.react.allow,
                reason=f"{r.finding.id} in {r.finding.package.name} loaded and exposed",
            )
        except StockadeError as e:
            self.errors.report(f"isolate {cid[:12]}: {e}")
            return
        if getattr(out, "ok", False):
            self.isolated.add(cid)
            self.stats["isolated"] += 1
        else:
            self.errors.report(f"isolate {cid[:12]}: {getattr(out, 'detail', out)}")

    def _lift(self, cid: str) -> None:
        try:
            out = self.responder.act("unisolate", cid, actor="vulnerabilities", reason="no longer affected")
        except StockadeError as e:
            self.errors.report(f"unisolate {cid[:12]}: {e}")
            return
        if getattr(out, "ok", False):
            self.stats["lifted"] += 1

    # -- views (the API's) -----------------------------------------------------------------------
    def vulnerabilities(self, workload: str | None = None) -> dict[str, Any]:
        """The ranked findings overall and per workload (of one workload with `workload`)."""
        with self._lock:
            ranked = list(self.ranked)
            rounds = self.rounds
        if workload is not None:
            ranked = [r for r in ranked if workload in (r.context.workload, r.context.asset, r.context.name)]
        groups = by_workload(ranked)
        return {
            "items": [r.as_dict() for r in ranked],
            "total": len(ranked),
            "workloads": [
                {
                    "workload": w,
                    "top_score": rs[0].score,
                    "findings": len(rs),
                    "items": [r.as_dict() for r in rs],
                }
                for w, rs in sorted(groups.items(), key=lambda kv: -kv[1][0].score)
            ],
            "rounds": rounds,
        }

    def find(self, package: str, version: str | None = None) -> dict[str, Any]:
        """Every asset holding `package` (by name, any ecosystem; a purl prefix also matches),
        of a version in the range `version`, with where it is and who uses it."""
        if not package.strip():
            raise UsageError("package: give a package name (log4j-core, bottle, openssl) or a purl")
        spec = VersionSpec.parse(version) if version else None
        want = package.strip().lower()
        with self._lock:
            assets = list(self.assets.values())
            rounds = self.rounds
        items: list[dict[str, Any]] = []
        for a in assets:
            hits = [p for p in a.packages if _named(p, want)]
            if spec is not None:
                hits = [p for p in hits if spec.matches(p.ecosystem, p.version, compare)]
            if not hits:
                continue
            loaders = self.loaders(a) if a.kind == "container" else {}
            for p in hits:
                who = loaders.get((*p.key, p.path), [])
                items.append(
                    {
                        "asset": a.id,
                        "kind": a.kind,
                        "name": a.name,
                        "image": a.image,
                        "workload": a.workload,
                        "package": p.name,
                        "version": p.version,
                        "ecosystem": p.ecosystem,
                        "purl": p.purl,
                        "path": p.path,
                        "loaded": bool(who) if a.kind == "container" else None,
                        "loaded_by": [ld.as_dict() for ld in who],
                    }
                )
        items.sort(
            key=lambda i: ({"container": 0, "image": 1, "host": 2}.get(i["kind"], 3), i["name"], i["path"])
        )
        return {"package": package, "version": version, "items": items, "total": len(items), "rounds": rounds}

    def status(self) -> dict[str, Any]:
        """What `stockade status` shows of it."""
        with self._lock:
            kinds = Counter(a.kind for a in self.assets.values())
            return {
                "rounds": self.rounds,
                "assets": dict(kinds),
                "findings": len(self.ranked),
                "reacting_to": len(self.reacted),
                "isolated": sorted(c[:12] for c in self.isolated),
                "scanner": dict(self.scanner.stats),
                "opens": self.tracker.status() if self.tracker is not None else None,
                "counters": dict(self.stats),
                "errors": self.errors.errors,
            }


def _named(p: Package, want: str) -> bool:
    if want.startswith("pkg:"):
        return p.purl.lower().startswith(want)
    return p.name.lower() == want or p.name.lower().replace("_", "-") == want.replace("_", "-")
