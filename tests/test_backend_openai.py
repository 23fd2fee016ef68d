"""The OpenAI-compatible HTTP backend against a real llama-cpp-python server (SmolLM2), a
fault-injecting proxy in front of it, and a canned responder for the client's own mechanics.

SmolLM2 picks by position: nothing here asserts which answer is better.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from referee import RankOptions, rank
from referee.backends import OpenAIBackend, ServerUnreachableError
from referee.backends._openai import parse_openai_spec
from referee.errors import BackendError, InputError
from referee.judge import GeneratePairwiseJudge, PairwiseLogprobJudge, RubricJudge, make_judge, parse_pairwise_verdict
from referee.store import VerdictStore

from _http_helpers import CANNED as CANNED_REPLY, CannedServer, FaultProxy, free_port
from conftest import EXAMPLE, referee_cmd, write_jsonl

SECRET = "sk-referee-test-5ecr3t-0123456789"


def example_subset(tmp_path, prompt_ids):
    """The example candidates of these prompts, as a JSONL file."""
    rows = [r for r in map(json.loads, EXAMPLE.read_text().splitlines()) if r["prompt_id"] in prompt_ids]
    return write_jsonl(tmp_path / "c.jsonl", rows)


@pytest.fixture
def server(smol_server):
    return smol_server


@pytest.fixture
def proxy(server):
    p = FaultProxy(server.url)
    yield p
    p.stop()


@pytest.fixture
def canned():
    c = CannedServer()
    yield c
    c.stop()


def test_spec_parsing():
    assert parse_openai_spec("openai:gpt-4o@https://api.example.com/v1") == ("gpt-4o", "https://api.example.com/v1")
    assert parse_openai_spec("openai:org@m@http://h:8000") == ("org@m", "http://h:8000/v1")
    with pytest.raises(BackendError):
        parse_openai_spec("openai:no-url")


def test_logprob_pairwise_verdict_from_the_real_server(server):
    judge = make_judge(f"openai:smol@{server.url}", min_mass=0.05, n_ctx=2048)
    assert isinstance(judge, PairwiseLogprobJudge)  # the server returns top_logprobs
    assert judge.spec["backend"]["backend"] == "openai-http"
    ans = judge.judge("What is 2+2?", "4", "5")
    pa, pb = ans.detail["p_letters"]["A"], ans.detail["p_letters"]["B"]
    # the letters carry 0.17 of the mass here over HTTP (0.99 for the in-process judge on the same
    # model); above min_mass that is a verdict, never an unparseable or an error
    assert ans.status == "ok" and judge.min_mass <= pa + pb <= 1 + 1e-6, (ans.error, ans.detail)
    assert ans.p_first == pytest.approx(pa / (pa + pb))
    assert json.loads(ans.raw)["top_next_tokens"]


def test_generated_verdict_is_parsed_or_kept_raw(server):
    judge = GeneratePairwiseJudge(OpenAIBackend("smol", server.url, n_ctx=2048), max_tokens=12)
    ans = judge.judge("What is 2+2?", "4", "5")
    assert ans.raw  # the generated text is kept either way
    # whatever SmolLM2 writes, status and probability are what the strict parser makes of the kept text
    said = parse_pairwise_verdict(ans.raw, tuple(judge.template.choices))
    assert ans.status == ("unparseable" if said is None else "ok")
    assert ans.p_first == (None if said is None else {"first": 1.0, "second": 0.0, "tie": 0.5}[said])
    assert (ans.error is None) == (said is not None)


def test_rubric_output_is_schema_constrained_by_response_format(server):
    backend = OpenAIBackend("smol", server.url, n_ctx=2048)
    judge = RubricJudge(backend, scale=(1, 5), max_diagnoses=1, max_chars=12, max_tokens=60,
                        taxonomy=("wrong", "other"))
    ans = judge.score("What is 2+2?", "5")
    assert backend._schema_style == "json_object"  # llama-cpp-python's flavour, found by probing
    # one diagnosis of at most 12 characters fits in 60 tokens: the schema makes the reply valid
    assert ans.detail["finish_reason"] == "stop" and ans.status == "ok", (ans.error, ans.raw)
    assert 1 <= ans.score <= 5
    assert all(d["type"] in ("wrong", "other") for d in ans.detail["diagnoses"])


def test_retries_through_429_drops_and_errors_then_a_slow_answer(proxy):
    backend = OpenAIBackend("smol", proxy.url, timeout=120, max_retries=4, backoff=0.01, n_ctx=2048)
    proxy.faults.extend(["429", "drop", "500", ("slow", 1.0)])
    g = backend.generate([{"role": "user", "content": "Say hi."}], max_tokens=2)
    assert g.completion_tokens >= 1
    assert backend.stats["retries"] == 3
    assert len(proxy.seen) == 4


def test_a_request_that_hangs_past_the_timeout_is_retried(canned):
    proxy = FaultProxy(canned.url)
    try:
        proxy.faults.extend([("hang", 2.0)])
        backend = OpenAIBackend("m", proxy.url, timeout=0.5, max_retries=2, backoff=0.01)
        assert backend.generate([{"role": "user", "content": "x"}], max_tokens=1).text == "A"
        assert backend.stats["retries"] == 1
    finally:
        proxy.stop()


def test_a_429_burst_longer_than_the_retries_is_a_backend_error(canned):
    proxy = FaultProxy(canned.url)
    try:
        proxy.faults.extend(["429"] * 3)
        backend = OpenAIBackend("m", proxy.url, max_retries=2, backoff=0.01)
        with pytest.raises(BackendError, match="HTTP 429"):
            backend.generate([{"role": "user", "content": "x"}], max_tokens=1)
        assert len(proxy.seen) == 3
        # the burst is over: the next request goes through
        assert backend.generate([{"role": "user", "content": "x"}], max_tokens=1).text == "A"
    finally:
        proxy.stop()


def test_unreachable_server_is_a_clear_error(tmp_path, child_env):
    port = free_port()
    backend = OpenAIBackend("m", f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.01)
    with pytest.raises(ServerUnreachableError, match="unreachable"):
        backend.generate([{"role": "user", "content": "x"}])
    out = subprocess.run(referee_cmd("rank", str(EXAMPLE), "--judge", f"openai:m@http://127.0.0.1:{port}",
                                     "-o", str(tmp_path / "run")), capture_output=True, text=True, env=child_env,
                         timeout=120)
    assert out.returncode == 2
    assert "unreachable" in out.stderr and "Traceback" not in out.stderr


def test_concurrency_limit_holds(tmp_path):
    slow = CannedServer(delay=0.05)
    try:
        backend = OpenAIBackend("m", slow.url, concurrency=3)
        res = backend.map(lambda i: backend.achat([{"role": "user", "content": str(i)}], max_tokens=1), range(12))
        assert all(g.text == "A" for g in res)
        assert slow.max_inflight == 3
    finally:
        slow.stop()


def test_api_key_is_sent_but_never_stored(canned, tmp_path, monkeypatch, caplog, capsys):
    # the whole rank path through a recording proxy (to the canned responder: the real server's
    # verdicts are covered above and cost seconds each here)
    proxy = FaultProxy(canned.url)
    monkeypatch.setenv("REFEREE_API_KEY", SECRET)
    rows = [r for r in map(json.loads, EXAMPLE.read_text().splitlines())
            if r["prompt_id"] in ("q01", "q05") and r["system"] in ("concise-expert", "careless")]
    data = write_jsonl(tmp_path / "tiny.jsonl", rows)
    out = tmp_path / "run"
    proxy.faults.extend(["429", "500"])  # errors in the logs must not carry the key either
    try:
        result = rank(RankOptions(candidates=[data], output=out, judge=f"openai:smol@{proxy.url}",
                                  n_ctx=2048, n_boot=50, report=True))
    finally:
        proxy.stop()
    assert result.provenance["verdicts"]["total"] == 4
    # a backend error message names the server, never the key
    with pytest.raises(BackendError) as err:
        OpenAIBackend("m", f"http://127.0.0.1:{free_port()}/v1", max_retries=0).generate([])
    assert SECRET not in str(err.value)
    assert proxy.seen and all(h.get("authorization") == f"Bearer {SECRET}" for _, h, _ in proxy.seen)
    for f in out.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    assert SECRET not in caplog.text
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    assert SECRET not in json.dumps(result.provenance)


def test_judge_many_runs_verdicts_concurrently():
    from referee.judge._concurrent import judge_many

    slow = CannedServer(delay=0.05)
    try:
        judge = PairwiseLogprobJudge(OpenAIBackend("m", slow.url, concurrency=4))
        answers = judge_many(judge, [("q", f"a{i}", f"b{i}") for i in range(8)])
        assert [a.status for a in answers] == ["ok"] * 8 and slow.max_inflight == 4
        assert answers[0].p_first == judge.judge("q", "a0", "b0").p_first
    finally:
        slow.stop()


def test_rank_with_the_generate_then_parse_judge_on_a_server_without_logprobs(tmp_path):
    from _http_helpers import CANNED

    reply = {**CANNED, "choices": [{**CANNED["choices"][0], "logprobs": None,
                                    "message": {"role": "assistant", "content": "Both fine, but [[A]]"}}]}
    srv = CannedServer(reply=reply)
    try:
        data = example_subset(tmp_path, ("q01", "q05"))
        # the logprob judge is refused up front, not swapped for another judge under the same options
        with pytest.raises(InputError, match="pairwise-generate"):
            rank(RankOptions(candidates=[data], output=tmp_path / "refused", judge=f"openai:m@{srv.url}",
                             n_boot=50, report=False))
        assert not (tmp_path / "refused").exists()
        res = rank(RankOptions(candidates=[data], output=tmp_path / "run", judge=f"openai:m@{srv.url}", n_boot=50,
                               mode="pairwise-generate", report=False))
    finally:
        srv.stop()
    assert res.provenance["judge"]["method"].startswith("generate then parse")
    assert res.provenance["verdicts"]["ok"] == 12
    assert res.provenance["judge_behaviour"]["first_position_rate"] == 1.0
    assert res.provenance["judge_behaviour"]["position_consistency"] == 0.0


def test_rank_sends_http_verdicts_concurrently(tmp_path):
    slow = CannedServer(delay=0.2)
    try:
        data = example_subset(tmp_path, ("q01", "q05"))
        res = rank(RankOptions(candidates=[data], output=tmp_path / "run", judge=f"openai:m@{slow.url}", n_boot=50,
                               report=False))
    finally:
        slow.stop()
    assert res.provenance["verdicts"]["ok"] == 12 and res.provenance["verdicts"]["asked"] == 12
    assert slow.max_inflight > 1  # 12 verdicts of 0.2 s went out together, not one by one
    assert res.progress.judge_seconds < 12 * 0.2
    with VerdictStore.open(tmp_path / "run" / "verdicts.sqlite") as st:
        assert st.status_counts() == {"ok": 12, "unparseable": 0, "error": 0}


def test_pointwise_rank_scores_concurrently_over_http(tmp_path):
    reply = {**CANNED_REPLY, "choices": [{**CANNED_REPLY["choices"][0], "logprobs": None,
                                          "message": {"role": "assistant", "content": '{"diagnoses": [], "score": 7}'}}]}
    slow = CannedServer(reply=reply, delay=0.2)
    try:
        data = example_subset(tmp_path, ("q01", "q05"))
        res = rank(RankOptions(candidates=[data], output=tmp_path / "run", judge=f"openai:m@{slow.url}",
                               mode="pointwise", n_boot=50, report=False))
    finally:
        slow.stop()
    assert res.provenance["verdicts"]["ok"] == 6 and slow.max_inflight > 1
    with VerdictStore.open(tmp_path / "run" / "verdicts.sqlite") as st:
        assert {v.score for v in st.verdicts(mode="pointwise")} == {7.0}


def test_token_counts_come_from_the_server_tokenizer(server):
    from llama_cpp import Llama
    from referee.backends import resolve_model

    backend = OpenAIBackend("smol", server.url, n_ctx=2048)
    assert backend.remote_tokenizer and backend.capabilities()["tokenizer"] == "/extras/tokenize"
    assert backend.describe()["tokens"] == "auto:3"  # as configured, whatever the probe found
    local = Llama(str(resolve_model("smollm2-135m")[0]), vocab_only=True, verbose=False)
    for text in ("What is 2+2?", "def f(x):\n    return x ** 2\n" * 5, "你好，世界。" * 20, "🙂 emoji " * 10):
        assert backend.count_tokens(text) == len(local.tokenize(text.encode(), special=True))
    # a long Chinese text is cut so that the server itself counts it within the budget
    long_zh = "这是一个很长的回答，用来测试截断。" * 200
    cut, was_cut = backend.truncate(long_zh, 300, " [truncated]")
    assert was_cut and len(local.tokenize(cut.encode(), special=True)) <= 300
    assert len(cut) > 100  # cut near the budget, not to nothing
    # the estimate would have let 3x too much through: the same budget in estimated tokens
    est = OpenAIBackend("smol", server.url, tokenizer="estimate")
    assert est.describe()["tokens"] == "estimate:3"
    est_cut, _ = est.truncate(long_zh, 300, " [truncated]")
    assert est.count_tokens(est_cut) <= 300


def test_a_long_non_english_pair_fits_the_servers_context(server):
    # 2048-token server context; each answer alone is ~3,000 tokens: cut with the server's counts,
    # the request is accepted (an over-long request would be an HTTP 400 and an `error` verdict)
    judge = make_judge(f"openai:smol@{server.url}", min_mass=0.0, n_ctx=2048)
    a, b = "答案是四。" * 600, "答案是五。" * 600
    ans = judge.judge("二加二等于几？", a, b)
    assert ans.status == "ok", ans.error
    assert ans.detail["truncated"] == [False, True, True]


def test_a_server_without_a_tokenizer_gets_estimates(canned):
    backend = OpenAIBackend("m", canned.url)
    assert not backend.remote_tokenizer  # the canned server answers chat completions only
    assert backend.count_tokens("abcdef") == 2 and backend.count_tokens("你好") == 2
    assert backend.capabilities()["tokenizer"] is None and backend.describe()["tokens"] == "auto:3"


def test_a_tokenizer_failure_mid_run_is_an_error_verdict_asked_again_on_resume(server, tmp_path):
    from referee.judge import YesProbabilityJudge

    proxy = FaultProxy(server.url, forward_root=True)
    try:
        backend = OpenAIBackend("smol", proxy.url, max_retries=0, concurrency=1, n_ctx=2048)
        judge = YesProbabilityJudge(backend, min_mass=0.0)  # probes the tokenizer through the proxy
        assert backend.remote_tokenizer
        opts = RankOptions(candidates=[example_subset(tmp_path, ("q01",))], output=tmp_path / "run",
                           mode="pyes", n_boot=20, report=False)
        proxy.faults.append("500")  # the first token count of the run fails
        first = rank(opts, judge=judge)
        assert first.provenance["verdicts"]["error"] == 1 and first.provenance["verdicts"]["ok"] == 2
        assert any(p.endswith("/extras/tokenize") for p, _, _ in proxy.seen)
        again = rank(opts, judge=judge)
        assert again.progress.asked == 1 and again.provenance["verdicts"]["ok"] == 3
    finally:
        proxy.stop()


def test_the_judge_id_comes_from_configuration_not_from_the_tokenizer_probe(server):
    proxy = FaultProxy(server.url, forward_root=True)
    try:
        steady = PairwiseLogprobJudge(OpenAIBackend("smol", proxy.url, n_ctx=2048, backoff=0.01))
        flaky = OpenAIBackend("smol", proxy.url, n_ctx=2048, backoff=0.01)
        proxy.faults.append("500")  # the tokenizer probe, the judge's first request, fails once
        judge = PairwiseLogprobJudge(flaky)
        assert judge.judge_id == steady.judge_id
        assert flaky.capabilities()["tokenizer"] == "/extras/tokenize"  # retried, not taken for "no tokenizer"
        # a probe failure that outlasts the retries is an error, never a silent switch to estimates
        once = OpenAIBackend("smol", proxy.url, n_ctx=2048, max_retries=0)
        proxy.faults.append("500")
        with pytest.raises(BackendError, match="tokenizer"):
            PairwiseLogprobJudge(once)
        assert once.capabilities()["tokenizer"] == "not probed"
        assert PairwiseLogprobJudge(once).judge_id == steady.judge_id
    finally:
        proxy.stop()


def test_a_resumed_run_after_a_transient_probe_failure_asks_nothing_again(server, tmp_path):
    proxy = FaultProxy(server.url, forward_root=True)
    try:
        opts = RankOptions(candidates=[example_subset(tmp_path, ("q01",))], output=tmp_path / "run",
                           judge=f"openai:smol@{proxy.url}", n_ctx=2048, min_mass=0.0, n_boot=20, report=False)
        first = rank(opts)
        assert first.provenance["verdicts"]["asked"] == 6
        proxy.faults.extend(["pass", "500"])  # building the judge: the logprobs check passes, the tokenizer probe fails
        again = rank(opts)
        assert again.provenance["judge"]["id"] == first.provenance["judge"]["id"]
        assert again.progress.asked == 0 and again.provenance["verdicts"]["cache_hits"] == 6
        # what the probes found is recorded beside the id, not in it
        assert again.provenance["judge"]["server_capabilities"] == {"tokenizer": "/extras/tokenize", "logprobs": True}
    finally:
        proxy.stop()


def test_a_logprob_judge_whose_server_stops_sending_logprobs_gives_error_verdicts(server, tmp_path):
    proxy = FaultProxy(server.url)  # tokenizer routes are not forwarded: token counts are estimates here
    try:
        proxy.faults.append("no-logprobs")  # the logprobs check when the judge is built
        with pytest.raises(InputError, match="pairwise-generate"):
            make_judge(f"openai:smol@{proxy.url}", n_ctx=2048)
        backend = OpenAIBackend("smol", proxy.url, n_ctx=2048, concurrency=1)
        judge = PairwiseLogprobJudge(backend, min_mass=0.05)
        assert judge.judge_id == make_judge(f"openai:smol@{proxy.url}", n_ctx=2048, min_mass=0.05).judge_id
        opts = RankOptions(candidates=[example_subset(tmp_path, ("q01",))], output=tmp_path / "run", n_boot=20,
                           report=False)
        proxy.faults.append("no-logprobs")  # one verdict's reply comes back without logprobs
        first = rank(opts, judge=judge)
        assert first.provenance["verdicts"]["error"] == 1 and first.provenance["verdicts"]["total"] == 6
        assert first.provenance["judge"]["method"].startswith("next-token logprobs")
        with VerdictStore.open(tmp_path / "run" / "verdicts.sqlite") as st:
            errors = [v for v in st.verdicts() if v.status == "error"]
        assert len(errors) == 1 and "without top_logprobs" in errors[0].error
        again = rank(opts, judge=judge)
        assert again.progress.asked == 1 and again.provenance["verdicts"]["error"] == 0
    finally:
        proxy.stop()
