"""Judge modes beyond logprob pairwise: pointwise (rubric, P(Yes)), listwise, generate-then-parse,
custom templates and replay; end to end through the store and the rank pipeline.

Real llama.cpp runs use SmolLM2 (position-biased: mechanics only, no quality assertions); the
malformed-output cases use a scripted backend so every kind of bad answer is exercised exactly.
"""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest

from referee import RankOptions, load_candidates, rank
from referee.backends import Generation, ReplayJudge
from referee.errors import InputError
from referee.judge import (CustomJudge, GeneratePairwiseJudge, ListwiseJudge, PairwiseLogprobJudge, RubricJudge,
                           YesProbabilityJudge, make_judge, parse_pairwise_verdict, rank_lists, score_candidates)
from referee.outcomes import compare_scores, listwise_outcomes, outcome_arrays, pointwise_outcomes
from referee.rate import rate_pairwise
from referee.store import Verdict, VerdictStore

from _http_helpers import CANNED, CannedServer
from conftest import EXAMPLE, shared_data, write_jsonl

SYSTEMS = ("concise-expert", "rambling", "careless")


def subset(tmp_path, prompts, systems=SYSTEMS, name="sub.jsonl"):
    rows = [r for r in map(json.loads, EXAMPLE.read_text().splitlines())
            if r["prompt_id"] in prompts and r["system"] in systems]
    return write_jsonl(tmp_path / name, rows)


class Scripted:
    """A backend that 'generates' the given texts in turn (and says what it was asked)."""

    def __init__(self, texts):
        self.texts = deque(texts)
        self.schemas = []

    def describe(self):
        return {"backend": "scripted"}

    context_size = 4096

    def count_tokens(self, text):
        return len(text) // 4

    def truncate(self, text, max_tokens, marker, *, tail=0.0):
        return text, False

    def generate(self, messages, *, max_tokens=256, temperature=0.0, json_schema=None):
        self.schemas.append(json_schema)
        return Generation(text=self.texts.popleft(), prompt_tokens=7, completion_tokens=3, finish_reason="stop")


# -- real llama.cpp (SmolLM2) -------------------------------------------------------------------

def test_pyes_pointwise_rank_end_to_end_and_resume(smol_judge, tmp_path):
    data = subset(tmp_path, ("q01",))
    judge = YesProbabilityJudge(smol_judge.backend, min_mass=0.2)
    opts = RankOptions(candidates=[data], output=tmp_path / "run", judge="smollm2-135m", mode="pyes", n_boot=50,
                       report=False)
    res = rank(opts, judge=judge)
    v = res.provenance["verdicts"]
    assert v["total"] == 3 and v["asked"] == 3
    with VerdictStore.open(tmp_path / "run" / "verdicts.sqlite") as st:
        rows = list(st.verdicts(mode="pointwise"))
        assert len(rows) == 3 and st.judges()[judge.judge_id]["mode"] == "pointwise"
    # SmolLM2 puts 0.73-0.83 of its mass on Yes/No for these three: every verdict is a score
    assert [r.status for r in rows] == ["ok"] * 3
    for r in rows:
        assert len(r.systems) == 1 and r.detail["mass"] >= 0.2
        assert 0.0 <= r.score <= 1.0
        assert r.score == pytest.approx(r.detail["p_yes"] / r.detail["mass"])
    assert {row["system"] for row in res.rows} == set(SYSTEMS)
    # the leaderboard counts each system's usable scores, not the pairs made from them
    ok_per_system = {s: sum(r.status == "ok" and r.systems == [s] for r in rows) for s in SYSTEMS}
    assert {row["system"]: row["verdicts"] for row in res.rows} == ok_per_system
    again = rank(opts, judge=judge)  # resumed: nothing asked twice
    assert again.provenance["verdicts"]["asked"] == 0 and again.provenance["verdicts"]["cache_hits"] == 3


