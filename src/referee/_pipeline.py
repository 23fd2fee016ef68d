"""``rank``: load → plan → judge → store → rate → report, wired together for one run folder."""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ._version import __version__
from .errors import CostLimitError, InputError, RatingDivergenceError, RatingError
from .judge import (JudgeProgress, PairwiseLogprobJudge, check_prompt_independence, judge_comparisons, make_judge,
                    measured_fidelity)
from .judge._cost import CostMeter, apply_prices, backend_kind, load_prices
from .load import CandidateSet, load_candidates
from .plan import Comparison, make_planner
from .rate import RatingTable, rate_completed, rate_pairwise
from .report import write_html_report, write_leaderboard
from .store import PairOutcome, Verdict, VerdictStore


class RankOptions(BaseModel):
    """Everything that defines a ``referee rank`` run (recorded in ``run.json``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    candidates: list[Path]
    output: Path | None = None
    judge: str = "qwen2.5-coder-1.5b"
    judges: list[str] | None = Field(default=None, description="several judges, combined without labels")
    judge_groups: list[list[str]] | None = Field(
        default=None, description="families among `judges` known to share their errors, each weighed as one unit")
    plan: str = "round-robin"
    baseline: str | None = None
    budget: int | None = Field(default=None, description="at most this many comparisons (2 judge calls each)")
    until: str | None = None
    tolerance: float = Field(default=0.0, description="rating points within which --until separated may call "
                             "two neighbours tied")
    allow_missing: bool = False
    seed: int = 0
    n_boot: int = 1000
    level: float = Field(default=0.95, description="confidence level of the intervals")
    reg: float | None = Field(
        default=None, description="Gaussian prior on the natural-scale strengths; None: the maximum-"
        "likelihood ratings, or FALLBACK_REG (noted) where they do not exist; 0: maximum likelihood or an error")
    n_ctx: int = 4096
    min_mass: float = 0.5
    max_candidate_tokens: int | None = Field(
        default=None, description="cut each candidate to this many tokens (None: each judge's default)")
    concurrency: int | None = Field(default=None, description="requests in flight at once (openai: judges)")
    mode: str = "pairwise"
    template: Path | None = None
    report: bool = Field(default=True, description="write the self-contained report.html into the run folder")
    independence_check: bool = Field(
        default=True, description="flag systems whose outputs do not depend on the prompt; flagged systems "
        "are listed below all others")
    independence_prompts: int = Field(default=12, ge=2, description="prompts put to the judge per system for "
                                      "the independence check (own prompt and another one each)")
    prices: Path | None = Field(default=None, description="price table (TOML/JSON): model -> USD per 1M input "
                                "and output tokens; a judge config's own `price` wins")
    max_cost: float | None = Field(default=None, description="stop asking once the next call would spend more "
                                   "than this many USD in total (priced judges)")

    def run_dir(self) -> Path:
        if self.output is not None:
            return self.output
        src = self.candidates[0]
        return Path("referee-runs") / (src.stem if src.is_file() else src.name)


@dataclass
class RunStats:
    """Facts about the judge on this run's verdicts."""

    status: dict[str, int]
    pairs: int
    pairs_both_orders: int
    position_consistency: float | None
    first_position_rate: float | None
    truncated_candidates: int
    per_system_consistency: dict[str, float | None]
    per_system_verdicts: dict[str, int]


@dataclass
class RankResult:
    """What a run produced: the ratings, the table rows, the provenance and where it all went."""

    table: RatingTable
    rows: list[dict[str, Any]]
    provenance: dict[str, Any]
    stats: RunStats
    out_dir: Path
    progress: JudgeProgress
    stop_reason: str | None


def answered_map(cset: CandidateSet) -> dict[str, list[str]]:
    """prompt id -> systems that answered it, in the set's system order."""
    return {pid: cset.systems_for(pid) for pid in cset.prompts}


