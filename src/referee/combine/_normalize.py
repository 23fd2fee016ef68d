"""Turning verifier outputs of different kinds and scales into comparable votes."""

from __future__ import annotations

import numpy as np

_KINDS = ("probability", "score", "binary")


def normalize_outputs(x: np.ndarray, kinds: list[str] | str = "probability") -> np.ndarray:
    """Map each verifier's outputs (a column of ``x``) to P(item is positive / system_a better) in [0, 1].

    ``NaN`` means "no output" and stays ``NaN``. Kinds, one per column (or one for all):

    - ``probability``: already P(a better); clipped to [0, 1].
    - ``binary``: pass/fail checks, 1/0 (or True/False); kept as 0/1.
    - ``score``: a signed score difference (score of a minus score of b, any scale): divided by the
      column's median absolute value (so scales of 1-10, 0-1 or logits weigh alike) and squashed with
      a logistic; a difference of 0 is a tie (0.5).

    The class rate of each verifier (how often it says "a") is *not* forced to 50%: the label model
    estimates a sensitivity and a specificity per verifier, so a verifier that prefers "a" more than
    the truth does is discounted there, not here.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    if x.ndim != 2:
        raise ValueError(f"expected an items x verifiers matrix, got shape {x.shape}")
    k = x.shape[1]
    kinds = [kinds] * k if isinstance(kinds, str) else list(kinds)
    if len(kinds) != k:
        raise ValueError(f"{len(kinds)} kinds for {k} verifiers")
    for j, kind in enumerate(kinds):
        col = x[:, j]
        ok = ~np.isnan(col)
        if kind == "probability":
            if ok.any() and (col[ok].min() < -1e-9 or col[ok].max() > 1 + 1e-9):
                raise ValueError(f"verifier {j}: probabilities outside [0, 1]")
            x[ok, j] = np.clip(col[ok], 0.0, 1.0)
        elif kind == "binary":
            vals = set(np.unique(col[ok]).tolist())
            if not vals <= {0.0, 1.0}:
                raise ValueError(f"verifier {j}: binary outputs must be 0 or 1, got {sorted(vals)[:5]}")
        elif kind == "score":
            scale = np.median(np.abs(col[ok])) if ok.any() else 0.0
            if not scale > 0:
                nz = np.abs(col[ok])[np.abs(col[ok]) > 0]
                scale = float(nz.mean()) if nz.size else 1.0
            x[ok, j] = 1.0 / (1.0 + np.exp(-col[ok] / scale))
        else:
            raise ValueError(f"unknown verifier output kind {kind!r}; use one of {_KINDS}")
    return x


def to_votes(p: np.ndarray, tie_band: float = 0.0) -> np.ndarray:
    """Votes from probabilities: +1 (a better), -1 (b better), 0 (tie within ``tie_band`` of 0.5, or missing)."""
    p = np.asarray(p, dtype=np.float64)
    v = np.zeros(p.shape, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        v[p > 0.5 + tie_band] = 1
        v[p < 0.5 - tie_band] = -1
    return v
