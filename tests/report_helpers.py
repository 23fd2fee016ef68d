"""A synthetic run folder for the HTML report tests: real store, real rating, made-up verdicts.

The verdicts follow a Bradley–Terry model with a length preference and a position bias, so the
report has ties, a style effect to control for and order flips, in well under a second.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from referee._pipeline import leaderboard_rows
from referee.outcomes import rate_outcomes, run_stats
from referee.load import Candidate, Prompt
from referee.report import write_leaderboard
from referee.store import Verdict, VerdictStore, question_key, verdict_id
from referee.outcomes import judge_outcomes

PAYLOAD = ('Sure. <script>window.__referee_pwned = true;</script></script><script>window.__referee_pwned2 = 1'
           '</script><img src=x onerror="window.__referee_img = 1"> {{ 7 * 7 }} &amp; done')
EVIL_SYSTEM = "beta <b>bold</b> & co"
CRITIQUE = "Response A is <u>correct</u>; B is not. [[A]]"
JUDGE_ID = "pw-synthetic0000001"
ENSEMBLE_ID = "ens-synthetic000001"
JUDGE_SPEC = {"mode": "pairwise", "method": "synthetic", "backend": {"backend": "test", "model": "synthetic",
              "model_name": "Synthetic Judge", "model_sha256": "ab" * 32}, "template_sha256": "cd" * 32,
              "prefill": "The better response is Response", "sampling": {"temperature": 0.0, "max_tokens": 0}}


def _texts(vary_length: bool, n_prompts: int):
    prompts = [Prompt(id=f"p{i:02d}", text=f"Question number {i}: explain topic {i}.") for i in range(n_prompts)]
    systems = ["alpha", EVIL_SYSTEM, "gamma", "delta"]
    cands = []
    for i, p in enumerate(prompts):
        for j, s in enumerate(systems):
            if vary_length:
                out = f"{s} answers {i}: " + " ".join(f"w{k}" for k in range(3 + 9 * ((i + 2 * j) % 4)))
                if s == EVIL_SYSTEM and i == 1:
                    out = PAYLOAD
            else:  # the same length and no markdown everywhere: no style to control for
                out = f"answer {j} to question {i:02d}"
            cands.append(Candidate(prompt_id=p.id, system=s, output=out, metadata={"category": "odd" if i % 2 else "even"}))
    return prompts, systems, cands


def make_run(out: Path, *, vary_length: bool = True, n_prompts: int = 8, plan: str = "round-robin",
             second_judge: bool = False, pointwise: bool = False, ensemble: bool = False, seed: int = 0) -> Path:
    """Write a run folder (verdicts.sqlite, leaderboard files, run.json) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    prompts, systems, cands = _texts(vary_length, n_prompts)
    by = {(c.prompt_id, c.system): c for c in cands}
    strength = {"alpha": 0.9, EVIL_SYSTEM: 0.85, "gamma": 0.0, "delta": -1.2}
    rng = random.Random(seed)
    verdicts = []
    with VerdictStore(out / "verdicts.sqlite") as store:
        store.register_judge(JUDGE_ID, JUDGE_SPEC)
        store.put_candidates(prompts, cands)
        judges = [(JUDGE_ID, 0.0)]
        if second_judge:
            spec2 = {**JUDGE_SPEC, "backend": {**JUDGE_SPEC["backend"], "model_name": "Other Judge"}}
            store.register_judge("pw-synthetic0000002", spec2)
            judges.append(("pw-synthetic0000002", 0.4))
        for jid, noise in judges:
            for p in prompts:
                for x in range(len(systems)):
                    for y in range(x + 1, len(systems)):
                        a, b = systems[x], systems[y]
                        for first, second in ((a, b), (b, a)):
                            la, lb = len(by[(p.id, first)].output), len(by[(p.id, second)].output)
                            z = (strength[first] - strength[second] + 1.5 * (la - lb) / max(la + lb, 1)
                                 + 0.3 + rng.gauss(0, 0.6 + noise))
                            pf = 1 / (1 + pow(2.718281828, -z))
                            q = question_key(jid, "pairwise", p.text, [by[(p.id, first)].output,
                                                                       by[(p.id, second)].output])
                            status = "ok"
                            if p.id == "p03" and first == "delta" and second == "alpha":
                                status = "unparseable"
                            v = Verdict(verdict_id=verdict_id(q, p.id, [first, second]), question=q, judge_id=jid,
                                        mode="pairwise", prompt_id=p.id, systems=[first, second], status=status,
                                        p_first=pf if status == "ok" else None,
                                        error=None if status == "ok" else "letter mass 0.2 below 0.5",
                                        detail={"p_letters": {"A": 0.9 * pf, "B": 0.9 * (1 - pf)}, "mass": 0.9,
                                                "truncated": [False, False, p.id == "p02" and second == "gamma"]},
                                        raw=CRITIQUE if (p.id, first, second) == ("p00", "alpha", "gamma") else "{}",
                                        prompt_tokens=100, latency_s=0.01)
                            store.put(v)
                            if jid == JUDGE_ID:
                                verdicts.append(v)
        if pointwise:
            c = by[("p01", EVIL_SYSTEM)]
            q = question_key("pt-synthetic", "pointwise", "Question number 1", [c.output])
            store.register_judge("pt-synthetic", {"mode": "pointwise", "backend": {"model_name": "Rubric"}})
            store.put(Verdict(verdict_id=verdict_id(q, "p01", [EVIL_SYSTEM]), question=q, judge_id="pt-synthetic",
                              mode="pointwise", prompt_id="p01", systems=[EVIL_SYSTEM], status="ok", score=2.0,
                              detail={"diagnoses": [{"type": "unsafe", "span": "<img src=x onerror=",
                                                     "severity": "major",
                                                     "explanation": "markup <em>injected</em>"}],
                                      "truncated": [False, False]}, raw="{}"))
        if ensemble:  # what `referee combine` stores: a judge of its own, one verdict per item
            members = [j for j, _ in judges]
            store.register_judge(ENSEMBLE_ID, {
                "mode": "pairwise", "method": "label-free ensemble (dawid-skene)", "name": "ensemble-dawid-skene",
                "members": members, "kept": members[:1], "dropped": {m: "duplicate of <b>x</b>" for m in members[1:]},
                "accuracy": {members[0]: 0.81}, "prior": 0.5, "notes": ["a <note>"]})
            for o in judge_outcomes(store, judge_id=JUDGE_ID):
                q = question_key(ENSEMBLE_ID, "pairwise", o.prompt_id, [o.system_a, o.system_b])
                store.put(Verdict(verdict_id=verdict_id(q, o.prompt_id, [o.system_a, o.system_b]), question=q,
                                  judge_id=ENSEMBLE_ID, mode="pairwise", prompt_id=o.prompt_id,
                                  systems=[o.system_a, o.system_b], status="ok", p_first=o.p_a, raw="{}"))
        outcomes = judge_outcomes(store, judge_id=JUDGE_ID)
    stats = run_stats(verdicts, outcomes)
    table, _ = rate_outcomes(systems, outcomes, n_boot=50, seed=0, level=0.95)
    rows = leaderboard_rows(table, stats)
    provenance = {
        "referee_version": "test", "started_at": "2026-01-01T00:00:00+00:00",
        "finished_at": "2026-01-01T00:01:00+00:00", "elapsed_s": 60.0,
        "candidates": {"sources": ["synthetic.jsonl"], "sha256": "ef" * 32, "prompts": len(prompts),
                       "systems": systems, "candidates": len(cands)},
        "judge": {"id": JUDGE_ID, "name": "synthetic", **JUDGE_SPEC},
        "plan": {"name": plan, "stop_reason": "every pair judged" if plan != "adaptive" else "budget spent",
                 "comparisons": len(outcomes)},
        "verdicts": {**stats.status, "total": len(verdicts), "asked": len(verdicts), "cache_hits": 0,
                     "judge_seconds": 1.5},
        "judge_behaviour": {"position_consistency": stats.position_consistency,
                            "first_position_rate": stats.first_position_rate, "pairs": stats.pairs,
                            "pairs_both_orders": stats.pairs_both_orders,
                            "truncated_candidates": stats.truncated_candidates},
        "rating": {"method": "bradley-terry", "scale": "400*log10 odds + 1000 (mean 1000)", "ci": "bootstrap", "n_boot": 50, "level": 0.95, "seed": 0},
    }
    write_leaderboard(out, rows, provenance)
    return out


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
