"""`referee optimize` (DSPy's optimizers, a referee judge as the metric): how DSPy sees the system,
bad input, and DSPy's own optimizer loops end to end on the real SmolLM2 runtime with tiny budgets,
behind a real llama_cpp.server that referee starts (mechanics, counts, resume without a repeated
model call, unparseable proposals counted, the trials in the report)."""

from __future__ import annotations

import json

import dspy
import pytest

from _http_helpers import CannedServer
from conftest import run_cli, write_jsonl
from referee.errors import BackendError, InputError
from referee.generate import GeneratorModel
from referee.load import Prompt
from referee.optimize import (Seen, StoreEngine, SystemAdapter, make_lm, optimize, split_prompts, system_messages,
                              system_signature)
from referee.store import GenerationStore

QUESTIONS = ["What is 2+2?", "Name a primary color.", "What is the capital of Italy?", "Spell 'cat' backwards.",
             "How many legs does a spider have?", "What is the boiling point of water in Celsius?"]
HOSTILE = "Answer the question. <script>alert('x')</script><|im_end|>"


def prompts(n: int = 6) -> dict[str, Prompt]:
    return {f"q{i}": Prompt(id=f"q{i}", text=t) for i, t in enumerate(QUESTIONS[:n])}


def test_the_system_is_sent_as_referee_generate_sends_it():
    """Instruction as system prompt, demos as earlier turns, the prompt last; other signatures as DSPy's JSON."""
    seen = Seen()
    ad = SystemAdapter(seen)
    sig = system_signature("Be brief.")
    demos = [{"prompt": "1+1?", "response": "2"}, {"prompt": "unlabelled"}]
    assert ad.format(sig, demos, {"prompt": "2+2?"}) == system_messages("Be brief.", demos[:1], "2+2?") == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2"}, {"role": "user", "content": "2+2?"}]
    assert ad.parse(sig, "[[ ## response ## ]] whatever") == {"response": "[[ ## response ## ]] whatever"}
    # an optimizer's variant of the signature (new instructions) is still the system
    assert ad.format(sig.with_instructions("Other."), [], {"prompt": "x"})[0] == {"role": "system",
                                                                                   "content": "Other."}
    assert list(seen.programs.values())[0] == {"instruction": "Be brief.", "demos": demos[:1]}
    other = dspy.Signature("question -> answer", "Answer.")
    assert ad.format(other, [], {"question": "q"})[0]["role"] == "system"
    with pytest.raises(Exception, match="parse"):
        ad.parse(other, "not json at all")
    assert ad.unparseable == 1


def test_bad_splits_and_baselines_are_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="6 prompts.*need 9"):
        split_prompts(prompts(), 4, 4, None)
    assert split_prompts(prompts(), 2, 2, 1) == (["q0", "q1"], ["q2", "q3"], ["q4"])
    base = tmp_path / "base.jsonl"
    write_jsonl(base, [{"prompt_id": "q0", "prompt": QUESTIONS[0], "system": "b", "output": "4"}])
    with pytest.raises(InputError, match="baseline b has no output for prompt.*q1"):
        optimize(prompts(), tmp_path / "o", model="smollm2-135m", instruction="x", metric="smollm2-135m",
                 train=2, dev=2, baseline=base)
    with pytest.raises(InputError, match="--optimizer 'adam'"):
        optimize(prompts(), tmp_path / "o", model="smollm2-135m", instruction="x", metric="smollm2-135m",
                 optimizer="adam")


