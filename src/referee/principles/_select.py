"""Choosing principles that reconstruct preferences: pure functions over vote matrices.

A vote matrix ``V`` has one row per preference and one column per principle: positive when the
principle favours text A, negative for text B, ``0`` when it does not apply (or its two orders
disagreed, or the vote could not be read). Generated votes are ``-1``, ``0`` or ``+1``; logprob
votes are ``2 P(A) - 1``, so a sure vote weighs more than a hesitant one. Labels ``y`` are ``+1``
(A preferred) or ``-1``. A set of principles predicts by the sign of the sum of its votes; with no
vote, or a tie, it predicts the training set's more common side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest


def predict(votes: np.ndarray, chosen: list[int], fallback: int) -> np.ndarray:
    """The sign of the sum of the ``chosen`` columns of ``votes`` per row (``fallback`` where it is 0)."""
    s = votes[:, chosen].sum(axis=1) if chosen else np.zeros(len(votes))
    return np.where(s > 0, 1, np.where(s < 0, -1, fallback))


def majority_side(labels: np.ndarray) -> int:
    """The more common label (+1 on a tie)."""
    return 1 if (labels > 0).sum() >= (labels < 0).sum() else -1


@dataclass
class Selection:
    """The chosen columns in the order they were added, and the training accuracy after each."""

    chosen: list[int]
    accuracy: list[float]
    fallback: int
    base_accuracy: float


def select_greedy(votes: np.ndarray, labels: np.ndarray, max_n: int) -> Selection:
    """Forward selection: add the principle that most raises training accuracy, while it rises.

    Args:
        votes: ``(n, m)`` in [-1, +1].
        labels: ``(n,)`` in {-1, +1}.
        max_n: the most principles to choose.

    Returns:
        The :class:`Selection`; ties go to the lower column index, so the result is deterministic.
    """
    votes = np.asarray(votes, dtype=float)
    labels = np.asarray(labels, dtype=np.int64)
    fallback = majority_side(labels)
    best = float(np.mean(predict(votes, [], fallback) == labels))
    sel = Selection([], [], fallback, best)
    while len(sel.chosen) < max_n:
        scores = [(float(np.mean(predict(votes, sel.chosen + [j], fallback) == labels)), -j)
                  for j in range(votes.shape[1]) if j not in sel.chosen]
        if not scores:
            break
        acc, neg_j = max(scores)
        if acc <= best:
            break
        sel.chosen.append(-neg_j)
        sel.accuracy.append(acc)
        best = acc
    return sel


def support(votes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per principle: how often its vote has the label's sign, the other sign, and no vote (0)."""
    side = np.sign(np.asarray(votes, dtype=float))
    agree = (side == labels[:, None]).sum(axis=0)
    disagree = (side == -labels[:, None]).sum(axis=0)
    return agree, disagree, (side == 0).sum(axis=0)


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (``(nan, nan)`` when ``n`` is 0)."""
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)
