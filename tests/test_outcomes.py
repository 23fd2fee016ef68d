"""The one road from stored verdicts to outcomes and ratings (``referee.outcomes``): orders, ties,
position effects and comparisons with one usable order, on real SQLite stores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit

from conftest import EXAMPLE, run_cli, write_jsonl
from referee.outcomes import combine_orders, judge_outcomes, rate_run, run_stats
from referee.store import Verdict, VerdictStore, question_key, verdict_id


def _v(pid, shown, p, judge="j1", status="ok"):
    texts = [f"text of {s} on {pid}" for s in shown]
    q = question_key(judge, "pairwise", f"prompt {pid}", texts)
    return Verdict(verdict_id=verdict_id(q, pid, list(shown)), question=q, judge_id=judge, mode="pairwise",
                   prompt_id=pid, systems=list(shown), status=status, p_first=p if status == "ok" else None)


def test_a_tie_in_both_orders_is_consistent():
    tie = combine_orders([_v("p", ("a", "b"), 0.5), _v("p", ("b", "a"), 0.5)])
    assert tie.consistent is True and tie.p_a == 0.5 and tie.weight == 1.0
    half = combine_orders([_v("p", ("a", "b"), 0.5), _v("p", ("b", "a"), 0.2)])  # tie, then a wins
    assert half.consistent is False
    flip = combine_orders([_v("p", ("a", "b"), 0.9), _v("p", ("b", "a"), 0.7)])  # the first shown wins twice
    assert flip.consistent is False and flip.p_a == pytest.approx(0.6)
    same = combine_orders([_v("p", ("a", "b"), 0.9), _v("p", ("b", "a"), 0.3)])
    assert same.consistent is True and same.p_a == pytest.approx(0.8)


def test_first_position_rate_counts_decided_verdicts_only():
    vs = [_v("p1", ("a", "b"), 0.5), _v("p1", ("b", "a"), 0.5), _v("p2", ("a", "b"), 0.8), _v("p2", ("b", "a"), 0.4)]
    stats = run_stats(vs, [combine_orders(vs[:2]), combine_orders(vs[2:])])
    assert stats.first_position_rate == 0.5  # of the two decided verdicts, one went to the first shown
    assert stats.position_consistency == 1.0  # the tie in both orders agrees with itself


def test_one_order_counts_half_with_the_judges_position_effect_taken_off(tmp_path):
    delta = 0.15  # this judge gives the first-shown response 0.15 more
    q = {"p1": 0.7, "p2": 0.4, "p3": 0.6}  # P(a better) on each prompt
    with VerdictStore(tmp_path / "v.sqlite") as st:
        st.register_judge("j1", {})
        for pid, x in q.items():
            st.put(_v(pid, ("a", "b"), x + delta))
            st.put(_v(pid, ("b", "a"), 1 - x + delta))
        st.put(_v("p4", ("a", "b"), 0.55 + delta))
        st.put(_v("p4", ("b", "a"), None, status="unparseable"))
        outs = {o.prompt_id: o for o in judge_outcomes(st)}
    assert {p: round(outs[p].p_a, 9) for p in q} == q and all(outs[p].weight == 1.0 for p in q)
    one = outs["p4"]
    assert one.weight == 0.5 and one.position_adjust == pytest.approx(delta) and one.p_a == pytest.approx(0.55)
    assert one.consistent is None


def _biased_store(path, rng, drop_when_first: str | None):
    """A judge with a strong first-position effect (+1.2 logits for the first shown) over 4 systems
    on 60 prompts, both orders asked. With ``drop_when_first``, the order where that system is
    shown second comes back unparseable (an injected fault: one order usable), so only its
    favourable order remains."""
    theta = {"s0": 0.6, "s1": 0.2, "s2": -0.2, "s3": -0.6}
    systems = list(theta)
    with VerdictStore(path) as st:
        st.register_judge("j1", {})
        for k in range(60):
            pid = f"p{k:02d}"
            for i, a in enumerate(systems):
                for b in systems[i + 1:]:
                    for first, second in ((a, b), (b, a)):
                        p = float(expit(theta[first] - theta[second] + 1.2 + rng.normal(0, 0.3)))
                        lost = drop_when_first is not None and second == drop_when_first and rng.random() < 0.8
                        st.put(_v(pid, (first, second), None if lost else p, status="unparseable" if lost else "ok"))
        outs = judge_outcomes(st)
    return systems, outs


def test_a_missing_order_does_not_leak_the_position_effect_into_ratings(tmp_path):
    rng = np.random.default_rng(7)
    systems, full = _biased_store(tmp_path / "full.sqlite", rng, None)
    _, holes = _biased_store(tmp_path / "holes.sqlite", np.random.default_rng(7), "s3")
    truth = rate_run(systems, full, n_boot=20, seed=0, level=0.95).table
    fixed = rate_run(systems, holes, n_boot=20, seed=0, level=0.95).table
    # what the ratings were before: every comparison at full weight, its one order taken as it came
    naive = [o.model_copy(update={"weight": 1.0, "p_a": o.p_a + o.position_adjust if o.p_ab is not None
                                  else o.p_a - o.position_adjust}) for o in holes]
    before = rate_run(systems, naive, n_boot=20, seed=0, level=0.95).table
    s3 = systems.index("s3")
    assert sum(o.weight == 0.5 for o in holes) > 100  # 60 prompts x 3 pairs with s3, 80% of them cut
    lift_before = before.rating[s3] - truth.rating[s3]
    lift_now = fixed.rating[s3] - truth.rating[s3]
    assert lift_before > 40  # shown first in most of its comparisons, the position effect lifted s3
    print(f"s3 lifted {lift_before:.1f} points before, {lift_now:.1f} now")
    assert abs(lift_now) < lift_before / 4


def test_rate_on_a_run_folder_is_ranks_fit_and_controls_style_from_the_stored_texts(monkeypatch, tmp_path):
    rows = [r for r in map(json.loads, EXAMPLE.read_text().splitlines()) if r["prompt_id"] in ("q01", "q04", "q07")]
    cands = write_jsonl(tmp_path / "c.jsonl", rows)
    run = tmp_path / "run"
    assert run_cli(monkeypatch, "rank", cands, "--judge", "smollm2-135m", "--n-ctx", "2048", "--output", run,
                   "--n-boot", "200", "--no-report", "--no-independence-check") == 0
    board = {r["system"]: r for r in json.loads((run / "leaderboard.json").read_text())["leaderboard"]}
    assert run_cli(monkeypatch, "rate", run, "--n-boot", "200", "-o", tmp_path / "r.json") == 0
    rated = {r["system"]: r for r in json.loads((tmp_path / "r.json").read_text())["ratings"]}
    assert set(rated) == set(board)
    for s, r in rated.items():
        assert (r["rating"], r["lower"], r["upper"]) == pytest.approx(
            (board[s]["rating"], board[s]["lower"], board[s]["upper"]), abs=1e-6)
    assert run_cli(monkeypatch, "rate", run, "--style", "-o", tmp_path / "style.json") == 0
    doc = json.loads((tmp_path / "style.json").read_text())
    assert doc["covariate_effects"] and {r["system"] for r in doc["ratings"]} == set(board)
