"""The simulated judge: grounded in the real AlpacaEval verdicts, deterministic, symmetric."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referee.errors import InputError
from referee.plan import Comparison
from referee.simulate import (SimulatedJudge, latent_from_baseline, load_baseline_verdicts,
                              synthetic_panel)

from conftest import shared_data

AE2 = "weighted_alpaca_eval_gpt4_turbo"


@pytest.fixture(scope="module")
def ae2():
    return load_baseline_verdicts(shared_data("alpaca_eval/judge_pairs.jsonl"), AE2)


def with_baseline(bv, **kw):
    q = np.vstack([np.zeros(len(bv.prompts)), latent_from_baseline(bv.p_win)])
    return SimulatedJudge(q, [bv.baseline, *bv.systems], bv.prompts, **kw)


def test_loads_the_13_ae2_systems(ae2):
    assert ae2.baseline == "gpt4_1106_preview" and len(ae2.systems) == 13
    assert ae2.p_win.shape == (13, 805)


@pytest.mark.parametrize("kw", [dict(), dict(hard=True, seed=3), dict(hard=True, seed=4)])
def test_reproduces_real_win_rates_vs_baseline(ae2, kw):
    judge = with_baseline(ae2, **kw)
    P = len(ae2.prompts)
    prompt = np.arange(P)
    for i, real in enumerate(ae2.p_win):
        sim = judge.both_orders(prompt, np.full(P, i + 1), np.zeros(P, int)).mean()
        # clipping at eps moves each prompt by at most eps; hard verdicts add binomial error
        se = math.sqrt(np.sum(real * (1 - real))) / P if kw.get("hard") else 0.0
        assert abs(sim - real.mean()) <= 0.01 + 3.5 * se, (ae2.systems[i], sim, real.mean())


def test_noise_free_judge_answers_the_implied_probability(ae2):
    judge = with_baseline(ae2)
    p = latent_from_baseline(ae2.p_win)
    got = judge.judge([Comparison(ae2.prompts[7], ae2.systems[0], ae2.systems[5])])
    want = 1 / (1 + math.exp(-(p[0, 7] - p[5, 7])))
    assert got[Comparison(ae2.prompts[7], ae2.systems[0], ae2.systems[5])] == pytest.approx(want)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 5), st.integers(0, 5), st.integers(0, 9), st.floats(0, 3), st.floats(-2, 2),
       st.booleans(), st.integers(0, 2**40))
def test_both_orders_is_symmetric_and_deterministic(a, b, prompt, noise, bias, hard, seed):
    q = np.random.default_rng(0).normal(0, 2, (6, 10))
    j = SimulatedJudge(q, noise=noise, position_bias=bias, hard=hard, seed=seed)
    p, x, y = np.array([prompt]), np.array([a]), np.array([b])
    ab = j.both_orders(p, x, y)[0]
    assert 0.0 <= ab <= 1.0
    assert ab == pytest.approx(1.0 - j.both_orders(p, y, x)[0])
    assert ab == SimulatedJudge(q, noise=noise, position_bias=bias, hard=hard, seed=seed).both_orders(p, x, y)[0]


def test_position_bias_favours_the_first_shown():
    j = SimulatedJudge(np.zeros((2, 1)), position_bias=1.0)
    assert j.first_order(np.array([0]), np.array([0]), np.array([1]))[0] > 0.7
    assert j.both_orders(np.array([0]), np.array([0]), np.array([1]))[0] == pytest.approx(0.5)


def test_unusable_verdicts_are_absent_in_both_listings():
    j = SimulatedJudge(np.zeros((4, 200)), unusable=0.3, seed=1)
    cs = [Comparison(str(p), "0", "1") for p in range(200)]
    got = j.judge(cs)
    assert 0.2 < 1 - len(got) / 200 < 0.4
    flipped = j.judge([Comparison(c.prompt_id, c.system_b, c.system_a) for c in cs])
    assert {c.prompt_id for c in got} == {c.prompt_id for c in flipped}


def test_synthetic_panel_spans_the_real_range(ae2):
    q = latent_from_baseline(ae2.p_win)
    s = synthetic_panel(q, 16, seed=0)
    assert s.shape == (16, 805)
    assert np.allclose(s.mean(axis=1), np.linspace(q.mean(1).min(), q.mean(1).max(), 16))
    assert np.array_equal(s, synthetic_panel(q, 16, seed=0))


def test_loader_errors(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text('{"instruction_id": 0, "model_a": "b", "model_b": "s", "annotator": "A", "p_b_wins": 0.2}\n'
                 '{"instruction_id": 0, "model_a": "b", "model_b": "s", "annotator": "A"}\n')
    with pytest.raises(InputError, match=r"x.jsonl:2 \[field 'p_b_wins'\]"):
        load_baseline_verdicts(f)
    f.write_text('{"instruction_id": 0, "model_a": "b", "model_b": "s", "annotator": "A", "p_b_wins": 0.2}\n'
                 '{"instruction_id": 0, "model_a": "b", "model_b": "s", "annotator": "B", "p_b_wins": 0.2}\n')
    with pytest.raises(InputError, match="several annotators"):
        load_baseline_verdicts(f)
    assert load_baseline_verdicts(f, "B").systems == ["s"]
    with pytest.raises(InputError, match="unknown systems zz"):
        load_baseline_verdicts(f, "A", systems=["zz"])
    with pytest.raises(InputError, match="cannot read"):
        load_baseline_verdicts(tmp_path / "missing.jsonl")
    f.write_text("not json\n")
    with pytest.raises(InputError, match="x.jsonl:1"):
        load_baseline_verdicts(f)
