"""The sequence models by name: what ``--kind`` and a model file's ``kind`` say."""

from __future__ import annotations

from stockade.anomaly.ngram import DEFAULT_MAX_NGRAMS
from stockade.anomaly.smoothed import DEFAULT_ORDER, KneserNeyModel
from stockade.anomaly.stide import DEFAULT_WINDOW, StideModel
from stockade.anomaly.vocab import DEFAULT_BITS

__all__ = ["DEFAULT_KIND", "KINDS", "Model", "make_model"]

#: any sequence model Stockade has
Model = KneserNeyModel | StideModel
KINDS: dict[str, type[KneserNeyModel] | type[StideModel]] = {
    KneserNeyModel.kind: KneserNeyModel,
    StideModel.kind: StideModel,
}
DEFAULT_KIND = KneserNeyModel.kind
_DEFAULT_ORDERS = {KneserNeyModel.kind: DEFAULT_ORDER, StideModel.kind: DEFAULT_WINDOW}


def make_model(
    kind: str = DEFAULT_KIND,
    order: int | None = None,
    max_ngrams: int = DEFAULT_MAX_NGRAMS,
    bits: int = DEFAULT_BITS,
) -> Model:
    """A new, empty model of `kind` (a key of :data:`KINDS`; order: its default when None; `bits`
    per symbol id: 10 for syscalls, up to 16 for a larger alphabet of names)."""
    return KINDS[kind](_DEFAULT_ORDERS[kind] if order is None else order, max_ngrams, bits)
