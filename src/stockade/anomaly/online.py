"""One workload's sequence model, learned and scored online: the agent's per-workload anomaly model.

The same model family as the offline command (:class:`~stockade.anomaly.smoothed.KneserNeyModel`),
over a workload's behaviour tokens (:mod:`stockade.behavior.tokens`) instead of syscall numbers,
one stream per container (replicas share the model, not the stream):

* **Learning** (the workload in Discover): each container's tokens are cut into windows of
  `window` tokens, each learned with the ``order - 1`` tokens before it as history
  (:meth:`WorkloadModel.learn`); one window in `held_every` is kept out of training
  (:class:`~stockade.anomaly.threshold.HeldOut`) to learn the threshold from.
* **Calibration** (:meth:`WorkloadModel.freeze`, when the workload leaves Discover): the threshold is
  the `quantile` of the held-out windows' scores, never below `min_threshold` bits (a workload
  that did little while learning would otherwise alert on its first new word).
* **Scoring** (Monitor and Protect), once the model was trained on at least `min_tokens` tokens
  (:attr:`WorkloadModel.ready`; less is too little behaviour to call anything unusual): after
  each token, the last `window` tokens of its container (once it has that many; a stream goes on
  from where its learning ended) are scored (:meth:`WorkloadModel.score`): their mean surprisal
  in bits per token. A window above the threshold that holds a rare token (one the model gives
  less than ``2**-rare_bits`` in its context: never seen for the workload, or as good as never in
  that context) is anomalous; its most unusual part (the least expected token with the history it
  was predicted from) is the evidence. A token the workload never showed at all is marked
  ``never_seen`` (rare-event scoring: a parent-child pair, a peer or a port new to the workload).
  Once a window alerts, the `window` windows that still hold its least expected token do not
  alert again.

Bounded: the model keeps at most `max_ngrams` n-grams and the held-out set at most 500 windows; a
container's stream is `window + order` tokens. Not thread-safe: the caller holds a lock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from stockade.anomaly import modelfile
from stockade.anomaly.interface import Calibration
from stockade.anomaly.smoothed import KneserNeyModel
from stockade.anomaly.threshold import HeldOut, calibrate
from stockade.anomaly.vocab import MAX_BITS
from stockade.errors import Location

__all__ = ["MEMO_SIZE", "OnlineSettings", "Verdict", "WorkloadModel"]

#: windows whose scores a model remembers (then it starts again)
MEMO_SIZE = 65536


@dataclass(frozen=True, slots=True)
class OnlineSettings:
    """The knobs of an online model (config ``anomaly:``)."""

    order: int = 3
    window: int = 4
    quantile: float = 0.99
    min_threshold: float = 3.0
    max_ngrams: int = 20_000
    held_every: int = 5
    #: tokens trained on before the model scores anything (too little behaviour: no model)
    min_tokens: int = 20
    #: an anomalous window holds a token at least this unlikely (bits: 10 is 1 in 1,024)
    rare_bits: float = 10.0


class Verdict(NamedTuple):
    """A scored window: its score and the threshold, its most unusual part, whether the newest
    token was never seen, and whether it is anomalous (and not a repeat of an alerted window)."""

    score: float
    threshold: float
    unusual: tuple[str, ...]
    never_seen: bool
    anomalous: bool
    window: tuple[str, ...]


@dataclass(slots=True)
class _Stream:
    history: deque[str]
    pending: list[str] = field(default_factory=list)
    recent: deque[str] = field(default_factory=deque)
    quiet: int = 0


class WorkloadModel:
    """One workload's model (module docstring)."""

    def __init__(self, settings: OnlineSettings | None = None, model: KneserNeyModel | None = None) -> None:
        self.settings = s = settings or OnlineSettings()
        self.model = model or KneserNeyModel(order=s.order, max_ngrams=s.max_ngrams, bits=MAX_BITS)
        self.held = HeldOut(every=s.held_every, keep=500)
        self._streams: dict[str, _Stream] = {}
        self.learned = 0
        self._frozen = model is not None
        #: window -> its score (:meth:`_window`), emptied when the model changes
        self._memo: dict[tuple[str, ...], tuple[float, int, float]] = {}

    @property
    def ready(self) -> bool:
        """Whether the model learned enough to score (`min_tokens` trained on)."""
        return self.trained >= self.settings.min_tokens

    @property
    def trained(self) -> int:
        """Tokens trained on (learned, less the held-out windows and a window being filled)."""
        return int(self.model.counts.symbols)

    @property
    def threshold(self) -> float | None:
        """The alert threshold (None until calibrated)."""
        c = self.model.calibration
        return c.threshold if c is not None else None

    def _stream(self, container: str) -> _Stream:
        st = self._streams.get(container)
        if st is None:
            o = self.model.order
            st = self._streams[container] = _Stream(
                deque(maxlen=o - 1), recent=deque(maxlen=o - 1 + self.settings.window)
            )
        return st

    def forget(self, container: str) -> None:
        """A container is gone: its stream with it."""
        self._streams.pop(container, None)

    def learn(self, container: str, token: str) -> None:
        """Learn one token of a container's stream."""
        st = self._stream(container)
        st.pending.append(token)
        self.learned += 1
        if len(st.pending) < self.settings.window:
            return
        seq = [*st.history, *st.pending]
        if not self.held.offer(seq, len(st.history)):
            self.model.observe(seq, len(st.history))
            self._frozen = False
        st.history.extend(st.pending)
        st.pending.clear()

    def freeze(self) -> Calibration:
        """Ready the model to score, with the threshold learned from the held-out windows.

        Each container's last tokens that did not fill a window yet are trained on too (a partial
        window): a workload that leaves Discover keeps everything it showed."""
        for st in self._streams.values():
            if st.pending:
                self.model.observe([*st.history, *st.pending], len(st.history))
                st.history.extend(st.pending)
                st.pending.clear()
        self.model.freeze()
        self._frozen = True
        self._memo.clear()
        floor = self.settings.min_threshold
        if self.held.windows:
            got = self.held.calibrate(self.model, self.settings.quantile)
            cal = Calibration(max(got.threshold, floor), got.quantile, got.scores, got.method)
        elif self.model.calibration is not None:
            cal = self.model.calibration  # learned before (a model read back): nothing new to learn it from
        else:
            cal = calibrate([floor], self.settings.quantile, "no held-out window yet: the floor")
        self.model.calibration = cal
        for st in self._streams.values():  # scoring goes on from where each container's learning was
            st.recent.extend(st.history)
        return cal

    def score(self, container: str, token: str) -> Verdict:
        """Score the window that `token` ends in its container's stream (module docstring)."""
        if not self._frozen or self.model.calibration is None:
            self.freeze()
        threshold = self.threshold or self.settings.min_threshold
        st = self._stream(container)
        st.recent.append(token)
        seq = tuple(st.recent)
        never = not self.model.counts.vocab.knows(token)
        if len(seq) < self.settings.window:  # a stream's first tokens: scored with the ones after
            return Verdict(0.0, threshold, (), never, False, seq)
        start = len(seq) - self.settings.window
        score, worst, rarest = self._window(seq, start)
        lo = max(0, start + worst - self.model.order + 1)
        unusual = tuple(seq[lo : start + worst + 1])
        over = score > threshold and rarest >= self.settings.rare_bits
        alert = over and st.quiet == 0
        if alert:
            st.quiet = self.settings.window - 1
        elif st.quiet:
            st.quiet -= 1
        return Verdict(score, threshold, unusual, never, alert, seq[start:])

    def _window(self, seq: tuple[str, ...], start: int) -> tuple[float, int, float]:
        """(mean surprisal, index of the least expected token after `start`, its surprisal), each
        window remembered until the model changes (a workload's windows repeat)."""
        got = self._memo.get(seq)
        if got is None:
            s = self.model.surprisals(seq, start)
            worst = max(range(len(s)), key=s.__getitem__)
            got = (sum(s) / len(s), worst, s[worst])
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[seq] = got
        return got

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the model (and its threshold) to `path` (atomically)."""
        modelfile.save(self.model, path)

    @classmethod
    def load(cls, path: str | Path, settings: OnlineSettings | None = None) -> WorkloadModel:
        """A model saved by :meth:`save` (ModelFileError when the file is not one)."""
        model = modelfile.load(path)
        if not isinstance(model, KneserNeyModel):
            raise modelfile.ModelFileError(f"a {model.kind} model, not kneser-ney", Location(str(path)))
        return cls(settings, model)
