"""Pairwise data reduced to unique pairs, and the checks that decide whether it can be rated."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import RatingDivergenceError, RatingError

# Above this many possible (a, b) keys a dense bincount would waste memory; sort instead.
_DENSE_KEY_LIMIT = 4_000_000


@dataclass
class Pairs:
    """Verdicts summed over unique unordered pairs ``a < b``.

    ``wins`` is the weighted sum of P(a beats b), ``count`` the summed weight. The
    ``w2*`` sums are what the sandwich estimator needs to recover the spread of the
    outcomes inside each pair without keeping one row a verdict.
    """

    n_systems: int
    a: np.ndarray
    b: np.ndarray
    wins: np.ndarray
    count: np.ndarray
    w2: np.ndarray
    w2o: np.ndarray
    w2o2: np.ndarray
    inverse: np.ndarray  # verdict -> pair row
    flipped: np.ndarray  # verdict was given as (b, a)
    n_verdicts: int

    def design(self) -> csr_matrix:
        """Sparse ``(n_pairs, n_systems)`` matrix with +1 at ``a`` and -1 at ``b``."""
        p = len(self.a)
        rows = np.concatenate([np.arange(p), np.arange(p)])
        cols = np.concatenate([self.a, self.b])
        vals = np.concatenate([np.ones(p), -np.ones(p)])
        return coo_matrix((vals, (rows, cols)), shape=(p, self.n_systems)).tocsr()


def check_inputs(a_idx, b_idx, outcome, n_systems, weight=None):
    """Validate and convert raw pairwise arrays.

    Returns
    -------
    tuple
        ``(a, b, outcome, weight)`` as contiguous int64/float64 arrays.

    Raises
    ------
    RatingError
        On mismatched lengths, indices out of range, self-comparisons,
        outcomes outside [0, 1] or negative weights.
    """
    a = np.asarray(a_idx)
    b = np.asarray(b_idx)
    o = np.asarray(outcome, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.shape != o.shape:
        raise RatingError(f"a_idx, b_idx and outcome must be 1-d arrays of one length "
                          f"(got shapes {a.shape}, {b.shape}, {o.shape})")
    if a.size and not (np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)):
        raise RatingError("a_idx and b_idx must be integer system indices")
    a = a.astype(np.int64, copy=False)
    b = b.astype(np.int64, copy=False)
    if n_systems < 1:
        raise RatingError("there are no systems to rate")
    if a.size == 0:
        raise RatingError("there are no comparisons to rate")
    lo = min(a.min(), b.min())
    hi = max(a.max(), b.max())
    if lo < 0 or hi >= n_systems:
        raise RatingError(f"system index out of range [0, {n_systems}): found {lo if lo < 0 else hi}")
    if np.any(a == b):
        i = int(np.flatnonzero(a == b)[0])
        raise RatingError(f"comparison #{i} compares system {a[i]} with itself")
    if not np.all(np.isfinite(o)) or o.min() < 0 or o.max() > 1:
        raise RatingError("outcomes must be probabilities in [0, 1] (0.5 = tie)")
    if weight is None:
        w = np.ones_like(o)
    else:
        w = np.asarray(weight, dtype=np.float64)
        if w.shape != o.shape:
            raise RatingError(f"weight has shape {w.shape}, expected {o.shape}")
        if not np.all(np.isfinite(w)) or w.min() < 0:
            raise RatingError("weights must be finite and non-negative")
    return a, b, o, w


def aggregate(a, b, o, w, n_systems) -> Pairs:
    """Sum validated verdicts over unique unordered pairs."""
    flipped = a > b
    lo = np.where(flipped, b, a)
    hi = np.where(flipped, a, b)
    oo = np.where(flipped, 1.0 - o, o)
    key = lo * n_systems + hi
    if n_systems * n_systems <= _DENSE_KEY_LIMIT:
        present = np.bincount(key, minlength=n_systems * n_systems) > 0
        uniq = np.flatnonzero(present)
        remap = np.full(n_systems * n_systems, -1, dtype=np.int64)
        remap[uniq] = np.arange(len(uniq))
        inverse = remap[key]
    else:
        uniq, inverse = np.unique(key, return_inverse=True)
    p = len(uniq)
    wo = w * oo
    w2 = w * w
    return Pairs(
        n_systems=n_systems,
        a=uniq // n_systems,
        b=uniq % n_systems,
        wins=np.bincount(inverse, weights=wo, minlength=p),
        count=np.bincount(inverse, weights=w, minlength=p),
        w2=np.bincount(inverse, weights=w2, minlength=p),
        w2o=np.bincount(inverse, weights=w2 * oo, minlength=p),
        w2o2=np.bincount(inverse, weights=w2 * oo * oo, minlength=p),
        inverse=inverse,
        flipped=flipped,
        n_verdicts=len(a),
    )


def _names(idx, systems) -> str:
    shown = [str(systems[i]) if systems is not None else str(i) for i in idx[:8]]
    more = f" and {len(idx) - 8} more" if len(idx) > 8 else ""
    return ", ".join(shown) + more


def check_rateable(pairs: Pairs, systems=None, reg: float = 0.0, constant_outcome: float | None = None) -> None:
    """Raise :class:`RatingError` when the maximum-likelihood ratings do not exist.

    Three failures are told apart, because each needs a different fix: a system
    never compared, a comparison graph in disconnected parts (ratings of the parts
    share no scale), and one group of systems that never lost (or never won) against
    the rest, where the likelihood keeps growing as the gap goes to infinity.
    A positive ``reg`` (a Gaussian prior) makes the last case finite, so it is
    only checked when ``reg == 0``.
    """
    n = pairs.n_systems
    keep = pairs.count > 0
    per_system = np.bincount(pairs.a[keep], minlength=n) + np.bincount(pairs.b[keep], minlength=n)
    lonely = np.flatnonzero(per_system == 0)
    if len(lonely):
        raise RatingError(f"{len(lonely)} system(s) have no comparisons with positive weight: "
                          f"{_names(lonely, systems)}")
    if n == 1:
        return
    a, b = pairs.a[keep], pairs.b[keep]
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    k, labels = connected_components(graph, directed=False)
    if k > 1:
        parts = [np.flatnonzero(labels == c) for c in range(k)]
        parts.sort(key=len, reverse=True)
        desc = "; ".join(f"part {i + 1}: {_names(p, systems)}" for i, p in enumerate(parts[:5]))
        raise RatingError(f"the comparison graph has {k} disconnected parts, so their ratings share no "
                          f"common scale ({desc}); add comparisons between the parts")
    if reg > 0:
        return
    # Directed "x took some win from y" graph: the MLE is finite iff it is strongly connected.
    wins = pairs.wins[keep]
    losses = pairs.count[keep] - wins
    eps = 1e-12 * max(1.0, float(pairs.count.max()))
    src = np.concatenate([a[wins > eps], b[losses > eps]])
    dst = np.concatenate([b[wins > eps], a[losses > eps]])
    digraph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    k, labels = connected_components(digraph, directed=True, connection="strong")
    if k > 1:
        # A component nobody outside ever beat: its members' lead over the rest diverges; one
        # that never beat anyone outside trails by an infinite gap.
        has_incoming = np.zeros(k, dtype=bool)
        has_outgoing = np.zeros(k, dtype=bool)
        cross = labels[src] != labels[dst]
        has_incoming[labels[dst[cross]]] = True
        has_outgoing[labels[src[cross]]] = True
        top = np.flatnonzero(np.isin(labels, np.flatnonzero(~has_incoming)))
        bottom = np.flatnonzero(np.isin(labels, np.flatnonzero(~has_outgoing)))
        if len(top) == n:  # cannot happen for k > 1, kept as a guard
            top = np.flatnonzero(labels == labels[0])
        if constant_outcome is not None:
            what = (f"every verdict has the same outcome ({constant_outcome:g}), e.g. a judge that "
                    f"always prefers the first position")
        elif len(bottom) < len(top):  # name the smaller group: "X never won" reads better than "all but X never lost"
            what = f"system(s) {_names(bottom, systems)} never won or tied a comparison against the others"
        else:
            what = f"system(s) {_names(top, systems)} never lost a comparison against the others"
        raise RatingDivergenceError(
            f"ratings diverge to infinity: {what}, so the maximum-likelihood Bradley-Terry ratings do not "
            f"exist; collect more varied verdicts, or fit with a prior (reg > 0, e.g. reg=0.01), which "
            f"shrinks ratings toward each other", top=top.tolist(), bottom=bottom.tolist())