def run_stats(verdicts: Sequence[Verdict], outcomes: Sequence[PairOutcome]) -> RunStats:
    """Position consistency, first-position preference and truncation of one run's verdicts."""
    status = {"ok": 0, "unparseable": 0, "error": 0}
    truncated: set[tuple[str, str]] = set()
    firsts = []
    per_n: dict[str, int] = {}
    for v in verdicts:
        status[v.status] += 1
        cut = v.detail.get("truncated") or []
        for system, flag in zip(v.systems, cut[1:]):
            if flag:
                truncated.add((v.prompt_id, system))
        if v.status == "ok":
            # every usable verdict that saw the system: two per pairwise comparison judged in both
            # orders, one per pointwise score, one per listwise ranking it was in
            for s in set(v.systems):
                per_n[s] = per_n.get(s, 0) + 1
            if v.p_first is not None:
                firsts.append(v.p_first > 0.5)
    both = [o for o in outcomes if o.consistent is not None]
    per_sys: dict[str, list[bool]] = {}
    for o in outcomes:
        for s in (o.system_a, o.system_b):
            if o.consistent is not None:
                per_sys.setdefault(s, []).append(o.consistent)
    return RunStats(
        status=status, pairs=len(outcomes), pairs_both_orders=len(both),
        position_consistency=(sum(o.consistent for o in both) / len(both)) if both else None,
        first_position_rate=(sum(firsts) / len(firsts)) if firsts else None,
        truncated_candidates=len(truncated),
        per_system_consistency={s: (sum(v) / len(v) if v else None) for s, v in per_sys.items()},
        per_system_verdicts=per_n,
    )


# The prior a run falls back to when maximum-likelihood ratings do not exist (hard verdicts and a
# system that never won or never lost): strengths ~ Normal(0, 1/sqrt(reg)) in natural log-odds, an sd of
# about 550 rating points. Weak enough to leave the gap of a 2:1 record over 24 prompts within 3 points
# of its maximum-likelihood value, strong enough to keep a system that lost every verdict in view.
FALLBACK_REG = 0.1


@dataclass
class RunRatings:
    """A run's ratings and what the verdicts could not pin down.

    Attributes:
        table: the ratings.
        unrated: systems without a single usable verdict (not in ``table``).
        unbounded: system -> ``"below"`` / ``"above"`` for systems whose maximum-likelihood rating is
            infinitely far below / above the rest; their rating is set by the prior.
        fallback: whether the prior is :data:`FALLBACK_REG`, chosen because the maximum-likelihood
            ratings do not exist (rather than one the caller asked for).
    """

    table: RatingTable
    unrated: list[str]
    unbounded: dict[str, str]
    fallback: bool


def rate_run(systems: list[str], outcomes: Sequence[PairOutcome], *, n_boot: int, seed: int, level: float,
             plan: str = "round-robin", reg: float | None = None) -> RunRatings:
    """Bradley–Terry ratings with prompt-clustered bootstrap intervals from combined outcomes.

    Verdicts on one prompt are correlated (the same texts recur), so the bootstrap resamples
    whole prompts. Systems left without a single usable verdict cannot be rated; they are
    returned apart, not given a made-up rating. A tournament's matches are rated by
    :func:`referee.rate.rate_completed`: in a bracket, winners meet on the prompts they won,
    which biases plain Bradley–Terry.

    With ``reg=None`` the ratings are the maximum-likelihood estimate where it exists. Where it
    does not (0/1 verdicts from generate-then-parse, verifiers or replay, and a system that never
    won, or never lost), they are fitted again with the weak prior :data:`FALLBACK_REG`; the table's
    notes say so and name the systems, which are returned in ``unbounded``. An explicit ``reg`` is
    used as given (``0``: maximum likelihood or :class:`RatingError`).
    """
    if not outcomes:
        raise RatingError("no usable verdicts to rate (every verdict was unparseable or an error)")
    seen = {s for o in outcomes for s in (o.system_a, o.system_b)}
    rated = [s for s in systems if s in seen]
    unrated = [s for s in systems if s not in seen]
    index = {s: i for i, s in enumerate(rated)}
    prompt_index: dict[str, int] = {}
    a = np.fromiter((index[o.system_a] for o in outcomes), dtype=np.int64, count=len(outcomes))
    b = np.fromiter((index[o.system_b] for o in outcomes), dtype=np.int64, count=len(outcomes))
    p = np.fromiter((o.p_a for o in outcomes), dtype=np.float64, count=len(outcomes))
    cluster = np.fromiter((prompt_index.setdefault(o.prompt_id, len(prompt_index)) for o in outcomes),
                          dtype=np.int64, count=len(outcomes))

    def fit(r: float) -> RatingTable:
        if plan == "tournament" and len(prompt_index) > 1:
            return rate_completed(rated, cluster, a, b, p, n_boot=n_boot, seed=seed, level=level, reg=r)
        return rate_pairwise(rated, a, b, p, method="bt", ci="bootstrap", n_boot=n_boot, seed=seed, level=level,
                             cluster=cluster if len(prompt_index) > 1 else None, reg=r)

    try:
        return RunRatings(fit(reg or 0.0), unrated, {}, False)
    except RatingDivergenceError as e:
        if reg is not None:
            raise RatingError(f"{e} (with --reg R on the command line; the verdicts are stored, so running "
                              f"again asks nothing)") from None
        diverged = e
    table = fit(FALLBACK_REG)
    top, bottom = diverged.top, diverged.bottom
    unbounded: dict[str, str] = {}
    if len(bottom) <= len(top):
        unbounded.update((rated[i], "below") for i in bottom)
    if len(top) <= len(bottom):
        unbounded.update((rated[i], "above") for i in top)
    below = [s for s, side in unbounded.items() if side == "below"]
    above = [s for s, side in unbounded.items() if side == "above"]
    what = "; ".join(([f"{', '.join(below)} never won or tied a comparison"] if below else [])
                     + ([f"{', '.join(above)} never lost one"] if above else []))
    sd = table.scale / math.log(10.0) / math.sqrt(FALLBACK_REG)
    side = "below" if not above else "above" if not below else "from"
    note = (f"the maximum-likelihood ratings do not exist: {what}. All ratings use a weak Gaussian prior instead "
            f"(reg={FALLBACK_REG:g}, an sd of {sd:.0f} rating points); how far {', '.join(unbounded)} "
            f"{'is' if len(unbounded) == 1 else 'are'} {side} the others is set by that prior, not by the verdicts "
            f"(--reg sets the prior)")
    table = replace(table, notes=[note, *table.notes])
    return RunRatings(table, unrated, unbounded, True)


