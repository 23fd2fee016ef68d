"""Preference data export (DPO, ranked, KTO; JSONL/Parquet/Dataset), filters, best-of-n selection."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from _ensemble_helpers import external_verdicts, make_store
from referee.errors import InputError
from referee.export import (Filters, build_rows, dpo_rows, export_dataset, kto_rows, load_preferences, ranked_rows,
                            select_rows, to_dataset, write_rows)
from referee.store import VerdictStore

from conftest import run_cli as run

PROMPTS = {"q": "Which is best?"}
OUTPUTS = {("q", "x"): "X answer", ("q", "y"): "Y answer", ("q", "z"): "Z answer"}


def rec(a, b, p, agreement=1.0, consistent=True, ids=("v",)):
    return {"prompt_id": "q", "system_a": a, "system_b": b, "p_a": p, "agreement": agreement,
            "consistent": consistent, "n_judges": 3, "verdict_ids": list(ids), "judge": "ens"}


def test_dpo_rows_orient_and_filter():
    recs = [rec("x", "y", 0.9, ids=["v1", "v2"]), rec("y", "z", 0.2), rec("x", "z", 0.5),
            rec("x", "y", 0.7, agreement=2 / 3), rec("x", "z", 0.8, consistent=False), rec("z", "x", 0.55)]
    rows, st = dpo_rows(recs, PROMPTS, OUTPUTS)
    assert [(r["chosen"], r["rejected"]) for r in rows] == [("X answer", "Y answer"), ("Z answer", "Y answer"),
                                                          ("Z answer", "X answer")]
    assert rows[0]["prompt"] == "Which is best?" and rows[0]["verdict_ids"] == ["v1", "v2"]
    assert rows[0]["p_chosen"] == 0.9 and rows[0]["margin"] == pytest.approx(0.8) and rows[1]["p_chosen"] == 0.8
    assert st.excluded == {"margin": 1, "disagreement": 1, "position-inconsistent": 1} and st.kept == 3
    rows, st = dpo_rows(recs, PROMPTS, OUTPUTS, Filters(min_margin=0.5, min_agreement=0.6, keep_inconsistent=True))
    assert len(rows) == 5 - 1 - 1  # tie and the 0.55 pair (margin 0.1) left out
    chat, _ = dpo_rows(recs[:1], PROMPTS, OUTPUTS, chat=True)
    assert chat[0]["prompt"] == [{"role": "user", "content": "Which is best?"}]
    assert chat[0]["chosen"] == [{"role": "assistant", "content": "X answer"}]


def test_kto_and_ranked_rows():
    recs = [rec("x", "y", 0.9), rec("y", "z", 0.8), rec("x", "z", 0.95)]
    kto, st = kto_rows(recs, PROMPTS, OUTPUTS)
    labels = {r["system"]: r["label"] for r in kto}
    assert labels == {"x": True, "z": False} and st.excluded == {"kto-mixed": 1}  # y won once, lost once
    ranked, _ = ranked_rows(recs, PROMPTS, OUTPUTS)
    assert ranked[0]["systems"] == ["x", "y", "z"] and ranked[0]["completions"][0] == "X answer"
    assert ranked[0]["scores"] == sorted(ranked[0]["scores"], reverse=True)
    assert abs(sum(ranked[0]["p_best"]) - 1) < 1e-9
    with pytest.raises(ValueError):
        build_rows("sft", recs, PROMPTS, OUTPUTS)


def test_missing_texts_are_counted_not_fatal():
    rows, st = dpo_rows([rec("x", "w", 0.9)], PROMPTS, OUTPUTS)
    assert rows == [] and st.excluded == {"no candidate text": 1}


def test_select_rows_best_of_n():
    recs = [rec("x", "y", 0.9), rec("y", "z", 0.8), rec("x", "z", 0.95)]
    [r] = select_rows(recs, PROMPTS, OUTPUTS)
    assert r["system"] == "x" and r["output"] == "X answer" and r["runner_up"] == "y" and 0.5 < r["p_best"] < 1


def test_select_per_system_picks_among_each_systems_samples():
    outs = {("q", s): f"{s} text" for s in ("a#0", "a#1", "b#0", "b#1")}
    # b#1 beats everything, but per system it only competes with b#0; cross-system pairs are unused
    recs = [rec("a#0", "a#1", 0.2), rec("b#0", "b#1", 0.1), rec("a#1", "b#1", 0.05), rec("a#0", "b#0", 0.9)]
    rows = {r["system"]: r for r in select_rows(recs, PROMPTS, outs, per_system=True)}
    assert set(rows) == {"a+best", "b+best"}
    assert rows["a+best"]["picked"] == "a#1" and rows["a+best"]["output"] == "a#1 text"
    assert rows["b+best"]["picked"] == "b#1" and rows["a+best"]["pairs"] == 1
    [whole] = select_rows(recs, PROMPTS, outs)
    assert whole["system"] == whole["picked"] == "b#1" and whole["pairs"] == 4
    assert whole["strengths"]["b#1"] == max(whole["strengths"].values())
    # samples judged equal still give a pick per system, marked tied; a lone sample gives none
    outs[("r", "a#0")], outs[("r", "a#1")], outs[("r", "c")] = "x", "y", "z"
    tied = [r for r in select_rows(recs, PROMPTS, outs, per_system=True) if r["prompt_id"] == "r"]
    assert [(r["system"], r["picked"], r["tied"], r["p_best"]) for r in tied] == [("a+best", "a#0", True, 0.5)]


def test_jsonl_and_parquet_roundtrip(tmp_path):
    recs = [rec("x", "y", 0.9, ids=["a", "b"]), rec("y", "z", 0.2)]
    rows, _ = dpo_rows(recs, PROMPTS, OUTPUTS)
    j = write_rows(tmp_path / "d.jsonl", rows)
    assert [json.loads(t) for t in j.read_text().splitlines()] == rows
    p = write_rows(tmp_path / "d.parquet", rows)
    assert pq.read_table(p).to_pylist() == rows
    ds = to_dataset(rows)
    assert ds.column_names[:3] == ["prompt", "chosen", "rejected"] and ds[0]["verdict_ids"] == ["a", "b"]


def test_from_store_combines_and_filters(tmp_path):
    store = tmp_path / "run" / "verdicts.sqlite"
    bad = {("p0", "alpha", "beta"), ("p1", "alpha", "gamma")}
    make_store(store, n_prompts=12, inconsistent=bad)
    prefs = load_preferences(store.parent)
    assert len(prefs.records) == 36 and prefs.prompts["p3"] == "Question number 3?"
    rows, st = dpo_rows(prefs.records, prefs.prompts, prefs.outputs)
    assert st.excluded["position-inconsistent"] >= 1 and st.kept + sum(st.excluded.values()) == 36
    assert not {(r["prompt_id"], *sorted((r["chosen_system"], r["rejected_system"]))) for r in rows} & bad
    assert all(r["agreement"] == 1.0 and r["consistent"] is not False for r in rows)
    loose, _ = dpo_rows(prefs.records, prefs.prompts, prefs.outputs,
                        Filters(min_agreement=0.0, keep_inconsistent=True))
    assert len(loose) == 36
    ds = export_dataset(store.parent, "kto")
    assert set(ds.column_names) >= {"prompt", "completion", "label"}


def test_cli_export_and_select(tmp_path, monkeypatch, capsys):
    store = tmp_path / "run" / "verdicts.sqlite"
    make_store(store, n_prompts=10)
    assert run(monkeypatch, "combine", store.parent) == 0      # stores the ensemble judge
    capsys.readouterr()
    out = tmp_path / "dpo.parquet"
    assert run(monkeypatch, "export", store.parent, "-o", out) == 0
    assert "using the stored ensemble" in capsys.readouterr().out
    t = pq.read_table(out).to_pylist()
    assert t and {"prompt", "chosen", "rejected", "p_chosen", "margin", "agreement", "verdict_ids"} <= set(t[0])
    assert all(len(r["verdict_ids"]) == 8 for r in t)          # 4 judges x 2 orders behind each pair
    assert run(monkeypatch, "export", store.parent, "-o", tmp_path / "r.jsonl", "-f", "ranked",
               "--keep-disagreeing") == 0
    assert run(monkeypatch, "select", store.parent, "-o", tmp_path / "pick.jsonl") == 0
    picks = [json.loads(x) for x in (tmp_path / "pick.jsonl").read_text().splitlines()]
    assert len(picks) == 10 and all(p["n_candidates"] == 3 and "output" in p for p in picks)

    f = tmp_path / "ext.jsonl"
    _, _, cands = external_verdicts(f, n_prompts=10)
    assert run(monkeypatch, "export", f, "-o", tmp_path / "x.jsonl") == 2
    assert "--candidates" in capsys.readouterr().err
    assert run(monkeypatch, "export", f, "--candidates", cands, "-o", tmp_path / "x.jsonl", "-f", "kto",
               "--min-agreement", "0.7") == 0
    assert run(monkeypatch, "export", f, "--candidates", cands, "-o", tmp_path / "x.jsonl", "-f", "sft") == 2
    assert run(monkeypatch, "select", f, "-o", tmp_path / "p.jsonl") == 0   # texts are optional for picks
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 10


def test_bad_combined_file_names_line_and_field(tmp_path):
    from referee.errors import InputError

    f = tmp_path / "c.jsonl"
    good = {"prompt_id": "q", "system_a": "x", "system_b": "y", "p_a": 0.8, "members": {"j": 0.8}}
    f.write_text(json.dumps(good) + "\n" + json.dumps(dict(good, p_a=1.7)) + "\n")
    with pytest.raises(InputError) as e:
        load_preferences(f)
    assert e.value.line == 2 and e.value.field == "p_a"
    f.write_text(json.dumps(good) + "\n{oops\n")
    with pytest.raises(InputError, match="malformed JSON"):
        load_preferences(f)


def test_cli_select_tie_break_orders_what_the_kept_judges_leave_tied(tmp_path, monkeypatch, capsys):
    import random

    from _ensemble_helpers import truth_table
    from referee.combine import combine, read_verdicts

    truth = truth_table(200, 2)
    tied = set(random.Random(0).sample(sorted(truth), len(truth) // 3))
    # j4 near chance, and its correlation with j3 came out slightly negative (-0.015): two of j3's
    # three triplets then divided by j4's small correlations and were clipped to 0, and a plain
    # median of them screened the 0.8-accurate j3 out as "near chance". The second pass of the
    # triplet estimate uses only informative partners.
    weak = tmp_path / "weak" / "verdicts.sqlite"
    make_store(weak, n_prompts=200, accs={"j1": 0.9, "j2": 0.85, "j3": 0.8, "j4": 0.57}, tied=tied, seed=2)
    table = read_verdicts(weak.parent, None)
    assert combine(table.x, table.judges).kept[:3] == ["j1", "j2", "j3"]

    store = tmp_path / "run" / "verdicts.sqlite"
    make_store(store, n_prompts=200, accs={"j1": 0.9, "j2": 0.85, "j3": 0.8, "j4": 0.6}, tied=tied, seed=2)
    assert run(monkeypatch, "combine", store.parent) == 0      # a stored ensemble, which --tie-break must not reuse
    capsys.readouterr()
    plain = load_preferences(store.parent, need_texts=False)
    assert len(plain.records) == 400 and not any(r.get("tie_broken") for r in plain.records)
    assert run(monkeypatch, "select", store.parent, "--tie-break", "-o", tmp_path / "pick.jsonl") == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long notes
    assert "200 items the kept verifiers left undecided were ordered by the tie-breakers: j4" in out
    prefs = load_preferences(store.parent, need_texts=False, tie_break=True)
    broken = [r for r in prefs.records if r.get("tie_broken")]
    assert len(prefs.records) == 600 and {(r["prompt_id"], r["system_a"], r["system_b"]) for r in broken} == tied
    assert all(abs(r["p_a"] - 0.5) <= 0.05 for r in broken)
    right = sum((r["p_a"] > 0.5) == truth[(r["prompt_id"], r["system_a"], r["system_b"])] for r in broken)
    assert right > 110  # j4 is right on 60% of them; a coin would be right on 100
    assert len((tmp_path / "pick.jsonl").read_text().splitlines()) == 200

    # A stored ensemble's verdicts are combined already: its ties cannot be broken, and saying so
    # beats silently treating the ensemble as one more judge.
    with VerdictStore.open(store) as vs:
        ens = next(j for j in vs.judges() if j.startswith("ens-"))
    with pytest.raises(InputError, match="is a stored ensemble"):
        load_preferences(store.parent, judges=[ens], need_texts=False, tie_break=True)
    assert run(monkeypatch, "combine", store.parent, "-o", tmp_path / "combined.jsonl") == 0
    with pytest.raises(InputError, match="holds combined verdicts"):
        load_preferences(tmp_path / "combined.jsonl", need_texts=False, tie_break=True)
