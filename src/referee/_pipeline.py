"""``rank``: load → plan → judge → store → rate → report, wired together for one run folder."""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._version import __version__
from .errors import CostLimitError, InputError, RatingError
from .judge import (CostMeter, JudgeProgress, PairwiseLogprobJudge, apply_prices, backend_kind,
                    check_prompt_independence, judge_by_mode, judge_comparisons, judge_kind, load_prices, make_judge,
                    measured_fidelity)
from .load import CandidateSet, load_candidates
from .plan import Comparison, make_planner
from .outcomes import RunRatings, RunStats, judge_outcomes, outcomes_from_verdicts, rate_run, run_stats
from .rate import RatingTable
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
    store: Literal["sqlite", "parquet"] = Field(
        default="sqlite", description="parquet: answers move from the SQLite journal into append-only Parquet "
        "shards (verdicts/ in the run folder) every shard_rows, and at the end of the run")
    shard_rows: int = Field(default=50_000, ge=1, description="answers per Parquet shard (with store='parquet')")
    engine: Literal["local", "ray"] = Field(default="local", description="ray: the judge's questions are asked by "
                                            "Ray actors that each hold the judge; the store stays here")
    ray_address: str | None = Field(default=None, description="an existing Ray cluster (auto, ray://HOST:PORT); "
                                    "None starts a local instance")
    workers: int = Field(default=2, ge=1, description="Ray actors (with engine='ray')")
    worker_threads: int = Field(default=1, ge=1, description="CPUs and llama.cpp threads per Ray actor")

    def run_dir(self) -> Path:
        if self.output is not None:
            return self.output
        src = self.candidates[0]
        return Path("referee-runs") / (src.stem if src.is_file() else src.name)


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


def applicable_options(options: RankOptions, spec: str, specs: Sequence[str]) -> dict[str, Any]:
    """``max_candidate_tokens`` / ``concurrency`` for ``spec`` when they apply to it. Among several
    judges each takes what applies to it; an option that applies to none of them is refused."""
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
    cset, planner = load_and_plan(options)
    judges = build_judges(options, cset, judge)
    meter = price_judges(options, judges)  # before the folder exists: a --max-cost nothing obeys is refused
    if options.engine == "ray":
        from .engine import require_ray

        require_ray()  # before the folder exists too
    out_dir = options.run_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    provenance = start_provenance(options, cset, judges, started)
    # A second run on the folder stops here, unpaid.
    store = VerdictStore(out_dir / "verdicts.sqlite", lock=True,
                         shard_rows=options.shard_rows if options.store == "parquet" else None)
    engine = None
    try:
        run_id = open_run(store, judges, cset, provenance)
        engine = start_run_engine(options, judges, judge, cset)
        progress = JudgeProgress(meter=meter)
        if on_start is not None:
            on_start(progress)
        verdicts = judge_all(planner, cset, judges, store, progress, on_verdict=on_verdict, seed=options.seed,
                             engine=engine)
        if engine is not None:
            provenance["engine"] = {"kind": "ray", "workers": engine.workers, "threads": options.worker_threads,
                                    "address": options.ray_address, "retried_questions": engine.retried}
        outcomes = run_outcomes(store, judges, verdicts, options, provenance, stopped=bool(meter.stopped))
        screen, screen_progress = None, None
        if options.independence_check and not meter.stopped:  # the screen asks the judge too
            screen, screen_progress = screen_independence(cset, judges[0], store, options)
        stats = run_stats(verdicts, outcomes)
        provenance["cost"] = cost_record(judges, progress, screen_progress, meter)
        if meter.stopped and not outcomes:
            store.finish_run(run_id, provenance)  # no run.json without ratings: the store keeps the record
            raise CostLimitError(f"{meter.stopped}, before any usable verdict: nothing to rate. The "
                                 f"{progress.asked} verdict(s) asked are stored; a larger --max-cost continues")
        if not outcomes and provenance.get("ensemble"):
            store.finish_run(run_id, provenance)
            raise RatingError("the ensemble of the judges gave no combined verdict to rate: "
                              + "; ".join(provenance["ensemble"].get("notes") or []) + ". Their verdicts are stored; "
                              "`referee combine` shows them, and one judge (--judge) rates its own")
        pairwise = all(j.mode == "pairwise" for j in judges)
        ratings = rate_run(cset.systems, outcomes, n_boot=options.n_boot, seed=options.seed, level=options.level,
                           plan=options.plan if pairwise else "round-robin", reg=options.reg)
        rows = leaderboard_rows(ratings.table, stats, unbounded=ratings.unbounded if ratings.fallback else None)
        if screen is not None:
            rows = flag_rows(rows, screen)
            provenance["prompt_independence"] = independence_record(screen)
        stop_reason = meter.stopped or planner.stop_reason
        provenance.update(finish_record(options, ratings, rows, stats, verdicts, progress, stop_reason, t0))
        for entry, j in zip([provenance["judge"], *provenance.get("judges", [])], [judges[0], *judges]):
            entry.update(_probed(j))
        provenance["judge"]["fidelity"] = measured_fidelity(judges[0].judge_id)
        if options.store == "parquet":
            store.flush_shards()
            provenance["store"] = {"kind": "parquet", "shards": len(store.shards())}
        store.finish_run(run_id, provenance)
    finally:
        if engine is not None:
            engine.shutdown()
        store.close()
    write_leaderboard(out_dir, rows, provenance)
    if options.report:
        write_html_report(out_dir)
    return RankResult(table=ratings.table, rows=rows, provenance=provenance, stats=stats, out_dir=out_dir,
                      progress=progress, stop_reason=stop_reason)


