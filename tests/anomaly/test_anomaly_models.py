"""The sequence models on sequences whose answers are known: Kneser-Ney probabilities sum to one,
what was never seen scores higher than what was, the cap holds, and the threshold comes from normal
sequences the model did not see."""

from __future__ import annotations

import math
import random

import pytest

from stockade.anomaly.kinds import make_model
from stockade.anomaly.metrics import auc, detection_at
from stockade.anomaly.ngram import NgramCounts, pack, unpack
from stockade.anomaly.smoothed import KneserNeyModel, discounts
from stockade.anomaly.stide import StideModel
from stockade.anomaly.threshold import HeldOut, out_of_fold, quantile
from stockade.anomaly.training import train
from stockade.anomaly.vocab import DEFAULT_BITS, UNKNOWN, Vocabulary, capacity
from stockade.errors import UsageError

#: a loop of a small server: accept, read, (stat, open, read, close)*, write, close
LOOP = [43, 3, 195, 5, 3, 6, 195, 5, 3, 6, 4, 6]


def normal_traces(n: int = 40, seed: int = 7) -> list[list[int]]:
    """Traces of LOOP repeated, with a little normal variation (an extra read, a skipped stat)."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        t: list[int] = []
        for _ in range(rnd.randint(3, 8)):
            loop = list(LOOP)
            if rnd.random() < 0.3:
                loop.insert(2, 3)
            if rnd.random() < 0.2:
                loop.remove(195)
            t += loop
        out.append(t)
    return out


@pytest.fixture(scope="module")
def kn() -> KneserNeyModel:
    m = KneserNeyModel(order=4)
    for t in normal_traces():
        m.observe(t)
    m.freeze()
    return m


def prob(m: KneserNeyModel, history: list[int], symbol: int) -> float:
    return math.pow(2.0, -m.surprisals([*history, symbol], start=len(history))[0])


@pytest.mark.parametrize("history", [[], [43], [43, 3], [3, 6, 4], [195, 5, 3], [999, 998], [6, 6, 6]])
def test_kneser_ney_probabilities_sum_to_one_over_every_symbol_and_the_unknown(
    kn: KneserNeyModel, history: list[int]
) -> None:
    symbols = [s for s in kn.counts.vocab.symbols if isinstance(s, int)]
    unknown = 2**DEFAULT_BITS - len(symbols)  # each symbol never learned (-1 is one) has the same share
    total = sum(prob(kn, history, s) for s in symbols) + unknown * prob(kn, history, -1)
    assert total == pytest.approx(1.0, abs=1e-9)


def test_what_was_seen_is_likelier_than_what_was_not(kn: KneserNeyModel) -> None:
    # after (write, close, accept), read came every time; write never did (a known symbol); 999 never was
    assert prob(kn, [4, 6, 43], 3) > 0.9
    assert 0 < prob(kn, [4, 6, 43], 4) < 0.05
    assert 0 < prob(kn, [4, 6, 43], 999) < prob(kn, [4, 6, 43], 4)


def test_an_injected_unseen_sequence_scores_higher_and_is_shown(kn: KneserNeyModel) -> None:
    normal = LOOP * 4
    attack = LOOP * 2 + [11, 63, 63, 63, 11] + LOOP * 2  # execve, dup2 x3, execve: a reverse shell
    assert kn.score(normal) < 0.5
    assert kn.score(attack) > kn.score(normal) + 1.0
    ws = kn.score_window(attack)
    assert ws.score == pytest.approx(kn.score(attack))
    assert 11 in ws.unusual or 63 in ws.unusual
    assert list(ws.unusual) == attack[ws.start : ws.end]
    assert ws.end - ws.start <= kn.order


def test_smoothing_gives_a_seen_history_a_share_for_the_unseen_and_more_counts_mean_less_surprise() -> None:
    m = KneserNeyModel(order=2)
    m.observe([1, 2] * 3)
    m.freeze()
    few = prob(m, [1], 2)
    m.observe([1, 2] * 30)
    m.freeze()
    assert prob(m, [1], 2) > few > 0.5
    assert 0 < prob(m, [1], 1) < 0.05  # 1 never followed 1: backed off, not zero
    d1, d2, d3 = discounts([1, 1, 1, 2, 2, 3, 4, 9])
    assert 0 < d1 <= 1 and 0 < d2 <= 2 and 0 < d3 <= 3


def test_history_before_start_is_context_only() -> None:
    a = KneserNeyModel(order=3)
    a.observe([1, 2, 3, 4, 5, 6], start=3)  # only the n-grams ending at 4, 5, 6
    assert a.counts.symbols == 3
    assert a.counts.tables[0] == {pack([4]): 1, pack([5]): 1, pack([6]): 1}
    assert pack([2, 3, 4]) in a.counts.tables[2] and pack([1, 2, 3]) not in a.counts.tables[2]
    b = KneserNeyModel(order=3)
    for t in normal_traces(10):
        a.observe(t)
        b.observe(t)
    a.freeze()
    b.freeze()
    seq = LOOP * 3
    assert len(a.surprisals(seq, start=12)) == len(seq) - 12
    assert a.surprisals(seq, start=12) == a.surprisals(seq)[12:]


def test_the_cap_bounds_the_ngrams_and_what_is_not_learned_stays_unseen() -> None:
    m = KneserNeyModel(order=3, max_ngrams=10)
    m.observe(list(range(1, 50)))
    assert m.counts.size == 10
    assert sum(len(t) for t in m.counts.tables) == 10
    assert m.counts.dropped == 49 * 3 - 3 - 10  # every gram of 49 symbols (47 + 48 + 49), less the 10 kept
    m.observe(list(range(1, 50)))  # grams kept go on counting; no new ones
    assert m.counts.size == 10 and m.counts.tables[0][pack([1])] == 2
    m.freeze()
    assert m.score([1, 2, 3]) < m.score([40, 41, 42])


def test_vocabulary_has_a_cap_and_an_unknown_id() -> None:
    v = Vocabulary()
    ids = v.learn(list(range(capacity(DEFAULT_BITS) + 5)))
    assert len(v) == 1023 and ids[-1] == UNKNOWN and ids[0] == 1
    assert v.encode(["never"]) == [UNKNOWN]
    assert unpack(pack([5, 0, 1023]), 3) == [5, 0, 1023]
    assert unpack(pack([5, 0, 65535], 16), 3, 16) == [5, 0, 65535]
    with pytest.raises(ValueError):
        Vocabulary(bits=17)


def test_a_large_alphabet_of_names_takes_more_bits() -> None:
    # a workload's behaviour tokens: more than 1,023 distinct names (every file of a cache folder)
    tokens = [f"open read /var/cache/app/{i}" for i in range(3000)]
    narrow, wide = KneserNeyModel(order=3), KneserNeyModel(order=3, bits=16)
    for m in (narrow, wide):
        for i in range(0, 3000, 100):
            m.observe(["exec /usr/bin/app < /bin/sh", *tokens[i : i + 100], "egress db 5432/tcp"])
        m.freeze()
    assert len(narrow.counts.vocab) == 1023 and len(wide.counts.vocab) == 3002
    history = ["exec /usr/bin/app < /bin/sh", *tokens[2900:2903]]

    def bits(m: KneserNeyModel, token: str) -> float:
        return m.surprisals([*history, token], start=len(history))[0]

    next_file, new_file, shell = tokens[2903], "open read /var/cache/app/new", "exec /bin/sh < /usr/bin/app"
    # past its 1,023 symbols the narrow model sees one "unknown" over and over: novelty is invisible
    assert bits(narrow, next_file) == bits(narrow, new_file) == bits(narrow, shell) < 0.1
    # the wide one learned every name: the next file is expected, a new file or a shell is not
    assert bits(wide, next_file) < 1 < 10 < bits(wide, new_file) == bits(wide, shell)


def test_stide_is_the_share_of_unseen_ngrams() -> None:
    m = StideModel(order=3)
    m.observe([1, 2, 3, 4, 1, 2, 3, 4])
    assert m.score([1, 2, 3, 4]) == 0.0
    assert m.score([1, 2, 3, 9, 1, 2]) == pytest.approx(3 / 4)  # (2,3,9) (3,9,1) (9,1,2) unseen
    assert m.score([2, 3]) == 0.0 and m.score([3, 2]) == 1.0  # shorter than n: one gram of its length
    ws = m.score_window([1, 2, 3, 9, 1, 2])
    assert ws.unusual == (2, 3, 9) and ws.score == pytest.approx(0.75)


def test_the_threshold_comes_from_held_out_normal_scores_only() -> None:
    traces = normal_traces(30)
    trained = train(traces, "kneser-ney", order=4, quantile=0.9, folds=5)
    cal = trained.calibration
    assert cal is not None and cal.scores == 30 and cal.quantile == 0.9
    oof = out_of_fold(lambda: make_model("kneser-ney", 4), traces, 5)
    assert cal.threshold == quantile(oof, 0.9)
    # each sequence was scored by a model that never saw it: a unique trace is surprising out of fold
    unique = [*traces[:9], [7, 8, 9, 10, 11] * 5]
    oof_unique = out_of_fold(lambda: make_model("kneser-ney", 4), unique, 5)
    m = make_model("kneser-ney", 4)
    for t in unique:
        m.observe(t)
    m.freeze()
    assert oof_unique[-1] > 5.0 > 1.0 > m.score(unique[-1])
    with pytest.raises(UsageError, match="at least 5"):
        train(traces[:3])
    assert train(traces[:3], folds=0).calibration is None


def test_online_the_threshold_comes_from_windows_kept_out_of_training() -> None:
    stream = [s for t in normal_traces(20) for s in t]
    model, held = KneserNeyModel(order=4), HeldOut(every=4, keep=10)
    tail: list[int] = []
    trained = learned = 0
    for i in range(0, len(stream), 16):  # windows of 16 syscalls, each with the 3 before it
        window = tail + stream[i : i + 16]
        if not held.offer(window, start=len(tail)):
            model.observe(window, start=len(tail))
            trained += 1
            learned += len(window) - len(tail)
        tail = stream[i + 13 : i + 16]
    assert len(held.windows) == 10 and model.counts.sequences == trained
    assert model.counts.symbols == learned and trained > 3 * 10
    model.freeze()
    cal = held.calibrate(model, 0.9)
    assert cal.scores == 10 and "1 in 4" in cal.method
    assert cal.threshold == quantile([model.score(w, s) for w, s in held.windows], 0.9)
    assert model.score_window([11, 63, 63, 63, 11, 43]).score > cal.threshold
    with pytest.raises(ValueError):
        HeldOut(every=1)


def test_quantile_leaves_the_share_above_it() -> None:
    scores = [float(i) for i in range(1, 101)]
    assert quantile(scores, 0.99) == 99.0 and quantile(scores, 1.0) == 100.0 and quantile(scores, 0.0) == 1.0
    assert sum(s > quantile(scores, 0.95) for s in scores) == 5


def test_auc_and_detection() -> None:
    assert auc([1, 2, 3], [4, 5]) == 1.0
    assert auc([4, 5], [1, 2, 3]) == 0.0
    assert auc([1, 1], [1, 1]) == 0.5
    assert auc([1, 3], [2, 4]) == 0.75
    normal = [float(i) for i in range(100)]
    assert detection_at(normal, [95.5, 98.5, 200.0, 1.0], 0.01) == 0.5  # threshold 98: two above
    assert detection_at(normal, [95.5, 98.5, 200.0, 1.0], 0.05) == 0.75  # threshold 94
    with pytest.raises(ValueError):
        auc([], [1.0])


def test_ngram_counts_check_their_arguments() -> None:
    with pytest.raises(ValueError):
        NgramCounts(0)
    with pytest.raises(ValueError):
        NgramCounts(3, max_ngrams=0)
    assert math.isfinite(KneserNeyModel(2).score([1, 2, 3]))  # nothing learned: uniform, finite
