"""Judging mechanics against the real llama.cpp runtime with the small SmolLM2 model.

SmolLM2-135M picks by position, so nothing here asserts which answer is better: only that
verdicts are read, stored, reused, truncated and reproduced as promised.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from referee import RankOptions, load_candidates, rank
from referee.backends._llamacpp import _BLOCK
from referee.backends._llamagen import LlamaGenerator
from referee.outcomes import run_stats
from referee.errors import InputError
from referee.judge import TRUNCATION_MARKER, judge_comparisons
from referee.plan import round_robin
from referee.store import VerdictStore
from referee.outcomes import judge_outcomes

from conftest import EXAMPLE, referee_cmd, write_jsonl


@pytest.fixture
def small_set(tmp_path):
    rows = [r for r in map(json.loads, EXAMPLE.read_text().splitlines()) if r["prompt_id"] in ("q01", "q05", "q09")]
    return write_jsonl(tmp_path / "small.jsonl", rows)


def test_prompt_uses_the_models_chat_template_and_prefill(smol_judge):
    text = smol_judge.backend.render(smol_judge.messages("QQQ?", "FIRSTRESP", "SECONDRESP"), smol_judge.template.prefill)
    assert text.startswith("<|im_start|>system\n")  # SmolLM2's own ChatML template
    assert text.endswith("<|im_start|>assistant\n" + smol_judge.template.prefill)
    # shared parts first: the question comes before both responses
    assert text.index("QQQ?") < text.index("FIRSTRESP") < text.index("SECONDRESP")


def test_logprob_verdict_is_a_probability_from_one_pass(smol_judge):
    q = "What is 2+2? Answer with the number only, and check the arithmetic twice before you answer it."
    ans = smol_judge.judge(q, "4", "5")
    assert ans.status == "ok"
    pa, pb = ans.detail["p_letters"]["A"], ans.detail["p_letters"]["B"]
    assert 0.5 <= pa + pb <= 1.0 + 1e-9
    assert ans.p_first == pytest.approx(pa / (pa + pb))
    top = json.loads(ans.raw)["top_next_tokens"]
    assert {t.strip() for t, _ in top[:3]} & {"A", "B"}
    # the same question again is answered from the KV cache, with the same numbers
    again = smol_judge.judge(q, "4", "5")
    assert again.p_first == ans.p_first
    assert again.detail["evaluated_tokens"] < again.prompt_tokens


def test_kv_cache_covers_the_shared_prefix(smol_judge):
    smol_judge.judge("Name a prime number. " * 20, "7", "8")
    ans = smol_judge.judge("Name a prime number. " * 20, "7", "9")
    # only the last block before the second response, the response and the closing tokens are computed again
    assert ans.detail["evaluated_tokens"] < _BLOCK + 40 < ans.prompt_tokens


def _shared_prefix_cases(n: int) -> list[str]:
    # texts sharing prefixes of many lengths, so each one leaves the KV cache at a different place
    rng = random.Random(3)
    words = "the a judge answer first second text is of and to in because which river city".split()
    base = " ".join(rng.choice(words) for _ in range(120))
    return [base[:rng.randint(5, len(base))] + " " + " ".join(rng.choice(words) for _ in range(rng.randint(3, 40)))
            for _ in range(n)]


def _fresh_then_shuffled(backend, cases, ask):
    fresh = []
    for c in cases:
        backend.reset()
        fresh.append(ask(c))
    order = list(range(len(cases))) * 2
    random.Random(5).shuffle(order)
    return [(ask(cases[i]), fresh[i]) for i in order]


def test_a_verdict_does_not_depend_on_what_was_judged_before(qwen_judge):
    # Qwen's sums change with how a prompt is split into batches: when the cached prefix decided the
    # split, 15 of these 16 verdicts differed from the same prompt asked first (SmolLM2 never shows it)
    cases = [("Summarize the passage.", text, "A short summary of it.") for text in _shared_prefix_cases(8)]
    pairs = _fresh_then_shuffled(qwen_judge.backend, cases, lambda c: qwen_judge.judge(*c).p_first)
    assert [got for got, _ in pairs] == [fresh for _, fresh in pairs]


def test_sampled_text_does_not_depend_on_what_was_generated_before(qwen_judge):
    # llama-cpp-python's own prefix reuse made 5 of these 10 seeded samples differ
    gen = LlamaGenerator(qwen_judge.backend)
    cases = [[{"role": "user", "content": "Write a short poem with these words: " + t}] for t in _shared_prefix_cases(5)]
    pairs = _fresh_then_shuffled(qwen_judge.backend, cases,
                                 lambda m: gen.generate(m, max_tokens=40, temperature=1.0, seed=1).text)
    assert [got for got, _ in pairs] == [fresh for _, fresh in pairs]


def test_unusable_letter_mass_is_unparseable_not_a_coin_flip(smol_judge, tmp_path):
    from referee.judge import PairwiseLogprobJudge

    strict = PairwiseLogprobJudge(smol_judge.backend, min_mass=1.01)  # no verdict can pass
    assert strict.judge_id != smol_judge.judge_id
    ans = strict.judge("What is 2+2?", "4", "5")
    assert ans.status == "unparseable" and ans.p_first is None and "below" in ans.error
    assert json.loads(ans.raw)["top_next_tokens"]
    cs = load_candidates(EXAMPLE)
    comps = round_robin({"q01": cs.systems})
    with VerdictStore(tmp_path / "v.sqlite") as store:
        store.register_judge(strict.judge_id, strict.spec)
        got = judge_comparisons(comps, cs, strict, store)
        assert len(got) == 6 and store.status_counts() == {"ok": 0, "unparseable": 6, "error": 0}
        assert judge_outcomes(store) == []


@pytest.mark.qwen
def test_a_prefill_its_choices_cannot_follow_in_one_token_is_refused_up_front(qwen_judge, tmp_path):
    """Qwen writes "Response 1" as "Response", " ", "1": digits after a prefill ending in a word
    would carry almost no mass, and every verdict would be unreadable."""
    from dataclasses import replace

    from referee.errors import BackendError, InputError
    from referee.judge import DEFAULT_TEMPLATE, CustomJudge, PairwiseLogprobJudge

    digits = replace(DEFAULT_TEMPLATE, user=DEFAULT_TEMPLATE.user.replace("A or B", "1 or 2")
                     .replace("Response A:", "Response 1:").replace("Response B:", "Response 2:"), choices=("1", "2"))
    with pytest.raises(BackendError, match="'1', '2'.*end the prefill with a space"):
        PairwiseLogprobJudge(qwen_judge.backend, template=digits)
    ok = PairwiseLogprobJudge(qwen_judge.backend, template=replace(digits, prefill=digits.prefill + " "))
    ans = ok.judge("What is 2+2?", "4", "5")
    assert ans.status == "ok" and ans.p_first > 0.5
    tpl = tmp_path / "digits.jinja"
    tpl.write_text('{#- referee\n{"mode": "pairwise", "variables": ["question", "first", "second"], '
                   '"answer": {"type": "choice", "choices": ["1", "2"], "prefill": "Better: Response"}}\n-#}\n'
                   "{{ question }}\n1: {{ first }}\n2: {{ second }}\nWhich is better, 1 or 2?\n", encoding="utf-8")
    with pytest.raises(InputError, match="digits.jinja.*end the prefill with a space"):
        CustomJudge(tpl, qwen_judge.backend)


def test_long_candidates_are_truncated_with_a_marker(smol_judge, tmp_path):
    long = "word " * 3000
    rows = [{"prompt_id": "p", "prompt": "Write something.", "system": "long", "output": long},
            {"prompt_id": "p", "prompt": "Write something.", "system": "short", "output": "Something."}]
    cs = load_candidates(write_jsonl(tmp_path / "c.jsonl", rows))
    with VerdictStore(tmp_path / "v.sqlite") as store:
        store.register_judge(smol_judge.judge_id, smol_judge.spec)
        got = judge_comparisons(round_robin({"p": cs.systems}), cs, smol_judge, store)
    # whatever the tiny model made of it, both orders were asked and the cut is on record
    assert [v.detail["truncated"] for v in got] == [[False, True, False], [False, False, True]]
    assert all(v.status != "error" and v.prompt_tokens < smol_judge.backend.context_size for v in got)
    assert run_stats(got, []).truncated_candidates == 1
    fitted = smol_judge._fit("Write something.", long, "x")
    assert fitted[1].endswith(TRUNCATION_MARKER) and fitted[3] == [False, True, False]
    # "x" leaves its share to the long text, which stops at the judge's per-candidate cap
    assert smol_judge.backend.count_tokens(fitted[1]) == pytest.approx(smol_judge.max_candidate_tokens, abs=2)


def test_both_orders_stored_resume_asks_nothing_and_ratings_repeat(smol_judge, small_set, tmp_path):
    opts = RankOptions(candidates=[small_set], output=tmp_path / "run", n_boot=200, seed=3)
    first = rank(opts, judge=smol_judge)
    assert first.progress.asked == 18 and first.progress.cache_hits == 0  # 3 prompts x 3 pairs x 2 orders
    db = sqlite3.connect(tmp_path / "run" / "verdicts.sqlite")
    orders = {tuple(json.loads(s)) for (s,) in db.execute("SELECT systems FROM verdicts WHERE prompt_id='q01' AND mode = 'pairwise'")}
    assert len(orders) == 6 and all((b, a) in orders for a, b in orders)
    again = rank(opts, judge=smol_judge)
    assert again.progress.asked == 0 and again.progress.cache_hits == 18
    assert again.provenance["rating"]["ratings_sha256"] == first.provenance["rating"]["ratings_sha256"]
    # a fresh folder recomputes everything and lands on the same ratings
    fresh = rank(opts.model_copy(update={"output": tmp_path / "run2"}), judge=smol_judge)
    assert fresh.progress.asked == 18
    assert [r["rating"] for r in fresh.rows] == [r["rating"] for r in first.rows]
    assert db.execute("SELECT COUNT(*) FROM verdicts WHERE mode = 'pairwise'").fetchone()[0] == 18


def test_run_files_and_provenance(smol_judge, small_set, tmp_path):
    res = rank(RankOptions(candidates=[small_set], output=tmp_path / "run", n_boot=100), judge=smol_judge)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    j = run["judge"]
    assert j["id"] == smol_judge.judge_id and j["backend"]["model_sha256"].startswith("b179c952")
    assert len(j["template_sha256"]) == 64 and j["sampling"] == {"temperature": 0.0, "max_tokens": 0}
    assert run["seed"] == 0 and run["referee_version"]
    assert run["verdicts"]["ok"] + run["verdicts"]["unparseable"] + run["verdicts"]["error"] == 18
    assert run["candidates"]["sha256"] == load_candidates(small_set).fingerprint()
    board = json.loads((tmp_path / "run" / "leaderboard.json").read_text())["leaderboard"]
    assert [r["system"] for r in board] == [r["system"] for r in res.rows]
    for r in board:
        assert r["lower"] <= r["rating"] <= r["upper"] and r["verdicts"] == 12
    csv_lines = (tmp_path / "run" / "leaderboard.csv").read_text().splitlines()
    assert csv_lines[0].startswith("rank,system,rating,lower,upper") and len(csv_lines) == 4
    md = (tmp_path / "run" / "leaderboard.md").read_text()
    assert "| rank | system |" in md and all(r["system"] in md for r in board)


def test_kill_9_loses_at_most_one_verdict_and_resume_never_reasks(tmp_path, child_env):
    rows = [r for r in map(json.loads, EXAMPLE.read_text().splitlines()) if r["prompt_id"] <= "q08"]
    src = write_jsonl(tmp_path / "eight.jsonl", rows)
    total = 8 * 3 * 2  # prompts x pairs x orders
    out = tmp_path / "run"
    cmd = referee_cmd("rank", str(src), "-o", str(out), "--judge", "smollm2-135m", "--n-boot", "50", "--no-report")
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env)
    db_path = out / "verdicts.sqlite"
    deadline = time.time() + 300
    stored = 0
    while time.time() < deadline and child.poll() is None:
        time.sleep(0.5)
        if db_path.exists():
            try:
                stored = sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM verdicts WHERE mode = 'pairwise'").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if stored >= 5:
                break
    assert child.poll() is None, "the run finished before it could be killed: " + child.stderr.read().decode()
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM verdicts WHERE mode = 'pairwise'").fetchone()[0]
    assert 5 <= before < total
    r = subprocess.run(cmd, capture_output=True, text=True, env=child_env, timeout=900)
    assert r.returncode == 0, r.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["verdicts"]["cache_hits"] == before
    assert run["verdicts"]["asked"] == total - before
    assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM verdicts WHERE mode = 'pairwise'").fetchone()[0] == total


def test_several_judges_are_combined_into_one_rated_ensemble(smol_judge, small_set, tmp_path):
    from referee.judge import PairwiseLogprobJudge, PairwiseTemplate, DEFAULT_TEMPLATE

    # a second real judge: the same small model with other words (a different judge id)
    other = PairwiseLogprobJudge(smol_judge.backend, template=PairwiseTemplate(
        system="You compare two answers to a question and pick the more helpful, correct one.",
        user=DEFAULT_TEMPLATE.user, prefill=DEFAULT_TEMPLATE.prefill))
    assert other.judge_id != smol_judge.judge_id
    import referee._pipeline as pipeline

    opts = RankOptions(candidates=[small_set], output=tmp_path / "run", n_boot=100, report=False)
    judges = [smol_judge, other]
    orig = pipeline.make_judge
    try:  # build the judges from specs as the CLI does, but reuse the loaded model
        pipeline.make_judge = lambda spec, **kw: judges[int(spec)]
        res = pipeline.rank(opts.model_copy(update={"judges": ["0", "1"]}))
    finally:
        pipeline.make_judge = orig
    assert res.progress.asked == 36  # 18 verdicts per judge
    ens = res.provenance["ensemble"]
    assert ens["id"] and len(ens["members"]) == 2 and len(res.provenance["judges"]) == 2
    assert {m["name"] for m in ens["members"]} == {smol_judge.judge_id, other.judge_id}
    with VerdictStore.open(tmp_path / "run" / "verdicts.sqlite") as store:
        assert ens["id"] in store.judges()  # the ensemble is stored as a judge of its own
    assert len(res.rows) == 3

    # a third wording, declared to share its errors with the second: they are weighed as one unit
    third = PairwiseLogprobJudge(smol_judge.backend, template=PairwiseTemplate(
        system="Pick the answer a careful expert would prefer.", user=DEFAULT_TEMPLATE.user,
        prefill=DEFAULT_TEMPLATE.prefill))
    judges.append(third)
    try:
        pipeline.make_judge = lambda spec, **kw: judges[int(spec)]
        with pytest.raises(InputError, match="judge group"):  # refused before anything is judged
            pipeline.rank(opts.model_copy(update={"judges": ["0", "1", "2"], "judge_groups": [["1", "9"]]}))
        grouped = pipeline.rank(opts.model_copy(update={"judges": ["0", "1", "2"], "judge_groups": [["1", "2"]]}))
    finally:
        pipeline.make_judge = orig
    assert grouped.progress.asked == 18  # only the new judge's verdicts
    units = {m["name"]: m["unit"] for m in grouped.provenance["ensemble"]["members"]}
    assert units[other.judge_id] and units[other.judge_id] == units[third.judge_id]
    assert not units[smol_judge.judge_id]
