"""Rating core: Bradley-Terry, intervals, rank ranges, Elo, matrices, errors.

Expected values come from known-truth synthetic data or from mathematical
properties (the likelihood equations, invariances), never from this code's output.
"""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referee.errors import RatingError
from referee.rate import (RatingTable, bradley_terry, count_matrix, elo, expected_win_matrix, rank_ranges,
                          rate_pairwise, win_rate_matrix)

PTS = 400 / np.log(10)  # rating points per natural log-odds unit


def synth(n_sys, n_ver, seed, spread=1.0, soft=False):
    """Verdicts from a Bradley-Terry model with known strengths (natural units, sum zero)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, spread, n_sys)
    theta -= theta.mean()
    a = rng.integers(0, n_sys, n_ver)
    b = (a + rng.integers(1, n_sys, n_ver)) % n_sys
    p = 1 / (1 + np.exp(-(theta[a] - theta[b])))
    o = p.copy() if soft else (rng.random(n_ver) < p).astype(float)
    return theta, a, b, o


def names(n):
    return [f"s{i:02d}" for i in range(n)]


def mm_reference(a, b, o, n, iters=5000):
    """Hunter's (2004) MM algorithm for Bradley-Terry: an independent solver for comparison."""
    wins = np.bincount(a, weights=o, minlength=n) + np.bincount(b, weights=1 - o, minlength=n)
    cnt = np.zeros((n, n))
    np.add.at(cnt, (a, b), 1.0)
    cnt = cnt + cnt.T
    g = np.ones(n)
    for _ in range(iters):
        denom = (cnt / (g[:, None] + g[None, :])).sum(axis=1)
        g_new = wins / denom
        g_new /= np.exp(np.log(g_new).mean())
        if np.max(np.abs(g_new - g)) < 1e-14:
            g = g_new
            break
        g = g_new
    return np.log(g)


def test_matches_independent_mm_solver():
    theta, a, b, o = synth(8, 3000, 1)
    r = bradley_terry(a, b, o, 8)
    ref = mm_reference(a, b, o, 8)
    assert np.max(np.abs((r - 1000) / PTS - (ref - ref.mean()))) < 1e-8


def test_likelihood_equations_hold_with_soft_outcomes_and_weights():
    rng = np.random.default_rng(2)
    _, a, b, _ = synth(6, 500, 2)
    o = rng.random(500)
    w = rng.uniform(0.1, 3.0, 500)
    r = bradley_terry(a, b, o, 6, weight=w)
    th = (r - 1000) / PTS
    p = 1 / (1 + np.exp(-(th[a] - th[b])))
    # Score equations of the MLE: each system's observed weighted wins equal its expected wins.
    obs = np.bincount(a, weights=w * o, minlength=6) - np.bincount(b, weights=w * o, minlength=6)
    exp_ = np.bincount(a, weights=w * p, minlength=6) - np.bincount(b, weights=w * p, minlength=6)
    assert np.max(np.abs(obs - exp_)) < 1e-8 * w.sum()


def test_recovers_true_strengths():
    theta, a, b, o = synth(10, 40_000, 3)
    t = rate_pairwise(names(10), a, b, o, ci="sandwich")
    err = (t.rating - 1000) / PTS - theta
    z = err / (t.se / PTS)
    assert np.max(np.abs(z)) < 4
    assert np.max(np.abs(err)) < 0.1


def test_exact_soft_outcomes_give_exact_strengths_and_zero_sandwich():
    theta, a, b, o = synth(7, 2000, 4, soft=True)
    t = rate_pairwise(names(7), a, b, o, ci="sandwich")
    assert np.max(np.abs((t.rating - 1000) / PTS - theta)) < 1e-8
    # No outcome noise at all: the robust interval must collapse (the model-based one would not).
    assert np.max(t.se) < 1e-5


