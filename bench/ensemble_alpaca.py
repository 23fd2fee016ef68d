"""Proof on real data: a label-free ensemble of weak verifiers vs majority vote vs the best single judge.

Reads ../shared/data/alpaca_eval (never copied into the repository). Every annotation there is a
system against the baseline ``gpt4_1106_preview``; items are (instruction, system vs baseline), and
``p_a`` is P(the system beats the baseline).

Verifiers on each item:
- the real LLM annotators present on that item (GPT-4-turbo judges: ``weighted_alpaca_eval_gpt4_turbo``,
  ``alpaca_eval_cot_gpt4_turbo_fn``, ``alpaca_eval_gpt4_turbo_fn``), and
- cheap text verifiers in the spirit of Weaver's weak verifiers, computed from the two answers:
  longer answer (characters), longer answer (words: a near-duplicate, to exercise the screening),
  more markdown structure, fewer refusal phrases, more of the instruction's words covered, and a
  seeded coin (chance level, to exercise the screening).

Three held-out checks, each with one real annotator as the reference that no verifier sees:
  A. claude-2.1 (805 items): reference ``weighted_alpaca_eval_gpt4_turbo`` (the AlpacaEval 2.0 judge,
     Spearman 0.965 with Chatbot Arena); members ``alpaca_eval_cot_gpt4_turbo_fn`` + text verifiers.
  B. Mistral-7B-Instruct-v0.2, Mixtral-8x7B, gemini-pro (2,415 items): reference
     ``alpaca_eval_gpt4_turbo_fn``; members ``alpaca_eval_cot_gpt4_turbo_fn`` + text verifiers.
  C. the same items, reference and member swapped.
Accuracy = agreement with the reference's verdict on items where the reference is not a tie (a tie
of the verdicts counts half).

Dependencies: the four length-like verifiers (characters, words, markdown structure, instruction
coverage: all grow with the length of an answer) are declared as one family before looking at any
result (``combine(..., groups=[LENGTH_FAMILY])``), so the label model weighs them as one unit. From the
votes alone the family cannot be found: a one-factor fit with the family as "the truth" explains the
vote correlations as well as one with the annotator as the truth. Rows without the declaration, and
with every surface heuristic in one family, are printed for comparison. The ceiling is what the same
members can reach *with* the reference's labels: a logistic regression on their outputs, 10-fold
cross-validated (evaluation only; the label-free rows never see the labels). Then a system-level check against humans: win rates vs the baseline of
all 39 systems with Arena Elo from the ensemble of every verifier present, Spearman vs Chatbot Arena.

Usage: python bench/ensemble_alpaca.py [DATA_DIR]
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from referee.audit import accuracy, ece  # noqa: E402
from referee.combine import combine, majority_vote, normalize_outputs  # noqa: E402

BASELINE = "gpt4_1106_preview"
WEIGHTED, COT, FN = "weighted_alpaca_eval_gpt4_turbo", "alpaca_eval_cot_gpt4_turbo_fn", "alpaca_eval_gpt4_turbo_fn"
TEXT_VERIFIERS = ["longer (chars)", "longer (words)", "structure", "no refusal", "covers instruction", "coin"]
LENGTH_FAMILY = ["longer (chars)", "longer (words)", "structure", "covers instruction"]
_REFUSAL = re.compile(r"\b(I'm sorry|I am sorry|I apologi[sz]e|As an AI|as a language model|I cannot|I can't|"
                      r"I am unable|I'm unable|I don't have (access|the ability))", re.I)
_STRUCT = re.compile(r"^\s*([-*+] |\d+[.)] |#{1,6} )", re.M)
_WORD = re.compile(r"[A-Za-z]{4,}")


def load(data_dir: Path):
    ae = data_dir / "alpaca_eval"
    ann: dict[tuple[int, str], dict[str, float]] = defaultdict(dict)
    with open(ae / "judge_pairs.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["model_a"] == BASELINE and r["output_b_matches"] and r["output_a_matches"]:
                ann[(r["instruction_id"], r["model_b"])][r["annotator"]] = float(r["p_b_wins"])
    arena = json.loads((data_dir / "reference_rankings.json").read_text())
    elo = _elo_table(arena)
    instr = {}
    with open(ae / "instructions.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            instr[r["instruction_id"]] = r["instruction"]
    outputs: dict[tuple[str, int], str] = {}
    with open(ae / "outputs.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            outputs[(r["model"], r["instruction_id"])] = r["output"]
    return ann, elo, instr, outputs


def _elo_table(doc) -> dict[str, float]:
    """model -> arena_elo_primary, whatever the JSON's layout (a list of rows or a dict per model)."""
    rows = doc.get("models", doc) if isinstance(doc, dict) else doc
    out = {}
    if isinstance(rows, dict):
        for name, rec in rows.items():
            if isinstance(rec, dict) and rec.get("arena_elo_primary") is not None:
                out[name] = float(rec["arena_elo_primary"])
    else:
        for rec in rows:
            if rec.get("arena_elo_primary") is not None:
                out[rec.get("model") or rec.get("name")] = float(rec["arena_elo_primary"])
    return out


