"""Preference rows (DPO pairs, ranked lists, KTO examples) and best-of-n picks from combined verdicts.

Input everywhere is a list of combined-verdict records as written by ``referee combine`` (see
:func:`referee.combine.combined_rows`): ``prompt_id, system_a, system_b, p_a, agreement, consistent,
n_judges, verdict_ids``, plus the texts: ``prompts[prompt_id]`` and ``outputs[(prompt_id, system)]``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..combine import best_of_n

FORMATS = ("dpo", "ranked", "kto")


@dataclass
class Filters:
    """Which pairs become training data.

    ``min_margin``: least ``|2 p_a - 1|`` (0 keeps every non-tie). ``min_agreement``: least share of
    judges siding with the combined verdict (1.0, the default, leaves out pairs where any judge
    disagrees). ``keep_inconsistent``: keep pairs where a judge changed its verdict when the order
    was swapped (left out by default). ``flagged``: systems found prompt-independent (their outputs
    do not depend on the prompt); a pair they win or a list they top is left out unless
    ``include_flagged``: training on them would teach the judge's blind spot.
    """

    min_margin: float = 0.0
    min_agreement: float = 1.0
    keep_inconsistent: bool = False
    flagged: frozenset[str] = frozenset()
    include_flagged: bool = False

    def excludes(self, system: str) -> bool:
        return system in self.flagged and not self.include_flagged


@dataclass
class ExportStats:
    considered: int = 0
    kept: int = 0
    excluded: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def to_dict(self) -> dict[str, Any]:
        return {"considered": self.considered, "kept": self.kept, "excluded": dict(self.excluded)}


def _prompt_field(text: str, chat: bool) -> Any:
    return [{"role": "user", "content": text}] if chat else text


def _completion_field(text: str, chat: bool) -> Any:
    return [{"role": "assistant", "content": text}] if chat else text


def filtered_pairs(records: list[dict[str, Any]], prompts: dict[str, str], outputs: dict[tuple[str, str], str],
                   filters: Filters | None = None) -> tuple[list[dict[str, Any]], ExportStats]:
    """Records that pass ``filters`` and have texts, oriented chosen/rejected, with the reasons others left."""
    filters = filters or Filters()
    stats = ExportStats()
    out = []
    for r in records:
        stats.considered += 1
        p = float(r["p_a"])
        margin = abs(2 * p - 1)
        agree = r.get("agreement")
        reason = None
        if p == 0.5 or margin < filters.min_margin or margin == 0:
            reason = "margin"
        elif agree is None or agree < filters.min_agreement:
            reason = "disagreement"
        elif r.get("consistent") is False and not filters.keep_inconsistent:
            reason = "position-inconsistent"
        elif r["prompt_id"] not in prompts:
            reason = "no prompt text"
        elif (r["prompt_id"], r["system_a"]) not in outputs or (r["prompt_id"], r["system_b"]) not in outputs:
            reason = "no candidate text"
        if reason:
            stats.excluded[reason] += 1
            continue
        a_wins = p > 0.5
        chosen, rejected = (r["system_a"], r["system_b"]) if a_wins else (r["system_b"], r["system_a"])
        if filters.excludes(chosen):
            stats.excluded["chosen system flagged"] += 1
            continue
        out.append({"prompt_id": r["prompt_id"], "chosen_system": chosen, "rejected_system": rejected,
                    "p_chosen": max(p, 1 - p), "margin": margin, "agreement": agree,
                    "n_judges": r.get("n_judges"), "consistent": r.get("consistent"),
                    "judge": r.get("judge"), "verdict_ids": list(r.get("verdict_ids") or [])})
        stats.kept += 1
    return out, stats


def dpo_rows(records, prompts, outputs, filters: Filters | None = None, *, chat: bool = False):
    """TRL DPO rows: ``prompt, chosen, rejected`` plus ``p_chosen, margin, agreement, verdict_ids`` and ids."""
    filters = filters or Filters()
    pairs, stats = filtered_pairs(records, prompts, outputs, filters)
    rows = [{"prompt": _prompt_field(prompts[q["prompt_id"]], chat),
             "chosen": _completion_field(outputs[(q["prompt_id"], q["chosen_system"])], chat),
             "rejected": _completion_field(outputs[(q["prompt_id"], q["rejected_system"])], chat), **q}
            for q in pairs]
    return rows, stats


def kto_rows(records, prompts, outputs, filters: Filters | None = None, *, chat: bool = False):
    """KTO rows ``prompt, completion, label``: a candidate is desirable (True) when it won every kept
    pair it was in, undesirable (False) when it lost every one; candidates with both are left out."""
    filters = filters or Filters()
    pairs, stats = filtered_pairs(records, prompts, outputs, filters)
    acc: dict[tuple[str, str], dict[str, list]] = {}
    for q in pairs:
        for system, won in ((q["chosen_system"], True), (q["rejected_system"], False)):
            a = acc.setdefault((q["prompt_id"], system), {"won": [], "margin": [], "agreement": [], "ids": []})
            a["won"].append(won)
            a["margin"].append(q["margin"])
            a["agreement"].append(q["agreement"])
            a["ids"].extend(q["verdict_ids"])
    rows = []
    for (pid, system), a in acc.items():
        if all(a["won"]) or not any(a["won"]):
            rows.append({"prompt": _prompt_field(prompts[pid], chat),
                         "completion": _completion_field(outputs[(pid, system)], chat),
                         "label": bool(a["won"][0]), "prompt_id": pid, "system": system, "pairs": len(a["won"]),
                         "margin": float(np.mean(a["margin"])), "agreement": float(min(a["agreement"])),
                         "verdict_ids": a["ids"]})
        else:
            stats.excluded["kto-mixed"] += 1
    return rows, stats


def _by_prompt(records):
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        groups[r["prompt_id"]].append(r)
    return groups


def _strengths(recs):
    systems = sorted({s for r in recs for s in (r["system_a"], r["system_b"])})
    ix = {s: k for k, s in enumerate(systems)}
    i = np.array([ix[r["system_a"]] for r in recs])
    j = np.array([ix[r["system_b"]] for r in recs])
    p = np.array([float(r["p_a"]) for r in recs])
    return systems, i, j, p


def ranked_rows(records, prompts, outputs, filters: Filters | None = None, *, chat: bool = False, seed: int = 0):
    """One row per prompt with every judged candidate best first (Bradley–Terry strengths from all its pairs):
    ``prompt, completions, systems, scores, p_best``, the pairs' least agreement and the verdict ids.
    ``min_margin``/``min_agreement`` apply to the list's weakest adjacent step, not per pair."""
    filters = filters or Filters()
    stats = ExportStats()
    rows = []
    for pid, recs in _by_prompt(records).items():
        stats.considered += 1
        if pid not in prompts:
            stats.excluded["no prompt text"] += 1
            continue
        systems, i, j, p = _strengths(recs)
        if any((pid, s) not in outputs for s in systems):
            stats.excluded["no candidate text"] += 1
            continue
        b = best_of_n(len(systems), i, j, p, seed=seed)
        order = np.argsort(-b.strength, kind="stable")
        agree = [r.get("agreement") for r in recs]
        agreement = None if any(a is None for a in agree) else float(min(agree))
        steps = np.diff(-b.strength[order])
        gap = float(steps.min()) if steps.size else 0.0
        if (agreement is None or agreement < filters.min_agreement) and filters.min_agreement > 0:
            stats.excluded["disagreement"] += 1
            continue
        if not filters.keep_inconsistent and any(r.get("consistent") is False for r in recs):
            stats.excluded["position-inconsistent"] += 1
            continue
        if gap <= 0 or 2 / (1 + np.exp(-gap)) - 1 < filters.min_margin:
            stats.excluded["margin"] += 1
            continue
        if filters.excludes(systems[order[0]]):
            stats.excluded["best system flagged"] += 1
            continue
        rows.append({"prompt": _prompt_field(prompts[pid], chat),
                     "completions": [_completion_field(outputs[(pid, systems[k])], chat) for k in order],
                     "prompt_id": pid, "systems": [systems[k] for k in order],
                     "scores": [float(b.strength[k]) for k in order], "p_best": [float(b.p_best[k]) for k in order],
                     "agreement": agreement, "pairs": len(recs),
                     "verdict_ids": [v for r in recs for v in (r.get("verdict_ids") or [])]})
        stats.kept += 1
    return rows, stats