def test_orientation_duplication_and_ties_are_invariant():
    theta, a, b, o = synth(6, 800, 5)
    r = bradley_terry(a, b, o, 6)
    assert np.allclose(bradley_terry(b, a, 1 - o, 6), r, atol=1e-8)
    assert np.allclose(bradley_terry(np.r_[a, a], np.r_[b, b], np.r_[o, o], 6), r, atol=1e-8)
    assert np.allclose(bradley_terry(a, b, o, 6, weight=np.full(800, 3.0)), r, atol=1e-8)
    # A tie is half a win each way.
    o2 = o.copy()
    o2[:100] = 0.5
    r_tie = bradley_terry(a, b, o2, 6)
    r_split = bradley_terry(np.r_[a[:100], a[:100], a[100:]], np.r_[b[:100], b[:100], b[100:]],
                            np.r_[np.ones(100), np.zeros(100), o[100:]],
                            6, weight=np.r_[np.full(200, 0.5), np.ones(700)])
    assert np.allclose(r_tie, r_split, atol=1e-8)


def test_scale_and_anchor():
    theta, a, b, o = synth(5, 3000, 6)
    r = bradley_terry(a, b, o, 5, scale=400, base=1500, anchor=2)
    assert r[2] == pytest.approx(1500)
    th = (r - 1500) / PTS
    # 400 points = odds x10, the Elo convention.
    P = expected_win_matrix(r)
    assert np.allclose(P, 1 / (1 + np.exp(-(th[:, None] - th[None, :]))))
    assert expected_win_matrix([1400.0, 1000.0])[0, 1] == pytest.approx(10 / 11)
    t = rate_pairwise(names(5), a, b, o, anchor="s02", ci="sandwich")
    assert t.rating[2] == pytest.approx(1000) and t.se[2] == pytest.approx(0, abs=1e-9)
    assert t.anchor == "s02"


def test_rank_ranges_follow_the_definition():
    lo = np.array([10.0, 8.0, 0.0, -5.0])
    hi = np.array([12.0, 11.0, 9.0, -1.0])
    rmin, rmax = rank_ranges(lo, hi)
    brute_min = [1 + sum(lo[j] > hi[i] for j in range(4)) for i in range(4)]
    brute_max = [4 - sum(hi[j] < lo[i] for j in range(4)) for i in range(4)]
    assert list(rmin) == brute_min == [1, 1, 2, 4]
    assert list(rmax) == brute_max == [2, 3, 3, 4]


def test_table_api_and_records():
    theta, a, b, o = synth(6, 3000, 7, spread=1.5)
    t = rate_pairwise(names(6), a, b, o, n_boot=200, seed=3)
    assert isinstance(t, RatingTable)
    assert (t.method, t.ci, t.n_boot, t.seed, t.level) == ("bt", "bootstrap", 200, 3, 0.95)
    assert list(t.order()) == list(np.argsort(-t.rating))
    recs = t.to_records()
    assert [r["system"] for r in recs] == [t.systems[i] for i in t.order()]
    assert set(recs[0]) == {"system", "rating", "lower", "upper", "rank_min", "rank_max", "n", "win_rate"}
    assert np.all(t.lower <= t.rating) and np.all(t.rating <= t.upper)
    assert t.n.sum() == 2 * 3000
    wr = [np.mean(np.r_[o[a == i], 1 - o[b == i]]) for i in range(6)]
    assert np.allclose(t.win_rate, wr)
    # The true order is the rating order within the rank ranges.
    true_rank = np.empty(6, int)
    true_rank[np.argsort(-theta)] = np.arange(1, 7)
    assert np.all((t.rank_min <= true_rank) & (true_rank <= t.rank_max))


def test_bootstrap_is_deterministic_for_a_seed():
    _, a, b, o = synth(6, 1000, 8)
    t1 = rate_pairwise(names(6), a, b, o, n_boot=100, seed=11)
    t2 = rate_pairwise(names(6), a, b, o, n_boot=100, seed=11)
    t3 = rate_pairwise(names(6), a, b, o, n_boot=100, seed=12)
    assert np.array_equal(t1.lower, t2.lower) and np.array_equal(t1.upper, t2.upper)
    assert not np.array_equal(t1.lower, t3.lower)


