"""Critique-and-revise on HumanEval: hidden-test pass@1 before and after rounds 1-2, with and without
the public examples' execution results as feedback.

Subset: the best-of-n bench's 60 problems (``sorted(random.Random(0).sample(range(164), 60))``), or
the first ``--problems`` of them. First drafts: the packaged Qwen2.5-Coder-1.5B-Instruct, greedy, at
most 384 tokens, asked "Complete the Python function. Reply with the whole function in one python
code block." Critic, reviser and judge: the same model (``referee revise`` defaults: structured
critique of the earliest critical error, revision, both-order pairwise comparison; a revision is
kept only if the judge prefers it). Truth: the hidden HumanEval tests in referee's sandbox, never
shown to critic, reviser or judge. Everything is stored under bench/.cache/revise/ (resumable).

Reported per setting (feedback none / examples) with 95% bootstrap intervals over problems: pass@1
of the drafts, after round 1 and after round 2; drafts that passed and a kept revision broke, and
failing drafts a kept revision fixed; critiques (no error / unparseable), revisions kept / rejected;
and whether the judge's keep decisions agree with the hidden tests.

Usage:  .venv/bin/python bench/revise_humaneval.py [--problems 60] [--feedback none,examples]
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bestofn_humaneval import SYSTEM_PROMPT, humaneval, subset  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "revise"
MODEL = "qwen2.5-coder-1.5b"


def drafts(problems: list[dict], cache: Path) -> Path:
    from referee.generate import SystemSpec, generate
    from referee.load import Prompt

    out = cache / "drafts.jsonl"
    prompts = {p["task_id"]: Prompt(id=p["task_id"], text=p["prompt"]) for p in problems}
    spec = SystemSpec(name="coder", model=MODEL, system_prompt=SYSTEM_PROMPT, temperature=0.0, max_tokens=384)
    t0 = time.perf_counter()
    res = generate(prompts, [spec], out)
    print(f"drafts: asked {res.asked}, reused {res.reused}, truncated {res.truncated}, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return out


def passes(problem: dict, output: str, memo: dict) -> bool:
    from referee.verify import PythonTests

    key = (problem["task_id"], output)
    if key not in memo:
        v = PythonTests(problem["test"], entry_point=problem["entry_point"], timeout=10).check(problem["prompt"], output, None)
        memo[key] = v.score == 1.0
    return memo[key]


def versions(row: dict, store) -> list[str]:
    """The candidate's text after round 0 (the draft), 1 and 2, from its stored kept revisions."""
    texts = [row["draft"]]
    cur = row["draft"]
    by_round = {s["round"]: s for s in row["rounds"]}
    for r in (1, 2):
        s = by_round.get(r)
        if s and s.get("kept"):
            cur = store.get(s["revision_key"]).text
        texts.append(cur)
    return texts


def boot(v: np.ndarray, rng, n_boot: int = 2000) -> list[float]:
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    lo, hi = np.percentile(v[idx].mean(axis=1), [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def run_setting(problems: list[dict], cands: Path, cache: Path, feedback: str, memo: dict) -> dict:
    from referee.revise import revise
    from referee.store import GenerationStore

    out = cache / f"revised-{feedback}.jsonl"
    t0 = time.perf_counter()
    res = revise(cands, out, critic=MODEL, judge=MODEL, rounds=2, feedback=feedback)
    elapsed = time.perf_counter() - t0
    by_id = {p["task_id"]: p for p in problems}
    drafts_ = {r["prompt_id"]: r["output"] for r in res.rows if r["system"] == "coder"}
    table = []
    judge_right = []
    with GenerationStore(res.store) as store:
        for r in res.rows:
            if r["system"] != "coder+revised":
                continue
            p = by_id[r["prompt_id"]]
            texts = versions({**r, "draft": drafts_[r["prompt_id"]]}, store)
            table.append([passes(p, t, memo) for t in texts])
            cur = drafts_[r["prompt_id"]]
            for s in sorted(r["rounds"], key=lambda s: s["round"]):
                if "revision_key" not in s:
                    continue
                rev = store.get(s["revision_key"]).text
                before, after = passes(p, cur, memo), passes(p, rev, memo)
                if before != after:  # a revision that changes the truth: did the judge side with it?
                    judge_right.append(bool(s.get("kept")) == after)
                if s.get("kept"):
                    cur = rev
    ok = np.array(table, dtype=float)
    rng = np.random.default_rng(0)
    out_ = {"feedback": feedback, "problems": len(table), "elapsed_s": round(elapsed, 1),
            "per_round": res.rounds, "calls": res.provenance["calls"]}
    for k, name in enumerate(("draft", "round1", "round2")):
        out_[name] = {"pass": round(float(ok[:, k].mean()), 4), "ci": boot(ok[:, k], rng)}
    out_["broke_passing_draft"] = int(((ok[:, 0] == 1) & (ok[:, 2] == 0)).sum())
    out_["fixed_failing_draft"] = int(((ok[:, 0] == 0) & (ok[:, 2] == 1)).sum())
    delta = ok[:, 2] - ok[:, 0]
    out_["delta_round2"] = {"mean": round(float(delta.mean()), 4), "ci": boot(delta, rng)}
    out_["judge_keep_decisions_on_pass_changing_revisions"] = {
        "n": len(judge_right), "agree_with_hidden_tests": round(float(np.mean(judge_right)), 3) if judge_right else None}
    return out_


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=60)
    ap.add_argument("--feedback", default="examples,none")
    ap.add_argument("--cache", type=Path, default=CACHE)
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    idx = subset(60)[: args.problems]
    print(f"HumanEval subset ({len(idx)} problems): {idx}", flush=True)
    data = humaneval()
    problems = [data[i] for i in idx]
    cands = drafts(problems, args.cache)
    memo: dict = {}
    results = {}
    for fb in args.feedback.split(","):
        results[fb] = run_setting(problems, cands, args.cache, fb, memo)
        r = results[fb]
        print(f"\nfeedback={fb}: {r['problems']} problems, {r['elapsed_s']:.0f} s")
        for name in ("draft", "round1", "round2"):
            print(f"  pass@1 {name:>7}: {r[name]['pass']:.3f} [{r[name]['ci'][0]:.3f}, {r[name]['ci'][1]:.3f}]")
        print(f"  change after round 2: {r['delta_round2']['mean']:+.3f} {r['delta_round2']['ci']}; fixed "
              f"{r['fixed_failing_draft']}, broke {r['broke_passing_draft']}")
        print(f"  per round: {r['per_round']}")
        print(f"  judge keep decisions vs hidden tests: {r['judge_keep_decisions_on_pass_changing_revisions']}",
              flush=True)
    print(json.dumps({"bench": "revise_humaneval", "subset": idx, "model": MODEL, "results": results}))
