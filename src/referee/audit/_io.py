"""Human labels from a file, aligned with a verdict table's items (kept apart from the metrics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError


def read_labels(path: str | Path) -> dict[tuple[str, frozenset[str]], tuple[str, float]]:
    """Labels: one JSON object a line with ``prompt_id, system_a, system_b`` and ``label`` (or ``outcome``/
    ``winner``): P(system_a better) in [0, 1] (fractional = share of annotators), or ``a``/``b``/``tie``.
    Several labels of one item (several annotators) are averaged."""
    from .._jsonl import read_jsonl_objects
    from ..combine import parse_outcome

    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    acc: dict[tuple[str, frozenset[str]], tuple[str, list[float]]] = {}
    for line, rec in read_jsonl_objects(path):
        for f in ("prompt_id", "system_a", "system_b"):
            if rec.get(f) in (None, ""):
                raise InputError(f"missing {f}", path=path, line=line, field=f)
        if "label" in rec and "outcome" not in rec:
            rec = dict(rec, outcome=rec["label"])
        p = parse_outcome(rec, path, line)
        a, b = str(rec["system_a"]), str(rec["system_b"])
        key = (str(rec["prompt_id"]), frozenset((a, b)))
        first, vals = acc.setdefault(key, (a, []))
        vals.append(p if first == a else 1 - p)
    if not acc:
        raise InputError("holds no labels", path=path)
    return {k: (a, float(np.mean(v))) for k, (a, v) in acc.items()}


def align_labels(items: list[tuple[str, str, str]], labels) -> np.ndarray:
    """Labels as P(system_a better) in the items' orientation; NaN where an item has no label."""
    out = np.full(len(items), np.nan)
    for i, (pid, a, b) in enumerate(items):
        hit = labels.get((pid, frozenset((a, b))))
        if hit is not None:
            out[i] = hit[1] if hit[0] == a else 1 - hit[1]
    return out