def base_system(system: str) -> str:
    """``NAME`` of a sample ``NAME#k`` written by ``referee generate``; any other name as it is."""
    base, sep, k = system.rpartition("#")
    return base if sep and base and k.isdigit() else system


def select_rows(records, prompts=None, outputs=None, *, seed: int = 0, n_draws: int = 4000,
                per_system: bool = False, exclude: frozenset[str] | set[str] = frozenset()) -> list[dict[str, Any]]:
    """Best-of-n per prompt: the pick, P(it is the best) and the runner-up, from all the prompt's pairs.

    With ``per_system``, one pick per prompt and base system among its samples ``NAME#k`` (pairs
    across systems are not used); the row's ``system`` is then ``NAME+best``, a new system for
    ``rank``, and ``picked`` the sample. Without it ``system`` and ``picked`` are the pick itself.

    A group whose candidates (known from ``outputs``, less ``exclude``) were all judged equal has
    no decided pair; it still gets a row, marked ``tied``, with the first candidate and P(best)
    1/n each: a tie is an answer, not a missing one.
    """
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if per_system:
            a, b = base_system(r["system_a"]), base_system(r["system_b"])
            if a == b:
                groups[(r["prompt_id"], a)].append(r)
        else:
            groups[(r["prompt_id"], None)].append(r)
    rows = []
    for (pid, base), recs in groups.items():
        systems, i, j, p = _strengths(recs)
        b = best_of_n(len(systems), i, j, p, seed=seed, n_draws=n_draws)
        order = np.argsort(-b.strength, kind="stable")
        pick = systems[b.pick]
        row = {"prompt_id": pid, "system": pick if base is None else f"{base}+best", "picked": pick,
               "p_best": float(b.p_best[b.pick]), "strength": float(b.strength[b.pick]),
               "n_candidates": len(systems), "pairs": len(recs),
               "runner_up": systems[order[1]] if len(order) > 1 else None,
               "p_best_all": {systems[k]: float(b.p_best[k]) for k in order},
               "strengths": {systems[k]: float(b.strength[k]) for k in order}}
        if prompts is not None and pid in prompts:
            row["prompt"] = prompts[pid]
        if outputs is not None and (pid, pick) in outputs:
            row["output"] = outputs[(pid, pick)]
        rows.append(row)
    undecided: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for pid, system in (outputs or {}):
        key = (pid, base_system(system) if per_system else None)
        if key not in groups and system not in exclude:
            undecided[key].append(system)
    for (pid, base), systems in undecided.items():
        if per_system and len(systems) < 2:
            continue  # one sample is no choice
        systems = sorted(systems)
        pick = systems[0]
        rows.append({"prompt_id": pid, "system": pick if base is None else f"{base}+best", "picked": pick,
                     "p_best": 1 / len(systems), "strength": 0.0, "n_candidates": len(systems), "pairs": 0,
                     "tied": True, "runner_up": systems[1] if len(systems) > 1 else None,
                     "p_best_all": {s: 1 / len(systems) for s in systems}, "strengths": {s: 0.0 for s in systems},
                     **({"prompt": prompts[pid]} if prompts is not None and pid in prompts else {}),
                     "output": outputs[(pid, pick)]})
    return rows


def build_rows(fmt: str, records, prompts, outputs, filters: Filters | None = None, *, chat: bool = False):
    """Rows of format ``fmt`` (``dpo``, ``ranked`` or ``kto``) and the export statistics."""
    filters = filters or Filters()
    if fmt == "dpo":
        return dpo_rows(records, prompts, outputs, filters, chat=chat)
    if fmt == "kto":
        return kto_rows(records, prompts, outputs, filters, chat=chat)
    if fmt == "ranked":
        return ranked_rows(records, prompts, outputs, filters, chat=chat)
    raise ValueError(f"unknown format {fmt!r}; use one of {FORMATS}")
