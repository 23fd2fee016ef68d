"""Critique-and-revise rounds: every critique, revision and comparison stored, a rerun continues."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._jsonl import write_jsonl
from .._version import __version__
from ..errors import InputError
from ..generate import GeneratorModel, StoredChat, beside_output
from ..judge import JudgeProgress
from ..judge._make import build_judge
from ..judge._run import ask_via_store
from ..load import CandidateSet, load_candidates
from ..store import GenerationStore, VerdictStore
from ._critique import CRITIC_SYSTEM, CRITIQUE_SCHEMA, REVISER_SYSTEM, critic_messages, parse_critique, reviser_messages

FEEDBACK = ("none", "examples")
SUFFIX = "+revised"


@dataclass
class Track:
    """One candidate through the rounds."""

    prompt_id: str
    system: str
    original: str
    current: str
    version: int = 0
    rejected: list[str] = field(default_factory=list)
    stopped: str | None = None  # why no further round: "no error", "unparseable critique", a failure
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReviseResult:
    """What ``revise`` produced: the candidate rows (originals and ``NAME+revised``), the per-round
    table, where everything is stored, and the provenance written beside the output."""

    rows: list[dict[str, Any]]
    rounds: list[dict[str, Any]]
    output: Path
    store: Path
    verdicts: Path
    provenance: dict[str, Any] = field(default_factory=dict)


def store_paths(output: Path) -> tuple[Path, Path]:
    """``out.jsonl`` -> ``out.revise.sqlite`` (critiques, revisions) and ``out.verdicts.sqlite`` (comparisons)."""
    return beside_output(output, ".revise.sqlite"), beside_output(output, ".verdicts.sqlite")


def examples_feedback(prompt: str, output: str) -> tuple[str | None, dict[str, Any]]:
    """The prompt's public examples run against ``output`` in the sandbox, as text for the critic and
    reviser (which examples fail and what they returned) and as the verdict's facts."""
    from ..verify import PublicExamples

    ans = PublicExamples().score(prompt, output)
    if ans.status != "ok":
        return None, {"status": ans.status}  # nothing to tell: the task has no examples
    d = ans.detail
    total = d.get("passed", 0) + d.get("failed", 0)
    lines = [f"{d.get('passed', 0)} of {total} public examples pass (run ended: {d.get('result')})."]
    lines += [f"- {e}" for e in (d.get("errors") or [])[:6]]
    return "\n".join(lines), {"status": "ok", "score": ans.score, "result": d.get("result"),
                              "passed": d.get("passed", 0), "examples": total}


def _compare(judge: Any, store: VerdictStore, progress: JudgeProgress, t: Track, prompt: str, revision: str,
             reference: str | None) -> dict[str, Any]:
    """The judge on (previous, revision): P(revision better) from both orders, or each one's score."""
    prev_name, rev_name = f"{t.system}@v{t.version}", f"{t.system}@v{t.version + 1}"
    if judge.mode in ("pairwise", "pairwise-generate"):
        ps, statuses = [], []
        for first, second, ft, st in ((prev_name, rev_name, t.current, revision),
                                      (rev_name, prev_name, revision, t.current)):
            v = ask_via_store(store, judge, judge.mode, t.prompt_id, prompt, [first, second], [ft, st],
                              lambda ft=ft, st=st: judge.judge(prompt, ft, st), progress, None)
            statuses.append(v.status)
            if v.status == "ok":
                ps.append(v.p_first if first == rev_name else 1.0 - v.p_first)
        p = sum(ps) / len(ps) if ps else None
        return {"p_revision": p, "statuses": statuses, "preferred": p is not None and p > 0.5}
    scores = []
    for name, text in ((prev_name, t.current), (rev_name, revision)):
        v = ask_via_store(store, judge, judge.mode, t.prompt_id, prompt, [name], [text],
                          lambda text=text: judge.score(prompt, text, reference), progress, None)
        scores.append(v.score if v.status == "ok" else None)
    better = None not in scores and scores[1] > scores[0]
    return {"scores": scores, "preferred": bool(better)}