def rate_outcomes(systems: list[str], outcomes: Sequence[PairOutcome], *, n_boot: int, seed: int,
                  level: float, plan: str = "round-robin", reg: float | None = None) -> tuple[RatingTable, list[str]]:
    """:func:`rate_run`'s ``(table, unrated_systems)``."""
    r = rate_run(systems, outcomes, n_boot=n_boot, seed=seed, level=level, plan=plan, reg=reg)
    return r.table, r.unrated


def check_options(options: RankOptions) -> None:
    """Refuse options that contradict each other or that the run would ignore, before anything is
    built, written or paid for.

    Raises:
        InputError: naming the option at fault.
    """
    given = options.model_fields_set
    if options.judges and "judge" in given:
        raise InputError(f"--judge {options.judge} next to --judges: list every judge in --judges", field="--judge")
    if options.baseline is not None and options.plan != "baseline":
        raise InputError(f"--baseline applies to --plan baseline only, not to --plan {options.plan}",
                         field="--baseline")
    if options.mode in NON_PAIRWISE_MODES:
        _refuse_plan(options, f"--mode {options.mode}")
    if not 0.0 < options.level < 1.0:
        raise InputError(f"the confidence level must be between 0 and 1 (exclusive), not {options.level:g}",
                         field="--level")
    if options.n_boot < 2:
        raise InputError(f"the bootstrap needs at least 2 replicates, not {options.n_boot}", field="--n-boot")
    if options.reg is not None and not options.reg >= 0.0:
        raise InputError(f"the prior strength must be 0 or more, not {options.reg:g}", field="--reg")
    if not 0.0 <= options.min_mass <= 1.0:
        raise InputError(f"the letter probability mass must be between 0 and 1, not {options.min_mass:g}",
                         field="--min-mass")
    if options.max_cost is not None and not options.max_cost >= 0.0:
        raise InputError(f"--max-cost must be 0 or more USD, not {options.max_cost:g}", field="--max-cost")
    for name, value in (("--max-candidate-tokens", options.max_candidate_tokens),
                        ("--concurrency", options.concurrency)):
        if value is not None and value < 1:
            raise InputError(f"{name} must be at least 1, not {value}", field=name)


NON_PAIRWISE_MODES = ("pointwise", "pyes", "listwise", "verifier")


