"""Verdict speed: one forward pass + logprobs vs FastChat's generate-then-parse, same model.

The same pairs are judged (a) the referee way — P(A) from the next-token probabilities after
the prefill, one forward pass, no generation — and (b) the way FastChat's MT-Bench judge does
it — the judge writes an explanation, then its "[[A]]"/"[[B]]"/"[[C]]" verdict is parsed.
Both use the same llama.cpp model and context. The pairs are the project's clear-cut cases
(tests/data/clear_cut_pairs.jsonl) topped up with the example's concise-expert vs careless
answers, alternating which answer is shown first.

Usage:  .venv/bin/python bench/verdict_speed.py [--judge qwen2.5-coder-1.5b] [--pairs 40] [--max-tokens 384]
The last line is one JSON object: logprob_s_per_verdict, generate_s_per_verdict, speedup,
agreement, plus each method's accuracy against the known better answer.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from referee.judge import make_judge  # noqa: E402
from referee.load import load_candidates  # noqa: E402

# FastChat's single-turn pairwise judge prompt ("pair-v2"), paraphrased closely: an impartial
# judge, explain first, then "[[A]]", "[[B]]" or "[[C]]" for a tie.
FASTCHAT_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. You should choose the assistant that follows the user's instructions "
    "and answers the user's question better. Your evaluation should consider factors such as the helpfulness, "
    "relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by "
    "comparing the two responses and provide a short explanation. Avoid any position biases and ensure that the "
    "order in which the responses were presented does not influence your decision. Do not allow the length of the "
    "responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective as "
    "possible. After providing your explanation, output your final verdict by strictly following this format: "
    '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'
)
FASTCHAT_USER = ("[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{a}\n[The End of Assistant A's "
                 "Answer]\n\n[The Start of Assistant B's Answer]\n{b}\n[The End of Assistant B's Answer]")
VERDICT = re.compile(r"\[\[([ABC])\]\]")


def load_pairs(n: int) -> list[dict]:
    cases = [json.loads(x) for x in (ROOT / "tests/data/clear_cut_pairs.jsonl").read_text().splitlines() if x.strip()]
    pairs = [{"prompt": c["prompt"], "good": c["good"], "bad": c["bad"]} for c in cases]
    cs = load_candidates(ROOT / "examples/candidates.jsonl")
    for pid, p in cs.prompts.items():
        if len(pairs) >= n:
            break
        good, bad = cs.get(pid, "concise-expert"), cs.get(pid, "careless")
        pairs.append({"prompt": p.text, "good": good.output, "bad": bad.output})
    pairs = pairs[:n]
    for i, p in enumerate(pairs):  # alternate presentation so position bias cannot look like skill
        p["good_first"] = i % 2 == 0
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge", default="qwen2.5-coder-1.5b")
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=384)
    args = ap.parse_args()
    judge = make_judge(args.judge, n_ctx=4096)
    llm = judge.backend.llm
    pairs = load_pairs(args.pairs)

    judge.judge("warm up", "a", "b")
    t0 = time.perf_counter()
    logprob = []
    for p in pairs:
        first, second = (p["good"], p["bad"]) if p["good_first"] else (p["bad"], p["good"])
        ans = judge.judge(p["prompt"], first, second)
        logprob.append(None if ans.status != "ok" else ("A" if ans.p_first > 0.5 else "B"))
    t_logprob = time.perf_counter() - t0

    t0 = time.perf_counter()
    generated, gen_tokens = [], 0
    for p in pairs:
        first, second = (p["good"], p["bad"]) if p["good_first"] else (p["bad"], p["good"])
        out = llm.create_chat_completion(
            messages=[{"role": "system", "content": FASTCHAT_SYSTEM},
                      {"role": "user", "content": FASTCHAT_USER.format(question=p["prompt"], a=first, b=second)}],
            temperature=0.0, max_tokens=args.max_tokens, seed=0)
        text = out["choices"][0]["message"]["content"] or ""
        gen_tokens += out["usage"]["completion_tokens"]
        found = VERDICT.findall(text)
        # FastChat takes the verdict only when exactly one kind appears; anything else is an error
        generated.append(found[-1] if found and len(set(found)) == 1 else None)
    t_generate = time.perf_counter() - t0

    n = len(pairs)
    truth = ["A" if p["good_first"] else "B" for p in pairs]
    both = [(a, b) for a, b in zip(logprob, generated) if a is not None and b is not None]
    result = {
        "judge": args.judge,
        "pairs": n,
        "logprob_s_per_verdict": round(t_logprob / n, 4),
        "generate_s_per_verdict": round(t_generate / n, 4),
        "speedup": round(t_generate / t_logprob, 2),
        "agreement": round(sum(a == b for a, b in both) / len(both), 4) if both else None,
        "agreement_over": len(both),
        "logprob_accuracy": round(sum(a == t for a, t in zip(logprob, truth)) / n, 4),
        "generate_accuracy": round(sum(g == t for g, t in zip(generated, truth)) / n, 4),
        "logprob_unparseable": logprob.count(None),
        "generate_unparseable_or_tie": sum(g not in ("A", "B") for g in generated),
        "generate_tokens_per_verdict": round(gen_tokens / n, 1),
    }
    print(f"{'method':<22}{'s/verdict':>10}{'accuracy':>10}{'no verdict':>12}")
    print(f"{'logprob (referee)':<22}{result['logprob_s_per_verdict']:>10.3f}{result['logprob_accuracy']:>10.3f}"
          f"{result['logprob_unparseable']:>12}")
    print(f"{'generate+parse':<22}{result['generate_s_per_verdict']:>10.3f}{result['generate_accuracy']:>10.3f}"
          f"{result['generate_unparseable_or_tie']:>12}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
