"""Synthetic multi-judge data for the combine/audit/export tests: a run store and JSONL files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from referee.load import Candidate, Prompt
from referee.store import Verdict, VerdictStore, question_key, verdict_id

SYSTEMS = ["alpha", "beta", "gamma"]
QUALITY = {"alpha": 1.2, "beta": 0.0, "gamma": -0.8}
PAIRS = [("alpha", "beta"), ("alpha", "gamma"), ("beta", "gamma")]


def truth_table(n_prompts: int, seed: int = 0) -> dict[tuple[str, str, str], bool]:
    """(prompt, a, b) -> whether a is truly better."""
    rng = np.random.default_rng(seed)
    out = {}
    for p in range(n_prompts):
        for a, b in PAIRS:
            out[(f"p{p}", a, b)] = bool(rng.random() < 1 / (1 + np.exp(-(QUALITY[a] - QUALITY[b]) * 2)))
    return out


def judge_says(truth, accs: dict[str, float], seed: int = 1) -> dict[str, dict[tuple[str, str, str], bool]]:
    rng = np.random.default_rng(seed)
    return {j: {k: (t if rng.random() < acc else not t) for k, t in truth.items()} for j, acc in accs.items()}


def texts(n_prompts: int):
    prompts = [Prompt(id=f"p{p}", text=f"Question number {p}?") for p in range(n_prompts)]
    cands = [Candidate(prompt_id=f"p{p}", system=s, output=f"{s} answers {p}. " + "more " * (3 + 2 * k + p % 3))
             for p in range(n_prompts) for k, s in enumerate(SYSTEMS)]
    return prompts, cands


def make_store(path: Path, n_prompts: int = 20, accs=None, *, inconsistent: set | None = None, seed: int = 0,
               tied: set | None = None):
    """A run store with several judges, each pair judged in both orders; returns the truth table.

    ``inconsistent``: (prompt, a, b) items where judge j1 flips its verdict with the order.
    ``tied``: (prompt, a, b) items where every judge but the last says tie.
    """
    accs = accs or {"j1": 0.9, "j2": 0.85, "j3": 0.8, "j4": 0.75}
    truth = truth_table(n_prompts, seed)
    says = judge_says(truth, accs, seed + 1)
    prompts, cands = texts(n_prompts)
    with VerdictStore(path) as st:
        st.put_candidates(prompts, cands)
        for j in accs:
            st.register_judge(j, {"mode": "pairwise", "name": j, "backend": {"model": f"{j}-model"}})
            for (pid, a, b), a_wins in says[j].items():
                for first, second in ((a, b), (b, a)):
                    p_first = 0.85 if (a_wins == (first == a)) else 0.15
                    if inconsistent and j == "j1" and (pid, a, b) in inconsistent and first == b:
                        p_first = 1 - p_first
                    if tied and j != list(accs)[-1] and (pid, a, b) in tied:
                        p_first = 0.5
                    q = question_key(j, "pairwise", pid, [first, second])
                    st.put(Verdict(verdict_id=verdict_id(q, pid, [first, second]), question=q, judge_id=j,
                                   mode="pairwise", prompt_id=pid, systems=[first, second], status="ok",
                                   p_first=p_first))
    return truth


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def external_verdicts(path: Path, n_prompts: int = 30, accs=None, seed: int = 0):
    """A JSONL of external verdicts (one order, outcome probabilities) plus labels and candidates files."""
    accs = accs or {"j1": 0.9, "j2": 0.8, "j3": 0.75, "j4": 0.7}
    truth = truth_table(n_prompts, seed)
    says = judge_says(truth, accs, seed + 1)
    rows = [{"prompt_id": pid, "system_a": a, "system_b": b, "judge": j, "outcome": 0.85 if s else 0.15}
            for j, d in says.items() for (pid, a, b), s in d.items()]
    write_jsonl(path, rows)
    labels = write_jsonl(path.with_name("labels.jsonl"),
                         [{"prompt_id": pid, "system_a": a, "system_b": b, "label": "a" if t else "b"}
                          for (pid, a, b), t in truth.items()])
    prompts, cands = texts(n_prompts)
    cfile = write_jsonl(path.with_name("candidates.jsonl"),
                        [{"prompt_id": c.prompt_id, "prompt": f"Question number {c.prompt_id[1:]}?",
                          "system": c.system, "output": c.output} for c in cands])
    return truth, labels, cfile