def _refuse_plan(options: RankOptions, judged_by: str) -> None:
    # Non-pairwise judges judge every candidate: a plan or budget would be silently ignored.
    if options.plan != "round-robin":
        raise InputError(f"--plan {options.plan} chooses pairwise comparisons, and {judged_by} judges every "
                         "candidate on its own: drop --plan or use a pairwise judge", field="--plan")
    if options.budget is not None:
        raise InputError(f"--budget limits pairwise comparisons, and {judged_by} judges every candidate on its "
                         "own: drop --budget or use a pairwise judge", field="--budget")


def _applicable(options: RankOptions, spec: str, specs: Sequence[str]) -> dict[str, Any]:
    """``max_candidate_tokens`` / ``concurrency`` for ``spec`` when they apply to it. Among several
    judges each takes what applies to it; an option that applies to none of them is refused."""
    from .judge._make import judge_kind

    kinds = {s: judge_kind(s) for s in specs}
    out: dict[str, Any] = {}
    for key, fits in (("max_candidate_tokens", ("llama", "openai")), ("concurrency", ("openai",))):
        value = getattr(options, key)
        if value is None:
            continue
        if kinds[spec] in fits or not any(kinds[s] in fits for s in specs):
            out[key] = value  # the judge refuses it with one clear line if it does not apply
    return out


def check_judges(options: RankOptions, judges: Sequence[Any], cset: CandidateSet) -> None:
    """Refuse, before the run folder exists, a run whose judges cannot do what the options ask.

    Raises:
        InputError: a plan or budget for judges that are not pairwise, ``--min-mass`` for judges
        that read no letter probabilities, a verifier that compares with reference answers on
        prompts that have none.
    """
    for j in judges:
        if j.mode != "pairwise":
            _refuse_plan(options, f"{j.name} (mode {j.mode})")
    if "min_mass" in options.model_fields_set and not any(hasattr(j, "min_mass") for j in judges):
        raise InputError(f"--min-mass applies to judges that read letter probabilities; "
                         f"{', '.join(j.name for j in judges)} read none", field="--min-mass")
    for j in judges:
        if j.mode == "verifier" and getattr(j, "use_reference", False):
            missing = [pid for pid, p in cset.prompts.items() if p.reference is None]
            if missing:
                shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                raise InputError(f"verifier {j.name} compares each output with the prompt's reference answer, "
                                 f"and {len(missing)} of {len(cset.prompts)} prompts have none ({shown}): add a "
                                 "'reference' field to the candidates or use a verifier that needs none",
                                 field="reference")


