"""System-by-system win-rate and count matrices, for reports."""

from __future__ import annotations

import numpy as np

from ._graph import check_inputs


def count_matrix(a_idx, b_idx, n_systems, weight=None):
    """Count the comparisons between each pair of systems.

    Parameters
    ----------
    a_idx : array_like
        Index of the first system of each comparison.
    b_idx : array_like
        Index of the second system of each comparison.
    n_systems : int
        Number of systems.
    weight : array_like, optional
        Weight of each comparison (default 1); the counts are then summed weights.

    Returns
    -------
    counts : numpy.ndarray
        Symmetric ``(n_systems, n_systems)`` matrix; entry ``(i, j)`` is the number
        of comparisons of ``i`` with ``j``, in either order.
    """
    a, b, _, w = check_inputs(a_idx, b_idx, np.zeros(len(np.asarray(a_idx))), n_systems, weight)
    c = np.bincount(a * n_systems + b, weights=w, minlength=n_systems * n_systems)
    c = c.reshape(n_systems, n_systems)
    return c + c.T


def win_rate_matrix(a_idx, b_idx, outcome, n_systems, weight=None):
    """Compute the mean outcome of each system against each other system.

    Parameters
    ----------
    a_idx : array_like
        Index of the first system of each comparison.
    b_idx : array_like
        Index of the second system of each comparison.
    outcome : array_like
        Probability that system ``a`` beats system ``b``, in [0, 1] (0.5 = tie).
    n_systems : int
        Number of systems.
    weight : array_like, optional
        Weight of each comparison (default 1).

    Returns
    -------
    win_rates : numpy.ndarray
        ``(n_systems, n_systems)`` matrix; entry ``(i, j)`` is the (weighted) mean
        probability that ``i`` beats ``j``, so that ``W + W.T == 1`` wherever the
        pair was compared. Pairs never compared (and the diagonal) are NaN.
    """
    a, b, o, w = check_inputs(a_idx, b_idx, outcome, n_systems, weight)
    nn = n_systems * n_systems
    wins = np.bincount(a * n_systems + b, weights=w * o, minlength=nn) \
        + np.bincount(b * n_systems + a, weights=w * (1.0 - o), minlength=nn)
    cnt = np.bincount(a * n_systems + b, weights=w, minlength=nn) \
        + np.bincount(b * n_systems + a, weights=w, minlength=nn)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(cnt > 0, wins / np.where(cnt > 0, cnt, 1.0), np.nan)
    return out.reshape(n_systems, n_systems)


def expected_win_matrix(ratings, scale=400.0):
    """Compute the win probabilities that ratings predict.

    Parameters
    ----------
    ratings : array_like
        Ratings on a scale where ``scale`` points multiply the odds by 10.
    scale : float, optional
        Points per factor of 10 in the odds (default 400).

    Returns
    -------
    probs : numpy.ndarray
        Entry ``(i, j)`` is the predicted probability that ``i`` beats ``j``.
    """
    r = np.asarray(ratings, dtype=np.float64)
    return 1.0 / (1.0 + 10.0 ** ((r[None, :] - r[:, None]) / scale))


def encode_pairs(system_a, system_b, systems=None):
    """Turn two columns of system names into index arrays.

    Parameters
    ----------
    system_a : sequence of str
        Name of the first system of each comparison.
    system_b : sequence of str
        Name of the second system of each comparison.
    systems : list of str, optional
        Names to index into (default: every name seen, sorted).

    Returns
    -------
    systems : list of str
        The names, in index order.
    a_idx : numpy.ndarray
        Index of the first system of each comparison.
    b_idx : numpy.ndarray
        Index of the second system of each comparison.
    """
    from ..errors import RatingError

    if len(system_a) != len(system_b):
        raise RatingError("system_a and system_b must have one entry per comparison")
    if systems is None:
        systems = sorted(set(system_a) | set(system_b))
    pos = {s: i for i, s in enumerate(systems)}
    unknown = sorted((set(system_a) | set(system_b)) - set(pos))
    if unknown:
        raise RatingError(f"comparisons name systems that are not in the list: {', '.join(map(str, unknown[:8]))}")
    a = np.fromiter((pos[s] for s in system_a), dtype=np.int64, count=len(system_a))
    b = np.fromiter((pos[s] for s in system_b), dtype=np.int64, count=len(system_b))
    return list(systems), a, b