def revise(candidates: CandidateSet | str | Path, output: str | Path, *, critic: str, reviser: str | None = None,
           judge: str = "qwen2.5-coder-1.5b", rounds: int = 2, feedback: str = "examples",
           systems: Sequence[str] | None = None, max_tokens: int = 512, critic_max_tokens: int = 384,
           seed: int = 0, n_ctx: int = 4096, threads: int | None = None, concurrency: int = 8,
           critic_system: str = CRITIC_SYSTEM, reviser_system: str = REVISER_SYSTEM,
           on_step: Callable[[str, int, int], None] | None = None,
           make_model: Callable[[str], Any] | None = None) -> ReviseResult:
    """Critique-and-revise ``rounds`` times and write the originals plus each system's revised
    outputs (``NAME+revised``) as a candidates file ``rank`` reads.

    A round, for every candidate still open: the ``critic`` names the earliest critical error
    (structured: quote, type, explanation, fix) or "no error" (the candidate stops there); the
    ``reviser`` (default: the critic's model) rewrites the output from the prompt, the output and
    the critique; the ``judge`` compares revision and previous output in both orders (a pointwise
    judge or verifier: by score) and the revision is kept only if preferred, otherwise its critique
    joins the candidate's rejected fixes that later rounds are told not to repeat. With
    ``feedback="examples"`` the prompt's public examples run against the output in the sandbox and
    their results go to the critic and the reviser. A critique that does not validate is recorded
    as unparseable, counted, and ends that candidate's rounds.

    Every model call is stored in ``out.revise.sqlite`` and every comparison in
    ``out.verdicts.sqlite`` as it arrives: a rerun asks only what is missing. ``make_model(spec)``
    builds the critic's and reviser's models (default: in process; ``referee.engine.ray_generators``
    gives Ray actors, closed at the end).

    Raises:
        InputError: bad options, unknown systems. BackendError: a model cannot be loaded.
    """
    output = Path(output)
    if feedback not in FEEDBACK:
        raise InputError(f"--feedback {feedback!r}: use one of {', '.join(FEEDBACK)}", field="--feedback")
    if rounds < 1:
        raise InputError("--rounds must be at least 1", field="--rounds")
    cset = candidates if isinstance(candidates, CandidateSet) else load_candidates(candidates, allow_missing=True)
    chosen = list(systems) if systems else [s for s in cset.systems if not s.endswith(SUFFIX)]
    unknown = [s for s in chosen if s not in cset.systems]
    if unknown:
        raise InputError(f"unknown system(s) {', '.join(unknown)}; the candidates have {', '.join(cset.systems)}",
                         field="--systems")
    t0 = time.perf_counter()
    gen_path, verdict_path = store_paths(output)
    models: dict[str, Any] = {}
    make_model = make_model or (lambda m: GeneratorModel(m, n_ctx=n_ctx, threads=threads, concurrency=concurrency))

    def model(spec: str) -> Any:
        if spec not in models:
            models[spec] = make_model(spec)
        return models[spec]

    the_judge = build_judge(judge, n_ctx=n_ctx, seed=seed)
    p_order = {pid: k for k, pid in enumerate(cset.prompts)}
    s_order = {s: k for k, s in enumerate(cset.systems)}
    tracks = [Track(pid, s, c.output, c.output) for (pid, s), c in cset.candidates.items() if s in chosen]
    table: list[dict[str, Any]] = []
    progress = JudgeProgress()
    with GenerationStore(gen_path, lock=True) as gstore, VerdictStore(verdict_path) as vstore:
        vstore.register_judge(the_judge.judge_id, the_judge.spec)
        critic_call = StoredChat("critic", model(critic), critic_system, gstore, max_tokens=critic_max_tokens,
                              temperature=0.0, seed=seed, json_schema=CRITIQUE_SCHEMA)
        reviser_call = StoredChat("reviser", model(reviser or critic), reviser_system, gstore, max_tokens=max_tokens,
                               temperature=0.0, seed=seed)
        for r in range(1, rounds + 1):
            row = {"round": r, "entering": 0, "no_error": 0, "unparseable": 0, "failed": 0, "revised": 0,
                   "kept": 0, "rejected": 0, "undecided": 0}
            open_ = [t for t in tracks if t.stopped is None]
            row["entering"] = len(open_)
            if not open_:
                table.append(row)
                continue
            fb = {}
            if feedback == "examples":
                for t in open_:
                    fb[id(t)] = examples_feedback(cset.prompts[t.prompt_id].text, t.current)
            crits = critic_call.ask_all([(f"{t.prompt_id}\t{t.system}\tr{r}",
                                          critic_messages(cset.prompts[t.prompt_id].text, t.current,
                                                          feedback=fb.get(id(t), (None,))[0], rejected=t.rejected))
                                         for t in open_])
            to_revise = []
            for t, g in zip(open_, crits):
                step: dict[str, Any] = {"round": r, "version": t.version}
                if fb:
                    step["examples"] = fb[id(t)][1]
                if isinstance(g, BaseException):
                    step["critique_status"] = "error"
                    step["error"] = str(g)
                    row["failed"] += 1
                    t.stopped = "critic failed"
                    t.history.append(step)
                    continue
                c, why = parse_critique(g.text, t.current)
                step["critique_key"] = g.key
                if c is None and g.truncated:
                    why = f"the critic's reply stopped at {critic_max_tokens} tokens; {why}"
                if c is None:
                    step.update(critique_status="unparseable", error=why)
                    row["unparseable"] += 1
                    t.stopped = "unparseable critique"
                elif c.verdict == "no_error":
                    step["critique_status"] = "no_error"
                    row["no_error"] += 1
                    t.stopped = "no error"
                else:
                    step.update(critique_status="ok", critique=c.model_dump())
                    to_revise.append((t, c, step))
                t.history.append(step)
            revs = reviser_call.ask_all([(f"{t.prompt_id}\t{t.system}\tr{r}",
                                          reviser_messages(cset.prompts[t.prompt_id].text, t.current, c,
                                                           feedback=fb.get(id(t), (None,))[0], rejected=t.rejected))
                                         for t, c, _ in to_revise])
            for (t, c, step), g in zip(to_revise, revs):
                if isinstance(g, BaseException):
                    step["revision_status"] = "error"
                    step["error"] = str(g)
                    row["failed"] += 1
                    t.stopped = "reviser failed"
                    continue
                row["revised"] += 1
                step.update(revision_key=g.key, revision_truncated=g.truncated)
                if g.text.strip() == t.current.strip():
                    # nothing to judge: the same text cannot be preferred to itself
                    cmp = {"unchanged": True, "preferred": False}
                else:
                    cmp = _compare(the_judge, vstore, progress, t, cset.prompts[t.prompt_id].text, g.text,
                                   cset.prompts[t.prompt_id].reference)
                step["comparison"] = cmp
                if cmp["preferred"]:
                    row["kept"] += 1
                    t.current, t.version = g.text, t.version + 1
                    step["kept"] = True
                else:
                    undecided = cmp.get("p_revision", 0) is None or None in (cmp.get("scores") or [])
                    row["undecided" if undecided else "rejected"] += 1
                    t.rejected.append(c.as_text())
                    step["kept"] = False
                if on_step is not None:
                    on_step("revised", r, rounds)
            table.append(row)
    # every input row stays (systems not revised too), each revised one followed by NAME+revised
    tracked = {(t.prompt_id, t.system): t for t in tracks}
    rows = []
    for (pid, system), c in sorted(cset.candidates.items(), key=lambda kv: (p_order[kv[0][0]], s_order[kv[0][1]])):
        p = cset.prompts[pid]
        base = {"prompt_id": pid, "prompt": p.text, **({"reference": p.reference} if p.reference else {})}
        rows.append({**base, "system": system, "output": c.output})
        t = tracked.get((pid, system))
        if t is not None:
            rows.append({**base, "system": system + SUFFIX, "output": t.current, "revised_from": system,
                         "revisions_kept": t.version, "stopped": t.stopped or "rounds", "rounds": t.history,
                         "source_metadata": c.metadata})
    for m in models.values():
        if callable(getattr(m, "close", None)):
            m.close()
    prov = {"referee_version": __version__, "candidates": cset.sources, "systems": chosen, "rounds": rounds,
            "feedback": feedback, "critic": {"spec": critic, **critic_call.describe()},
            "reviser": {"spec": reviser or critic, **reviser_call.describe()},
            "judge": {"spec": judge, "judge_id": the_judge.judge_id, "spec_detail": the_judge.spec},
            "per_round": table, "calls": {"critic": {"asked": critic_call.asked, "reused": critic_call.reused},
                                          "reviser": {"asked": reviser_call.asked, "reused": reviser_call.reused},
                                          "judge": {"asked": progress.asked, "reused": progress.cache_hits}},
            "engine": {spec: getattr(m, "engine", {"kind": "local"}) for spec, m in models.items()},
            "elapsed_s": round(time.perf_counter() - t0, 3)}
    write_jsonl(output, rows)
    beside_output(output, ".revise.json").write_text(json.dumps(prov, indent=2, default=str) + "\n", encoding="utf-8")
    return ReviseResult(rows=rows, rounds=table, output=output, store=gen_path, verdicts=verdict_path, provenance=prov)