def rank(options: RankOptions, *, judge: PairwiseLogprobJudge | None = None,
         on_start: Callable[[JudgeProgress], None] | None = None,
         on_verdict: Callable[[Verdict, bool], None] | None = None) -> RankResult:
    """Run the whole path for ``options`` and write the run folder.

    The run folder holds ``verdicts.sqlite`` (every verdict, committed as it lands),
    ``leaderboard.json``/``.csv``/``.md`` and ``run.json`` (provenance). Running again with the
    same inputs continues where an interrupted run stopped; no question is asked twice.

    Args:
        options: the run's definition.
        judge: an already built judge to use instead of building ``options.judge`` (saves a
            model load when ranking several times in one process).
        on_start: called once with the progress counters before judging starts.
        on_verdict: called after each verdict with ``(verdict, from_cache)``.

    Raises:
        InputError: bad candidates or options. ModelNotInstalledError: the judge's model is
        missing. RatingError: the verdicts cannot be rated. StoreError: another run is writing to
        the run folder, or the verdict store failed (locked, disk full).
    """
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    check_options(options)
    cset = load_candidates(options.candidates, allow_missing=options.allow_missing)
    if len(cset.systems) < 2:
        raise InputError(f"need at least two systems to rank, found {len(cset.systems)}: {cset.systems}")
    try:
        planner = make_planner(options.plan, answered_map(cset), baseline=options.baseline,
                               budget=options.budget, until=options.until, seed=options.seed,
                               tolerance=options.tolerance)
    except ValueError as e:
        raise InputError(str(e), field="--plan/--baseline/--budget") from None
    if judge is None:
        specs = options.judges or [options.judge]
        if len(set(specs)) != len(specs):
            raise InputError(f"a judge is listed twice in {specs}", field="--judges")
        for group in options.judge_groups or []:
            unknown = [g for g in group if g not in specs]
            if unknown or not options.judges:
                raise InputError(f"judge group {group}: {unknown or group} not among --judges {specs}",
                                 field="--judge-group")
        judges = [make_judge(spec, n_ctx=options.n_ctx, seed=options.seed, min_mass=options.min_mass,
                             mode=options.mode, template=None if options.template is None else str(options.template),
                             **_applicable(options, spec, specs))
                  for spec in specs]
    else:
        judges = [judge]
    check_judges(options, judges, cset)
    for j in judges:
        if callable(getattr(j, "bind", None)):  # replayed verdicts are looked up by the texts' systems
            j.bind(cset)
    judge = judges[0]
    meter = price_judges(options, judges)  # before the folder exists: a --max-cost nothing obeys is refused
    out_dir = options.run_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    provenance: dict[str, Any] = {
        "referee_version": __version__,
        "started_at": started.isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "options": json.loads(options.model_dump_json()),
        "candidates": {"sources": cset.sources, "sha256": cset.fingerprint(), "prompts": len(cset.prompts),
                       "systems": cset.systems, "candidates": len(cset.candidates)},
        "judge": {"id": judge.judge_id, "name": judge.name, **judge.spec},
        "seed": options.seed,
    }
    if len(judges) > 1:
        provenance["judges"] = [{"id": j.judge_id, "name": j.name, **j.spec} for j in judges]
    store = VerdictStore(out_dir / "verdicts.sqlite", lock=True)  # a second run on the folder stops here, unpaid
    try:
        for j in judges:
            store.register_judge(j.judge_id, j.spec)
        changed = store.put_candidates(cset.prompts.values(), cset.candidates.values())
        if changed:
            provenance["candidates"]["changed"] = {**changed.model_dump(), "notice": changed.notice()}
        run_id = store.start_run(provenance)
        progress = JudgeProgress(meter=meter)
        if on_start is not None:
            on_start(progress)
        results: dict[Comparison, float] = {}
        verdicts: list[Verdict] = []
        per_judge: dict[str, list[PairOutcome]] = {}
        pairwise = [j for j in judges if j.mode == "pairwise"]
        while pairwise and not meter.stopped:
            batch = planner.next_batch(results)
            if not batch:
                break
            # the planner is steered by the judges' mean outcome of each comparison
            sums: dict[tuple[str, frozenset[str]], list[float]] = {}
            for j in pairwise:
                got = judge_comparisons(batch, cset, j, store, progress=progress, on_verdict=on_verdict)
                verdicts.extend(got)
                for o in store.pairwise_outcomes(judge_id=j.judge_id, verdict_ids=[v.verdict_id for v in got]):
                    sums.setdefault((o.prompt_id, frozenset((o.system_a, o.system_b))), []).append(
                        (o.system_a, o.p_a))
            for c in batch:
                got_c = sums.get((c.prompt_id, frozenset((c.system_a, c.system_b))))
                if got_c:
                    ps = [p if a == c.system_a else 1.0 - p for a, p in got_c]
                    results[c] = sum(ps) / len(ps)
        for j in judges:
            if meter.stopped and j.mode != "pairwise":
                per_judge[j.judge_id] = []
                continue
            if j.mode == "pairwise":
                ids = [v.verdict_id for v in verdicts if v.judge_id == j.judge_id]
                per_judge[j.judge_id] = store.pairwise_outcomes(judge_id=j.judge_id, verdict_ids=ids)
            else:  # pointwise / listwise / verifier: every candidate, then pairs from scores
                from .judge._modes import judge_by_mode
                per_judge[j.judge_id] = judge_by_mode(cset, j, store, verdicts, progress=progress,
                                                      on_verdict=on_verdict, seed=options.seed)
        if len(judges) == 1:
            outcomes = per_judge[judge.judge_id]
        else:
            groups = None
            if options.judges and options.judge_groups:
                ids = dict(zip(options.judges, (j.judge_id for j in judges)))
                groups = [[ids[g] for g in group] for group in options.judge_groups]
            outcomes = _ensemble(store.path, judges, per_judge, provenance, groups)
        screen = None
        if options.independence_check and not meter.stopped:  # the screen asks the judge too
            # counted apart: run.json's verdict counts stay those of the judges that rate
            screen_progress = JudgeProgress()
            screen = check_prompt_independence(cset, judge, store, max_prompts=options.independence_prompts,
                                               seed=options.seed, progress=screen_progress)
            screen["asked"], screen["cache_hits"] = screen_progress.asked, screen_progress.cache_hits
        stats = run_stats(verdicts, outcomes)
        provenance["cost"] = cost_record(judges, progress, screen_progress if screen is not None else None, meter)
        if meter.stopped and not outcomes:
            store.finish_run(run_id, provenance)  # no run.json without ratings: the store keeps the record
            raise CostLimitError(f"{meter.stopped}, before any usable verdict: nothing to rate. The "
                                 f"{progress.asked} verdict(s) asked are stored; a larger --max-cost continues")
        ratings = rate_run(cset.systems, outcomes, n_boot=options.n_boot, seed=options.seed, level=options.level,
                           plan=options.plan if len(pairwise) == len(judges) else "round-robin", reg=options.reg)
        table, unrated = ratings.table, ratings.unrated
        rows = leaderboard_rows(table, stats, unbounded=ratings.unbounded if ratings.fallback else None)
        if screen is not None:
            rows = flag_rows(rows, screen)
            provenance["prompt_independence"] = independence_record(screen)
        provenance.update({
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "elapsed_s": round(time.perf_counter() - t0, 3),
            "plan": {"name": options.plan, "stop_reason": meter.stopped or planner.stop_reason,
                     "comparisons": len({(v.prompt_id, frozenset(v.systems)) for v in verdicts})},
            "verdicts": {**stats.status, "total": len(verdicts), "asked": progress.asked,
                         "cache_hits": progress.cache_hits, "judge_seconds": round(progress.judge_seconds, 3)},
            "judge_behaviour": {"position_consistency": stats.position_consistency,
                                "first_position_rate": stats.first_position_rate,
                                "pairs": stats.pairs, "pairs_both_orders": stats.pairs_both_orders,
                                "truncated_candidates": stats.truncated_candidates},
            "rating": {"method": "bradley-terry", "scale": "400*log10 odds + 1000 (mean 1000)",
                       "ci": "bootstrap over prompts" if table.clustered else "bootstrap",
                       "n_boot": options.n_boot, "level": options.level, "seed": options.seed,
                       "reg": table.reg, "prior": "fallback" if ratings.fallback else (
                           "given" if table.reg > 0 else "none"),
                       "unbounded_systems": ratings.unbounded,
                       "notes": list(table.notes), "unrated_systems": unrated,
                       "ratings_sha256": _ratings_hash(rows)},
        })
        provenance["judge"].update(_probed(judge))
        provenance["judge"]["fidelity"] = measured_fidelity(judge.judge_id)
        for entry, j in zip(provenance.get("judges", []), judges):
            entry.update(_probed(j))
        store.finish_run(run_id, provenance)
    finally:
        store.close()
    write_leaderboard(out_dir, rows, provenance)
    if options.report:
        write_html_report(out_dir)
    return RankResult(table=table, rows=rows, provenance=provenance, stats=stats, out_dir=out_dir,
                      progress=progress, stop_reason=meter.stopped or planner.stop_reason)


