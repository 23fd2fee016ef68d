"""``optimize``: a system's instruction (and demos) optimized by one of DSPy's optimizers, a referee
judge as the metric; then original and optimized compared on prompts the optimizer never saw."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._jsonl import write_jsonl
from .._version import __version__
from ..errors import BackendError, InputError, RatingError, RefereeError
from ..load import CandidateSet, Prompt, load_candidates
from ..store import GenerationStore, VerdictStore
from ._dspy import Seen, StoreEngine, SystemAdapter, make_lm, program_id, system_signature
from ._metric import EnsembleMetric, JudgeMetric

OPTIMIZERS = ("copro", "mipro", "bootstrap", "gepa")
ORIGINAL, OPTIMIZED = "original", "optimized"


@dataclass
class OptimizeResult:
    """What :func:`optimize` found, and where it wrote it."""

    instruction: str
    demos: list[dict[str, str]]
    trials: list[dict[str, Any]]
    report: dict[str, Any]
    out_dir: Path
    heldout: Any = None  # the held-out RankResult
    counts: dict[str, int] = field(default_factory=dict)


def served_model(spec: str, stack: ExitStack, *, n_ctx: int, threads: int | None, concurrency: int,
                 log: Path | None) -> Any:
    """A :class:`~referee.generate.GeneratorModel` that DSPy reaches over HTTP: ``openai:`` specs as
    they are; a packaged model or GGUF path behind a ``llama_cpp.server`` started here (stopped by
    ``stack``). Its identity names the file (sha256), not the port, so a rerun reads its answers back."""
    from ..backends import LocalServer, resolve_model
    from ..generate import GeneratorModel

    if spec.startswith("openai:"):
        return GeneratorModel(spec, n_ctx=n_ctx, threads=threads, concurrency=concurrency)
    path, sha, desc = resolve_model(spec)
    server = LocalServer(path, alias=path.stem, n_ctx=n_ctx, n_threads=threads, log=log)
    stack.callback(server.stop)
    server.wait_ready()
    model = GeneratorModel(server.spec, n_ctx=n_ctx, threads=threads, concurrency=1)
    import llama_cpp

    model.identity = {"backend": "llama_cpp.server", "model": desc, "model_sha256": sha, "n_ctx": n_ctx,
                      "llama_cpp_python": llama_cpp.__version__, "started_by": "referee"}
    return model


@contextlib.contextmanager
def _quiet_dspy() -> Any:
    log = logging.getLogger("dspy")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def split_prompts(prompts: dict[str, Prompt], train: int, dev: int,
                  test: int | None) -> tuple[list[str], list[str], list[str]]:
    """The first ``train`` prompts (file order), the next ``dev``, and the next ``test`` (``None``: the rest).

    Raises:
        InputError: fewer prompts than asked, or an empty split.
    """
    ids = list(prompts)
    if train < 1 or dev < 1:
        raise InputError("--train and --dev must be at least 1", field="--train")
    need = train + dev + (test or 1)
    if len(ids) < need:
        raise InputError(f"{len(ids)} prompts; --train {train}, --dev {dev} and a held-out set of "
                         f"{test or 'at least 1'} need {need}", field="--train")
    rest = ids[train + dev:]
    return ids[:train], ids[train:train + dev], rest if test is None else rest[:test]


def _baseline_outputs(baseline: CandidateSet | str | Path | None, system: str | None,
                      ids: Sequence[str]) -> tuple[dict[str, str], str | None]:
    if baseline is None:
        return {}, None
    cset = baseline if isinstance(baseline, CandidateSet) else load_candidates(baseline, allow_missing=True)
    name = system or (cset.systems[0] if len(cset.systems) == 1 else None)
    if name is None or name not in cset.systems:
        raise InputError(f"name the baseline system with --baseline-system (the file has {', '.join(cset.systems)})",
                         field="--baseline-system")
    missing = [pid for pid in ids if (pid, name) not in cset.candidates]
    if missing:
        raise InputError(f"the baseline {name} has no output for prompt(s) {', '.join(missing[:5])}"
                         + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""), field="--baseline")
    return {pid: cset.candidates[(pid, name)].output for pid in ids}, name


def _optimizer(name: str, metric: JudgeMetric, budget: int, n_dev: int, proposer_lm: Any, task_lm: Any,
               seed: int, demos: int) -> tuple[Any, Callable[[Any, list[Any], list[Any]], Any], dict[str, Any]]:
    """DSPy's optimizer ``name`` sized by ``budget`` (candidate programs scored on the dev set),
    the call that compiles a program with it, and the settings it got."""
    import dspy
    from dspy.teleprompt import COPRO, GEPA, BootstrapFewShotWithRandomSearch, MIPROv2

    if name == "copro":
        depth = 1 if budget < 6 else 2
        opts = {"breadth": max(2, budget // depth), "depth": depth, "init_temperature": 1.0}
        opt = COPRO(prompt_model=proposer_lm, metric=metric, track_stats=True, **opts)
        # COPRO scores its candidates on the set it is given: the dev set
        return opt, lambda p, tr, dv: opt.compile(p, trainset=dv, eval_kwargs={"num_threads": 1,
                                                                                 "display_progress": False}), opts
    if name == "mipro":
        opts = {"num_candidates": max(2, budget // 2), "num_trials": budget, "max_bootstrapped_demos": demos,
                "max_labeled_demos": 0}
        opt = MIPROv2(metric=metric, prompt_model=proposer_lm, task_model=task_lm, auto=None,
                      num_candidates=opts["num_candidates"],
                      num_threads=1, seed=seed, init_temperature=1.0, verbose=False,
                      max_bootstrapped_demos=demos, max_labeled_demos=0)
        return opt, lambda p, tr, dv: opt.compile(
            p, trainset=tr, valset=dv, num_trials=budget, max_bootstrapped_demos=demos, max_labeled_demos=0,
            minibatch=n_dev > 35, seed=seed), opts
    if name == "bootstrap":
        opts = {"num_candidate_programs": budget, "max_bootstrapped_demos": demos, "max_labeled_demos": 0}
        opt = BootstrapFewShotWithRandomSearch(metric=metric, num_threads=1, **opts)
        return opt, lambda p, tr, dv: opt.compile(p, trainset=tr, valset=dv), opts
    if name == "gepa":
        def feedback(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
            s = float(metric(gold, pred))
            side = "better than" if s > 0.5 else "worse than" if s < 0.5 else "as good as"
            return dspy.Prediction(score=s, feedback=f"The judge found this response {side} the baseline's "
                                   f"(P(better) = {s:.2f}).")

        opts = {"max_metric_calls": budget * n_dev}
        opt = GEPA(metric=feedback, reflection_lm=proposer_lm, num_threads=1, seed=seed, **opts)
        return opt, lambda p, tr, dv: opt.compile(p, trainset=tr, valset=dv), opts
    raise InputError(f"--optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}", field="--optimizer")


def trials_table(metric: JudgeMetric, seen: Seen, dev_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every candidate program the optimizer scored, in the order first scored: its mean metric on
    the dev prompts it was scored on (and how many), and on others (training prompts, bootstrap)."""
    dev = set(dev_ids)
    rows: dict[str, dict[str, Any]] = {}
    scored = set()
    for e in metric.log:
        pid = e["program"]
        # a program scored again on a prompt (optimizers re-evaluate their best) counts once
        if pid is None or e["bootstrap"] or (pid, e["prompt_id"]) in scored:
            continue
        scored.add((pid, e["prompt_id"]))
        r = rows.setdefault(pid, {"program": pid, "dev": [], "other": []})
        r["dev" if e["prompt_id"] in dev else "other"].append(e["score"])
    out = []
    for k, r in enumerate(rows.values()):
        prog = seen.programs[r["program"]]
        out.append({"trial": k, "program": r["program"], "instruction": prog["instruction"],
                    "n_demos": len(prog["demos"]), "demos": prog["demos"],
                    "dev_score": sum(r["dev"]) / len(r["dev"]) if r["dev"] else None,
                    "dev_n": len(r["dev"]), "other_score": sum(r["other"]) / len(r["other"]) if r["other"] else None,
                    "other_n": len(r["other"])})
    return out


