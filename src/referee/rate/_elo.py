"""Online Elo: order-dependent by design, offered because users know it."""

from __future__ import annotations

import numpy as np

from ._graph import check_inputs


def elo(a_idx, b_idx, outcome, n_systems, k=4.0, scale=400.0, base=1000.0):
    """Compute online Elo ratings by processing comparisons in the given order.

    Each comparison moves the two ratings by ``k * (outcome - expected)``. Unlike
    Bradley-Terry, the result depends on the order of the comparisons and recent
    comparisons count more; with a small ``k`` and many comparisons it approaches
    the Bradley-Terry ratings. Prefer :func:`bradley_terry` unless the ratings must
    follow a stream.

    Parameters
    ----------
    a_idx : array_like
        Index of the first system of each comparison.
    b_idx : array_like
        Index of the second system of each comparison.
    outcome : array_like
        Probability that system ``a`` beats system ``b``, in [0, 1].
    n_systems : int
        Number of systems.
    k : float, optional
        Update step, the K-factor (default 4, as Chatbot Arena used).
    scale : float, optional
        Rating points that multiply the odds by 10 (default 400).
    base : float, optional
        Initial rating of every system (default 1000).

    Returns
    -------
    ratings : numpy.ndarray
        The rating of each system after the last comparison.
    """
    a, b, o, _ = check_inputs(a_idx, b_idx, outcome, n_systems)
    r = [float(base)] * n_systems
    for i, j, s in zip(a.tolist(), b.tolist(), o.tolist()):
        # Plain floats: a python loop over numpy scalars is ~10x slower.
        e = 1.0 / (1.0 + 10.0 ** ((r[j] - r[i]) / scale))
        delta = k * (s - e)
        r[i] += delta
        r[j] -= delta
    return np.array(r)


def elo_replicates(a, b, o, n_systems, orders, k=4.0, scale=400.0, base=1000.0):
    """Elo for many orderings at once: ``orders`` is ``(n_rep, n_steps)`` verdict indices.

    The loop runs over steps, vectorised across replicates, so 1000 bootstrap
    replicates cost about as much as a few single runs.
    """
    n_rep = orders.shape[0]
    r = np.full((n_rep, n_systems), float(base))
    rows = np.arange(n_rep)
    for t in range(orders.shape[1]):
        v = orders[:, t]
        i, j = a[v], b[v]
        e = 1.0 / (1.0 + 10.0 ** ((r[rows, j] - r[rows, i]) / scale))
        delta = k * (o[v] - e)
        r[rows, i] += delta
        r[rows, j] -= delta
    return r
