"""Judge audit: numbers against hand-computed values on a small fixture, intervals, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _ensemble_helpers import external_verdicts, make_store, write_jsonl
from referee.audit import (accuracy, agreement, audit_judge, bootstrap_interval, cohen_kappa, ece, family_preference,
                           longer_preference, position_consistency, reliability)

from conftest import run_cli as run

# Eight items. Judge verdicts P(a better), human labels (1 a, 0 b, 0.5 tie), answer lengths.
P = np.array([0.9, 0.8, 0.3, 0.5, 0.6, 0.1, 0.7, 0.2])
Y = np.array([1.0, 0.0, 0.0, 0.5, 1.0, 0.0, 0.5, 1.0])
LA = np.array([100, 50, 30, 10, 80, 20, 60, 10])
LB = np.array([50, 20, 60, 10, 40, 90, 30, 40])


def test_hand_computed_values():
    # decisions: judge a a b tie a b a b ; labels a b b tie a b tie a
    assert agreement(P, Y) == pytest.approx(5 / 8)                  # items 0, 2, 3, 4, 5
    assert agreement(P, Y, ties=False) == pytest.approx(4 / 6)      # items 0,1,2,4,5,7 -> 0,2,4,5 right
    # kappa with ties: po = 5/8; judge marginals a 4/8 b 3/8 tie 1/8; labels a 3/8 b 3/8 tie 2/8
    pe = 4 / 8 * 3 / 8 + 3 / 8 * 3 / 8 + 1 / 8 * 2 / 8
    assert cohen_kappa(P, Y) == pytest.approx((5 / 8 - pe) / (1 - pe))
    # without ties: 6 items, judge a a b a b b, labels a b b a b a: po 4/6, pe = .5*.5 + .5*.5
    assert cohen_kappa(P, Y, ties=False) == pytest.approx((4 / 6 - 0.5) / 0.5)
    # accuracy: non-tie labels (6 items); all judge non-ties there: 4 right of 6
    assert accuracy(P, Y) == pytest.approx(4 / 6)
    # longer: unequal-length items with non-tie verdicts: 0(a longer, says a) 1(a, a) 2(b, b) 4(a, a) 5(b, b)
    # 6(a, a) 7(b, b) -> all 7 pick the longer
    assert longer_preference(P, LA, LB) == 1.0
    assert position_consistency(np.array([1, 0, np.nan, 1])) == pytest.approx(2 / 3)
    fa = np.array([1, 0, 0, 0, 1, 0, 0, 0], bool)
    fb = np.array([0, 1, 0, 0, 1, 0, 0, 0], bool)
    assert family_preference(P, fa, fb) == pytest.approx(1 / 2)    # item 0 picks family, item 1 picks non-family


def test_longer_preference_of_labels_by_hand():
    # labels non-tie: 0 a (a longer: yes), 1 b (a longer: no), 2 b (b longer: yes), 4 a (a longer: yes),
    # 5 b (b longer: yes), 7 a (b longer: no) -> 4 of 6
    assert longer_preference(Y, LA, LB) == pytest.approx(4 / 6)


def test_reliability_and_ece_by_hand():
    p = np.array([0.9, 0.9, 0.6, 0.4, 0.5])
    y = np.array([1.0, 0.0, 1.0, 0.5, 1.0])
    bins, e = reliability(p, y, bins=5)
    # confidences 0.9 0.9 0.6 0.6 0.5; scores 1 0 1 0.5 0.5
    # bins [0.5,0.6): {0.5} conf .5 acc .5 ; [0.6,0.7): {0.6, 0.6} conf .6 acc .75 ; [0.9,1]: conf .9 acc .5
    assert [b["n"] for b in bins] == [1, 2, 2]
    assert e == pytest.approx(1 / 5 * 0 + 2 / 5 * 0.15 + 2 / 5 * 0.4)
    assert ece(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0


def test_degenerate_values_are_nan_not_errors():
    assert np.isnan(agreement(np.array([0.5]), np.array([0.5]), ties=False))
    assert cohen_kappa(np.array([0.9, 0.9]), np.array([1.0, 1.0])) == 1.0
    assert np.isnan(position_consistency(np.array([np.nan])))
    assert np.isnan(longer_preference(P, LA, LA))


def test_bootstrap_interval_covers_and_is_seeded():
    rng = np.random.default_rng(0)
    x = (rng.random(400) < 0.7).astype(float)
    lo, hi = bootstrap_interval(np.mean, [x], n_boot=400, seed=1)
    m, se = x.mean(), x.std() / np.sqrt(len(x))
    assert lo < m < hi and abs((hi - lo) / (2 * 1.96 * se) - 1) < 0.15  # about the normal-theory width
    assert (lo, hi) == bootstrap_interval(np.mean, [x], n_boot=400, seed=1)
    clo, chi = bootstrap_interval(np.mean, [x], n_boot=400, seed=1, cluster=np.repeat(np.arange(20), 20))
    assert chi - clo > 0 and np.isfinite(clo)


def test_audit_report_with_and_without_labels():
    r = audit_judge(P, Y, consistent=np.array([1, 1, 0, np.nan, 1, 1, 1, 1.0]), len_a=LA, len_b=LB,
                    others={"other": 1 - P}, n_boot=200)
    assert r.get("agreement").value == pytest.approx(5 / 8)
    assert r.get("position consistency").value == pytest.approx(6 / 7)
    assert r.get("agreement with other").value == 0.0
    m = r.get("cohen kappa")
    assert m.lo <= m.value <= m.hi
    assert json.dumps(r.to_dict())  # serialisable, no NaN objects
    free = audit_judge(P, None, len_a=LA, len_b=LB, n_boot=50)
    assert [m.name for m in free.metrics] == ["prefers longer"]


def test_cli_audit_labels_and_label_free(tmp_path, monkeypatch, capsys):
    f = tmp_path / "ext.jsonl"
    _, labels, cands = external_verdicts(f, n_prompts=20)
    out = tmp_path / "audit.json"
    assert run(monkeypatch, "audit", f, "--judge", "j1", "--labels", labels, "--candidates", cands,
               "--n-boot", 50, "-o", out) == 0
    rep = json.loads(out.read_text())[0]
    names = {m["name"]: m for m in rep["metrics"]}
    assert {"agreement", "cohen kappa", "ece", "prefers longer", "agreement with j2"} <= set(names)
    assert 0.7 < names["agreement"]["value"] <= 1.0

    store = tmp_path / "run" / "verdicts.sqlite"
    items = {("p0", "alpha", "beta"), ("p1", "alpha", "gamma"), ("p2", "beta", "gamma")}
    make_store(store, n_prompts=10, inconsistent=items)
    assert run(monkeypatch, "audit", store.parent, "--judge", "j1", "--family", "alpha", "--n-boot", 50,
               "-o", out) == 0
    assert "label-free parts only" in capsys.readouterr().out
    names = {m["name"]: m for m in json.loads(out.read_text())[0]["metrics"]}
    assert names["position consistency"]["value"] == pytest.approx(27 / 30)
    assert "prefers own family" in names and "prefers longer" in names

    bad = write_jsonl(tmp_path / "bad_labels.jsonl", [{"prompt_id": "p0", "system_a": "alpha", "label": "a"}])
    assert run(monkeypatch, "audit", f, "--labels", bad) == 2
    assert "system_b" in capsys.readouterr().err