def optimize(prompts: dict[str, Prompt], out_dir: str | Path, *, model: str, instruction: str,
             metric: str | Sequence[str], optimizer: str = "copro", budget: int = 6, train: int = 8,
             dev: int = 8, test: int | None = None, baseline: CandidateSet | str | Path | None = None,
             baseline_system: str | None = None, proposer: str | None = None, demos: int = 2,
             max_tokens: int = 512, temperature: float = 0.0, seed: int = 0, n_ctx: int = 4096,
             threads: int | None = None, concurrency: int = 4, rank_heldout: bool = True,
             prompts_source: str = "", warmup_temperature: float = 0.8,
             on_event: Callable[[str, dict[str, Any]], None] | None = None) -> OptimizeResult:
    """Optimize a system's ``instruction`` with DSPy's ``optimizer``, ``metric`` (a referee judge) as
    the objective, and compare original and optimized on held-out prompts.

    The system is ``model`` (a packaged model or GGUF path, served by a ``llama_cpp.server`` started
    here, or ``openai:MODEL@URL``) asked with the instruction as its system prompt. The prompts split
    in file order: ``train`` (demos are bootstrapped from these), ``dev`` (candidates are scored on
    these) and ``test`` (the rest by default; the optimizer never sees them).

    The metric with a pairwise judge is P(the output beats the baseline's on the same prompt), both
    orders averaged; the baseline is ``baseline_system`` of the ``baseline`` candidates, or the
    original program's own outputs. Several judges (a list) are combined without labels
    (:class:`EnsembleMetric`): before the optimizer starts, the original program answers every
    training and dev prompt once more at ``warmup_temperature`` (seed + 1), each judge compares those
    answers with the baseline's, and :func:`referee.combine.combine` learns each judge's weight from
    their agreement; the weights then stay fixed, and a score is the label model's P(better).
    ``proposer`` (default: ``model``) writes the optimizers' instruction proposals, constrained to
    their JSON schema. ``budget`` is the number of candidate programs scored on the dev set (COPRO:
    breadth × depth; MIPROv2: trials; bootstrap: candidate programs; GEPA: budget × dev metric calls).

    Every generation is stored in ``out_dir/optimize.generations.sqlite`` and every metric verdict in
    ``out_dir/optimize.verdicts.sqlite`` as it arrives: a rerun asks only what is missing. Writes
    ``optimized.json`` (instruction and demos), ``optimized_instruction.txt``, ``trials.json``
    (every candidate program with its dev score) and ``optimize.json`` (the report); with
    ``rank_heldout`` the held-out outputs go to ``heldout.jsonl`` and are rated by ``rank`` into
    ``out_dir`` itself (leaderboard, ``report.html`` with the trial curve).

    Raises:
        InputError: bad options or splits, a baseline without the prompts. BackendError: a model or
        server cannot be started or fails (what was stored is kept).
    """
    import dspy

    from .._pipeline import RankOptions, rank
    from ..judge import make_judge

    if optimizer not in OPTIMIZERS:
        raise InputError(f"--optimizer {optimizer!r}: use one of {', '.join(OPTIMIZERS)}", field="--optimizer")
    if budget < 2:
        raise InputError("--budget must be at least 2 (the original and one candidate)", field="--budget")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train_ids, dev_ids, test_ids = split_prompts(prompts, train, dev, test)
    given, base_name = _baseline_outputs(baseline, baseline_system, train_ids + dev_ids)
    emit = on_event or (lambda kind, info: None)
    seen = Seen()
    sampling = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed}
    with ExitStack() as stack:
        # DSPy's optimizers print prompt histories and warn of every truncated reply: into dspy.log
        # (truncations are counted in the report)
        stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(out_dir / "dspy.log", "a",
                                                                                 encoding="utf-8"))))
        stack.enter_context(_quiet_dspy())
        lock = threading.RLock()  # DSPy's worker threads share the stores, the models and the judge
        gstore = stack.enter_context(GenerationStore(out_dir / "optimize.generations.sqlite", lock=True,
                                                     threaded=True))
        vstore = stack.enter_context(VerdictStore(out_dir / "optimize.verdicts.sqlite", lock=True, threaded=True))
        served: dict[str, Any] = {}

        def model_for(spec: str) -> Any:
            if spec not in served:
                served[spec] = served_model(spec, stack, n_ctx=n_ctx, threads=threads, concurrency=concurrency,
                                            log=out_dir / f"server-{len(served)}.log")
            return served[spec]

        counted = {"system_asked": 0, "system_reused": 0, "proposer_asked": 0, "proposer_reused": 0}

        def answered(role: str, reused: bool) -> None:
            counted[f"{role}_{'reused' if reused else 'asked'}"] += 1
            emit("generation", {"role": role, "reused": reused})

        sys_engine = StoreEngine("system", model_for(model), gstore, sampling, on_answer=answered, lock=lock)
        prop_engine = StoreEngine("proposer", model_for(proposer or model), gstore,
                                  {"max_tokens": 384, "temperature": 1.0, "seed": seed}, on_answer=answered,
                                  lock=lock)
        task_lm, prop_lm = make_lm(sys_engine, "system"), make_lm(prop_engine, "proposer")
        adapter = SystemAdapter(seen)
        specs = [metric] if isinstance(metric, str) else list(metric)
        if not specs:
            raise InputError("--metric names no judge", field="--metric")
        judges = [make_judge(spec, n_ctx=n_ctx, seed=seed) for spec in specs]
        program = dspy.Predict(system_signature(instruction))

        def run(prog: Any, ids: Sequence[str]) -> dict[str, str]:
            out = {}
            with dspy.context(lm=task_lm, adapter=adapter):
                for pid in ids:
                    out[pid] = str(prog(prompt=prompts[pid].text).response)
            return out

        baseline_out = given or run(program, train_ids + dev_ids)

        def metric_for(base: dict[str, str]) -> JudgeMetric:
            one = [JudgeMetric(j, vstore, prompts, base, seen, lock=lock) for j in judges]
            return one[0] if len(one) == 1 else EnsembleMetric(one, specs, seen, lock=lock)

        scorer = metric_for(baseline_out)
        warmup: dict[str, Any] | None = None
        if isinstance(scorer, EnsembleMetric):
            emit("warmup", {"prompts": len(train_ids) + len(dev_ids), "judges": len(specs)})
            warm_engine = StoreEngine("system", sys_engine.model, gstore,
                                      {**sampling, "temperature": warmup_temperature, "seed": seed + 1},
                                      on_answer=answered, lock=lock)
            with dspy.context(lm=make_lm(warm_engine, "system"), adapter=adapter):
                alt = {pid: str(program(prompt=prompts[pid].text).response) for pid in train_ids + dev_ids}
            ens = scorer.fit(list(alt.items()))
            warmup = {"temperature": warmup_temperature, "seed": seed + 1, "comparisons": len(alt),
                      "method": ens.method, "members": ens.table(), "notes": ens.notes, "votes": scorer.warmup}
            emit("weights", warmup)
        examples = {pid: dspy.Example(prompt_id=pid, prompt=prompts[pid].text).with_inputs("prompt")
                    for pid in train_ids + dev_ids}
        opt, compile_, opt_settings = _optimizer(optimizer, scorer, budget, len(dev_ids), prop_lm, task_lm, seed,
                                                  demos)
        emit("optimizing", {"optimizer": optimizer, **opt_settings})
        try:
            with dspy.context(lm=task_lm, adapter=adapter):
                # the original program's dev score, the first trial
                for pid in dev_ids:
                    program_out = program(prompt=prompts[pid].text)
                    scorer(examples[pid], program_out)
                best = compile_(program, [examples[p] for p in train_ids], [examples[p] for p in dev_ids])
        except RefereeError:
            raise
        except Exception as e:  # noqa: BLE001 - DSPy wraps what our engine raised; keep the cause in the message
            cause = e.__cause__ or e.__context__ or e
            bad = f"; {adapter.unparseable} unparseable proposal(s)" if adapter.unparseable else ""
            raise BackendError(f"the {optimizer} optimizer stopped: {type(cause).__name__}: {str(cause)[:400]}{bad} "
                               f"(generations and verdicts so far are kept in {out_dir})") from e
        predictor = best.predictors()[0]
        new_instruction = predictor.signature.instructions
        new_demos = [{"prompt": str(d["prompt"]), "response": str(d["response"])} for d in predictor.demos
                     if d.get("prompt") and d.get("response")]
        trials = trials_table(scorer, seen, dev_ids)
        orig_id, best_id = program_id(instruction, []), program_id(new_instruction, new_demos)
        dev_scores = {}
        with dspy.context(lm=task_lm, adapter=adapter):
            for name, prog, pid_ in ((ORIGINAL, program, orig_id), (OPTIMIZED, best, best_id)):
                scores = [scorer(examples[p], prog(prompt=prompts[p].text)) for p in dev_ids]
                dev_scores[name] = {"program": pid_, "dev_score": sum(scores) / len(scores), "dev_n": len(scores)}
        emit("heldout", {"prompts": len(test_ids)})
        held = {ORIGINAL: run(program, test_ids), OPTIMIZED: run(best, test_ids)}
        # the judge's own held-out preference (optimized over original): the Goodhart check's first half
        held_metric = metric_for(held[ORIGINAL])
        if isinstance(held_metric, EnsembleMetric):
            held_metric.ensemble = scorer.ensemble  # the same weights, on held-out pairs
        held_p = [held_metric.score(pid, held[OPTIMIZED][pid]) for pid in test_ids]
        (s_asked, s_reused), (h_asked, h_reused) = scorer.asked(), held_metric.asked()
        bad = sum((m.counts for m in (scorer, held_metric, *getattr(scorer, "members", []),
                                      *getattr(held_metric, "members", []))), Counter())
        counts = {**counted, "proposals_unparseable": adapter.unparseable, "system_failed": sys_engine.failed,
                  "proposer_failed": prop_engine.failed,
                  "system_truncated": sys_engine.truncated, "proposer_truncated": prop_engine.truncated,
                  "judge_asked": s_asked + h_asked, "judge_reused": s_reused + h_reused,
                  **{f"judge_{k}": v for k, v in bad.items()}}
        identities = {"system": sys_engine.model.identity, "proposer": prop_engine.model.identity}
    rows = [{"prompt_id": pid, "prompt": prompts[pid].text, "system": name, "output": held[name][pid],
             **({"reference": prompts[pid].reference} if prompts[pid].reference else {})}
            for pid in test_ids for name in (ORIGINAL, OPTIMIZED)]
    write_jsonl(out_dir / "heldout.jsonl", rows)
    (out_dir / "optimized.json").write_text(json.dumps({"instruction": new_instruction, "demos": new_demos},
                                                       indent=2) + "\n", encoding="utf-8")
    (out_dir / "optimized_instruction.txt").write_text(new_instruction + "\n", encoding="utf-8")
    (out_dir / "trials.json").write_text(json.dumps({"optimizer": optimizer, "trials": trials,
                                                     "final": dev_scores}, indent=2) + "\n", encoding="utf-8")
    report: dict[str, Any] = {
        "referee_version": __version__, "optimizer": optimizer, "settings": opt_settings, "budget": budget,
        "prompts": {"source": prompts_source, "train": train_ids, "dev": dev_ids, "test": test_ids},
        "system": {"model": model, "identity": identities["system"], "sampling": sampling,
                   "instruction": instruction},
        "proposer": {"model": proposer or model, "identity": identities["proposer"]},
        "metric": ({"spec": specs[0], "judge_id": judges[0].judge_id, "mode": judges[0].mode,
                    "detail": judges[0].spec} if len(judges) == 1 else
                   {"spec": ",".join(specs), "mode": "ensemble", "judges": [
                       {"spec": sp, "judge_id": j.judge_id, "mode": j.mode, "detail": j.spec}
                       for sp, j in zip(specs, judges)], "warmup": warmup}),
        "baseline": base_name or "original program's outputs",
        "optimized": {"instruction": new_instruction, "demos": len(new_demos), "program": best_id},
        "dev": dev_scores, "trials": len(trials),
        "heldout_judge": {"p_optimized_beats_original": sum(held_p) / len(held_p), "n": len(held_p),
                          "wins": sum(p > 0.5 for p in held_p), "losses": sum(p < 0.5 for p in held_p)},
        "counts": counts, "seed": seed, "elapsed_s": round(time.perf_counter() - t0, 3),
    }
    (out_dir / "optimize.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    heldout = None
    if rank_heldout:
        emit("rank", {"candidates": len(rows)})
        try:
            heldout = rank(RankOptions(candidates=[out_dir / "heldout.jsonl"], output=out_dir,
                                       **({"judge": specs[0]} if len(specs) == 1 else {"judges": specs}),
                                       n_ctx=n_ctx, seed=seed))
        except RatingError as e:
            # The optimization and the held-out outputs stand; only their rating is missing, and why.
            report["heldout_rank"] = {"error": str(e)}
        else:
            report["heldout_rank"] = [{k: r.get(k) for k in ("system", "rating", "lower", "upper", "win_rate")}
                                      for r in heldout.rows]
        (out_dir / "optimize.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return OptimizeResult(new_instruction, new_demos, trials, report, out_dir, heldout, counts)
