"""Reading AlpacaEval-style judge annotations (every system against one baseline) from JSONL.

This is the only part of the simulator that touches files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError


@dataclass
class BaselineVerdicts:
    """P(system beats baseline) per (system, prompt), from one annotator."""

    baseline: str
    systems: list[str]
    prompts: list[str]
    p_win: np.ndarray  # (len(systems), len(prompts))
    annotator: str


def load_baseline_verdicts(path: str | Path, annotator: str | None = None, *,
                           systems: list[str] | None = None) -> BaselineVerdicts:
    """Read ``judge_pairs.jsonl`` (fields ``instruction_id``, ``model_a`` = baseline, ``model_b``,
    ``annotator``, ``p_b_wins``) for one annotator, keeping prompts every kept system has.

    Args:
        path: the JSONL file.
        annotator: which annotator's verdicts; may be omitted when the file has one.
        systems: keep only these systems (default: all against the annotator's baseline).

    Raises:
        InputError: unreadable file, malformed line, several annotators or baselines
            without a choice, unknown systems, no prompt shared by all systems.
    """
    path = Path(path)
    rows: dict[tuple[str, str], dict[str, float]] = {}
    baselines: dict[str, set[str]] = {}
    try:
        fh = path.open(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", path=path) from e
    with fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                ann, base, sys_, pid = str(r["annotator"]), str(r["model_a"]), str(r["model_b"]), str(r["instruction_id"])
                if annotator is not None and ann != annotator:
                    continue
                if r["p_b_wins"] is None:  # the annotator gave no verdict: the prompt is dropped
                    continue
                p = float(r["p_b_wins"])
            except (ValueError, TypeError) as e:
                raise InputError(f"not a JSON object with the expected fields ({e})", path=path, line=n) from e
            except KeyError as e:
                raise InputError("missing field", path=path, line=n, field=e.args[0]) from e
            if not 0.0 <= p <= 1.0:
                raise InputError(f"p_b_wins must be in [0, 1] (got {p})", path=path, line=n, field="p_b_wins")
            baselines.setdefault(ann, set()).add(base)
            rows.setdefault((ann, sys_), {})[pid] = p
    if not baselines:
        raise InputError(f"no verdicts{f' of annotator {annotator!r}' if annotator else ''}", path=path)
    if len(baselines) > 1:
        raise InputError(f"several annotators ({', '.join(sorted(baselines))}): choose one", path=path,
                         field="annotator")
    ann = next(iter(baselines))
    if len(baselines[ann]) > 1:
        raise InputError(f"several baselines ({', '.join(sorted(baselines[ann]))}) for one annotator",
                         path=path, field="model_a")
    have = sorted(s for a, s in rows if a == ann)
    if systems is None:
        systems = have
    unknown = [s for s in systems if s not in have]
    if unknown:
        raise InputError(f"unknown systems {', '.join(unknown)} (known: {', '.join(have)})", path=path,
                         field="model_b")
    shared = set.intersection(*(set(rows[ann, s]) for s in systems))
    if not shared:
        raise InputError("no prompt is annotated for every chosen system", path=path)
    prompts = sorted(shared, key=lambda x: (len(x), x))
    p_win = np.array([[rows[ann, s][pid] for pid in prompts] for s in systems])
    return BaselineVerdicts(next(iter(baselines[ann])), list(systems), prompts, p_win, ann)
