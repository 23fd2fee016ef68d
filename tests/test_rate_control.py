"""Style-controlled Bradley-Terry and AlpacaEval's length-controlled win rate.

Synthetic checks generate verdicts with a known preference for longer answers;
the real-data checks compare with AlpacaEval's official leaderboard in
../shared/data (CI has it; without it they fail rather than skip).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from referee.errors import RatingError
from referee.rate import (bradley_terry, lc_win_rate, style_controlled_bt, style_counts, style_covariates)

from conftest import shared_data

PTS = 400 / np.log(10)
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def style_synth(seed, n_sys=8, n_ver=20_000, gamma=1.2):
    """Stronger systems also write longer answers, and the judge likes length for itself."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(-1, 1, n_sys)
    theta -= theta.mean()
    mean_len = 400 * np.exp(0.5 * theta)  # verbose = strong: naive ratings conflate the two
    a = rng.integers(0, n_sys, n_ver)
    b = (a + rng.integers(1, n_sys, n_ver)) % n_sys
    la = mean_len[a] * rng.lognormal(0, 0.5, n_ver)
    lb = mean_len[b] * rng.lognormal(0, 0.5, n_ver)
    z = (la - lb) / (la + lb)
    o = (rng.random(n_ver) < expit(theta[a] - theta[b] + gamma * z)).astype(float)
    return theta, a, b, o, z


def test_style_control_recovers_length_coefficient_and_strengths():
    gamma = 1.2
    theta, a, b, o, z = style_synth(1, gamma=gamma)
    names = [f"m{i}" for i in range(len(theta))]
    fit = style_controlled_bt(names, a, b, o, z[:, None], names=["length"], standardize=False)
    assert abs(fit.coef[0] - gamma) < 4 * fit.coef_se[0]
    assert fit.coef_lower[0] < gamma < fit.coef_upper[0] or abs(fit.coef[0] - gamma) < 3 * fit.coef_se[0]
    ctrl = (fit.table.rating - 1000) / PTS
    assert np.max(np.abs(ctrl - theta) / (fit.table.se / PTS)) < 4
    naive = (bradley_terry(a, b, o, len(theta)) - 1000) / PTS
    # Without control the spread is inflated by the length preference.
    assert np.ptp(naive) > np.ptp(theta) + 0.15
    assert np.ptp(naive) - np.ptp(theta) > 3 * abs(np.ptp(ctrl) - np.ptp(theta))
    # Standardising only rescales the coefficient.
    fit_std = style_controlled_bt(names, a, b, o, z[:, None], names=["length"])
    assert fit_std.coef[0] == pytest.approx(fit.coef[0] * z.std(), rel=1e-5)
    assert np.allclose(fit_std.table.rating, fit.table.rating, atol=1e-4)
    eff = fit_std.effects()[0]
    assert eff["covariate"] == "length" and eff["win_prob_shift"] > 0
    assert "favours higher" in fit_std.describe()[0]


def test_style_control_finds_no_effect_when_there_is_none():
    theta, a, b, o, z = style_synth(2, gamma=0.0)
    fit = style_controlled_bt([f"m{i}" for i in range(8)], a, b, o, z, names=["length"])
    assert abs(fit.coef[0]) < 4 * fit.coef_se[0]


def test_style_counts_and_covariates():
    text = "# Title\n\nSome **bold** words and __more__.\n\n- one\n- two\n1. three\n"
    c = style_counts(text)
    assert c == {"length": len(text), "headers": 1, "lists": 3, "bold": 2}
    X = style_covariates([text, "plain"], ["plain", "plain"])
    assert X.shape == (2, 4)
    assert X[0, 0] == pytest.approx((len(text) - 5) / (len(text) + 5))
    assert X[0, 1] == 1.0 and X[1, 1] == 0.0 and np.all(X[1] == 0)
    with pytest.raises(RatingError):
        style_covariates(["a"], ["b"], features=["emoji"])


def test_constant_covariate_is_an_error():
    theta, a, b, o, _ = style_synth(3, n_ver=500)
    with pytest.raises(RatingError, match="do not vary"):
        style_controlled_bt([f"m{i}" for i in range(8)], a, b, o, np.zeros(500))


def lc_synth(seed, n_sys=6, n_prompts=10_000, gamma=1.5):
    """AlpacaEval-like data: a baseline, prompt difficulty, and a judge that rewards length."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(-2.0, 0.5, n_sys)
    verbosity = np.array([0.8, -0.6, 0.4, 0.0, 1.0, -0.3])[:n_sys]  # log length ratio vs baseline
    dif = rng.normal(0, 0.75, n_prompts)  # about the spread estimated on AlpacaEval
    s = np.repeat(np.arange(n_sys), n_prompts)
    q = np.tile(np.arange(n_prompts), n_sys)
    lb = rng.lognormal(7, 0.6, n_prompts)[q]
    ls = lb * np.exp(verbosity[s] + rng.normal(0, 0.4, len(s)))
    delta = ls - lb
    sd = np.array([delta[s == m].std(ddof=1) for m in range(n_sys)])
    eta_free = theta[s] - dif[q]
    p = expit(eta_free + gamma * np.tanh(delta / sd[s]))
    # Soft judge probabilities with mean p, like AlpacaEval's logprob-weighted annotator.
    y = rng.beta(4 * p + 1e-9, 4 * (1 - p) + 1e-9)
    truth = np.array([100 * expit(eta_free[s == m]).mean() for m in range(n_sys)])
    return s, q, y, ls, lb, truth


def test_lc_win_rate_recovers_length_free_win_rate():
    s, q, y, ls, lb, truth = lc_synth(4)
    res = lc_win_rate(s, q, y, ls, lb)
    raw_gap = np.abs(res.win_rate - truth)
    assert raw_gap.max() > 5  # the length preference really distorts raw win rates here
    assert np.max(np.abs(res.lc_win_rate - truth)) < 1.0
    assert np.all(res.coef[:, 2] > 1.0)  # it sees the judge's taste for length
    assert np.all(np.abs(res.lc_win_rate - truth) < 4 * res.lc_se)
    recs = res.to_records()
    assert recs[0]["lc_win_rate"] == res.lc_win_rate.max()


def test_lc_without_length_preference_matches_raw():
    s, q, y, ls, lb, truth = lc_synth(5, gamma=0.0)
    res = lc_win_rate(s, q, y, ls, lb)
    assert np.max(np.abs(res.lc_win_rate - res.win_rate)) < 1.0
    assert np.max(np.abs(res.win_rate - truth)) < 1.0


def _alpaca():
    spec = importlib.util.spec_from_file_location("alpaca_lc", ROOT / "bench" / "alpaca_lc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.compute(DATA)


def test_alpaca_eval_raw_and_length_controlled_win_rates():
    shared_data("alpaca_eval/judge_pairs.jsonl")
    out = _alpaca()
    res = out["result"]
    assert len(out["systems"]) == 13 and out["n_official"] == 12
    assert out["max_raw_diff"] < 0.1
    assert out["spearman_lc_vs_official_lc"] >= 0.95
    # Levels differ by a few points at most (no official difficulty, no gamed-baseline prior).
    assert out["max_lc_diff"] < 5
    assert out["spearman_lc_vs_elo"] >= 0.9
    on = ~np.isnan(out["official_length_coef"])
    # The judge's taste for length: same sign as AlpacaEval's own fitted weights.
    assert np.all(res.coef[on, 2] > 0) and np.all(out["official_length_coef"][on] > 0)
