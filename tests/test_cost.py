"""What verdicts cost: server usage recorded, priced from a price table, reused answers free,
``rank --dry-run`` and ``--max-cost``. Against the canned responder (usage set per test), the fault
proxy (to see what was asked) and the real llama-cpp-python server (SmolLM2)."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest

from referee import RankOptions, rank
from referee.backends import OpenAIBackend
from referee.errors import CostLimitError
from referee.judge import PairwiseLogprobJudge
from referee.judge._cost import Price
from referee.store import VerdictStore

from _http_helpers import CANNED, CannedServer, FaultProxy
from conftest import EXAMPLE, referee_cmd, write_jsonl


def canned_with_usage(prompt_tokens: int, completion_tokens: int) -> CannedServer:
    reply = copy.deepcopy(CANNED)
    reply["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}
    return CannedServer(reply=reply)


@pytest.fixture
def server_1000_3():
    srv = canned_with_usage(1000, 3)
    yield srv
    srv.stop()


def tiny(tmp_path, prompts=("q01", "q05"), systems=("concise-expert", "careless")):
    rows = [r for r in map(json.loads, EXAMPLE.read_text().splitlines())
            if r["prompt_id"] in prompts and r["system"] in systems]
    return write_jsonl(tmp_path / "tiny.jsonl", rows)


def prices_file(tmp_path, model="m", input=2.0, output=10.0):
    path = tmp_path / "prices.toml"
    path.write_text(f'["{model}"]\ninput = {input}\noutput = {output}\n')
    return path


def stored(out):
    with VerdictStore(out / "verdicts.sqlite") as store:
        return list(store.verdicts())


def test_http_verdicts_record_the_servers_usage_and_are_priced(server_1000_3, tmp_path):
    out = tmp_path / "run"
    result = rank(RankOptions(candidates=[tiny(tmp_path)], output=out, judge=f"openai:m@{server_1000_3.url}",
                              prices=prices_file(tmp_path), n_boot=20, independence_check=False))
    verdicts = stored(out)
    assert len(verdicts) == 4
    each = (1000 * 2.0 + 3 * 10.0) / 1e6
    for v in verdicts:
        assert (v.prompt_tokens, v.completion_tokens) == (1000, 3)  # completion tokens were 0 before
        assert v.cost == pytest.approx(each)
    cost = json.loads((out / "run.json").read_text())["cost"]
    assert cost["priced"] and cost["usd"] == pytest.approx(4 * each)
    assert (cost["prompt_tokens"], cost["completion_tokens"]) == (4000, 12)
    assert result.provenance["cost"]["prices"] == {"m": {"input_per_1m": 2.0, "output_per_1m": 10.0}}
    html = (out / "report.html").read_text()
    assert f"${4 * each:.4f}" in html and "local model" not in html


def test_an_unpriced_hosted_judge_is_not_priced_not_free(server_1000_3, tmp_path):
    out = tmp_path / "run"
    rank(RankOptions(candidates=[tiny(tmp_path)], output=out, judge=f"openai:m@{server_1000_3.url}", n_boot=20,
                     independence_check=False))
    html = (out / "report.html").read_text()
    assert "not priced" in html and "$0 (local model)" not in html
    cost = json.loads((out / "run.json").read_text())["cost"]
    assert cost["priced"] is False and cost["usd"] is None and cost["prompt_tokens"] == 4000


def test_a_reused_answer_costs_nothing_and_is_counted_once(server_1000_3, tmp_path):
    # two systems with the same text: (x, twin) is the question (x, copy) already answered
    rows = [{"prompt_id": "p", "prompt": "Name a colour.", "system": s, "output": o}
            for s, o in (("x", "Red."), ("twin", "Blue."), ("copy", "Blue."))]
    data = write_jsonl(tmp_path / "c.jsonl", rows)
    out = tmp_path / "run"
    proxy = FaultProxy(server_1000_3.url)
    try:
        result = rank(RankOptions(candidates=[data], output=out, judge=f"openai:m@{proxy.url}",
                                  prices=prices_file(tmp_path), n_boot=20, independence_check=False))
    finally:
        proxy.stop()
    verdicts = stored(out)
    reused = [v for v in verdicts if v.detail.get("reused_from")]
    asked = [v for v in verdicts if not v.detail.get("reused_from")]
    completions = [p for p, _, _ in proxy.seen if p.endswith("/chat/completions")]
    assert reused and len(completions) == len(asked) + 1  # + the logprobs probe
    assert all(v.cost == 0 and v.prompt_tokens == v.completion_tokens == 0 for v in reused)
    cost = result.provenance["cost"]
    assert cost["prompt_tokens"] == 1000 * len(asked)
    assert cost["usd"] == pytest.approx(sum(v.cost for v in verdicts))
    html = (out / "report.html").read_text()
    assert f"{1003 * len(asked):,} tokens" in html or f"{1003 * len(asked)} tokens" in html


def test_a_judge_config_price_wins_over_the_table(server_1000_3, tmp_path):
    cfg = tmp_path / "judge.toml"
    cfg.write_text(f'judge = "openai:m@{server_1000_3.url}"\nprice = {{input = 1.0, output = 0.0}}\n')
    out = tmp_path / "run"
    rank(RankOptions(candidates=[tiny(tmp_path)], output=out, judge=str(cfg), prices=prices_file(tmp_path),
                     n_boot=20, independence_check=False))
    assert [v.cost for v in stored(out)] == pytest.approx([1000 / 1e6] * 4)


def test_max_cost_stops_asking_and_rates_what_was_judged(server_1000_3, tmp_path, child_env):
    # each call bills 1000 + 3 tokens: $0.00103 at these prices; 3 fit under $0.0035, a 4th would not
    prices = prices_file(tmp_path, input=1.0, output=10.0)
    data = tiny(tmp_path, prompts=("q01", "q02", "q05"), systems=("concise-expert", "careless", "rambling"))
    out = tmp_path / "run"
    proxy = FaultProxy(server_1000_3.url)  # one URL for both runs: the same judge id
    try:
        proc = subprocess.run(referee_cmd("rank", str(data), "-o", str(out), "--judge", f"openai:m@{proxy.url}",
                                          "--prices", str(prices), "--max-cost", "0.0035", "--n-boot", "20",
                                          "--no-independence-check"),
                              capture_output=True, text=True, env=child_env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "--max-cost" in proc.stdout and "leaderboard" in proc.stdout
        assert len(stored(out)) == 3
        # nothing fetched ahead past the limit: every answer bought is stored (+ the logprobs probe)
        assert len([p for p, _, _ in proxy.seen if p.endswith("/chat/completions")]) == 3 + 1
        run = json.loads((out / "run.json").read_text())
        assert run["cost"]["stopped"] and run["cost"]["usd"] == pytest.approx(3 * 0.00103)
        assert run["cost"]["usd"] <= 0.0035
        assert run["cost"]["max_cost"] == 0.0035 and run["plan"]["stop_reason"] == run["cost"]["stopped"]
        # a larger limit continues: only what is missing is asked
        more = rank(RankOptions(candidates=[data], output=out, judge=f"openai:m@{proxy.url}", prices=prices,
                                max_cost=1.0, n_boot=20, independence_check=False))
    finally:
        proxy.stop()
    assert more.progress.cache_hits == 3 and more.progress.asked == 15
    assert more.provenance["cost"]["stopped"] is None
    assert more.provenance["cost"]["usd"] == pytest.approx(15 * 0.00103)


def test_max_cost_with_nothing_rateable_is_a_clear_error(server_1000_3, tmp_path):
    with pytest.raises(CostLimitError, match="nothing to rate"):
        rank(RankOptions(candidates=[tiny(tmp_path)], output=tmp_path / "run", judge=f"openai:m@{server_1000_3.url}",
                         prices=prices_file(tmp_path), max_cost=0.0, n_boot=20, independence_check=False))
    assert not stored(tmp_path / "run")


def test_max_cost_needs_a_price(server_1000_3, tmp_path):
    from referee.errors import InputError

    with pytest.raises(InputError, match="--max-cost needs a price"):
        rank(RankOptions(candidates=[tiny(tmp_path)], output=tmp_path / "run", judge=f"openai:m@{server_1000_3.url}",
                         max_cost=1.0, n_boot=20))
    assert not (tmp_path / "run").exists()


def test_dry_run_asks_nothing_and_writes_nothing(server_1000_3, tmp_path, child_env):
    proxy = FaultProxy(server_1000_3.url)
    out = tmp_path / "run"
    try:
        proc = subprocess.run(referee_cmd("rank", str(tiny(tmp_path)), "-o", str(out), "--judge",
                                          f"openai:m@{proxy.url}", "--prices", str(prices_file(tmp_path)),
                                          "--dry-run", "--seconds-per-call", "2"),
                              capture_output=True, text=True, env=child_env, timeout=300)
    finally:
        proxy.stop()
    assert proc.returncode == 0, proc.stderr
    assert not out.exists()
    assert not [p for p, _, _ in proxy.seen if p.endswith("/chat/completions")]
    # 2 prompts x 1 pair x 2 orders; time at the stated 2 s a call over 8 in flight
    assert "│ m " in proc.stdout or "m " in proc.stdout
    line = next(ln for ln in proc.stdout.splitlines() if "s a call" in ln)
    assert " 4 " in line and "$0.0" in line and "2 s a call" in line
    assert "estimated cost: $" in proc.stdout


def test_dry_run_estimate_matches_the_backends_counts(server_1000_3, tmp_path):
    from referee._estimate import estimate_rank

    est = estimate_rank(RankOptions(candidates=[tiny(tmp_path)], output=tmp_path / "run",
                                    judge=f"openai:m@{server_1000_3.url}", prices=prices_file(tmp_path)))
    (j,) = est.judges
    assert j.calls == 4 and j.kind == "hosted" and j.prompt_tokens > 4 * 64
    assert j.usd == pytest.approx((j.prompt_tokens * 2.0 + j.completion_tokens * 10.0) / 1e6)
    assert not (tmp_path / "run").exists()


@pytest.fixture
def server(smol_server):
    return smol_server


def test_real_server_logprob_verdicts_carry_completion_tokens_and_cost(server):
    backend = OpenAIBackend("smol", server.url, n_ctx=2048)
    backend.price = Price(input=1.0, output=5.0)
    judge = PairwiseLogprobJudge(backend)
    ans = judge.judge("What is 2+2?", "4", "5")
    assert ans.status != "error" and ans.prompt_tokens > 50 and ans.completion_tokens >= 1
    from referee.judge._cost import verdict_cost

    assert verdict_cost(judge, ans.prompt_tokens, ans.completion_tokens) == pytest.approx(
        (ans.prompt_tokens * 1.0 + ans.completion_tokens * 5.0) / 1e6)


def test_real_server_rank_fills_verdict_cost(server, tmp_path):
    out = tmp_path / "run"
    prices = prices_file(tmp_path, model="smol", input=1.0, output=5.0)
    rank(RankOptions(candidates=[tiny(tmp_path, prompts=("q01",))], output=out, judge=f"openai:smol@{server.url}",
                     n_ctx=2048, prices=prices, n_boot=20, independence_check=False, min_mass=0.0))
    verdicts = stored(out)
    assert len(verdicts) == 2
    for v in verdicts:
        assert v.completion_tokens >= 1 and v.cost == pytest.approx((v.prompt_tokens + 5 * v.completion_tokens) / 1e6)


def test_llama_cpp_in_process_is_zero_local(smol_judge, tmp_path):
    out = tmp_path / "run"
    rank(RankOptions(candidates=[tiny(tmp_path, prompts=("q01",))], output=out, n_boot=20, independence_check=False),
         judge=smol_judge)
    html = (out / "report.html").read_text()
    assert "$0 (local model)" in html
    assert json.loads((out / "run.json").read_text())["cost"]["kind"] == "local"