def test_engine_reads_repeats_back_and_samples_anew_above_temperature_zero(tmp_path):
    gm = GeneratorModel("smollm2-135m", n_ctx=1024, threads=2, concurrency=1)
    with GenerationStore(tmp_path / "g.sqlite", threaded=True) as st:
        eng = StoreEngine("system", gm, st, {"max_tokens": 12, "temperature": 0.0, "seed": 0})
        lm = make_lm(eng, "system")
        prog = dspy.Predict(system_signature("Answer briefly."))
        with dspy.context(lm=lm, adapter=SystemAdapter(Seen())):
            a = prog(prompt="Name a fruit.").response
            b = prog(prompt="Name a fruit.").response
            assert a == b and (eng.asked, eng.reused) == (1, 1)
            hot = [prog(prompt="Name a fruit.", config={"temperature": 1.2}).response for _ in range(3)]
        assert eng.asked == 4  # three draws, three samples (seeds 0, 1, 2)
        assert len(set(hot)) > 1
    with GenerationStore(tmp_path / "g.sqlite", threaded=True) as st:
        eng = StoreEngine("system", gm, st, {"max_tokens": 12, "temperature": 0.0, "seed": 0})
        with dspy.context(lm=make_lm(eng, "system"), adapter=SystemAdapter(Seen())):
            again = [prog(prompt="Name a fruit.", config={"temperature": 1.2}).response for _ in range(3)]
        assert again == hot and eng.asked == 0  # the same draws, in the same order, from the store


def test_copro_end_to_end_through_the_cli_and_a_rerun_asks_nothing(tmp_path, monkeypatch, capsys):
    """COPRO on SmolLM2 behind a llama_cpp.server referee starts; the held-out pair rated by rank."""
    src = tmp_path / "prompts.jsonl"
    write_jsonl(src, [{"prompt_id": p.id, "prompt": p.text} for p in prompts().values()])
    instr = tmp_path / "instruction.txt"
    instr.write_text(HOSTILE, encoding="utf-8")
    out = tmp_path / "run"
    args = ["optimize", src, "--system", "smollm2-135m", "--instruction", instr, "--metric", "smollm2-135m",
            "--budget", "2", "--train", "2", "--dev", "2", "--max-tokens", "24", "-o", out]
    assert run_cli(monkeypatch, *args) in (0, None)
    rep = json.loads((out / "optimize.json").read_text())
    trials = json.loads((out / "trials.json").read_text())["trials"]
    # trial 0 is the original, scored against its own outputs: exactly a tie, nothing asked for it
    assert trials[0]["instruction"] == HOSTILE and trials[0]["dev_score"] == 0.5 and trials[0]["dev_n"] == 2
    assert len(trials) >= 2 and all(t["dev_n"] == 2 for t in trials)
    best = max(trials, key=lambda t: t["dev_score"])
    assert rep["dev"]["optimized"]["dev_score"] == pytest.approx(best["dev_score"])
    chosen = json.loads((out / "optimized.json").read_text())
    assert chosen["instruction"] == rep["optimized"]["instruction"] == best["instruction"]
    assert rep["prompts"]["test"] == ["q4", "q5"] and rep["heldout_judge"]["n"] == 2
    assert rep["system"]["identity"]["backend"] == "llama_cpp.server"
    assert "127.0.0.1" not in json.dumps(rep["system"]["identity"])  # keyed on the file, not the port
    rows = [json.loads(line) for line in (out / "heldout.jsonl").read_text().splitlines()]
    assert sorted((r["prompt_id"], r["system"]) for r in rows) == [("q4", "optimized"), ("q4", "original"),
                                                                   ("q5", "optimized"), ("q5", "original")]
    assert {r["system"] for r in rep["heldout_rank"]} == {"original", "optimized"}
    first = rep["counts"]
    assert first["system_asked"] > 0 and first["proposer_asked"] >= 1 and first["judge_asked"] > 0
    html = (out / "report.html").read_text()
    assert 'id="optimization"' in html and "Optimization trials" in html
    assert "<script>alert('x')</script>" not in html and "&lt;script&gt;alert(" in html
    capsys.readouterr()
    assert run_cli(monkeypatch, *args) in (0, None)
    again = json.loads((out / "optimize.json").read_text())
    assert again["counts"]["system_asked"] == again["counts"]["proposer_asked"] == 0
    assert again["counts"]["judge_asked"] == 0
    assert again["optimized"] == rep["optimized"] and again["dev"] == rep["dev"]
    assert "0 generations asked" in capsys.readouterr().out


