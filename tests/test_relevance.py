"""Prompt independence: constant and templated outputs are found, honest answers are not, and a
flagged system can neither top the leaderboard nor become 'chosen' training data."""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import numpy as np

from conftest import DATA, SHARED, run_cli
from referee.relevance import TextProfile, decide, relevance_gap, strip_quotes, text_profile

GAMING = [json.loads(x) for x in (DATA / "gaming_set.jsonl").read_text().splitlines() if x.strip()]


def outputs_of(system: str) -> tuple[list[str], list[str]]:
    rows = [r for r in GAMING if r["system"] == system]
    return [r["output"] for r in rows], [r["prompt"] for r in rows]


def test_constant_output_says_nothing_specific():
    outs, prompts = outputs_of("null-constant")
    prof = text_profile(outs, prompts)
    assert prof.specific == 0 and prof.length >= 8
    assert decide("c", prof, None).flagged


def test_template_that_quotes_each_question_is_found():
    # every output differs (each pastes in its question), but only by the question itself
    outs, prompts = outputs_of("flattery")
    assert len(set(outs)) == len(outs)
    assert text_profile(outs, prompts).specific == 0


def test_answers_with_boilerplate_are_not_flagged():
    # a wrong answer with a fixed confident sentence, a one-line answer, padding around a wrong
    # answer, an off-topic answer: each says something specific to (or at least different on) its prompt
    for system in ("correct", "off-topic", "confident-wrong", "padded-wrong"):
        outs, prompts = outputs_of(system)
        prof = text_profile(outs, prompts)
        assert prof.specific >= 1 and not decide(system, prof, None).flagged, (system, prof)


def test_short_labels_are_left_to_the_judge():
    prof = text_profile(["Positive"] * 5 + ["Negative"], [f"Review {i}: ..." for i in range(6)])
    assert prof.specific == 0 and not decide("labels", prof, None).flagged


def test_real_systems_are_never_flagged_by_their_text():
    # 40 AlpacaEval systems on 805 prompts (../shared/data is present in CI: no skip)
    instr = {}
    for line in (SHARED / "alpaca_eval/instructions.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        instr[r["instruction_id"]] = r["instruction"]
    by = defaultdict(list)
    for line in (SHARED / "alpaca_eval/outputs.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        by[r["model"]].append((r["output"], instr[r["instruction_id"]]))
    profiles = {m: text_profile([o for o, _ in v], [p for _, p in v]) for m, v in by.items()}
    assert len(profiles) >= 40
    worst = min(profiles.items(), key=lambda kv: kv[1].specific)
    assert worst[1].specific >= 10, worst
    assert not any(decide(m, prof, None).flagged for m, prof in profiles.items())


def test_strip_quotes_removes_pasted_questions_only():
    q = "What is the capital of Canada?"
    assert strip_quotes(f'Great question! "{q}" is a fine one.', q) == ["great", "question", "is", "a", "fine", "one"]
    # an answer that restates the question keeps its answer
    assert strip_quotes("The capital of Canada is Ottawa.", q) == ["is", "ottawa"]
    assert strip_quotes("Canada's capital is Ottawa.", q) == ["canada", "s", "capital", "is", "ottawa"]
    assert strip_quotes("", q) == []


def test_relevance_gap_and_decision():
    own, other = np.array([0.9, 0.95, 0.8, np.nan]), np.array([0.1, 0.0, 0.2, 0.5])
    g = relevance_gap(own, other)
    assert g.n == 3 and abs(g.gap - (0.8 + 0.95 + 0.6) / 3) < 1e-12 and g.lower < g.gap
    honest = TextProfile(specific=5, length=20, n=8)
    assert not decide("honest", honest, g).flagged
    same = relevance_gap(np.array([0.6, 0.7, 0.65]), np.array([0.62, 0.66, 0.7]))
    f = decide("gamer", honest, same)
    assert f.flagged and "unrelated prompts" in f.reasons[0]
    d = decide("constant", TextProfile(specific=0, length=30, n=8), None)
    assert d.flagged and "nothing specific" in d.reasons[0]
    assert d.to_dict()["text"] == {"specific": 0, "length": 30, "n": 8} and d.to_dict()["relevance"] is None


def test_flagged_systems_rank_last_and_stay_out_of_exports(tmp_path, monkeypatch):
    # A verifier (exact match against a reference) has no logprobs: the text check alone flags the
    # constant and the templated systems. Length decides nothing here; they would otherwise tie.
    rows = [dict(r) for r in GAMING if r["system"] in ("correct", "null-constant", "flattery", "confident-wrong")]
    answers = {r["prompt_id"]: r["output"] for r in rows if r["system"] == "correct"}
    for r in rows:
        r["reference"] = answers[r["prompt_id"]]
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    assert run_cli(monkeypatch, "rank", src, "-o", run, "--judge", "verify:chrf", "--n-boot", "50") == 0
    board = json.loads((run / "leaderboard.json").read_text())["leaderboard"]
    flagged = {r["system"] for r in board if r["flag"]}
    assert flagged == {"null-constant", "flattery"}
    assert [r["rank"] for r in board] == [1, 2, 3, 4]
    assert {r["system"] for r in board[-2:]} == flagged  # below every unflagged system, whatever the rating
    with (run / "leaderboard.csv").open() as f:
        assert {r["system"] for r in csv.DictReader(f) if r["flag"]} == flagged
    assert "flagged as prompt-independent" in (run / "leaderboard.md").read_text()
    html = (run / "report.html").read_text()
    assert all(f'data-flag-warning="{s}"' in html for s in flagged) and 'data-flag-warning="correct"' not in html
    prov = json.loads((run / "run.json").read_text())["prompt_independence"]
    assert set(prov["flagged"]) == flagged and prov["judge_id"] is None and prov["notes"]

    out = tmp_path / "dpo.jsonl"
    assert run_cli(monkeypatch, "export", run, "-o", out, "--min-agreement", "0") == 0
    kept = [json.loads(x) for x in out.read_text().splitlines()]
    assert kept and not {r["chosen_system"] for r in kept} & flagged
    out2 = tmp_path / "dpo_all.jsonl"
    assert run_cli(monkeypatch, "export", run, "-o", out2, "--min-agreement", "0", "--include-flagged") == 0
    everything = [json.loads(x) for x in out2.read_text().splitlines()]
    assert {r["chosen_system"] for r in everything} & flagged  # they did win pairs: the filter is what removed them

    picks = tmp_path / "picks.jsonl"
    assert run_cli(monkeypatch, "select", run, "-o", picks) == 0
    assert not {json.loads(x)["system"] for x in picks.read_text().splitlines()} & flagged
