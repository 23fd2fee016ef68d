"""``rank --dry-run``: what a run would ask and spend, before anything is asked or written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._pipeline import (NON_PAIRWISE_MODES, RankOptions, applicable_options, answered_map, check_judges, check_options,
                        price_judges)
from .errors import InputError
from .judge import backend_kind, estimate_call, make_judge, ordered_requests
from .load import load_candidates
from .plan import make_planner, round_robin

# Stated, not measured on the user's machine: the default judge's short verdict on 2 cores
# (DESIGN.md), and a round trip to a hosted model.
SECONDS_PER_CALL = {"local": 0.6, "hosted": 1.0, "none": 0.001}


@dataclass
class JudgeEstimate:
    name: str
    kind: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    usd: float | None  # None: a hosted judge without a price
    seconds: float
    exact: bool  # False: an adaptive or tournament plan decides as it goes; calls are an upper bound


@dataclass
class RunEstimate:
    judges: list[JudgeEstimate] = field(default_factory=list)
    seconds_per_call: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def usd(self) -> float | None:
        costs = [j.usd for j in self.judges]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)


def estimate_rank(options: RankOptions, *, seconds_per_call: float | None = None) -> RunEstimate:
    """Calls, tokens (the backends' own counts of the texts), cost (the price table) and time (a stated
    per-call estimate) of ``rank(options)``. Builds the judges but asks them nothing (no logprobs
    probe) and writes nothing: no run folder, no store."""
    check_options(options)
    cset = load_candidates(options.candidates, allow_missing=options.allow_missing)
    if len(cset.systems) < 2:
        raise InputError(f"need at least two systems to rank, found {len(cset.systems)}: {cset.systems}")
    answered = answered_map(cset)
    try:
        planner = make_planner(options.plan, answered, baseline=options.baseline, budget=options.budget,
                               until=options.until, seed=options.seed, tolerance=options.tolerance)
    except ValueError as e:
        raise InputError(str(e), field="--plan/--baseline/--budget") from None
    specs = options.judges or [options.judge]
    judges = [make_judge(spec, n_ctx=options.n_ctx, seed=options.seed, min_mass=options.min_mass, mode=options.mode,
                         template=None if options.template is None else str(options.template), probe=False,
                         **applicable_options(options, spec, specs)) for spec in specs]
    check_judges(options, judges, cset)
    price_judges(options, judges)
    out = RunEstimate()
    static = options.plan in ("round-robin", "baseline")
    if static:
        comparisons = planner.next_batch({})
    else:  # the plan depends on the verdicts: bound it by round-robin (and the budget)
        comparisons = round_robin(answered)
        if options.budget is not None:
            comparisons = comparisons[:options.budget]
        out.notes.append(f"the {options.plan} plan chooses as verdicts come in: its calls are at most these")
    requests = ordered_requests(comparisons, cset.systems)
    for j in judges:
        kind = backend_kind(j)
        if j.mode in NON_PAIRWISE_MODES or j.mode == "verifier":
            if j.mode == "listwise":
                k = int(getattr(j, "max_k", 6))
                asks = [(pid, cset.systems_for(pid)) for pid in cset.prompts for _ in (0, 1)
                        if len(cset.systems_for(pid)) >= 2]
                groups = []
                for pid, systems in asks:  # as many groups of at most k as rank_lists makes
                    n = -(-len(systems) // k)
                    groups += [(pid, systems[i::n]) for i in range(n)]
                asks = groups
            else:
                asks = [(pid, [s]) for pid in cset.prompts for s in cset.systems_for(pid)]
        else:
            asks = [(pid, [a, b]) for pid, a, b in requests]
        pt = ct = 0
        for pid, systems in asks:
            texts = [cset.candidates[(pid, s)].output for s in systems]
            p, c = estimate_call(j, texts, cset.prompts[pid].text)
            pt, ct = pt + p, ct + c
        price = getattr(getattr(j, "backend", None), "price", None)
        usd = (price.cost(pt, ct) if price is not None else None) if kind == "hosted" else 0.0
        each = seconds_per_call if seconds_per_call is not None else SECONDS_PER_CALL[kind]
        out.seconds_per_call[j.name] = each
        workers = int(getattr(getattr(j, "backend", None), "concurrency", 1) or 1) if kind == "hosted" else 1
        out.judges.append(JudgeEstimate(name=j.name, kind=kind, calls=len(asks), prompt_tokens=pt,
                                        completion_tokens=ct, usd=usd, seconds=len(asks) * each / workers,
                                        exact=static or j.mode != "pairwise"))
    if options.independence_check:
        n = min(options.independence_prompts, len(cset.prompts))
        out.notes.append(f"the prompt-independence check adds up to {2 * n * len(cset.systems)} short calls "
                         "(--no-independence-check skips it)")
    if options.max_cost is not None:
        out.notes.append(f"--max-cost ${options.max_cost:g} stops asking before the spending would pass it")
    out.notes.append("answers already in the run folder's store would be reused at no cost; not subtracted here")
    return out


def estimate_summary(est: RunEstimate) -> dict[str, Any]:
    """The estimate as plain data (for tests and ``--json`` style use)."""
    return {"judges": [j.__dict__ for j in est.judges], "usd": est.usd, "notes": est.notes,
            "seconds_per_call": est.seconds_per_call}