def test_listwise_forward_and_reversed_through_rank(smol_judge, tmp_path):
    data = subset(tmp_path, ("q01",))
    judge = ListwiseJudge(smol_judge.backend, max_tokens=24)
    res = rank(RankOptions(candidates=[data], output=tmp_path / "run", mode="listwise", n_boot=50, report=False),
               judge=judge)
    with VerdictStore.open(tmp_path / "run" / "verdicts.sqlite") as st:
        vs = list(st.verdicts(mode="listwise"))
    assert len(vs) == 2 and vs[0].systems == vs[1].systems[::-1]
    # the grammar makes a 3-item list and 24 tokens are enough for it: both orders are rankings
    assert [v.status for v in vs] == ["ok", "ok"], [v.raw for v in vs]
    for v in vs:
        assert v.detail["finish_reason"] == "stop" and sorted(v.detail["ranking"]) == [0, 1, 2]
        assert v.detail["ranked_systems"] == [v.systems[i] for i in v.detail["ranking"]]
    assert res.provenance["verdicts"]["total"] == 2


def test_rubric_grammar_in_process(smol_judge):
    # no room for diagnoses (the server test covers them): the grammar alone must give valid JSON
    judge = RubricJudge(smol_judge.backend, scale=(1, 5), taxonomy=("wrong",), max_diagnoses=0, max_tokens=24)
    ans = judge.score("What is 2+2?", "5")
    # '{"diagnoses":[],"score":N}' is about 12 tokens: 24 leave room for the grammar to close it
    assert ans.detail["finish_reason"] == "stop" and ans.status == "ok", (ans.error, ans.raw)
    assert 1 <= ans.score <= 5 and ans.detail["diagnoses"] == []


def test_generate_then_parse_in_process(smol_judge):
    judge = GeneratePairwiseJudge(smol_judge.backend, max_tokens=10)
    ans = judge.judge("What is 2+2?", "4", "5")
    assert ans.raw
    # SmolLM2 writes no verdict tag in 10 tokens (it echoes the prompt), but whatever it writes, the
    # status and probability are what the strict parser makes of the kept text
    said = parse_pairwise_verdict(ans.raw, tuple(judge.template.choices))
    assert ans.status == ("unparseable" if said is None else "ok")
    assert ans.p_first == (None if said is None else {"first": 1.0, "second": 0.0, "tie": 0.5}[said])
    assert (ans.error is None) == (said is not None)


def test_custom_template_choice_judge(smol_judge, tmp_path):
    tpl = tmp_path / "mine.jinja"
    tpl.write_text('{#- referee\n{"mode": "pairwise", "variables": ["question", "first", "second"], '
                   '"system": "You judge answers.", "answer": {"type": "choice", "choices": ["A", "B"], '
                   '"prefill": "Better:"}}\n-#}\nQ: {{ question }}\nA: {{ first }}\nB: {{ second }}\n'
                   'Which is better, A or B?')
    judge = CustomJudge(tpl, smol_judge.backend, min_mass=0.2)
    assert judge.mode == "pairwise" and judge.judge_id.startswith("cu-")
    ans = judge.judge("What is 2+2?", "4", "5")
    assert set(ans.detail["p_letters"]) == {"A", "B"}
    pa, pb = ans.detail["p_letters"]["A"], ans.detail["p_letters"]["B"]
    assert pa + pb >= 0.2 and ans.status == "ok"  # SmolLM2 gives the letters 0.62 after "Better:"
    assert ans.p_first == pytest.approx(pa / (pa + pb))
    msgs = judge.render(question="QQ", first="F1", second="S2")
    assert msgs[0]["content"] == "You judge answers." and "A: F1\nB: S2" in msgs[1]["content"]


# -- malformed outputs (scripted backend) ---------------------------------------------------------

BAD_RUBRIC = [
    "not json at all",
    '{"score": 3}',  # missing diagnoses
    '{"diagnoses": [], "score": 11}',  # out of range
    '{"diagnoses": [{"type": "made-up", "span": "x", "severity": "minor", "explanation": "e"}], "score": 2}',
    '{"diagnoses": [], "score": "7"}',  # a string is not a score
    '{"diagnoses": [], "score": 7, "extra": 1}',
    '{"diagnoses": [{"type": "other", "span": "x", "severity": "fatal", "explanation": "e"}], "score": 2}',
]