def text_scores(instruction: str, a: str, b: str, coin: float) -> list[float]:
    """Signed scores (a minus b) of the text verifiers; 0 = no preference."""
    def refusal(t):
        return 1.0 if _REFUSAL.search(t[:400]) else 0.0

    words = {w.lower() for w in _WORD.findall(instruction)}

    def cover(t):
        if not words:
            return 0.0
        low = t.lower()
        return sum(w in low for w in words) / len(words)

    return [np.log1p(len(a)) - np.log1p(len(b)),
            np.log1p(len(a.split())) - np.log1p(len(b.split())),
            np.log1p(len(_STRUCT.findall(a)) + a.count("**") / 2) - np.log1p(len(_STRUCT.findall(b)) + b.count("**") / 2),
            refusal(b) - refusal(a),
            cover(a) - cover(b),
            coin - 0.5]


def matrix(items, ann, instr, outputs, annotators, seed=0):
    """items x (annotators + text verifiers) of P(system beats baseline), NaN where absent."""
    rng = np.random.default_rng(seed)
    coins = rng.random(len(items))
    x = np.full((len(items), len(annotators) + len(TEXT_VERIFIERS)), np.nan)
    for n, (i, s) in enumerate(items):
        for j, name in enumerate(annotators):
            if name in ann[(i, s)]:
                x[n, j] = ann[(i, s)][name]
        x[n, len(annotators):] = text_scores(instr[i], outputs[(s, i)], outputs[(BASELINE, i)], coins[n])
    kinds = ["probability"] * len(annotators) + ["score"] * len(TEXT_VERIFIERS)
    return normalize_outputs(x, kinds), list(annotators) + TEXT_VERIFIERS


def _logistic(X, t, l2=1e-2, iters=50):
    X = np.column_stack([np.ones(len(X)), X])
    w = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -35, 35)))
        g = X.T @ (p - t) + l2 * w
        h = (X * (p * (1 - p))[:, None]).T @ X + l2 * np.eye(len(w))
        w -= np.linalg.solve(h, g)
    return w


def oracle_ceiling(x, y, folds=10, seed=0):
    """Accuracy of a logistic regression of the reference on the members' signed outputs and votes,
    cross-validated: the most these members can give with labels (the label model has none)."""
    s = np.nan_to_num(2 * x - 1)
    feats = np.column_stack([s, np.sign(s)])
    lab = np.sign(np.asarray(y) - 0.5)
    ok = np.flatnonzero(lab != 0)
    idx = np.random.default_rng(seed).permutation(ok)
    p = np.full(len(y), 0.5)
    for f in range(folds):
        te = idx[f::folds]
        tr = np.setdiff1d(idx, te)
        w = _logistic(feats[tr], (lab[tr] > 0).astype(float))
        p[te] = 1 / (1 + np.exp(-np.clip(np.column_stack([np.ones(len(te)), feats[te]]) @ w, -35, 35)))
    return accuracy(p, y)