def test_bootstrap_and_sandwich_agree_and_cover_the_truth():
    hits = {"bootstrap": 0, "sandwich": 0}
    total = 0
    se_ratio = []
    for rep in range(30):
        theta, a, b, o = synth(8, 1500, 100 + rep)
        true = 1000 + PTS * theta
        tb = rate_pairwise(names(8), a, b, o, n_boot=300, seed=rep)
        ts = rate_pairwise(names(8), a, b, o, ci="sandwich")
        hits["bootstrap"] += np.sum((tb.lower <= true) & (true <= tb.upper))
        hits["sandwich"] += np.sum((ts.lower <= true) & (true <= ts.upper))
        total += 8
        se_ratio.append(np.median(tb.se / ts.se))
    for k, h in hits.items():
        assert 0.89 <= h / total <= 0.99, (k, h / total)
    assert 0.85 < np.median(se_ratio) < 1.15


def test_clustered_sandwich_widens_for_correlated_verdicts():
    # Each prompt's verdicts repeat one draw 5 times: 5x the rows, no extra information.
    theta, a, b, o = synth(6, 2000, 9)
    a5, b5, o5 = np.repeat(a, 5), np.repeat(b, 5), np.repeat(o, 5)
    cl = np.repeat(np.arange(2000), 5)
    naive = rate_pairwise(names(6), a5, b5, o5, ci="sandwich")
    clustered = rate_pairwise(names(6), a5, b5, o5, ci="sandwich", cluster=cl)
    single = rate_pairwise(names(6), a, b, o, ci="sandwich")
    assert np.allclose(clustered.se, single.se, rtol=1e-6)
    assert np.allclose(naive.se * np.sqrt(5), single.se, rtol=1e-6)


def test_error_for_system_without_comparisons():
    with pytest.raises(RatingError, match="s03"):
        rate_pairwise(names(4), [0, 1, 2], [1, 2, 0], [1.0, 0.0, 0.5])


def test_error_for_disconnected_graph_names_both_parts():
    a = [0, 1, 0, 2, 3, 2]
    b = [1, 0, 1, 3, 2, 3]
    o = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    with pytest.raises(RatingError, match="disconnected") as e:
        rate_pairwise(["alpha", "beta", "gamma", "delta"], a, b, o)
    msg = str(e.value)
    part1, part2 = msg.split("part 1:")[1].split("part 2:")
    assert "alpha" in part1 and "beta" in part1 and "gamma" not in part1
    assert "gamma" in part2 and "delta" in part2 and "alpha" not in part2


def test_error_when_mle_diverges_and_explicit_prior_fixes_it():
    a = np.array([0, 1, 2, 0, 1, 2])
    b = np.array([1, 2, 0, 2, 0, 1])
    # "First position always wins" is only harmless when every pair is seen in both orders.
    assert np.allclose(bradley_terry(a, b, np.ones(6), 3), 1000)
    with pytest.raises(RatingError, match="same outcome"):
        rate_pairwise(names(3), [0, 0, 1], [1, 2, 2], np.ones(3))
    # s00 beats everyone, the others split: s00's rating would be infinite.
    o = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.5])
    with pytest.raises(RatingError, match="s00"):
        rate_pairwise(names(3), a, b, o)
    t = rate_pairwise(names(3), a, b, o, reg=0.1, ci="sandwich")
    assert np.all(np.isfinite(t.rating)) and t.order()[0] == 0
    assert any("prior" in n for n in t.notes)