def test_malformed_rubric_answers_are_unparseable_with_raw_text():
    good = '{"diagnoses": [{"type": "incomplete", "span": "Paris", "severity": "major", "explanation": "short"}], "score": 4}'
    backend = Scripted(BAD_RUBRIC + [good])
    judge = RubricJudge(backend)
    answers = [judge.score("Capital of France?", "Paris") for _ in range(len(BAD_RUBRIC) + 1)]
    for text, a in zip(BAD_RUBRIC, answers):
        assert a.status == "unparseable" and a.raw == text and a.score is None and a.error
    ok = answers[-1]
    assert ok.status == "ok" and ok.score == 4.0
    assert ok.detail["diagnoses"][0] == {"type": "incomplete", "span": "Paris", "severity": "major",
                                         "explanation": "short", "span_found": True}
    assert backend.schemas[0]["properties"]["score"]["enum"] == list(range(1, 11))


def test_malformed_permutations_and_verdicts():
    lw = ListwiseJudge(Scripted(['{"ranking": [1, 1, 2]}', "[1, 2]", '{"ranking": [3, 1, 2], "x": 1}',
                                 '{"ranking": [true, 2, 3]}', "2 > 3 > 1"]))
    got = [lw.rank("q", ["a", "b", "c"]) for _ in range(5)]
    assert [g.status for g in got] == ["unparseable"] * 4 + ["ok"]
    assert got[-1].detail["ranking"] == [1, 2, 0]
    pg = GeneratePairwiseJudge(Scripted(["A is [[A]] but [[B]]", "so: [[TIE]]", "I like B", "[[b]]"]))
    got = [pg.judge("q", "x", "y") for _ in range(4)]
    assert [g.status for g in got] == ["unparseable", "ok", "unparseable", "ok"]
    assert got[1].p_first == 0.5 and got[3].p_first == 0.0


def test_unparseable_verdicts_are_counted_in_the_run_summary(tmp_path):
    data = subset(tmp_path, ("q01", "q05"))
    # q01: concise-expert 5, rambling garbage, careless 5; q05: concise-expert out of range, 5, 5 (ties: rateable)
    texts = ['{"diagnoses": [], "score": 5}', "garbage", '{"diagnoses": [], "score": 5}',
             '{"diagnoses": [], "score": 99}', '{"diagnoses": [], "score": 5}', '{"diagnoses": [], "score": 5}']
    judge = RubricJudge(Scripted(texts))
    res = rank(RankOptions(candidates=[data], output=tmp_path / "run", mode="pointwise", n_boot=50, report=False),
               judge=judge)
    assert res.provenance["verdicts"]["unparseable"] == 2 and res.provenance["verdicts"]["ok"] == 4
    with VerdictStore.open(tmp_path / "run" / "verdicts.sqlite") as st:
        bad = [v for v in st.verdicts() if v.status == "unparseable"]
        assert {v.raw for v in bad} == {"garbage", '{"diagnoses": [], "score": 99}'}
        assert all(v.error for v in bad)
        assert st.status_counts() == {"ok": 4, "unparseable": 2, "error": 0}


# -- turning verdicts into pairwise outcomes -------------------------------------------------------

def _v(vid, system, score, kind="scale", prompt="p1", mode="pointwise"):
    return Verdict(verdict_id=vid, question=vid, judge_id="j", mode=mode, prompt_id=prompt, systems=[system],
                   status="ok", score=score, detail={"score_kind": kind})