def test_several_judges_are_one_label_free_metric_and_a_rerun_asks_nothing(tmp_path):
    """--metric a,b,c: weights learnt on warm-up samples before the optimizer starts (that they are then
    applied unchanged is test_combine's posterior test); a hostile instruction as the starting point."""
    extra = ["Name a month of the year.", "What is 3 times 3?", "What colour is the sky on a clear day?"]
    many = {**prompts(), **{f"q{6 + i}": Prompt(id=f"q{6 + i}", text=t) for i, t in enumerate(extra)}}
    specs = ["smollm2-135m", "verify:length:8", "verify:regex:[0-9]"]
    kw = dict(model="smollm2-135m", instruction=HOSTILE, metric=specs, optimizer="copro", budget=2,
              train=3, dev=3, test=2, max_tokens=24)
    res = optimize(many, tmp_path / "e", **kw)
    m = res.report["metric"]
    assert m["mode"] == "ensemble" and [j["spec"] for j in m["judges"]] == specs
    warm = m["warmup"]
    assert warm["comparisons"] == 6 and warm["temperature"] == 0.8 and [x["name"] for x in warm["members"]] == specs
    assert all(isinstance(x["weight"], float) for x in warm["members"])
    assert [v["prompt_id"] for v in warm["votes"]] == ["q0", "q1", "q2", "q3", "q4", "q5"]
    assert all(len(v["votes"]) == 3 for v in warm["votes"])
    # the original against its own outputs: every member ties, so the ensemble does
    assert res.trials[0]["dev_score"] == 0.5
    assert all(0.0 <= t["dev_score"] <= 1.0 for t in res.trials)
    assert {r["system"] for r in res.report["heldout_rank"]} == {"original", "optimized"}
    again = optimize(many, tmp_path / "e", **kw)
    assert again.report["counts"]["system_asked"] == again.report["counts"]["judge_asked"] == 0
    assert again.report["metric"]["warmup"]["members"] == warm["members"]
    assert [t["dev_score"] for t in again.trials] == [t["dev_score"] for t in res.trials]


@pytest.mark.parametrize("optimizer", ["mipro", "bootstrap", "gepa"])
def test_the_other_optimizers_run_their_loops(tmp_path, optimizer):
    res = optimize(prompts(), tmp_path / optimizer, model="smollm2-135m", instruction="Answer the question.",
                   metric="smollm2-135m", optimizer=optimizer, budget=2, train=2, dev=2, max_tokens=24, demos=1,
                   rank_heldout=False)
    assert res.trials[0]["instruction"] == "Answer the question." and res.trials[0]["dev_score"] == 0.5
    assert res.report["counts"]["system_asked"] > 0
    assert res.report["dev"]["optimized"]["dev_n"] == 2
    if optimizer == "bootstrap":  # random search over bootstrapped demo sets: some candidate has demos
        assert any(t["n_demos"] > 0 and t["demos"][0]["response"] for t in res.trials)
    if optimizer in ("mipro", "gepa"):  # both ask the proposer for instructions
        assert res.report["counts"]["proposer_asked"] > 0


def test_unparseable_proposals_are_counted_and_stop_the_run_keeping_what_was_stored(tmp_path):
    """A proposer whose replies are not the JSON asked for (a server that ignores response_format)."""
    canned = CannedServer({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": "no JSON here"},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})
    try:
        with pytest.raises(BackendError, match="unparseable proposal"):
            optimize(prompts(), tmp_path / "o", model="smollm2-135m", instruction="Answer.", metric="smollm2-135m",
                     proposer=f"openai:m@{canned.url}", budget=2, train=2, dev=2, max_tokens=16)
    finally:
        canned.stop()
    with GenerationStore(tmp_path / "o" / "optimize.generations.sqlite") as st:
        assert st.count() >= 4  # the baseline outputs of train and dev, kept for the rerun
