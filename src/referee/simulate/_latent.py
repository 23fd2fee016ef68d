"""Latent per-prompt qualities: from verdicts against a baseline, or a synthetic panel."""

from __future__ import annotations

import numpy as np
from scipy.special import logit


def latent_from_baseline(p_win: np.ndarray, *, eps: float = 0.01) -> np.ndarray:
    """Per-prompt qualities on the log-odds scale from P(system beats baseline), one row a system.

    ``q = logit(clip(p_win, eps, 1 - eps))``; the baseline itself has quality 0 everywhere
    (add it as a row of zeros). Below ``eps`` a confident loss says nothing about how two
    losers compare, so they tie. A simulated judge then answers ``system vs baseline`` on
    a prompt with ``clip(p_win)``: the real win rates are kept up to ``eps``.

    Raises:
        ValueError: ``p_win`` outside [0, 1] or not finite, or ``eps`` not in (0, 0.5).
    """
    p = np.asarray(p_win, dtype=np.float64)
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5) (got {eps})")
    if not np.all(np.isfinite(p)) or p.min(initial=0) < 0 or p.max(initial=1) > 1:
        raise ValueError("p_win must hold probabilities in [0, 1]")
    return logit(np.clip(p, eps, 1 - eps))


def synthetic_panel(quality: np.ndarray, n_systems: int, *, seed: int = 0) -> np.ndarray:
    """``n_systems`` synthetic systems on the same prompts as ``quality`` (real systems, one a row).

    Each synthetic system takes a mean evenly spaced over the real systems' range of mean
    quality, plus per-prompt deviations that blend two real systems' deviations, so that
    prompts keep the real pattern of which ones discriminate.

    Raises:
        ValueError: fewer than 2 real systems, or ``n_systems < 2``.
    """
    q = np.asarray(quality, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] < 2 or n_systems < 2:
        raise ValueError("need at least 2 real systems (rows of quality) and n_systems >= 2")
    rng = np.random.default_rng(seed)
    mu = q.mean(axis=1)
    dev = q - mu[:, None]
    out = np.empty((n_systems, q.shape[1]))
    means = np.linspace(mu.min(), mu.max(), n_systems)
    for j in range(n_systems):
        k1, k2 = rng.choice(q.shape[0], size=2, replace=False)
        w = rng.uniform()
        # Divide by the norm of the weights so that the blend keeps the deviations' spread.
        out[j] = means[j] + (w * dev[k1] + (1 - w) * dev[k2]) / np.hypot(w, 1 - w)
    return out
