"""Dependency-aware label model: families of verifiers with correlated errors weigh as one unit; soft levels."""

from __future__ import annotations

import numpy as np
import pytest

from referee.combine import combine, dawid_skene, majority_vote, to_votes
from referee.combine._labelmodel import dawid_skene_units, unit_codes, unit_scores


def acc_of(p, y):
    d = np.sign(np.asarray(p) - 0.5)
    return float(np.mean(np.where(d == 0, 0.5, (d > 0) == y)))


def block_data(n=4000, seed=0, strong=0.85, indep=(0.7, 0.65), block=4, share=0.8, heuristic=0.7):
    """One strong verifier, a few independent ones, and a block of weak ones that mostly copy one
    shared heuristic (their errors coincide): conditional independence fails inside the block."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5

    def vote(a):
        return np.where(rng.random(n) < a, y, ~y)

    cols = [vote(strong)] + [vote(a) for a in indep]
    h = vote(heuristic)
    cols += [np.where(rng.random(n) < share, h, vote(heuristic)) for _ in range(block)]
    x = np.array(cols).T.astype(float) * 0.6 + 0.2
    names = ["strong"] + [f"ind{k}" for k in range(len(indep))] + [f"blk{k}" for k in range(block)]
    return x, y, names


@pytest.mark.parametrize("seed", [0, 1])
def test_declared_block_does_not_outvote_the_strong_verifier(seed):
    x, y, names = block_data(seed=seed)
    blk = [n for n in names if n.startswith("blk")]
    naive = combine(x, names)
    aware = combine(x, names, groups=[blk])
    best = max(acc_of(x[:, j], y) for j in range(x.shape[1]))
    # Treated as independent, four copies of one 0.7 heuristic outvote everyone else.
    assert acc_of(naive.p, y) < best - 0.05
    assert acc_of(aware.p, y) > best + 0.01
    assert acc_of(aware.p, y) > acc_of(majority_vote(x), y) + 0.05
    m = {mm.name: mm for mm in aware.members}
    assert len({m[b].weight for b in blk}) == 1 and m["blk0"].unit == " + ".join(blk)
    assert m["strong"].weight > m["blk0"].weight and not m["strong"].unit
    # Accuracies of every member, the block's too, come from the posterior.
    true = {nm: float(np.mean((x[:, j] > 0.5) == y)) for j, nm in enumerate(names)}
    assert max(abs(m[nm].accuracy - true[nm]) for nm in names) < 0.05
    assert any("one unit of the label model" in note for note in aware.notes)


def test_group_names_or_indices_and_errors():
    x, y, names = block_data(n=1000)
    a = combine(x, names, groups=[["blk0", "blk1", "blk2", "blk3"]])
    b = combine(x, names, groups=[[3, 4, 5, 6]])
    assert np.allclose(a.p, b.p)
    with pytest.raises(ValueError, match="not a verifier"):
        combine(x, names, groups=[["blk0", "nobody"]])
    with pytest.raises(ValueError, match="levels"):
        combine(x, names, levels=0)


def test_units_reduce_to_binary_dawid_skene():
    # With one verifier a unit and one level a side, the categorical EM is the binary one.
    rng = np.random.default_rng(4)
    y = rng.random(2000) < 0.4
    x = np.array([np.where(rng.random(2000) < a, y, ~y) for a in (0.85, 0.75, 0.7, 0.6)]).T.astype(float)
    x[rng.random(x.shape) < 0.1] = np.nan
    v = to_votes(x)
    codes, uv = unit_codes(unit_scores(x, [[j] for j in range(4)]))
    assert np.array_equal(uv, v)
    q0 = np.full(2000, 0.5) + 0.3 * np.sign(v.sum(axis=1))
    old = dawid_skene(v, q0, max_iter=3000, tol=1e-10)
    new = dawid_skene_units(codes, 2, q0, max_iter=3000, tol=1e-10)
    assert np.allclose(old["q"], new["q"], atol=1e-8)


def test_soft_levels_use_confidence_when_it_carries_information():
    # Confident answers (0.95 / 0.05) are right 95% of the time, hesitant ones (0.6 / 0.4) 60%.
    rng = np.random.default_rng(7)
    n = 5000
    y = rng.random(n) < 0.5
    cols = []
    for _ in range(5):
        sure = rng.random(n) < 0.5
        right = rng.random(n) < np.where(sure, 0.95, 0.6)
        side = np.where(right, y, ~y)
        cols.append(np.where(side, np.where(sure, 0.95, 0.6), np.where(sure, 0.05, 0.4)))
    x = np.array(cols).T
    flat = combine(x)
    soft = combine(x, levels=2)
    assert acc_of(soft.p, y) > acc_of(flat.p, y) + 0.01
    codes, _ = unit_codes(unit_scores(x, [[0]]), levels=2)
    assert set(np.unique(codes)) == {0, 1, 2, 3}          # strong b, weak b, weak a, strong a
    assert np.all(codes[x[:, 0] == 0.95, 0] == 3) and np.all(codes[x[:, 0] == 0.4, 0] == 1)


def test_binary_outputs_populate_one_level_a_side():
    s = np.array([[1.0], [-1.0], [np.nan], [0.0], [1.0]])
    codes, votes = unit_codes(s, levels=3)
    assert codes[:, 0].tolist() == [3, 2, -1, -1, 3] and votes[:, 0].tolist() == [1, -1, 0, 0, 1]


def test_a_tie_of_the_strong_verifier_is_broken_by_the_others():
    x, y, names = block_data(n=3000, seed=3)
    ties = np.arange(0, 3000, 10)
    x[ties, 0] = 0.5
    e = combine(x, names, groups=[[n for n in names if n.startswith("blk")]])
    assert np.all(e.p[ties] != 0.5)
    assert acc_of(e.p[ties], y[ties]) > 0.6


def test_degenerate_groups_never_give_nan():
    x, _, names = block_data(n=600, seed=5)
    # Everything declared one family: one unit, its mean verdict.
    e = combine(x, names, groups=[names])
    assert any("one usable unit" in n for n in e.notes) and not np.isnan(e.p).any()
    assert np.allclose(e.p, np.nanmean(x, axis=1).clip(1e-6, 1 - 1e-6))
    # Two units: equal weights, no accuracy claims for the grouped members.
    e = combine(x[:, :4], names[:4], groups=[names[1:4]])
    assert any("two usable units" in n for n in e.notes) and not np.isnan(e.p).any()
    # A family whose members never answer, items nobody answered, ties only.
    x2 = x.copy()
    x2[:, 4:] = np.nan
    x2[:50] = np.nan
    e = combine(x2, names, groups=[names[4:]], levels=3)
    assert not np.isnan(e.p).any() and np.allclose(e.p[:50], e.prior)
    assert all(not m.kept for m in e.members[4:])
    e = combine(np.full((40, 4), 0.5), groups=[[0, 1]], levels=2)
    assert np.all(e.p == 0.5)


def test_cli_group_and_levels_and_stored_spec(tmp_path, monkeypatch, capsys):
    import json

    from _ensemble_helpers import external_verdicts, make_store
    from conftest import run_cli as run
    from referee.combine import read_verdicts, store_ensemble
    from referee.combine._io import ensemble_id
    from referee.store import VerdictStore

    f = tmp_path / "ext.jsonl"
    external_verdicts(f, n_prompts=40)
    assert run(monkeypatch, "combine", f, "--group", "j3,j4", "--levels", "2", "--summary",
               "-o", tmp_path / "g.jsonl") == 0
    out = capsys.readouterr().out
    assert "one unit of the label" in " ".join(out.split()) and "j3, j4" in " ".join(out.split())
    rows = [json.loads(t) for t in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert rows and all(0 < r["p_a"] < 1 for r in rows)
    assert run(monkeypatch, "combine", f, "--group", "j3,nobody") == 2
    assert "not a verifier" in capsys.readouterr().err

    path = tmp_path / "run" / "verdicts.sqlite"
    make_store(path, n_prompts=25)
    table = read_verdicts(path.parent)
    plain, grouped = combine(table.x, table.judges), combine(table.x, table.judges, groups=[["j3", "j4"]])
    assert ensemble_id(table, plain) != ensemble_id(table, grouped)
    jid = store_ensemble(path, table, grouped)
    with VerdictStore.open(path) as st:
        spec = st.judges()[jid]
    assert spec["units"] == [["j3", "j4"]] and spec["levels"] == 1
