"""Online anomaly scoring per workload: the sequence model of each workload's behaviour tokens.

Zero trust (:class:`stockade.runtime.zerotrust.ZeroTrust`) hands every event of a workload here:

* in **Discover** its token (:func:`stockade.behavior.tokens.token_of`, the peer named as the
  workload at that address when one is known) is learned into the workload's
  :class:`~stockade.anomaly.online.WorkloadModel`, in its container's stream;
* when the workload leaves Discover the model is frozen, its threshold learned from the held-out
  windows, and it is saved (``<data_dir>/anomaly/<workload id, quoted>.json.gz``, read back at
  start);
* in **Monitor** and **Protect** each token is scored with the last ones of its container, and a
  window above the threshold is an alert, :data:`ANOMALY_RULE`, with the unusual part of the
  sequence, the score, the threshold, and the ATT&CK techniques the unusual token's kind suggests.

What reaches Python from a container the eBPF sensor learns in the kernel is each operation the
first time the container does it (repeats are counted in the kernel, docs/sensor-ebpf.md): the
tokens are the container's new behaviour, in the order it first showed it. A workload's normal
traffic, once seen, costs nothing here; what it never did before is scored.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stockade.anomaly.online import OnlineSettings, Verdict, WorkloadModel
from stockade.behavior.ops import Operation
from stockade.behavior.tokens import ATTACK, kind_of, token_of, token_of_op
from stockade.config import AnomalyConfig
from stockade.errors import StockadeError
from stockade.model.alert import Alert
from stockade.runtime.deviations import FACTS

__all__ = ["ANOMALY_RULE", "OnlineAnomaly", "anomaly_alert"]

log = logging.getLogger("stockade.anomaly")

ANOMALY_RULE = "Anomalous workload behaviour"
_TAGS = ["stockade", "anomaly", "workload_behaviour"]
_SUFFIX = ".json.gz"

PeerOf = Callable[[str], str | None]


def anomaly_alert(
    data: dict[str, Any], workload: str, v: Verdict, hostname: str, time_ns: int, model: str
) -> Alert:
    """The alert for an anomalous window of a workload's behaviour."""
    facts = {k: data[k] for k in FACTS if data.get(k) is not None}
    worst = v.unusual[-1] if v.unusual else v.window[-1]
    # what the least expected token and the newest one suggest (a scan's newest is one more connect)
    techniques = list(dict.fromkeys(t for tok in (worst, v.window[-1]) for t in ATTACK.get(kind_of(tok), ())))
    proc = facts.get("proc.name") or facts.get("proc.exepath") or "?"
    where = facts.get("container.name") or facts.get("container.id") or "host"
    seen = "never seen for this workload" if v.never_seen else "seen, not in this order"
    output = (
        f"Anomalous behaviour in workload {workload}: {v.score:.1f} bits per token > threshold "
        f"{v.threshold:.1f} (least expected: {worst}; {seen}) sequence: {' -> '.join(v.unusual)} "
        f"(process {proc} pid {facts.get('proc.pid', '?')}, container {where})"
    )
    fields = {
        **facts,
        "stockade.workload": workload,
        "stockade.anomaly.score": round(v.score, 3),
        "stockade.anomaly.threshold": round(v.threshold, 3),
        "stockade.anomaly.sequence": list(v.unusual),
        "stockade.anomaly.window": list(v.window),
        "stockade.anomaly.token": v.window[-1],
        "stockade.anomaly.never_seen": v.never_seen,
        "stockade.anomaly.model": model,
    }
    return Alert(
        time_ns=time_ns,
        rule=ANOMALY_RULE,
        priority="Warning",
        output=output,
        output_fields=fields,
        source="syscall",
        tags=[*_TAGS, *techniques],
        hostname=hostname,
        workload=workload,
    )