def held_out(title, items, ann, instr, outputs, reference, members):
    y = np.array([ann[it][reference] for it in items])
    x, names = matrix(items, ann, instr, outputs, members)
    t0 = time.perf_counter()
    ens = combine(x, names, groups=[LENGTH_FAMILY])
    secs = time.perf_counter() - t0
    plain = combine(x, names)
    tri = combine(x, names, method="triplet", groups=[LENGTH_FAMILY])
    one_family = combine(x, names, groups=[[n for n in TEXT_VERIFIERS if n != "coin"]])
    soft = combine(x, names, groups=[LENGTH_FAMILY], levels=3)
    single = {n: accuracy(x[:, j], y) for j, n in enumerate(names)}
    best_name = max(single, key=single.get)
    best_col = x[:, names.index(best_name)]
    mv = majority_vote(x)
    ceiling = oracle_ceiling(x, y)
    rows = {"ensemble (Dawid-Skene, length family)": (accuracy(ens.p, y), ece(ens.p, y)),
            "ensemble (triplet, length family)": (accuracy(tri.p, y), ece(tri.p, y)),
            "ensemble, no family declared": (accuracy(plain.p, y), ece(plain.p, y)),
            "ensemble, every heuristic one family": (accuracy(one_family.p, y), ece(one_family.p, y)),
            "ensemble, length family, --levels 3": (accuracy(soft.p, y), ece(soft.p, y)),
            "majority vote (all verifiers)": (accuracy(mv, y), ece(mv, y)),
            f"best single: {best_name}": (single[best_name], ece(best_col, y))}
    print(f"\n## {title}\n{len(items)} items, reference {reference} (never shown to the label model); "
          f"fit {secs:.2f} s")
    print(f"{'verdicts':<44} {'accuracy vs reference':>22} {'ECE':>7}")
    for k, (v, c) in rows.items():
        print(f"{k:<44} {100 * v:>21.1f}% {c:>7.3f}")
    print(f"{'ceiling: logistic regression on the labels':<44} {100 * ceiling:>21.1f}%  (10-fold CV)")
    print(f"\n{'member':<30} {'kept':>5} {'est. acc':>9} {'vs ref':>9} {'says a':>7} {'weight':>7}  unit / reason")
    for m, (n, acc) in zip(ens.members, single.items()):
        est = "–" if m.accuracy is None else f"{m.accuracy:.3f}"
        print(f"{m.name:<30} {'yes' if m.kept else 'no':>5} {est:>9} {acc:>9.3f} "
              f"{'–' if m.rate_a is None else f'{100 * m.rate_a:.0f}%':>7} {m.weight:>7.2f}  "
              f"{'family' if m.unit else ''}{m.reason}")
    return {"ensemble": rows["ensemble (Dawid-Skene, length family)"][0],
            "triplet": rows["ensemble (triplet, length family)"][0],
            "ensemble_no_family": rows["ensemble, no family declared"][0],
            "ensemble_one_family": rows["ensemble, every heuristic one family"][0],
            "ensemble_levels3": rows["ensemble, length family, --levels 3"][0],
            "majority": rows["majority vote (all verifiers)"][0], "best_single": single[best_name],
            "best_single_name": best_name, "ceiling": ceiling}


def arena_check(ann, elo, instr, outputs):
    systems = sorted({s for (_, s) in ann} | {m for (m, _) in outputs if m in elo and m != BASELINE})
    systems = [s for s in systems if s in elo and s != BASELINE
               and sum((s, i) in outputs for i in range(805)) >= 800]
    items = [(i, s) for s in systems for i in range(805) if (s, i) in outputs and (BASELINE, i) in outputs]
    x, names = matrix(items, ann, instr, outputs, [WEIGHTED, COT, FN])
    ens = combine(x, names, groups=[LENGTH_FAMILY])
    sys_of = np.array([systems.index(s) for _, s in items])
    arena = np.array([elo[s] for s in systems])

    def rho(p):
        wr = np.array([np.mean(p[sys_of == k]) for k in range(len(systems))])
        return float(spearmanr(wr, arena).statistic)

    out = {"ensemble (all verifiers)": rho(ens.p), "majority vote": rho(majority_vote(x)),
           "longer answer alone": rho(x[:, names.index("longer (chars)")])}
    covered = [k for k, s in enumerate(systems) if any(WEIGHTED in ann[(i, s)] for i in range(805))]
    if len(covered) >= 3:
        m = np.isin(sys_of, covered)
        wr_w = np.array([np.nanmean(x[m & (sys_of == k), 0]) for k in covered])
        wr_e = np.array([np.mean(ens.p[m & (sys_of == k)]) for k in covered])
        out[f"AE2 judge alone, its {len(covered)} systems"] = float(spearmanr(wr_w, arena[covered]).statistic)
        out[f"ensemble, the same {len(covered)} systems"] = float(spearmanr(wr_e, arena[covered]).statistic)
    print(f"\n## System level vs Chatbot Arena (human votes): {len(systems)} systems, {len(items)} items")
    print(f"{'win rate vs baseline from':<44} {'Spearman vs Arena':>18}")
    for k, v in out.items():
        print(f"{k:<44} {v:>18.3f}")
    return out


def main(argv: list[str]) -> None:
    data_dir = Path(argv[1]) if len(argv) > 1 else ROOT.parent / "shared" / "data"
    t0 = time.perf_counter()
    ann, elo, instr, outputs = load(data_dir)
    print(f"loaded in {time.perf_counter() - t0:.1f} s")
    res = {}
    items_a = sorted(k for k, v in ann.items() if k[1] == "claude-2.1" and WEIGHTED in v and COT in v)
    res["A"] = held_out("A. claude-2.1 vs gpt4_1106_preview", items_a, ann, instr, outputs, WEIGHTED, [COT])
    items_b = sorted(k for k, v in ann.items() if COT in v and FN in v)
    res["B"] = held_out("B. Mistral-7B/Mixtral/gemini-pro vs gpt4_1106_preview", items_b, ann, instr, outputs,
                        FN, [COT])
    res["C"] = held_out("C. the same items, reference and member swapped", items_b, ann, instr, outputs, COT, [FN])
    res["arena"] = arena_check(ann, elo, instr, outputs)
    print(json.dumps(res))


if __name__ == "__main__":
    main(sys.argv)