def load_and_plan(options: RankOptions) -> tuple[CandidateSet, Any]:
    """The candidates and the planner of the comparisons to ask about.

    Raises:
        InputError: bad candidates, fewer than two systems, or plan options that do not fit them.
    """
    cset = load_candidates(options.candidates, allow_missing=options.allow_missing)
    if len(cset.systems) < 2:
        raise InputError(f"need at least two systems to rank, found {len(cset.systems)}: {cset.systems}")
    try:
        planner = make_planner(options.plan, answered_map(cset), baseline=options.baseline,
                               budget=options.budget, until=options.until, seed=options.seed,
                               tolerance=options.tolerance)
    except ValueError as e:
        raise InputError(str(e), field="--plan/--baseline/--budget") from None
    return cset, planner


def build_judges(options: RankOptions, cset: CandidateSet, judge: Any = None) -> list[Any]:
    """The run's judges (``judge`` when given, else built from ``--judge``/``--judges``), checked
    against the options and bound to the candidates.

    Raises:
        InputError: a judge listed twice, a group naming judges not in ``--judges``, or judges
        that cannot do what the options ask (:func:`check_judges`).
    """
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
                             **applicable_options(options, spec, specs))
                  for spec in specs]
    else:
        judges = [judge]
    check_judges(options, judges, cset)
    for j in judges:
        if callable(getattr(j, "bind", None)):  # replayed verdicts are looked up by the texts' systems
            j.bind(cset)
    return judges


def start_run_engine(options: RankOptions, judges: Sequence[Any], given: Any = None, cset: Any = None) -> Any:
    """The run's engine (``None``: in-process); a judge object handed in cannot be rebuilt in a worker."""
    if options.engine == "local":
        return None
    from .engine import start_engine

    if given is not None:
        raise InputError("--engine ray builds the judge in every worker from --judge; a judge object cannot be "
                         "sent", field="--engine")
    make = {"spec": options.judge, "n_ctx": options.n_ctx, "seed": options.seed, "min_mass": options.min_mass,
            "mode": options.mode, "template": None if options.template is None else str(options.template),
            **applicable_options(options, options.judge, [options.judge])}
    return start_engine(options.engine, judges, make, workers=options.workers, threads=options.worker_threads,
                        address=options.ray_address, candidates=cset)


def start_provenance(options: RankOptions, cset: CandidateSet, judges: Sequence[Any],
                     started: datetime) -> dict[str, Any]:
    """What ``run.json`` records before anything is asked: version, options, inputs, judges, seed."""
    judge = judges[0]
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
    return provenance


def open_run(store: VerdictStore, judges: Sequence[Any], cset: CandidateSet, provenance: dict[str, Any]) -> int:
    """Register the judges and the texts (noting texts that changed since the folder's last run)
    and start the run's record; returns its id."""
    for j in judges:
        store.register_judge(j.judge_id, j.spec)
    changed = store.put_candidates(cset.prompts.values(), cset.candidates.values())
    if changed:
        provenance["candidates"]["changed"] = {**changed.model_dump(), "notice": changed.notice()}
    return store.start_run(provenance)


