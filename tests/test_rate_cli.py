"""``referee rate VERDICTS``: inputs (JSONL, CSV, verdict store), output JSON, errors."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
from scipy.special import expit

from referee.cli import main
from referee.rate import rate_pairwise


def run(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["referee", "rate", *map(str, args)])
    try:
        main()
    except SystemExit as e:
        return e.code
    return 0


def battles(n_ver=600, seed=0):
    rng = np.random.default_rng(seed)
    theta = np.array([1.0, 0.3, -0.2, -1.1])
    names = ["alpha", "beta", "gamma", "delta"]
    a = rng.integers(0, 4, n_ver)
    b = (a + rng.integers(1, 4, n_ver)) % 4
    o = (rng.random(n_ver) < expit(theta[a] - theta[b])).astype(float)
    return names, a, b, o


def write_jsonl(path, names, a, b, o, winner_labels=False):
    with open(path, "w", encoding="utf-8") as f:
        for i, (x, y, z) in enumerate(zip(a, b, o)):
            rec = {"system_a": names[x], "system_b": names[y], "prompt_id": f"p{i % 50}"}
            if winner_labels:
                rec["winner"] = {1.0: "a", 0.0: names[y], 0.5: "tie"}[float(z)]
            else:
                rec["outcome"] = float(z)
            f.write(json.dumps(rec) + "\n")


def test_jsonl_to_ratings_json(tmp_path, monkeypatch, capsys):
    names, a, b, o = battles()
    o[:30] = 0.5
    src = tmp_path / "v.jsonl"
    write_jsonl(src, names, a, b, o, winner_labels=True)
    out = tmp_path / "ratings.json"
    assert run(monkeypatch, src, "--n-boot", 200, "--output", out) == 0
    doc = json.loads(out.read_text())
    recs = doc["ratings"]
    assert [r["system"] for r in recs] == ["alpha", "beta", "gamma", "delta"]
    for r in recs:
        assert {"system", "rating", "lower", "upper", "rank_min", "rank_max", "n"} <= set(r)
        assert r["lower"] <= r["rating"] <= r["upper"]
    expected = rate_pairwise(sorted(names), [sorted(names).index(names[i]) for i in a],
                             [sorted(names).index(names[i]) for i in b], o, n_boot=200)
    assert {r["system"]: r["rating"] for r in recs} == pytest.approx(
        {s: float(v) for s, v in zip(expected.systems, expected.rating)})
    assert doc["fit"]["ci"] == "bootstrap" and doc["fit"]["n_boot"] == 200
    assert "alpha" in capsys.readouterr().out


def test_csv_sandwich_anchor_and_elo(tmp_path, monkeypatch):
    names, a, b, o = battles(seed=1)
    src = tmp_path / "v.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["system_a", "system_b", "outcome", "weight"])
        for x, y, z in zip(a, b, o):
            w.writerow([names[x], names[y], z, 1])
    out = tmp_path / "r.json"
    assert run(monkeypatch, src, "--ci", "sandwich", "--anchor", "delta", "--base", 1200, "-o", out) == 0
    recs = {r["system"]: r for r in json.loads(out.read_text())["ratings"]}
    assert recs["delta"]["rating"] == pytest.approx(1200)
    assert run(monkeypatch, src, "--method", "elo", "--n-boot", 20, "-o", out) == 0
    assert json.loads(out.read_text())["fit"]["method"] == "elo"


def test_covariates_fit_style_control(tmp_path, monkeypatch):
    names, a, b, o = battles(seed=2)
    src = tmp_path / "v.jsonl"
    rng = np.random.default_rng(0)
    with open(src, "w", encoding="utf-8") as f:
        for x, y, z in zip(a, b, o):
            f.write(json.dumps({"system_a": names[x], "system_b": names[y], "outcome": z,
                                "len_diff": float(rng.normal())}) + "\n")
    out = tmp_path / "r.json"
    assert run(monkeypatch, src, "--covariate", "len_diff", "-o", out) == 0
    doc = json.loads(out.read_text())
    assert doc["covariate_effects"][0]["covariate"] == "len_diff"
    assert doc["fit"]["method"] == "bt-style"


@pytest.mark.parametrize("line, where", [
    ('{"system_a": "x", "system_b": "y", "outcome": 2}', "outcome"),
    ('{"system_a": "x", "system_b": "y", "winner": "maybe"}', "winner"),
    ('{"system_a": "x", "outcome": 1}', "system_b"),
    ('{"system_a": "x", "system_b": "y"', None),
    ('{"system_a": "x", "system_b": "x", "outcome": 1}', "itself"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, line, where):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"system_a": "y", "system_b": "x", "outcome": 1}\n' + line + "\n")
    assert run(monkeypatch, src) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl" in err and ":2" in err
    if where:
        assert where in err


def test_unrateable_data_exit_2(tmp_path, monkeypatch, capsys):
    src = tmp_path / "v.jsonl"
    src.write_text('{"system_a": "a", "system_b": "b", "outcome": 1}\n{"system_a": "c", "system_b": "d", '
                   '"outcome": 0.5}\n')
    assert run(monkeypatch, src) == 2
    assert "disconnected" in capsys.readouterr().err


def test_reads_a_verdict_store(tmp_path, monkeypatch):
    from referee.store import Verdict, VerdictStore, question_key, verdict_id

    names, a, b, o = battles(n_ver=300, seed=3)
    path = tmp_path / "run" / "verdicts.sqlite"
    store = VerdictStore(path)
    store.register_judge("j1", {"model": "test"})
    for i, (x, y, z) in enumerate(zip(a, b, o)):
        for first, second, p in ((x, y, z), (y, x, 1 - z)):  # both orders, consistent
            systems = [names[first], names[second]]
            q = question_key("j1", "pairwise", f"prompt {i}", systems)
            store.put(Verdict(verdict_id=verdict_id(q, f"p{i}", systems), question=q, judge_id="j1",
                              mode="pairwise", prompt_id=f"p{i}", systems=systems, status="ok", p_first=float(p)))
    store.close()
    out = tmp_path / "r.json"
    assert run(monkeypatch, tmp_path / "run", "--ci", "sandwich", "-o", out) == 0
    recs = {r["system"]: r for r in json.loads(out.read_text())["ratings"]}
    order = sorted(names)
    expected = rate_pairwise(order, [order.index(names[i]) for i in a], [order.index(names[i]) for i in b], o,
                             ci="sandwich")
    for s, r in zip(expected.systems, expected.rating):
        assert recs[s]["rating"] == pytest.approx(r)
        assert recs[s]["n"] == expected.n[expected.systems.index(s)]


def test_style_option_controls_for_length(tmp_path, monkeypatch):
    # "long" wins only by writing more: with --style its edge should mostly vanish.
    rng = np.random.default_rng(4)
    src = tmp_path / "v.jsonl"
    zs = []
    with open(src, "w", encoding="utf-8") as f:
        for i in range(1500):
            pair = [("long", "x" * int(rng.integers(600, 900))), ("short", "y" * int(rng.integers(100, 900)))]
            if i % 2:
                pair.reverse()
            (sa, ta), (sb, tb) = pair
            z = (len(ta) - len(tb)) / (len(ta) + len(tb))
            zs.append(z)
            o = float(rng.random() < expit(3.0 * z))
            f.write(json.dumps({"system_a": sa, "system_b": sb, "outcome": o, "text_a": ta, "text_b": tb}) + "\n")
    out = tmp_path / "r.json"
    assert run(monkeypatch, src, "--ci", "sandwich", "-o", out) == 0
    plain = {r["system"]: r for r in json.loads(out.read_text())["ratings"]}
    assert run(monkeypatch, src, "--style", "-o", out) == 0
    doc = json.loads(out.read_text())
    ctrl = {r["system"]: r for r in doc["ratings"]}
    assert plain["long"]["lower"] > plain["short"]["upper"]
    assert ctrl["long"]["lower"] < ctrl["short"]["upper"]  # no longer separable
    eff = {e["covariate"]: e for e in doc["covariate_effects"]}
    assert set(eff) == {"length"}  # no markdown anywhere: those features are dropped
    # Coefficients are per standard deviation of the covariate; the truth is 3.0 per unit.
    assert abs(eff["length"]["coef"] - 3.0 * np.std(zs)) < 4 * eff["length"]["se"]