def test_bad_arguments():
    with pytest.raises(RatingError):
        rate_pairwise(names(3), [0, 1], [1, 1], [1.0, 0.0])
    with pytest.raises(RatingError):
        rate_pairwise(names(3), [0, 1], [1, 2], [1.5, 0.0])
    with pytest.raises(RatingError):
        rate_pairwise(names(3), [0, 1], [1, 2], [1.0, 0.0], method="trueskill")
    with pytest.raises(RatingError, match="anchor"):
        rate_pairwise(names(3), [0, 1, 2], [1, 2, 0], [1.0, 0.0, 0.5], anchor="nobody")


def test_win_rate_and_count_matrices():
    _, a, b, o = synth(5, 400, 10)
    W = win_rate_matrix(a, b, o, 5)
    C = count_matrix(a, b, 5)
    for i in range(5):
        for j in range(5):
            sel_ij = (a == i) & (b == j)
            sel_ji = (a == j) & (b == i)
            n = sel_ij.sum() + sel_ji.sum()
            assert C[i, j] == n
            if i != j and n:
                assert W[i, j] == pytest.approx((o[sel_ij].sum() + (1 - o[sel_ji]).sum()) / n)
    assert np.isnan(W[0, 0])
    off = ~np.eye(5, dtype=bool)
    assert np.allclose((W + W.T)[off], 1)


def test_elo_is_order_dependent_but_tracks_bt():
    theta, a, b, o = synth(6, 30_000, 11)
    bt = bradley_terry(a, b, o, 6)
    e = elo(a, b, o, 6, k=1.0)
    assert np.corrcoef(e, bt)[0, 1] > 0.99
    order = np.argsort(o, kind="stable")  # all losses first, then all wins
    assert np.max(np.abs(elo(a[order], b[order], o[order], 6, k=4.0) - elo(a, b, o, 6, k=4.0))) > 5
    t = rate_pairwise(names(6), a[:3000], b[:3000], o[:3000], method="elo", n_boot=50)
    assert np.all(t.lower <= t.upper) and any("order" in n for n in t.notes)


def test_bootstrap_at_rank_scale_refits_unique_pairs_in_batches(monkeypatch):
    # What keeps 1000 replicates of 10,000 verdicts fast, checked by what runs rather than by a
    # clock (which a loaded machine fails and a fast one never does): every replicate is a Newton
    # step batch over the 435 unique pairs, not a fit over the verdicts, and none falls back to
    # one-by-one L-BFGS.
    from referee.rate import _bootstrap

    calls = []
    real_batch = _bootstrap.newton_batch

    def counted_batch(a, b, wins, count, *args, **kwargs):
        calls.append((len(a), wins.shape))
        return real_batch(a, b, wins, count, *args, **kwargs)

    def no_single_fits(*args, **kwargs):
        raise AssertionError("a replicate was refitted on its own")

    monkeypatch.setattr(_bootstrap, "newton_batch", counted_batch)
    monkeypatch.setattr(_bootstrap, "fit_pairs", no_single_fits)
    _, a, b, o = synth(30, 10_000, 12, soft=False)
    o = np.where(np.random.default_rng(0).random(10_000) < 0.1, 0.5, o)
    t = rate_pairwise(names(30), a, b, o, n_boot=1000)
    assert calls and all(n_pairs <= 30 * 29 // 2 for n_pairs, _ in calls)
    assert sum(shape[0] for _, shape in calls) == 1000 and len(calls) <= 10
    assert np.all(np.isfinite(t.lower)) and np.all(t.lower < t.rating) and np.all(t.rating < t.upper)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(3, 7))
def test_relabelling_permutes_ratings(seed, n):
    _, a, b, o = synth(n, 60 * n, seed)
    o = 0.1 + 0.8 * o  # soft outcomes keep the MLE finite on any draw
    perm = np.random.default_rng(seed).permutation(n)
    r = bradley_terry(a, b, o, n)
    rp = bradley_terry(perm[a], perm[b], o, n)
    assert np.allclose(rp[perm], r, atol=1e-6)


