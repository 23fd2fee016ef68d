"""Robust (sandwich) covariance of Bradley-Terry strengths, without refitting."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.special import expit

from ._bt import _laplacian, hessian
from ._graph import Pairs


def sandwich_cov(pairs: Pairs, theta: np.ndarray, reg: float = 0.0, o=None, w=None,
                 cluster=None, meat=None) -> np.ndarray:
    """Covariance ``A^-1 B A^-1`` of the sum-zero natural-scale strengths.

    ``A`` is the Hessian, ``B`` the summed outer products of per-verdict scores.
    Without clusters ``B`` is built from per-pair sums of ``w^2``, ``w^2 o`` and
    ``w^2 o^2``, which give the exact sum over verdicts of ``w^2 (o - p)^2``. With
    ``cluster`` (e.g., the prompt of each verdict) scores are summed within each
    cluster first, which accounts for verdicts that share a prompt being correlated.
    Soft or noisy outcomes make ``B`` differ from ``A``; that is why the sandwich,
    not the inverse Hessian, is the honest interval. ``meat``, given, is ``B`` itself,
    computed elsewhere (e.g. clustered, in SQL, from data that never became arrays).
    """
    n = pairs.n_systems
    A = hessian(pairs, theta, reg, pin=True)
    p = expit(theta[pairs.a] - theta[pairs.b])
    if meat is not None:
        B = np.asarray(meat, dtype=np.float64)
    elif cluster is None:
        m = pairs.w2o2 - 2.0 * p * pairs.w2o + p * p * pairs.w2
        B = _laplacian(pairs.a, pairs.b, m, n)
    else:
        oo = np.where(pairs.flipped, 1.0 - o, o)
        r = w * (oo - p[pairs.inverse])
        _, cl = np.unique(np.asarray(cluster), return_inverse=True)
        a = pairs.a[pairs.inverse]
        b = pairs.b[pairs.inverse]
        S = coo_matrix((np.concatenate([r, -r]), (np.concatenate([cl, cl]), np.concatenate([a, b]))),
                       shape=(int(cl.max()) + 1, n)).tocsr()
        B = (S.T @ S).toarray()
    Ainv = np.linalg.inv(A)
    cov = Ainv @ B @ Ainv
    return 0.5 * (cov + cov.T)


def shift_cov(cov: np.ndarray, anchor: int | None) -> np.ndarray:
    """Covariance of strengths re-expressed relative to ``anchor`` (or to their mean)."""
    n = cov.shape[0]
    L = np.eye(n)
    if anchor is None:
        L -= 1.0 / n
    else:
        L[:, anchor] -= 1.0
    return L @ cov @ L.T
