"""How many judge calls each plan needs to reach the ranking that full round-robin gives.

Run by hand from the repository root (about 4 minutes on 2 cores with the defaults):

    PYTHONPATH=src python bench/plan_efficiency.py [--seeds 10]

Ground: the simulated judge built from AlpacaEval 2.0 annotations
(../shared/data/alpaca_eval/judge_pairs.jsonl, annotator weighted_alpaca_eval_gpt4_turbo):
``ae13`` = its 13 systems, ``n16`` = 16 synthetic systems on the same 805 prompts. The judge
has log-odds noise 1.0 and a position bias of 0.5 and is deterministic per seed, so every
plan gets the same verdict for the same comparison. For each seed, the reference is the
Bradley–Terry ranking from full round-robin with that seed's judge; each plan is scored by
Spearman/Kendall against it, top-1 (same best system) and top-3 (share of the reference's
top 3 found), at budgets on a geometric grid. Round-robin and tournament under a budget use
prompts in seeded random order; adaptive runs once and is scored on prefixes of what it
handed out (a budgeted run hands out exactly that prefix). Round-robin and adaptive are
rated by plain Bradley–Terry; tournament by ``completed_bradley_terry`` (the bracket's
winners-meet-winners selection biases plain Bradley–Terry; its rows are shown as
``tournament-bt``).

Prints a table, then as its last line one JSON object: per data set and plan, the mean
judge calls (2 per comparison) from which Spearman stays >= 0.95 on the grid; null unless
every seed gets there (adaptive is run up to 30% of round-robin's comparisons). On a few
seeds it also runs ``adaptive --until separated`` without a budget, with each of
``TOLERANCES`` (rating points), and reports when it stopped, whether its order is exactly
full round-robin's, and whether every pair further apart than the tolerance is in that order.
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

from referee.plan import AdaptivePlan, make_planner  # noqa: E402
from referee.simulate import (SimulatedJudge, agreement, fit_completed, fit_strengths,  # noqa: E402
                              latent_from_baseline, load_baseline_verdicts, run_plan, synthetic_panel)

DATA = ROOT.parent / "shared" / "data" / "alpaca_eval" / "judge_pairs.jsonl"
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
TARGET = 0.95
NOISE, BIAS = 1.0, 0.5
ADAPTIVE_CAP = 0.30
TOLERANCES = (0.0, 10.0)  # --until separated --tolerance, rating points
POINTS = 400 / np.log(10)  # rating points per natural log-odds unit
SHOWN = (0.02, 0.05, 0.10, 0.125, 0.15, 0.25, 1.0)  # budgets in the table, as shares of round-robin
METRICS = ("spearman", "kendall", "top1", "top3")


def grid(total: int) -> list[int]:
    """Budgets (comparisons) from 0.5% of round-robin to all of it, 10% apart, plus the shown ones."""
    g = {int(round(total * 0.005 * 1.1**k)) for k in range(200) if 0.005 * 1.1**k < 1}
    g |= {int(round(total * f)) for f in SHOWN}
    return sorted(b for b in g | {total} if b > 0)


def prefix_scores(issued, results, systems, ref, budgets):
    out = {}
    for b in budgets:
        sub = [(c, results[c]) for c in issued[:b] if c in results]
        out[b] = agreement(fit_strengths(sub, systems), ref)
    return out


def reach(scores: dict[int, dict[str, float]]) -> int | None:
    """Smallest budget from which Spearman stays >= TARGET on the grid, or None."""
    best = None
    for b in sorted(scores, reverse=True):
        if scores[b]["spearman"] < TARGET:
            break
        best = b
    return best


def one_seed(quality, systems, prompts, seed: int, until: bool, judge_kw: dict):
    judge = SimulatedJudge(quality, systems, prompts, seed=seed, **judge_kw)
    n, total = len(judge.systems), len(judge.systems) * (len(judge.systems) - 1) // 2 * len(judge.prompts)
    budgets = grid(total)
    rr = make_planner("round-robin", judge.answered, budget=total, seed=seed)
    res, issued = run_plan(rr, judge)
    ref = fit_strengths(res, judge.systems)
    scores = {"round-robin": prefix_scores(issued, res, judge.systems, ref, budgets)}
    tour_max = (n - 1) * len(judge.prompts)
    scores["tournament"], scores["tournament-bt"] = {}, {}
    for b in [b for b in budgets if b <= tour_max] + [tour_max]:
        r, _ = run_plan(make_planner("tournament", judge.answered, budget=b, seed=seed), judge)
        if r:
            scores["tournament"][b] = agreement(fit_completed(r, judge.systems), ref)
            scores["tournament-bt"][b] = agreement(fit_strengths(r, judge.systems), ref)
    cap = int(total * ADAPTIVE_CAP)
    ad = AdaptivePlan(judge.answered, budget=cap, seed=seed)
    r, issued = run_plan(ad, judge)
    scores["adaptive"] = prefix_scores(issued, r, judge.systems, ref, [b for b in budgets if b <= cap])
    separated = {}
    if until:
        gap = np.abs(ref[:, None] - ref[None, :]) * POINTS
        for tol in TOLERANCES:
            sep = AdaptivePlan(judge.answered, until="separated", seed=seed, tolerance=tol)
            r, _ = run_plan(sep, judge)
            est = fit_strengths(r, judge.systems)
            far = gap > tol
            sign = np.sign(ref[:, None] - ref[None, :]) == np.sign(est[:, None] - est[None, :])
            outside = bool(np.all(sign[far]))
            separated[tol] = (sep.comparisons_issued / total, agreement(est, ref)["spearman"],
                              sep.stop_reason.startswith("rank order settled"),
                              bool(np.array_equal(np.argsort(-est), np.argsort(-ref))), outside,
                              float(np.sort(gap[np.triu_indices(n, 1)])[0]))
    return total, scores, separated


def nearest(scores: dict[int, dict], b: int) -> int | None:
    """The plan's grid budget closest to ``b`` that does not exceed it."""
    ok = [x for x in scores if x <= b * 1.0001]
    return max(ok) if ok else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--until-seeds", type=int, default=4, help="seeds that also run --until separated")
    ap.add_argument("--noise", type=float, default=NOISE, help="judge noise (log-odds sd)")
    ap.add_argument("--bias", type=float, default=BIAS, help="position bias (log-odds)")
    ap.add_argument("--hard", action="store_true", help="0/1 verdicts instead of probabilities")
    args = ap.parse_args()
    t0 = time.time()
    bv = load_baseline_verdicts(DATA, ANNOTATOR)
    q = latent_from_baseline(bv.p_win)
    sets = {"n16": (synthetic_panel(q, 16, seed=0), None), "ae13": (q, bv.systems)}
    final: dict[str, dict[str, float | None]] = {}
    for name, (quality, systems) in sets.items():
        judge_kw = dict(noise=args.noise, position_bias=args.bias, hard=args.hard)
        runs = [one_seed(quality, systems, bv.prompts, s, s < args.until_seeds, judge_kw) for s in range(args.seeds)]
        total = runs[0][0]
        n = quality.shape[0]
        print(f"\n== {name}: {n} systems x {len(bv.prompts)} prompts; round-robin = {total} comparisons "
              f"= {2 * total} judge calls; {args.seeds} seeds; judge {judge_kw}; mean ± sd")
        print(f"{'plan':<14}{'budget':>8}{'calls':>9}{'%RR':>7}  " + "".join(f"{m:>15}" for m in METRICS))
        for plan in ("round-robin", "tournament", "tournament-bt", "adaptive"):
            shown = set()
            for f in SHOWN:
                b = int(round(total * f))
                rows = [sc[plan][k] for _, sc, _ in runs if (k := nearest(sc[plan], b)) is not None]
                used = nearest(runs[0][1][plan], b)
                if not rows or used is None or used < 0.8 * b or used in shown:
                    continue
                shown.add(used)
                cells = "".join(f"{np.mean([r[m] for r in rows]):>8.3f} ±{np.std([r[m] for r in rows]):.3f}"
                                for m in METRICS)
                print(f"{plan:<14}{used:>8}{2 * used:>9}{100 * used / total:>6.1f}%  {cells}")
        final[name] = {}
        print(f"judge calls to reach Spearman >= {TARGET} (and stay): ", end="")
        parts = []
        for plan in ("round-robin", "tournament", "tournament-bt", "adaptive"):
            hits = [reach(sc[plan]) for _, sc, _ in runs]
            got = [2 * h for h in hits if h is not None]
            if plan != "tournament-bt":
                final[name][plan] = float(np.mean(got)) if len(got) == len(hits) else None
            desc = f"{np.mean(got):.0f} ± {np.std(got):.0f} ({100 * np.mean(got) / (2 * total):.1f}% RR)" if got else "never"
            parts.append(f"{plan} {desc} [{len(got)}/{len(hits)} seeds]")
        print("; ".join(parts))
        common = sorted(set.intersection(*(set(sc["adaptive"]) & set(sc["tournament"]) for _, sc, _ in runs)))
        diff = np.array([[sc["adaptive"][b]["spearman"] - sc["tournament"][b]["spearman"] for _, sc, _ in runs]
                         for b in common])
        margin, se = diff.mean(axis=1), diff.std(axis=1, ddof=1) / np.sqrt(diff.shape[1])
        worst = int(np.argmin(margin))
        print(f"adaptive - tournament mean Spearman (paired by seed) on {len(common)} common budgets "
              f"({100 * common[0] / total:.1f}%-{100 * common[-1] / total:.1f}% RR): > 0 at "
              f"{int((margin > 0).sum())}, < 0 by more than 2 standard errors at {int((margin < -2 * se).sum())}; "
              f"smallest {margin[worst]:+.4f} ± {se[worst]:.4f} at {100 * common[worst] / total:.1f}% RR, "
              f"largest {margin.max():+.4f}")
        for tol in TOLERANCES:
            sep = np.array([s[tol] for _, _, s in runs if s], dtype=float)
            if not len(sep):
                continue
            settled = sep[:, 2] > 0
            print(f"adaptive --until separated --tolerance {tol:g} (no budget): settled in {int(settled.sum())}/"
                  f"{len(sep)} seeds after {100 * sep[:, 0].mean():.1f}% ± {100 * sep[:, 0].std():.1f}% "
                  f"(min {100 * sep[:, 0].min():.1f}%) of round-robin's calls; exactly round-robin's order in "
                  f"{int(sep[settled, 3].sum())}, every pair more than {tol:g} points apart in its order in "
                  f"{int(sep[settled, 4].sum())}; Spearman {sep[:, 1].mean():.3f} ± {sep[:, 1].std():.3f}; "
                  f"closest pair in round-robin {sep[:, 5].mean():.1f} points apart")
    print(f"\n({time.time() - t0:.0f} s)")
    print(json.dumps(final))


if __name__ == "__main__":
    main()