def price_judges(options: RankOptions, judges: Sequence[Any]) -> CostMeter:
    """Price each hosted judge from ``--prices`` (a judge config's ``price`` wins) and the run's meter.

    Raises:
        InputError: ``--max-cost`` with a hosted judge that has no price (the limit could not hold).
    """
    table = load_prices(options.prices) if options.prices is not None else None
    unpriced = [j.name for j in judges if apply_prices(j, table) is None and backend_kind(j) == "hosted"]
    if options.max_cost is not None and unpriced:
        raise InputError(f"--max-cost needs a price for every hosted judge; none for {', '.join(unpriced)} "
                         "(--prices FILE, or `price` in a judge config)", field="--max-cost")
    return CostMeter(max_usd=options.max_cost)


def cost_record(judges: Sequence[Any], progress: JudgeProgress, screen: JudgeProgress | None,
                meter: CostMeter) -> dict[str, Any]:
    """What this run spent, as ``run.json`` keeps it: tokens the servers reported for the questions
    asked this run (answers from the store count nothing), and USD where the judges are priced."""
    kinds = [backend_kind(j) for j in judges]
    prices = [getattr(getattr(j, "backend", None), "price", None) for j in judges]
    priced = all(p is not None for p, k in zip(prices, kinds) if k == "hosted")
    asked = [progress] + ([screen] if screen is not None else [])
    rec: dict[str, Any] = {
        "kind": "hosted" if "hosted" in kinds else "local" if "local" in kinds else "none",
        "priced": priced, "usd": round(sum(p.cost for p in asked), 6) if priced else None,
        "prompt_tokens": sum(p.prompt_tokens for p in asked),
        "completion_tokens": sum(p.completion_tokens for p in asked),
        "screening_usd": round(screen.cost, 6) if screen is not None and priced else None,
        "prices": {j.name: p.to_dict() for j, p in zip(judges, prices) if p is not None},
        "max_cost": meter.max_usd, "stopped": meter.stopped,
    }
    return rec


