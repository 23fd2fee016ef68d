"""Which verifiers to leave out: no verdicts, constant answers, chance-level, or near-duplicates."""

from __future__ import annotations

import numpy as np

from ._labelmodel import NEAR_CHANCE, correlation_moments, triplet_loadings


def screen_verifiers(v: np.ndarray, *, min_votes: int = 5, constant_rate: float = 0.98,
                     min_signal: float = NEAR_CHANCE, dup_corr: float = 0.95, dup_excess: float = 0.25, dup_min_corr: float = 0.5,
                     min_items_estimate: int = 200,
                     min_overlap: int = 10, dependent: list[tuple[int, int]] | None = None,
                     symmetric: bool = False) -> dict[int, str]:
    """Verifiers to drop, with the reason, as ``{column: reason}``.

    - ``no verdicts``: fewer than ``min_votes`` non-tie votes.
    - ``constant``: says the same thing on at least ``constant_rate`` of its votes (e.g. always "a").
      Not with ``symmetric=True``: when the orientation of an item is arbitrary, "always a" is a
      pattern of the orientation, not of the verifier (flip some items and it is gone); whether such a
      verifier says anything about the truth is left to the estimated criteria below.
    - ``duplicate of #j``: its votes correlate with another verifier's at ``dup_corr`` or more, or (with
      four or more verifiers) it is at least ``dup_min_corr`` and exceeds what their own signal predicts under
      independence (``rho_i rho_j``, each estimated from triplets that leave the other out) by more
      than ``dup_excess``: correlated errors, the mark of a copy. Of the two, the one with the weaker
      estimated signal goes (then the one with fewer votes).
      With a list as ``dependent``, such an excess-only pair (below ``dup_corr``) is appended to it as
      ``(i, j)`` instead of dropping one: the label model can then model the two as one unit and keep
      what each adds (a copy at ``dup_corr`` or more adds nothing, so it is still dropped).
    - ``near chance``: its estimated correlation with the truth (triplets) is below ``min_signal``.

    The two estimated criteria (excess correlation, near chance) need ``min_items_estimate`` items
    voted on by the verifiers concerned: on fewer, triplet estimates are too noisy to drop anyone
    (a correlation's standard error is about 1/sqrt(n)).

    Correlations, not raw agreement, so that a skewed class balance (one side usually wins) does
    not make independent verifiers look like copies. With ``symmetric=True`` they are taken over both
    orientations of every item (uncentred, see :func:`correlation_moments`), so that the screening,
    like the label model, does not change when items are flipped.
    """
    k = v.shape[1]
    drop: dict[int, str] = {}
    nvotes = (v != 0).sum(axis=0)
    for j in range(k):
        if nvotes[j] < min_votes:
            drop[j] = "no verdicts" if nvotes[j] == 0 else f"too few verdicts ({int(nvotes[j])})"
            continue
        rate = float((v[:, j] == 1).sum()) / nvotes[j]
        if not symmetric and (rate >= constant_rate or rate <= 1 - constant_rate):
            drop[j] = f"constant (says {'a' if rate >= 0.5 else 'b'} {100 * max(rate, 1 - rate):.0f}% of the time)"
    live = [j for j in range(k) if j not in drop]
    sub = v[:, live]
    r, nco = correlation_moments(sub, min_overlap=min_overlap, centred=not symmetric)
    rho_all = triplet_loadings(sub, r=r) if len(live) >= 3 else np.full(len(live), np.nan)
    pairs = []
    for x in range(len(live)):
        for y in range(x + 1, len(live)):
            if np.isnan(r[x, y]):
                continue
            excess = 0.0
            rx = ry = np.nan
            if len(live) >= 4 and nco[x, y] >= min_items_estimate:
                rho = triplet_loadings(sub, r=r, exclude={x: {y}, y: {x}})
                rx, ry = rho[x], rho[y]
                if not (np.isnan(rx) or np.isnan(ry)):
                    excess = float(r[x, y] - rx * ry)
            if r[x, y] >= dup_corr or (r[x, y] >= dup_min_corr and excess > dup_excess):
                pairs.append((max(r[x, y] - dup_corr, excess - dup_excess), x, y, rx, ry, r[x, y] >= dup_corr))
    for _, x, y, rx, ry, copy in sorted(pairs, reverse=True):
        i, j = live[x], live[y]
        if i in drop or j in drop:
            continue
        if dependent is not None and not copy:
            dependent.append((i, j))
            continue
        sx, sy = (0.0 if np.isnan(rx) else rx), (0.0 if np.isnan(ry) else ry)
        keep_x = (sx, nvotes[i]) >= (sy, nvotes[j])
        keep, gone = (i, j) if keep_x else (j, i)
        drop[gone] = f"duplicate of #{keep}"
    live2 = [j for j in range(k) if j not in drop]
    if len(live2) >= 3:
        idx = [live.index(j) for j in live2]
        rho = triplet_loadings(sub[:, idx], r=r[np.ix_(idx, idx)])
        for n_, j in enumerate(live2):
            if not np.isnan(rho[n_]) and rho[n_] < min_signal and nvotes[j] >= min_items_estimate:
                drop[j] = f"near chance (estimated correlation with the truth {rho[n_]:.2f})"
    del rho_all
    return drop