class OnlineAnomaly:
    """The workloads' online models (module docstring). Thread-safe."""

    def __init__(self, cfg: AnomalyConfig, data_dir: str | None, hostname: str) -> None:
        self.cfg = cfg
        self.settings = OnlineSettings(
            order=cfg.order,
            window=cfg.window,
            quantile=cfg.quantile,
            min_threshold=cfg.min_threshold_bits,
            max_ngrams=cfg.max_ngrams,
            min_tokens=cfg.min_tokens,
            rare_bits=cfg.rare_bits,
        )
        self.dir = Path(data_dir, "anomaly") if data_dir else None
        self.hostname = hostname
        self.models: dict[str, WorkloadModel] = {}
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._model_name = f"kneser-ney order {cfg.order}, window {cfg.window}"

    def _path(self, workload: str) -> Path | None:
        return self.dir / (urllib.parse.quote(workload, safe="") + _SUFFIX) if self.dir else None

    def load(self) -> None:
        """Read the models saved by an earlier run (a file that cannot be read is reported, skipped)."""
        if self.dir is None or not self.dir.is_dir():
            return
        for f in sorted(self.dir.glob("*" + _SUFFIX)):
            wid = urllib.parse.unquote(f.name[: -len(_SUFFIX)])
            try:
                self.models[wid] = WorkloadModel.load(f, self.settings)
            except StockadeError as e:
                self.stats["load_errors"] += 1
                log.warning("anomaly model of %s not loaded: %s", wid, e)

    def _model(self, workload: str) -> WorkloadModel:
        m = self.models.get(workload)
        if m is None:
            m = self.models[workload] = WorkloadModel(self.settings)
        return m

    def learn(self, workload: str, container: str, data: dict[str, Any], peer_of: PeerOf | None) -> None:
        """Learn an event of a workload in Discover."""
        token = token_of(data, peer_of)
        if token is None:
            return
        with self._lock:
            self._model(workload).learn(container, token)
        self.stats["learned"] += 1

    def score(
        self,
        workload: str,
        container: str,
        data: dict[str, Any],
        op: Operation,
        peer_of: PeerOf | None,
        time_ns: int,
    ) -> list[Alert]:
        """Score an event of a workload in Monitor or Protect (`op`: its operation); its alert
        when anomalous."""
        token = token_of_op(op, peer_of)
        with self._lock:
            m = self.models.get(workload)
            if m is None or not m.ready:
                self.stats["unlearned"] += 1  # too little learned to call anything unusual
                return []
            v = m.score(container, token)
        self.stats["scored"] += 1
        if not v.anomalous:
            return []
        self.stats["alerts"] += 1
        return [anomaly_alert(data, workload, v, self.hostname, time_ns, self._model_name)]

    def mode_changed(self, workload: str, old: str | None, new: str) -> None:
        """Leaving Discover: freeze, calibrate and save the workload's model."""
        if old != "discover" or new == "discover":
            return
        with self._lock:
            m = self.models.get(workload)
            if m is None:
                return
            cal = m.freeze()
            log.info("anomaly model of %s: threshold %.2f bits (%s)", workload, cal.threshold, cal.method)
            self._save(workload, m)

    def forget(self, container: str) -> None:
        """A container is gone."""
        with self._lock:
            for m in self.models.values():
                m.forget(container)

    def _save(self, workload: str, m: WorkloadModel) -> None:
        path = self._path(workload)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            m.save(path)
        except OSError as e:
            self.stats["save_errors"] += 1
            log.warning("anomaly model of %s not saved to %s: %s", workload, path, e)

    def save(self) -> None:
        """Save every model (at close)."""
        with self._lock:
            for wid, m in self.models.items():
                if m.learned or m.threshold is not None:
                    self._save(wid, m)

    def describe(self, workload: str) -> dict[str, Any] | None:
        """What the workload's model is (for `workloads show`)."""
        with self._lock:
            m = self.models.get(workload)
            if m is None:
                return None
            return {
                "model": self._model_name,
                "tokens_learned": m.learned,
                "tokens_trained": m.trained,
                "min_tokens": self.settings.min_tokens,
                "ready": m.ready,
                "vocabulary": len(m.model.counts.vocab),
                "threshold_bits": m.threshold,
                "held_out_windows": len(m.held.windows),
            }

    def status(self) -> dict[str, Any]:
        """Counters and the number of models."""
        with self._lock:
            return {"models": len(self.models), "counters": dict(self.stats)}