def judge_all(planner: Any, cset: CandidateSet, judges: Sequence[Any], store: VerdictStore, progress: JudgeProgress,
              *, on_verdict: Callable[[Verdict, bool], None] | None = None, seed: int = 0,
              engine: Any = None) -> list[Verdict]:
    """Every verdict the run needs: the planner's batches for the pairwise judges (steered by the
    judges' mean outcome of each comparison), then every candidate for the others. Stops early
    when the cost meter does; every verdict is in the store as it lands."""
    verdicts: list[Verdict] = []
    pairwise = [j for j in judges if j.mode == "pairwise"]
    results: dict[Comparison, float] = {}
    while pairwise and not progress.meter.stopped:
        batch = planner.next_batch(results)
        if not batch:
            break
        sums: dict[tuple[str, frozenset[str]], list[tuple[str, float]]] = {}
        for j in pairwise:
            got = judge_comparisons(batch, cset, j, store, progress=progress, on_verdict=on_verdict, engine=engine)
            verdicts.extend(got)
            for o in outcomes_from_verdicts(got):
                sums.setdefault((o.prompt_id, frozenset((o.system_a, o.system_b))), []).append((o.system_a, o.p_a))
        for c in batch:
            got_c = sums.get((c.prompt_id, frozenset((c.system_a, c.system_b))))
            if got_c:
                ps = [p if a == c.system_a else 1.0 - p for a, p in got_c]
                results[c] = sum(ps) / len(ps)
    for j in judges:
        if j.mode != "pairwise" and not progress.meter.stopped:  # pointwise / listwise / verifier
            judge_by_mode(cset, j, store, verdicts, progress=progress, on_verdict=on_verdict, seed=seed)
    return verdicts


def run_outcomes(store: VerdictStore, judges: Sequence[Any], verdicts: Sequence[Verdict], options: RankOptions,
                 provenance: dict[str, Any], *, stopped: bool = False) -> list[PairOutcome]:
    """The outcomes the run rates: its own verdicts, read back from the store through
    :mod:`referee.outcomes`; with several judges, combined without labels."""
    per_judge = {j.judge_id: judge_outcomes(store, j.judge_id,
                                            verdict_ids=[v.verdict_id for v in verdicts if v.judge_id == j.judge_id])
                 for j in judges}
    if len(judges) == 1:
        return per_judge[judges[0].judge_id]
    groups = None
    if options.judges and options.judge_groups:
        ids = dict(zip(options.judges, (j.judge_id for j in judges)))
        groups = [[ids[g] for g in group] for group in options.judge_groups]
    return _ensemble(store.path, list(judges), per_judge, provenance, groups)


def screen_independence(cset: CandidateSet, judge: Any, store: VerdictStore,
                        options: RankOptions) -> tuple[dict[str, Any], JudgeProgress]:
    """The prompt-independence screen of every system, counted apart from the verdicts that rate
    (``run.json``'s verdict counts stay those of the judges)."""
    progress = JudgeProgress()
    screen = check_prompt_independence(cset, judge, store, max_prompts=options.independence_prompts,
                                       seed=options.seed, progress=progress)
    screen["asked"], screen["cache_hits"] = progress.asked, progress.cache_hits
    return screen, progress


def finish_record(options: RankOptions, ratings: RunRatings, rows: list[dict[str, Any]], stats: RunStats,
                  verdicts: Sequence[Verdict], progress: JudgeProgress, stop_reason: str | None,
                  t0: float) -> dict[str, Any]:
    """What ``run.json`` records once the ratings exist: timing, plan, verdict counts, the judge's
    behaviour and how the ratings were fitted."""
    table = ratings.table
    return {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "plan": {"name": options.plan, "stop_reason": stop_reason,
                 "comparisons": len({(v.prompt_id, frozenset(v.systems)) for v in verdicts})},
        "verdicts": {**stats.status, "total": len(verdicts), "asked": progress.asked,
                     "cache_hits": progress.cache_hits, "judge_seconds": round(progress.judge_seconds, 3)},
        "judge_behaviour": stats.behaviour(),
        "code_runs": code_runs(verdicts),
        "rating": {"method": "bradley-terry", "scale": "400*log10 odds + 1000 (mean 1000)",
                   "ci": "bootstrap over prompts" if table.clustered else "bootstrap",
                   "n_boot": options.n_boot, "level": options.level, "seed": options.seed,
                   "reg": table.reg, "prior": "fallback" if ratings.fallback else (
                       "given" if table.reg > 0 else "none"),
                   "unbounded_systems": ratings.unbounded,
                   "one_order_comparisons": {"count": stats.pairs_one_order, "weight": 0.5,
                                             "position_effect": stats.position_effect},
                   "notes": list(table.notes), "unrated_systems": ratings.unrated,
                   "ratings_sha256": _ratings_hash(rows)},
    }


def code_runs(verdicts: Sequence[Verdict]) -> dict[str, int]:
    """How the sandboxed code runs of verifier verdicts ended (``passed``, ``failed``, ``timeout``,
    ``crashed``, ``syntax_error``, ``load_error``): a timeout is not a wrong answer, and says so."""
    out: dict[str, int] = {}
    for v in verdicts:
        ended = v.detail.get("result") if v.mode == "verifier" else None
        if isinstance(ended, str):
            out[ended] = out.get(ended, 0) + 1
    return dict(sorted(out.items()))


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
