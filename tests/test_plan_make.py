"""make_planner: names, errors, budgets of the static plans."""

from __future__ import annotations

import pytest

from referee.plan import AdaptivePlan, Planner, TournamentPlan, make_planner

ANSWERED = {f"p{k}": ["a", "b", "c", "d"] for k in range(5)}


def drain(planner):
    out = []
    while batch := planner.next_batch({c: 0.7 for c in out}):
        out.extend(batch)
    return out


@pytest.mark.parametrize("name", ["round-robin", "baseline", "tournament", "adaptive"])
def test_every_plan_builds(name):
    p = make_planner(name, ANSWERED, baseline="a", budget=10)
    assert isinstance(p, Planner)
    issued = drain(p)
    assert 0 < len(issued) <= 10
    assert p.judge_calls == 2 * len(issued)
    assert p.stop_reason


def test_kinds_and_full_sizes():
    assert len(drain(make_planner("round-robin", ANSWERED))) == 30
    assert len(drain(make_planner("baseline", ANSWERED, baseline="b"))) == 15
    assert isinstance(make_planner("tournament", ANSWERED), TournamentPlan)
    assert isinstance(make_planner("adaptive", ANSWERED, until="separated"), AdaptivePlan)


def test_static_budget_is_a_seeded_prefix():
    full = drain(make_planner("round-robin", ANSWERED, budget=30, seed=4))
    assert sorted(full) == sorted(drain(make_planner("round-robin", ANSWERED)))
    assert drain(make_planner("round-robin", ANSWERED, budget=7, seed=4)) == full[:7]
    assert full != drain(make_planner("round-robin", ANSWERED, budget=30, seed=5))


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="nope"), "unknown plan 'nope'"),
    (dict(name="baseline"), "needs a baseline"),
    (dict(name="baseline", baseline="zz"), "unknown baseline"),
    (dict(name="adaptive"), "needs a budget"),
    (dict(name="adaptive", until="forever"), "unknown stopping rule"),
    (dict(name="tournament", until="separated"), "adaptive plan only"),
    (dict(name="round-robin", budget=-1), "budget"),
    (dict(name="adaptive", budget=10, tolerance=5.0), "tolerance applies"),
    (dict(name="adaptive", until="separated", tolerance=-1.0), "tolerance must be"),
])
def test_errors(kwargs, match):
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=match):
        make_planner(name, ANSWERED, **kwargs)
