"""Label-free ensembles: the label model recovers known accuracies; degenerate inputs; best-of-n."""

from __future__ import annotations

import numpy as np
import pytest

from referee.combine import (PlattCalibrator, best_of_n, combine, dawid_skene, majority_vote, normalize_outputs, pairwise_strengths,
                             to_votes, triplet_signal)
from referee.combine._labelmodel import correlation_moments, triplet_loadings


def synth(n=3000, accs=(0.9, 0.8, 0.75, 0.65, 0.6, 0.85), prior=0.6, missing=0.1, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prior
    cols = []
    for a in accs:
        right = rng.random(n) < a
        cols.append(np.where(right == y, 0.8, 0.2))
    x = np.array(cols).T
    x[rng.random(x.shape) < missing] = np.nan
    return x, y


def acc_of(p, y):
    d = np.sign(np.asarray(p) - 0.5)
    return float(np.mean(np.where(d == 0, 0.5, (d > 0) == y)))


@pytest.mark.parametrize("method", ["dawid-skene", "triplet"])
def test_recovers_known_accuracies(method):
    accs = (0.9, 0.8, 0.75, 0.65, 0.6, 0.85)
    x, y = synth(accs=accs)
    e = combine(x, [f"j{k}" for k in range(len(accs))], method=method)
    est = np.array([m.accuracy for m in e.members])
    assert all(m.kept for m in e.members)
    assert np.max(np.abs(est - np.array(accs))) < 0.03, est
    assert not np.isnan(e.p).any()
    # ... and the ensemble beats both the vote and the best single judge
    assert acc_of(e.p, y) > acc_of(majority_vote(x), y) + 0.01
    best = max(acc_of(np.where(np.isnan(x[:, j]), 0.5, x[:, j]), y) for j in range(x.shape[1]))
    assert acc_of(e.p, y) > best + 0.02


def test_dawid_skene_recovers_sensitivity_and_specificity():
    rng = np.random.default_rng(3)
    n = 4000
    y = rng.random(n) < 0.5
    good = [np.where(rng.random(n) < a, y, ~y) for a in (0.85, 0.8, 0.75)]
    lean = np.where(y, rng.random(n) < 0.95, rng.random(n) < 0.45)  # sens 0.95, spec 0.55
    x = np.array([*good, lean]).T.astype(float)
    e = combine(x, ["g1", "g2", "g3", "lean"])
    m = e.members[3]
    assert abs(m.sensitivity - 0.95) < 0.03 and abs(m.specificity - 0.55) < 0.04
    assert abs(e.prior - 0.5) < 0.03


def test_triplet_signal_and_correlations_match_theory():
    x, _ = synth(n=6000, accs=(0.9, 0.75, 0.7), prior=0.5, missing=0.0, seed=5)
    v = to_votes(x)
    a = triplet_signal(v)
    assert np.allclose(a, [0.8, 0.5, 0.4], atol=0.04)
    r, n = correlation_moments(v)
    assert n[0, 1] == 6000 and abs(r[0, 1] - 0.8 * 0.5) < 0.04
    assert np.allclose(triplet_loadings(v), [0.8, 0.5, 0.4], atol=0.05)


def test_screening_drops_copy_constant_and_chance():
    x, y = synth(n=3000, accs=(0.9, 0.8, 0.75, 0.7))
    rng = np.random.default_rng(1)
    copy = x[:, 1].copy()
    flip = rng.random(len(copy)) < 0.03
    copy[flip] = 1 - copy[flip]
    coin = rng.random(len(copy))
    x = np.column_stack([x, copy, np.full(len(copy), 0.9), coin])
    e = combine(x, ["a", "b", "c", "d", "copy", "always-a", "coin"])
    reasons = {m.name: m.reason for m in e.members}
    assert reasons["always-a"].startswith("constant")
    assert reasons["coin"].startswith("near chance")
    dup = [n for n in ("b", "copy") if reasons[n].startswith("duplicate")]
    assert not reasons["a"] and not reasons["c"] and not reasons["d"]
    # the 97% copy is either dropped or weighed together with its original, as one unit
    assert len(dup) == 1 or (e.members[1].unit and e.members[1].unit == e.members[4].unit)
    assert not e.members[0].unit and not e.members[2].unit
    assert acc_of(e.p, y) > 0.9


def test_skewed_classes_are_not_mistaken_for_duplicates():
    # 90% of items favour b; independent judges then agree a lot without being copies.
    x, y = synth(n=4000, accs=(0.85, 0.8, 0.75, 0.7), prior=0.1, missing=0.0, seed=2)
    e = combine(x)
    assert all(m.kept for m in e.members), [m.reason for m in e.members]
    assert abs(e.prior - 0.1) < 0.03


def test_one_judge_is_its_own_ensemble():
    x = np.array([[0.9], [0.2], [np.nan], [0.5], [0.7], [0.1]] * 3)
    e = combine(x, ["only"])
    assert any("one usable verifier" in n for n in e.notes)
    assert np.allclose(e.p[[0, 1, 3]], [0.9, 0.2, 0.5], atol=1e-6) and e.p[2] == 0.5
    assert e.members[0].accuracy is None and not np.isnan(e.p).any()


def test_identical_judges_collapse_to_one():
    col = np.tile([0.9, 0.1, 0.8, 0.3, 0.7], 20)
    e = combine(np.column_stack([col, col, col]), ["x", "y", "z"])
    assert sum(m.kept for m in e.members) == 1
    assert sum(m.reason.startswith("duplicate") for m in e.members) == 2
    assert np.allclose(e.p, col)


def test_two_judges_weighted_equally_and_ties_are_half():
    a = np.tile([0.9, 0.1, 0.8, 0.2, 0.9, 0.1], 20)
    b = np.tile([0.9, 0.1, 0.3, 0.7, 0.8, 0.2], 20)
    e = combine(np.column_stack([a, b]))
    assert any("two usable verifiers" in n for n in e.notes)
    assert np.allclose(e.p[:4], [e.p[0], 1 - e.p[0], 0.5, 0.5]) and e.p[0] > 0.5


def test_always_a_judge_and_missing_verdicts_never_give_nan():
    x, _ = synth(n=500, accs=(0.9, 0.8, 0.7))
    x = np.column_stack([x, np.full(500, 1.0)])
    x[:20, :] = np.nan  # items nobody judged
    e = combine(x, ["a", "b", "c", "always"])
    assert e.members[3].reason.startswith("constant (says a")
    assert not np.isnan(e.p).any()
    assert np.allclose(e.p[:20], e.prior)


def test_no_usable_verdicts():
    e = combine(np.full((10, 2), np.nan))
    assert np.all(e.p == 0.5) and e.notes and not any(m.kept for m in e.members)
    e = combine(np.full((10, 3), 0.5))  # only ties
    assert np.all(e.p == 0.5)


def test_majority_vote_and_methods():
    x = np.array([[0.9, 0.8, 0.1], [0.1, 0.2, 0.5], [0.9, 0.1, np.nan], [np.nan] * 3])
    assert np.allclose(majority_vote(x), [2 / 3, 0.0, 0.5, 0.5])
    with pytest.raises(ValueError, match="unknown method"):
        combine(x, method="vote")


def test_normalize_kinds():
    x = np.array([[0.7, 1, 3.0], [0.2, 0, -1.0], [np.nan, 1, 0.0]])
    p = normalize_outputs(x, ["probability", "binary", "score"])
    assert p[0, 0] == 0.7 and np.isnan(p[2, 0]) and p[1, 1] == 0 and p[2, 2] == 0.5
    assert p[0, 2] > p[2, 2] > p[1, 2]
    with pytest.raises(ValueError, match="outside"):
        normalize_outputs(np.array([[1.5]]))
    with pytest.raises(ValueError, match="binary"):
        normalize_outputs(np.array([[0.5]]), "binary")


def test_dawid_skene_from_a_wrong_start_is_bounded():
    x, y = synth(n=1000)
    fit = dawid_skene(to_votes(x), np.full(1000, 0.5))
    assert np.all((fit["q"] >= 0) & (fit["q"] <= 1)) and np.all(np.isfinite(fit["sens"]))


def test_best_of_n():
    # candidate 2 beats everyone clearly; 0 and 1 are close
    i = np.array([0, 0, 1, 2, 2, 1])
    j = np.array([1, 2, 2, 0, 1, 0])
    p = np.array([0.55, 0.05, 0.1, 0.95, 0.9, 0.45])
    b = best_of_n(3, i, j, p, seed=1)
    assert b.pick == 2 and b.p_best[2] > 0.8 and abs(b.p_best.sum() - 1) < 1e-9
    assert best_of_n(3, i, j, p, seed=1).p_best.tolist() == b.p_best.tolist()  # seeded
    s, cov = pairwise_strengths(4, i, j, p)
    assert s[3] == 0 and cov[3, 3] == pytest.approx(4.0)  # never compared: the prior
    assert best_of_n(1, [], [], []).p_best.tolist() == [1.0]


def test_platt_recalibration_recovers_overconfidence():
    from referee.audit import ece

    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-z / 3))).astype(float)
    p = 1 / (1 + np.exp(-z))                      # three times too confident
    cal = PlattCalibrator.fit(p, y)
    assert abs(cal.a - 1 / 3) < 0.05 and abs(cal.b) < 0.1
    assert ece(cal(p), y) < 0.03 < ece(p, y)
    with pytest.raises(ValueError):
        PlattCalibrator.fit(np.array([0.5]), np.array([1.0]))