def test_pointwise_outcomes():
    assert compare_scores(0.9, 0.9, probability=True) == pytest.approx(0.5)
    assert compare_scores(1.0, 0.0, probability=True) == 1.0
    assert compare_scores(0.8, 0.6, probability=True) == pytest.approx(0.8 * 0.4 + 0.5 * (0.48 + 0.08))
    assert compare_scores(7, 7) == 0.5 and compare_scores(8, 7) == 1.0 and compare_scores(7.5, 7, tie_margin=1) == 0.5
    vs = [_v("1", "x", 9), _v("2", "y", 5), _v("3", "z", 5), _v("4", "x", 1, prompt="p2"), _v("5", "y", 2, prompt="p2")]
    outs = pointwise_outcomes(vs)
    got = {(o.prompt_id, o.system_a, o.system_b): o.p_a for o in outs}
    assert got == {("p1", "x", "y"): 1.0, ("p1", "x", "z"): 1.0, ("p1", "y", "z"): 0.5, ("p2", "x", "y"): 0.0}
    x = outcome_arrays(["x", "y", "z"], outs)
    table = rate_pairwise(["x", "y", "z"], x.a, x.b, x.p, x.weight, ci="none")
    assert np.isfinite(table.rating).all()


def test_listwise_outcomes_break_rankings_into_pairs():
    fwd = Verdict(verdict_id="f", question="f", judge_id="j", mode="listwise", prompt_id="p", systems=["x", "y", "z"],
                  status="ok", detail={"ranking": [0, 1, 2]})  # x > y > z, x shown first
    rev = Verdict(verdict_id="r", question="r", judge_id="j", mode="listwise", prompt_id="p", systems=["z", "y", "x"],
                  status="ok", detail={"ranking": [0, 1, 2]})  # z > y > x: the first shown wins again
    outs = {(o.system_a, o.system_b): o for o in listwise_outcomes([fwd, rev])}
    assert set(outs) == {("x", "y"), ("x", "z"), ("y", "z")}
    o = outs[("x", "z")]
    assert o.p_ab == 1.0 and o.p_ba == 1.0 and o.p_a == 0.5 and o.consistent is False
    agree = listwise_outcomes([fwd, rev.model_copy(update={"detail": {"ranking": [2, 1, 0]}})])
    assert all(o.consistent and o.p_a == 1.0 for o in agree)


# -- replay ------------------------------------------------------------------------------------

def test_replay_plays_recorded_verdicts_through_rank(tmp_path):
    data = subset(tmp_path, ("q01", "q05"))
    recs = [{"prompt_id": p, "system_a": "concise-expert", "system_b": s, "p_a": 0.9}
            for p in ("q01", "q05") for s in ("rambling", "careless")]
    recs.append({"prompt_id": "q01", "system_a": "careless", "system_b": "rambling", "p_a": 0.3})
    src = write_jsonl(tmp_path / "recorded.jsonl", recs)
    res = rank(RankOptions(candidates=[data], output=tmp_path / "run", judge=f"replay:{src}", n_boot=50,
                           report=False))
    assert res.rows[0]["system"] == "concise-expert"
    v = res.provenance["verdicts"]
    assert v["ok"] == 10 and v["unparseable"] == 2  # q05 careless-vs-rambling was never recorded
    assert res.provenance["judge_behaviour"]["position_consistency"] == 1.0


def test_replay_reads_alpaca_eval_annotations():
    path = shared_data("alpaca_eval/judge_pairs.jsonl")
    judge = ReplayJudge(path, annotator="alpaca_eval_gpt4")
    first = json.loads(path.open().readline())
    p = judge.lookup(str(first["instruction_id"]), first["model_b"], first["model_a"])
    assert p == pytest.approx(first["p_b_wins"])
    assert judge.skipped > 0  # failed annotations (preference 0) are not verdicts
    assert judge.judge_id.startswith("rp-") and judge.spec["backend"]["annotator"] == "alpaca_eval_gpt4"


# -- make_judge dispatch -----------------------------------------------------------------------------

