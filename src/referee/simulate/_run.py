"""Running a plan against a simulated judge, and scoring the ranking it gives."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import kendalltau, spearmanr

from ..plan import Comparison, Planner
from ._judge import SimulatedJudge


def run_plan(planner: Planner, judge: SimulatedJudge, *, max_batches: int = 100_000
             ) -> tuple[dict[Comparison, float], list[Comparison]]:
    """Play the run loop: ask for batches, answer them, until the planner hands out none.

    Returns:
        The results (unusable verdicts absent) and every comparison handed out, in order.

    Raises:
        RuntimeError: the planner did not stop within ``max_batches`` batches.
    """
    results: dict[Comparison, float] = {}
    issued: list[Comparison] = []
    for _ in range(max_batches):
        batch = planner.next_batch(results)
        if not batch:
            return results, issued
        issued.extend(batch)
        results.update(judge.judge(batch))
    raise RuntimeError(f"planner did not stop within {max_batches} batches")


def fit_strengths(results: Mapping[Comparison, float] | Sequence[tuple[Comparison, float]],
                  systems: Sequence[str], *, reg: float = 1e-3) -> np.ndarray:
    """Bradley–Terry strengths (natural log-odds, mean 0) of ``systems`` from combined verdicts.

    A small ``reg`` keeps the fit finite when a system has won (or lost) everything so far.
    """
    from ..rate import bradley_terry

    items = list(results.items()) if isinstance(results, Mapping) else list(results)
    index = {s: i for i, s in enumerate(systems)}
    a = np.fromiter((index[c.system_a] for c, _ in items), np.int64, len(items))
    b = np.fromiter((index[c.system_b] for c, _ in items), np.int64, len(items))
    y = np.fromiter((v for _, v in items), np.float64, len(items))
    return np.asarray(bradley_terry(a, b, y, len(systems), scale=math.log(10.0), base=0.0, reg=reg))


def fit_completed(results: Mapping[Comparison, float] | Sequence[tuple[Comparison, float]],
                  systems: Sequence[str], *, reg: float = 1e-3) -> np.ndarray:
    """Strengths (natural log-odds, mean 0) of the full round-robin on the judged prompts, predicted
    from ``results`` by :func:`referee.rate.completed_bradley_terry`.

    The estimator for plans whose comparisons on a prompt depend on earlier verdicts on it
    (``tournament``): plain Bradley–Terry over-rates systems that are good on few prompts there.
    """
    from ..rate import completed_bradley_terry

    items = list(results.items()) if isinstance(results, Mapping) else list(results)
    index = {s: i for i, s in enumerate(systems)}
    prompts: dict[str, int] = {}
    p = np.fromiter((prompts.setdefault(c.prompt_id, len(prompts)) for c, _ in items), np.int64, len(items))
    a = np.fromiter((index[c.system_a] for c, _ in items), np.int64, len(items))
    b = np.fromiter((index[c.system_b] for c, _ in items), np.int64, len(items))
    y = np.fromiter((v for _, v in items), np.float64, len(items))
    return np.asarray(completed_bradley_terry(p, a, b, y, len(systems), scale=math.log(10.0), base=0.0, reg=reg))


def agreement(estimate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How well ``estimate``'s ranking matches ``reference``'s (higher = better in both).

    Returns:
        ``spearman``, ``kendall`` (tau-b), ``top1`` (1 if the best system is the same) and
        ``top3`` (the share of the reference's top 3 found in the estimate's top 3).
    """
    est, ref = np.asarray(estimate, float), np.asarray(reference, float)
    k = min(3, len(ref))
    top_ref, top_est = np.argsort(-ref, kind="stable"), np.argsort(-est, kind="stable")
    return {
        "spearman": float(spearmanr(est, ref).statistic),
        "kendall": float(kendalltau(est, ref).statistic),
        "top1": float(top_ref[0] == top_est[0]),
        "top3": len(set(top_ref[:k]) & set(top_est[:k])) / k,
    }


def reference_strengths(judge: SimulatedJudge) -> np.ndarray:
    """Strengths from full round-robin with ``judge``: the ranking cheaper plans try to reach."""
    from ..plan import round_robin

    return fit_strengths(judge.judge(round_robin(judge.answered)), judge.systems)


def evaluate_plan(judge: SimulatedJudge, plan: str, *, budget: int | None = None, until: str | None = None,
                  baseline: str | None = None, seed: int = 0, reference: np.ndarray | None = None,
                  tolerance: float = 0.0) -> dict:
    """Run one plan against ``judge`` and score its ranking against full round-robin's.

    A tournament is rated by :func:`fit_completed`, every other plan by plain Bradley–Terry.

    Returns:
        ``comparisons``, ``judge_calls``, ``stop_reason`` and the :func:`agreement` scores.

    Raises:
        ValueError: as :func:`referee.plan.make_planner`.
    """
    from ..plan import make_planner

    ref = reference_strengths(judge) if reference is None else reference
    planner = make_planner(plan, judge.answered, baseline=baseline, budget=budget, until=until, seed=seed,
                           tolerance=tolerance)
    results, issued = run_plan(planner, judge)
    fit = fit_completed if plan == "tournament" else fit_strengths
    return {"comparisons": len(issued), "judge_calls": 2 * len(issued), "stop_reason": planner.stop_reason,
            **agreement(fit(results, judge.systems), ref)}