def _ensemble(path: Path, judges: list[Any], per_judge: dict[str, list[PairOutcome]],
              provenance: dict[str, Any], groups: list[list[str]] | None = None) -> list[PairOutcome]:
    """Several judges' outcomes combined without labels (weak supervision), for this run's items only."""
    from .combine import ensemble_outcomes

    planned = {(o.prompt_id, frozenset((o.system_a, o.system_b))) for outs in per_judge.values() for o in outs}
    outs, ens = ensemble_outcomes(path, [j.judge_id for j in judges], groups=groups)
    outs = [o for o in outs if (o.prompt_id, frozenset((o.system_a, o.system_b))) in planned]
    provenance["ensemble"] = {"id": outs[0].judge_id if outs else None, "method": ens.method,
                              "members": ens.table(), "notes": list(ens.notes)}
    return outs


def leaderboard_rows(table: RatingTable, stats: RunStats,
                     unbounded: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Leaderboard rows, best first: the rating table plus the judge's behaviour per system.

    With ``unbounded`` (from :func:`rate_run` after a fallback to the prior) every row also says
    whether its rating is set by the prior: ``"below"``/``"above"`` the others, or ``None``.
    """
    rows = []
    for rank_pos, rec in enumerate(sorted(table.to_records(), key=lambda r: -r["rating"]), 1):
        s = rec["system"]
        row = {"rank": rank_pos, **rec, "verdicts": stats.per_system_verdicts.get(s, 0),
               "position_consistency": stats.per_system_consistency.get(s)}
        if unbounded is not None:
            row["unbounded"] = unbounded.get(s)
        rows.append(row)
    return rows


def flag_rows(rows: list[dict[str, Any]], screen: dict[str, Any]) -> list[dict[str, Any]]:
    """``rows`` with each system's prompt-independence flag (``None`` or the reasons), flagged systems
    moved below every unflagged one and ranks renumbered: a system that does not answer its
    prompts cannot come first, whatever the judge preferred. Their ratings are kept as fitted."""
    findings = screen["findings"]
    flagged = [r for r in rows if findings.get(r["system"]) is not None and findings[r["system"]].flagged]
    out = [r for r in rows if r not in flagged] + flagged
    return [{**r, "rank": i, "flag": ("; ".join(findings[r["system"]].reasons) if r in flagged else None)}
            for i, r in enumerate(out, 1)]


def independence_record(screen: dict[str, Any]) -> dict[str, Any]:
    """The independence check as ``run.json`` keeps it."""
    return {"flagged": screen["flagged"], "judge_id": screen["judge_id"], "prompts": screen["prompts"],
            "method": screen["method"], "notes": screen["notes"], "asked": screen.get("asked", 0),
            "cache_hits": screen.get("cache_hits", 0),
            "systems": {s: f.to_dict() for s, f in screen["findings"].items()}}


def _probed(judge: Any) -> dict[str, Any]:
    # What the server was found to offer goes into the provenance, never into the judge id.
    caps = getattr(getattr(judge, "backend", None), "capabilities", None)
    return {"server_capabilities": caps()} if callable(caps) else {}


def _ratings_hash(rows: list[dict[str, Any]]) -> str:
    blob = json.dumps([[r["system"], round(r["rating"], 6), round(r["lower"], 6), round(r["upper"], 6)]
                       for r in rows])
    return hashlib.sha256(blob.encode()).hexdigest()