def test_make_judge_picks_the_judge_for_the_server_and_mode(tmp_path):
    with_lp = CannedServer()
    no_lp = CannedServer(reply={**CANNED, "choices": [{**CANNED["choices"][0], "logprobs": None}]})
    try:
        assert isinstance(make_judge(f"openai:m@{with_lp.url}"), PairwiseLogprobJudge)
        # a server without logprobs is refused, not silently judged another way under another judge id
        with pytest.raises(InputError, match="pairwise-generate"):
            make_judge(f"openai:m@{no_lp.url}")
        assert isinstance(make_judge(f"openai:m@{with_lp.url}", mode="pairwise-generate"), GeneratePairwiseJudge)
        assert isinstance(make_judge(f"openai:m@{no_lp.url}", mode="pointwise"), RubricJudge)
        assert isinstance(make_judge(f"openai:m@{no_lp.url}", mode="pyes"), YesProbabilityJudge)
        assert isinstance(make_judge(f"openai:m@{no_lp.url}", mode="listwise"), ListwiseJudge)
        with pytest.raises(InputError):
            make_judge(f"openai:m@{no_lp.url}", mode="sideways")
        ans = make_judge(f"openai:m@{with_lp.url}").judge("q", "a", "b")  # canned: A -0.1, B -2.4
        assert ans.status == "ok" and ans.p_first == pytest.approx(np.exp(-0.1) / (np.exp(-0.1) + np.exp(-2.4)))
    finally:
        with_lp.stop()
        no_lp.stop()


def test_custom_template_validation(tmp_path):
    bad = tmp_path / "bad.jinja"
    bad.write_text('{#- referee {"mode": "pairwise", "variables": ["question"], "answer": {"type": "choice"}} -#}'
                   "{{ question }} {{ first }}")
    with pytest.raises(InputError, match="undeclared"):
        CustomJudge(bad, Scripted([]))
    bad.write_text('{#- referee {"mode": "pointwise", "variables": ["first"], "answer": {"type": "score"}} -#}x')
    with pytest.raises(InputError, match="not available"):
        CustomJudge(bad, Scripted([]))
    ok = tmp_path / "score.jinja"
    ok.write_text('{#- referee {"mode": "pointwise", "variables": ["question", "response"], '
                  '"answer": {"type": "score", "min": 1, "max": 5}} -#}{{ question }} => {{ response }}')
    judge = CustomJudge(ok, Scripted(["Score: 4", "Score: 9", "Score: 2 ... Score: 3"]))
    got = [judge.score("q", "r") for _ in range(3)]
    assert [g.status for g in got] == ["ok", "unparseable", "unparseable"] and got[0].score == 4.0


def test_score_candidates_reuses_answers_for_identical_texts(tmp_path):
    data = subset(tmp_path, ("q01",))
    cset = load_candidates([data])
    judge = RubricJudge(Scripted(['{"diagnoses": [], "score": 6}'] * 3))
    with VerdictStore(tmp_path / "v.sqlite") as st:
        first = score_candidates(cset, judge, st)
        again = score_candidates(cset, judge, st)
    assert [v.verdict_id for v in first] == [v.verdict_id for v in again]
    assert all(v.mode == "pointwise" and v.score == 6.0 and v.completion_tokens == 3 for v in first)
    with pytest.raises(AttributeError):
        rank_lists(cset, judge, VerdictStore(tmp_path / "w.sqlite"))  # a rubric judge cannot rank lists


def test_judge_config_file(tmp_path):
    srv = CannedServer(reply={**CANNED, "choices": [{**CANNED["choices"][0], "logprobs": None}]})
    try:
        cfg = tmp_path / "judge.toml"
        cfg.write_text(f'judge = "openai:m@{srv.url}"\nmode = "pointwise"\nconcurrency = 3\ntimeout = 7.5\n'
                       'api_key_env = "MY_JUDGE_KEY"\nscale = [1, 5]\ntaxonomy = ["wrong", "vague"]\n')
        judge = make_judge(str(cfg))
        assert isinstance(judge, RubricJudge) and judge.scale == (1, 5) and judge.taxonomy == ("wrong", "vague")
        assert judge.backend.concurrency == 3 and judge.backend.timeout == 7.5
        assert judge.backend.api_key_env == ("MY_JUDGE_KEY",)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"judge": f"openai:m@{srv.url}", "api_key": "sk-nope"}))
        with pytest.raises(InputError, match="environment variable"):
            make_judge(str(bad))
        bad.write_text(json.dumps({"judge": "smollm2-135m", "concurrency": 4}))
        with pytest.raises(InputError, match="openai"):
            make_judge(str(bad))
    finally:
        srv.stop()
