"""``referee combine``: JSONL and run-store input, the stored ensemble judge, errors with file/line/field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _ensemble_helpers import external_verdicts, make_store, write_jsonl
from referee.combine import combine, read_verdicts, read_verdicts_jsonl, store_ensemble
from referee.errors import InputError
from referee.store import VerdictStore

from conftest import run_cli as run
from referee.outcomes import judge_outcomes


def test_jsonl_orders_winner_labels_and_consistency(tmp_path):
    f = write_jsonl(tmp_path / "v.jsonl", [
        {"prompt_id": 1, "system_a": "x", "system_b": "y", "judge": "J", "outcome": 0.8, "verdict_id": "v1"},
        {"prompt_id": 1, "system_a": "y", "system_b": "x", "judge": "J", "outcome": 0.6, "verdict_id": "v2"},
        {"prompt_id": 1, "system_a": "y", "system_b": "x", "judge": "K", "winner": "a"},
        {"prompt_id": 2, "system_a": "x", "system_b": "y", "judge": "K", "outcome": "tie"},
    ])
    t = read_verdicts_jsonl(f)
    assert t.items == [("1", "x", "y"), ("2", "x", "y")] and t.judges == ["J", "K"]
    assert t.x[0, 0] == pytest.approx(0.6)          # mean of 0.8 and 1 - 0.6
    assert t.consistent[0, 0] == 0.0                # x won in one order, y in the other
    assert t.x[0, 1] == 0.0 and t.x[1, 1] == 0.5 and np.isnan(t.x[1, 0])
    assert t.verdict_ids[(0, 0)] == ["v1", "v2"] and t.verdict_ids[(0, 1)] == ["v.jsonl:3"]


@pytest.mark.parametrize("row, field, line", [
    ({"prompt_id": 1, "system_a": "x", "system_b": "y", "judge": "J", "outcome": 1.5}, "outcome", 2),
    ({"prompt_id": 1, "system_a": "x", "system_b": "y", "judge": "J", "outcome": "maybe"}, "outcome", 2),
    ({"prompt_id": 1, "system_a": "x", "system_b": "y", "outcome": 0.3}, "judge", 2),
    ({"prompt_id": 1, "system_a": "x", "system_b": "x", "judge": "J", "outcome": 0.3}, "system_b", 2),
    ({"prompt_id": 1, "system_a": "x", "system_b": "y", "judge": "J"}, "outcome", 2),
])
def test_bad_rows_name_file_line_field(tmp_path, row, field, line):
    f = tmp_path / "v.jsonl"
    f.write_text(json.dumps({"prompt_id": 0, "system_a": "x", "system_b": "y", "judge": "J", "outcome": 1}) + "\n"
                 + json.dumps(row) + "\n")
    with pytest.raises(InputError) as e:
        read_verdicts_jsonl(f)
    assert e.value.line == line and e.value.field == field and e.value.path == str(f)


def test_not_json_and_empty(tmp_path):
    f = tmp_path / "v.jsonl"
    f.write_text("{not json\n")
    with pytest.raises(InputError, match="malformed JSON") as e:
        read_verdicts(f)
    assert e.value.line == 1
    f.write_text("\n")
    with pytest.raises(InputError, match="no verdicts"):
        read_verdicts(f)
    with pytest.raises(InputError, match="no such file"):
        read_verdicts(tmp_path / "missing.jsonl")


def test_store_roundtrip_as_judge_of_its_own(tmp_path):
    path = tmp_path / "run" / "verdicts.sqlite"
    truth = make_store(path, n_prompts=25)
    table = read_verdicts(path.parent)
    assert len(table.items) == 75 and table.judges == ["j1", "j2", "j3", "j4"]
    assert np.nanmean(table.consistent) == 1.0
    ens = combine(table.x, table.judges)
    jid = store_ensemble(path, table, ens)
    jid2 = store_ensemble(path, table, ens)  # storing again replaces, not duplicates
    assert jid == jid2 and jid.startswith("ens-")
    with VerdictStore.open(path) as st:
        spec = st.judges()[jid]
        assert spec["members"] == ["j1", "j2", "j3", "j4"] and spec["mode"] == "pairwise"
        vs = list(st.verdicts(judge_id=jid))
        assert len(vs) == 75 and all(v.mode == "pairwise" and v.status == "ok" for v in vs)
        assert all(len(v.detail["member_verdict_ids"]) == 8 for v in vs)   # 4 judges x 2 orders
        outs = judge_outcomes(st, judge_id=jid)
    assert len(outs) == 75
    right = np.mean([(o.p_a > 0.5) == truth[(o.prompt_id, o.system_a, o.system_b)] for o in outs])
    assert right > 0.9
    # a second combine over the store leaves the stored ensemble out by default
    assert read_verdicts(path).judges == ["j1", "j2", "j3", "j4"]


def test_cli_combine_store_and_jsonl(tmp_path, monkeypatch, capsys):
    path = tmp_path / "run" / "verdicts.sqlite"
    make_store(path, n_prompts=15)
    assert run(monkeypatch, "combine", path.parent, "--summary") == 0
    out = capsys.readouterr().out
    assert "judges (estimated without labels)" in out and "stored as judge" in out and "4 kept" in out
    rows = [json.loads(t) for t in (path.parent / "combined.jsonl").read_text().splitlines()]
    assert len(rows) == 45 and all(0 < r["p_a"] < 1 and r["n_judges"] == 4 for r in rows)
    assert run(monkeypatch, "combine", path, "--judges", "j1,j2", "-o", tmp_path / "two.jsonl", "--no-store") == 0
    assert "two usable verifiers" in capsys.readouterr().out

    f = tmp_path / "ext.jsonl"
    _, labels, _ = external_verdicts(f, n_prompts=40)
    assert run(monkeypatch, "combine", f, "--labels", labels, "--method", "triplet") == 0
    out = capsys.readouterr().out
    assert "majority vote" in out and "ensemble" in out
    assert (tmp_path / "ext.combined.jsonl").exists()
    assert run(monkeypatch, "combine", f, "--labels", labels, "--calibrate", "-o", tmp_path / "cal.jsonl") == 0
    assert "recalibrated with the labels" in capsys.readouterr().out
    assert run(monkeypatch, "combine", f, "--calibrate") == 2
    assert run(monkeypatch, "combine", f, "--judges", "nobody") == 2
    assert "no verdicts of judge" in capsys.readouterr().err
    assert run(monkeypatch, "combine", f, "--method", "vote") == 2


def test_pointwise_scores_and_binary_checks_become_pairs(tmp_path):
    rows = [
        {"prompt_id": "q", "system_a": "x", "system_b": "y", "judge": "pair", "outcome": 0.9},
        {"prompt_id": "q", "system": "x", "judge": "rm", "score": 7.0},
        {"prompt_id": "q", "system": "y", "judge": "rm", "score": 3.0},
        {"prompt_id": "q", "system": "z", "judge": "rm", "score": 5.0},
        {"prompt_id": "q", "system": "x", "judge": "tests", "passed": False},
        {"prompt_id": "q", "system": "y", "judge": "tests", "passed": True},
        {"prompt_id": "q", "system": "z", "judge": "tests", "passed": False},
    ]
    t = read_verdicts_jsonl(write_jsonl(tmp_path / "v.jsonl", rows))
    idx = t.index()
    xy, xz, yz = idx[("q", "x", "y")], idx[("q", "x", "z")], idx[("q", "y", "z")]
    rm, tests = t.judges.index("rm"), t.judges.index("tests")
    # rm differences 4, 2, -2 (median |d| = 2): sigmoid(2), sigmoid(1), sigmoid(-1)
    assert t.x[xy, rm] == pytest.approx(1 / (1 + np.exp(-2)))
    assert t.x[xz, rm] == pytest.approx(1 / (1 + np.exp(-1)))
    assert t.x[yz, rm] == pytest.approx(1 / (1 + np.exp(1)))
    assert (t.x[xy, tests], t.x[xz, tests], t.x[yz, tests]) == (0.0, 0.5, 1.0)
    assert sorted(t.verdict_ids[(xy, rm)]) == ["v.jsonl:2", "v.jsonl:3"]
    bad = write_jsonl(tmp_path / "b.jsonl", [rows[1], {"prompt_id": "q", "system": "y", "judge": "rm", "passed": True}])
    with pytest.raises(InputError, match="one kind a judge") as e:
        read_verdicts_jsonl(bad)
    assert e.value.line == 2
    with pytest.raises(InputError, match="needs a numeric 'score'"):
        read_verdicts_jsonl(write_jsonl(tmp_path / "c.jsonl", [{"prompt_id": "q", "system": "x", "judge": "j"}]))


def test_ensemble_outcomes_feed_the_rating(tmp_path):
    from referee.combine import ensemble_outcomes
    from referee.rate import rate_pairwise

    path = tmp_path / "verdicts.sqlite"
    make_store(path, n_prompts=30)
    outs, ens = ensemble_outcomes(path, ["j1", "j2", "j3", "j4"])
    assert len(outs) == 90 and all(o.judge_id.startswith("ens-") for o in outs)
    ix = {"alpha": 0, "beta": 1, "gamma": 2}
    table = rate_pairwise(list(ix), [ix[o.system_a] for o in outs], [ix[o.system_b] for o in outs],
                          [o.p_a for o in outs], ci="none")
    rec = sorted(table.to_records(), key=lambda r: -r["rating"])
    assert [r["system"] for r in rec] == ["alpha", "beta", "gamma"]


def test_store_verifier_scores_join_the_ensemble(tmp_path):
    from referee.store import Verdict, question_key, verdict_id

    path = tmp_path / "verdicts.sqlite"
    truth = make_store(path, n_prompts=20)
    # a pointwise verifier that scores alpha > beta > gamma on every prompt
    with VerdictStore(path) as st:
        st.register_judge("vf", {"mode": "verifier", "name": "length-check"})
        for p in range(20):
            for s, score in (("alpha", 3.0), ("beta", 2.0), ("gamma", 1.0)):
                q = question_key("vf", "verifier", f"p{p}", [s])
                st.put(Verdict(verdict_id=verdict_id(q, f"p{p}", [s]), question=q, judge_id="vf", mode="verifier",
                               prompt_id=f"p{p}", systems=[s], status="ok", score=score))
    t = read_verdicts(path)
    assert "vf" in t.judges and len(t.items) == 60
    col = t.x[:, t.judges.index("vf")]
    idx = t.index()
    assert col[idx[("p0", "alpha", "beta")]] == 1.0 and col[idx[("p0", "beta", "gamma")]] == 1.0
    assert len(t.verdict_ids[(idx[("p0", "alpha", "beta")], t.judges.index("vf"))]) == 2
    assert len(truth) == 60


def _both_orders(st, judge, pid, a, b, p_ab, p_ba):
    from referee.store import Verdict, question_key, verdict_id

    for first, second, p in ((a, b, p_ab), (b, a, p_ba)):
        q = question_key(judge, "pairwise", pid, [first, second])
        st.put(Verdict(verdict_id=verdict_id(q, pid, [first, second]), question=q, judge_id=judge, mode="pairwise",
                       prompt_id=pid, systems=[first, second], status="ok", p_first=p))


def test_all_tie_and_unvoted_items_become_no_outcomes(tmp_path):
    from _ensemble_helpers import PAIRS, texts
    from referee.combine import ensemble_outcomes

    path = tmp_path / "run" / "verdicts.sqlite"
    make_store(path, n_prompts=25)
    with VerdictStore(path) as st:
        st.put_candidates(*texts(27))
        for j in ("j1", "j2", "j3", "j4"):          # p25: every judge says tie, in both orders
            for a, b in PAIRS:
                _both_orders(st, j, "p25", a, b, 0.5, 0.5)
        st.register_judge("j5", {"mode": "pairwise", "name": "j5"})
        for a, b in PAIRS:                          # p26: only j5, dropped for too few verdicts
            _both_orders(st, "j5", "p26", a, b, 0.9, 0.1)
    outs, ens = ensemble_outcomes(path, ["j1", "j2", "j3", "j4", "j5"], store=False)
    assert ens.members[4].reason.startswith("too few verdicts")
    assert {o.prompt_id for o in outs} == {f"p{p}" for p in range(25)} and len(outs) == 75
    assert any(n.startswith("6 of 81 items have no non-tie verdict") for n in ens.notes), ens.notes
    jid = store_ensemble(path, read_verdicts(path, ["j1", "j2", "j3", "j4", "j5"]), ens)
    with VerdictStore.open(path) as st:
        assert {v.prompt_id for v in st.verdicts(judge_id=jid)} == {f"p{p}" for p in range(25)}


def test_rank_with_an_ensemble_without_signal_is_one_clear_error_not_equal_ratings(tmp_path, monkeypatch, capsys):
    # Two real verifiers that agree on half the prompts and contradict each other on the rest: the label-free
    # model finds both at chance. Rated, 1/2 on every pair would say "equal, to the last digit".
    patterns = [("7!", "x"), ("x", "7!"), ("7", "!"), ("!", "7")]
    texts = {f"p{k}": patterns[k % 4] for k in range(12)}  # the screen wants 10 verdicts of each
    rows = [{"prompt_id": pid, "prompt": f"Question {pid}?", "system": s, "output": t}
            for pid, pair in texts.items() for s, t in zip(("a", "b"), pair)]
    src = write_jsonl(tmp_path / "c.jsonl", rows)
    code = run(monkeypatch, "rank", src, "-o", tmp_path / "run", "--judges", "verify:regex:[0-9],verify:regex:!",
                   "--n-boot", "50", "--no-report")
    got = capsys.readouterr()
    out = " ".join((got.out + got.err).split())  # rich wraps long messages
    assert code != 0 and "no combined verdict to rate" in out and "agree no more often than chance" in out, out
    assert not (tmp_path / "run" / "leaderboard.md").exists()
    with VerdictStore.open(tmp_path / "run" / "verdicts.sqlite") as store:  # nothing computed is lost
        assert len(list(store.verdicts())) == 48