def test_encode_pairs():
    from referee.rate import encode_pairs

    systems, a, b = encode_pairs(["y", "x", "z"], ["x", "z", "y"])
    assert systems == ["x", "y", "z"] and list(a) == [1, 0, 2] and list(b) == [0, 2, 1]
    with pytest.raises(RatingError, match="w"):
        encode_pairs(["w"], ["x"], systems=["x", "y"])


def test_cluster_bootstrap_resamples_whole_groups():
    # Duplicated verdicts carry no new information: a cluster bootstrap sees that, a verdict one does not.
    theta, a, b, o = synth(6, 2000, 13)
    a5, b5, o5 = np.repeat(a, 5), np.repeat(b, 5), np.repeat(o, 5)
    cl = np.repeat(np.arange(2000), 5)
    single = rate_pairwise(names(6), a, b, o, n_boot=400, seed=1)
    clustered = rate_pairwise(names(6), a5, b5, o5, n_boot=400, seed=1, cluster=cl)
    naive = rate_pairwise(names(6), a5, b5, o5, n_boot=400, seed=1)
    assert np.allclose(clustered.se, single.se, rtol=0.2)
    assert np.all(naive.se < 0.6 * single.se)


def lopsided():
    """s0 lost 2 of its 40 verdicts: in about one resample in eight it never loses and has no finite rating."""
    a = np.array([0] * 20 + [0] * 20 + [1] * 20)
    b = np.array([1] * 20 + [2] * 20 + [2] * 20)
    o = np.r_[np.ones(19), 0.0, np.ones(19), 0.0, np.tile([1.0, 0.0], 10)]
    return a, b, o


@pytest.mark.parametrize("one_by_one", [False, True])
def test_failed_bootstrap_replicates_are_dropped_and_counted(monkeypatch, one_by_one):
    import referee.rate._bootstrap as boot

    if one_by_one:  # the path for more systems than a batch of dense Hessians pays for
        monkeypatch.setattr(boot, "_BATCH_MAX_SYSTEMS", 2)
    a, b, o = lopsided()
    t = rate_pairwise(names(3), a, b, o, n_boot=400, seed=0)
    # P(neither of s0's two losses is drawn) ~ e^-2 = 13.5%: 54 of 400 expected.
    assert 30 <= t.n_boot_failed <= 80
    assert t.replicates.shape == (400 - t.n_boot_failed, 3) and np.all(np.isfinite(t.replicates))
    # What is left are finite fits: s0's lead stays within reach of the data (a diverged replicate sits
    # thousands of points out); the full-data estimate is 341 points above the mean.
    assert np.max(t.replicates[:, 0]) < 1600 and t.upper[0] < 1500
    assert any(f"{t.n_boot_failed} of 400 bootstrap replicates were dropped" in n for n in t.notes)
    assert t.fit_info()["n_boot_failed"] == t.n_boot_failed


def test_bootstrap_without_finite_replicates_is_an_error():
    # s0 lost 1 of its 40 verdicts: a resample leaves it unbeaten 37% of the time, here both of two.
    a = np.r_[np.zeros(40, int), 1, 1]
    b = np.r_[np.ones(20, int), np.full(20, 2), 2, 2]
    o = np.r_[np.ones(19), 0.0, np.ones(20), 1.0, 0.0]
    with pytest.raises(RatingError, match="2 of 2 bootstrap replicates have no finite ratings"):
        rate_pairwise(names(3), a, b, o, n_boot=2, seed=3)


@pytest.mark.parametrize("ci", ["bootstrap", "sandwich"])
def test_few_clusters_are_noted(ci):
    _, a, b, o = synth(5, 600, 14)
    few = rate_pairwise(names(5), a, b, o, ci=ci, n_boot=50, cluster=np.arange(600) % 4)
    assert any("only 4 cluster(s)" in n for n in few.notes) and few.n_clusters == 4
    many = rate_pairwise(names(5), a, b, o, ci=ci, n_boot=50, cluster=np.arange(600) % 10)
    assert not any("cluster" in n for n in many.notes) and many.n_clusters == 10
    assert rate_pairwise(names(5), a, b, o, ci=ci, n_boot=50).n_clusters is None


