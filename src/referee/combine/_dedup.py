"""Which verifiers to leave out: no verdicts, constant answers, chance-level, or near-duplicates."""

from __future__ import annotations

import numpy as np

from ._labelmodel import agreement_moments, triplet_signal


def screen_verifiers(v: np.ndarray, *, min_votes: int = 5, constant_rate: float = 0.98,
                     min_signal: float = 0.05, dup_agreement: float = 0.98, dup_excess: float = 0.15,
                     min_overlap: int = 10) -> dict[int, str]:
    """Verifiers to drop, with the reason, as ``{column: reason}``.

    - ``no verdicts``: fewer than ``min_votes`` non-tie votes.
    - ``constant``: says the same thing on at least ``constant_rate`` of its votes (e.g. always "a").
    - ``duplicate of NAME``: agrees with another verifier on at least ``dup_agreement`` of the items
      both voted on, or (with four or more verifiers) their agreement exceeds what their accuracies
      predict under independence (``a_i a_j``, accuracies from triplets that leave the pair apart) by
      more than ``dup_excess``: correlated errors, the signal of a copy. Of the two, the one with
      fewer votes (then the later column) goes.
    - ``near chance``: its estimated ``2 acc - 1`` (triplets) is below ``min_signal``.

    The name in ``duplicate of`` is the column index; callers replace it with a name.
    """
    k = v.shape[1]
    drop: dict[int, str] = {}
    nvotes = (v != 0).sum(axis=0)
    for j in range(k):
        if nvotes[j] < min_votes:
            drop[j] = "no verdicts" if nvotes[j] == 0 else f"too few verdicts ({int(nvotes[j])})"
            continue
        rate = float((v[:, j] == 1).sum()) / nvotes[j]
        if rate >= constant_rate or rate <= 1 - constant_rate:
            drop[j] = f"constant (says {'a' if rate >= 0.5 else 'b'} {100 * max(rate, 1 - rate):.0f}% of the time)"
    live = [j for j in range(k) if j not in drop]
    m, n = agreement_moments(v)
    pairs = []
    for x in range(len(live)):
        for y in range(x + 1, len(live)):
            i, j = live[x], live[y]
            if n[i, j] < min_overlap or np.isnan(m[i, j]):
                continue
            agree = (1 + m[i, j]) / 2
            excess = 0.0
            if len(live) >= 4:
                sub = v[:, live]
                ii, jj = live.index(i), live.index(j)
                a = triplet_signal(sub, min_overlap=min_overlap, exclude={ii: {jj}, jj: {ii}})
                if not (np.isnan(a[ii]) or np.isnan(a[jj])):
                    excess = float(m[i, j] - a[ii] * a[jj])
            if agree >= dup_agreement or excess > dup_excess:
                pairs.append((max(agree - dup_agreement, excess - dup_excess), i, j))
    for _, i, j in sorted(pairs, reverse=True):
        if i in drop or j in drop:
            continue
        keep, gone = (i, j) if nvotes[i] >= nvotes[j] else (j, i)
        drop[gone] = f"duplicate of #{keep}"
    live = [j for j in range(k) if j not in drop]
    if len(live) >= 3:
        a = triplet_signal(v[:, live], min_overlap=min_overlap)
        for idx, j in enumerate(live):
            if not np.isnan(a[idx]) and a[idx] < min_signal:
                drop[j] = f"near chance (estimated accuracy {(1 + a[idx]) / 2:.2f})"
    return drop
