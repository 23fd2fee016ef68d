"""Verifiers that are not LLMs: reference metrics, checks, sandboxed unit tests, perplexity;
their verdicts go to the same store with provenance and rate like any pointwise judge's."""

from __future__ import annotations

import json
import time

import pytest

from referee import RankOptions, load_candidates, rank
from referee.judge import make_judge, score_candidates
from referee.outcomes import pointwise_outcomes
from referee.store import VerdictStore
from referee.verify import (Bleu, Chrf, ExactMatch, JsonSchemaCheck, LengthCheck, Perplexity, PythonTests, RegexMatch,
                            extract_code)

from conftest import write_jsonl


def test_reference_metrics():
    b = Bleu().score("q", "the cat sat on the mat", "the cat sat on the mat")
    assert b.status == "ok" and b.score == pytest.approx(100.0)
    assert "version:" in b.detail["signature"]
    assert Bleu().score("q", "dogs bark loudly", "the cat sat on the mat").score < 10
    c = Chrf()
    assert c.score("q", "the cat sat", "the cat sat on the mat").score < c.score("q", "the cat sat on a mat",
                                                                                 "the cat sat on the mat").score
    assert ExactMatch().score("q", "  Paris. ", "paris").score == 1.0
    assert ExactMatch().score("q", "Lyon", "paris").score == 0.0
    assert ExactMatch(contains=True).score("q", "It is Paris!", "paris").score == 1.0
    no_ref = ExactMatch().score("q", "Paris", None)
    assert no_ref.status == "error" and "reference" in no_ref.error


def test_checks():
    assert RegexMatch(r"\b\d{4}\b").score("q", "in 1927").score == 1.0
    assert RegexMatch(r"\d+", fullmatch=True).score("q", "42 apples").score == 0.0
    assert RegexMatch().score("q", "answer: 42", r"\b42\b").score == 1.0  # the reference as the pattern
    assert LengthCheck(max_words=3).score("q", "a b c d").score == 0.0
    assert LengthCheck(min_chars=2, max_chars=5).score("q", "abc").detail["chars"] == 3
    js = JsonSchemaCheck({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})
    assert js.score("q", '{"a": 1}').score == 1.0
    assert js.score("q", 'Here:\n```json\n{"a": 2}\n```').score == 1.0
    bad = js.score("q", '{"a": "x"}')
    assert bad.score == 0.0 and "a:" in bad.detail["errors"][0]
    assert js.score("q", "no json here").detail["errors"] == ["not JSON"]
    # provenance: parameters and library versions are in the id
    assert JsonSchemaCheck({"type": "array"}).judge_id != js.judge_id
    assert Bleu().judge_id == Bleu().judge_id != Bleu(lowercase=True).judge_id


TESTS = "assert add(2, 3) == 5\n\ndef test_negative():\n    assert add(-1, 1) == 0\n"


def test_python_unit_tests_in_a_sandbox():
    v = PythonTests(TESTS, timeout=5, memory_mb=256)
    good = v.score("q", "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```")
    assert good.status == "ok" and good.score == 1.0 and good.detail["passed"] == 2
    half = v.score("q", "def add(a, b):\n    return a + b if a > 0 else 99")
    assert half.score == 0.5 and half.detail["failed"] == 1
    net = v.score("q", "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\ndef add(a, b): return a + b")
    assert net.score == 0.0 and net.detail["result"] == "load_error"
    t0 = time.monotonic()
    loop = v.score("q", "while True:\n    pass")
    assert loop.score == 0.0 and loop.detail["result"] == "timeout" and time.monotonic() - t0 < 15
    mem = v.score("q", "x = bytearray(2 * 1024 ** 3)\ndef add(a, b): return a + b")
    assert mem.score == 0.0
    fake = v.score("q", "import sys\nprint('{\"passed\": 99, \"failed\": 0}')\nsys.exit(0)")
    assert fake.score == 0.0  # printing a result line does not fake a pass
    assert extract_code("text\n```py\nx = 1\n```\nmore\n```python\ny = 2\nz = 3\n```") == "y = 2\nz = 3\n"


def test_perplexity_under_llama_cpp(smol_judge):
    p = Perplexity(smol_judge.backend, max_tokens=16)
    fluent = p.score("What is the capital of France?", "The capital of France is Paris.")
    word_salad = p.score("What is the capital of France?", "Paris of banana the capital is France.")
    assert fluent.status == word_salad.status == "ok"
    assert fluent.score > word_salad.score  # mean token log-likelihood
    assert fluent.detail["perplexity"] == pytest.approx(2.718281828 ** -fluent.score)
    tok = fluent.detail["tokenizer"]
    assert tok["model_sha256"] == smol_judge.backend.sha256 and tok["n_vocab"] > 0 and tok["tokenizer"]
    assert p.spec["tokenizer"] == tok


def test_verifier_verdicts_are_stored_with_provenance_and_rated(tmp_path):
    rows = [{"prompt_id": f"p{i}", "prompt": f"Capital of country {i}?", "reference": ref, "system": s, "output": out}
            for i, ref in enumerate(["Paris", "Rome", "Berlin"])
            for s, out in (("right", ref + "."), ("wrong", "Madrid"), ("half", ref if i % 2 else "no idea"))]
    data = write_jsonl(tmp_path / "c.jsonl", rows)
    res = rank(RankOptions(candidates=[data], output=tmp_path / "run", judge="verify:exact", n_boot=50,
                           report=False))
    assert res.rows[0]["system"] == "right" and res.rows[-1]["system"] == "wrong"
    assert res.provenance["judge"]["verifier"] == "exact"
    with VerdictStore.open(tmp_path / "run" / "verdicts.sqlite") as st:
        vs = list(st.verdicts())
        assert len(vs) == 9 and all(v.mode == "verifier" and v.status == "ok" for v in vs)
        assert st.judges()[vs[0].judge_id]["verifier"] == "exact"
    # the same through the Python API, with a reference-free check
    cset = load_candidates([data])
    with VerdictStore(tmp_path / "v.sqlite") as st:
        got = score_candidates(cset, make_judge("verify:length:1"), st)
    outs = pointwise_outcomes(got)
    assert len(outs) == 9 and all(0.0 <= o.p_a <= 1.0 for o in outs)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["judge"]["id"] == vs[0].judge_id


def test_cli_rank_with_a_verifier(tmp_path, child_env):
    import subprocess

    from conftest import EXAMPLE, referee_cmd

    out = subprocess.run(referee_cmd("rank", str(EXAMPLE), "--judge", "verify:length:40", "-o", str(tmp_path / "r"),
                                     "--n-boot", "50", "--no-report"),
                         capture_output=True, text=True, env=child_env, timeout=300)
    assert out.returncode == 0, out.stderr
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["judge"]["verifier"] == "length" and run["verdicts"]["ok"] == 72
    bad = subprocess.run(referee_cmd("rank", str(EXAMPLE), "--judge", "verify:nope", "-o", str(tmp_path / "x")),
                         capture_output=True, text=True, env=child_env, timeout=300)
    assert bad.returncode == 2 and "unknown verifier" in bad.stderr