def close_systems_one_rarely_seen(seed=1):
    """Eight systems close together; s7 is in only a tenth of its comparisons, so its rating is uncertain."""
    rng = np.random.default_rng(seed)
    n = 8
    theta = np.linspace(-0.6, 0.6, n)
    a = rng.integers(0, n, 3000)
    b = (a + rng.integers(1, n, 3000)) % n
    keep = ~(((a == 7) | (b == 7)) & (rng.random(3000) < 0.9))
    a, b = a[keep], b[keep]
    o = (rng.random(len(a)) < 1 / (1 + np.exp(-(theta[a] - theta[b])))).astype(float)
    return a, b, o


@pytest.mark.parametrize("method, ci", [("bt", "bootstrap"), ("bt", "sandwich"), ("bt", "none"), ("elo", "bootstrap")])
def test_rank_ranges_do_not_depend_on_the_anchor(method, ci):
    # Anchored at the uncertain s7, every other interval absorbs s7's uncertainty; ranks must not.
    a, b, o = close_systems_one_rarely_seen()
    tables = [rate_pairwise(names(8), a, b, o, method=method, ci=ci, n_boot=300, seed=0, anchor=anchor)
              for anchor in (None, "s00", "s07")]
    for t in tables[1:]:
        assert np.array_equal(t.rank_min, tables[0].rank_min) and np.array_equal(t.rank_max, tables[0].rank_max)
    t = tables[0]
    order = np.empty(8, int)
    order[t.order()] = np.arange(1, 9)
    assert np.all((t.rank_min <= order) & (order <= t.rank_max))


def test_rank_ranges_from_replicates_and_from_cov():
    from referee.rate import rank_ranges_from_cov, rank_ranges_from_replicates

    # s0 is first in 98 of 100 replicates, s1 and s2 swap places half the time, s3 always last.
    reps = np.tile([4.0, 2.0, 1.0, 0.0], (100, 1))
    reps[:50, 1], reps[:50, 2] = 1.0, 2.0
    reps[:2, 0] = 1.5
    rmin, rmax = rank_ranges_from_replicates(reps, level=0.9)
    assert rmin.tolist() == [1, 2, 2, 4] and rmax.tolist() == [1, 3, 3, 4]
    # At 99% the two replicates where s0 fell behind s2 count; shifting a replicate changes no rank.
    rmin, rmax = rank_ranges_from_replicates(reps + np.arange(100)[:, None], level=0.99)
    assert rmin.tolist() == [1, 2, 1, 4] and rmax.tolist() == [2, 3, 3, 4]
    # Equal ratings share a range; the estimate's own rank is always inside.
    assert [r.tolist() for r in rank_ranges_from_replicates(np.zeros((10, 3)))] == [[1, 1, 1], [3, 3, 3]]
    assert rank_ranges_from_replicates(np.tile([1.0, 0.0], (10, 1)), rating=[0.0, 1.0])[1].tolist() == [2, 2]
    # Normal differences: 10 +- 1.96 * sqrt(2 * 4) excludes 0 for s0 - s1 but 4 +- 5.5 does not for s1 - s2.
    rating = np.array([20.0, 10.0, 6.0])
    cov = np.diag([4.0, 4.0, 4.0])
    assert [r.tolist() for r in rank_ranges_from_cov(rating, cov)] == [[1, 2, 2], [1, 3, 3]]
    # A common shift of all ratings (an anchor) adds the same to every entry of cov: nothing changes.
    assert [r.tolist() for r in rank_ranges_from_cov(rating + 7, cov + 9.0)] == [[1, 2, 2], [1, 3, 3]]
    assert [r.tolist() for r in rank_ranges_from_cov([1.0, 1.0, 0.0], None)] == [[1, 1, 3], [2, 2, 3]]
