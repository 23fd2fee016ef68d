"""Recalibrating combined probabilities with labels, only when a user asks for it."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize


class PlattCalibrator:
    """``p -> sigmoid(a * logit(p) + b)``, fitted by maximum likelihood on labelled items.

    The label model's posterior is calibrated only as far as its independence assumption holds;
    correlated verifiers make it overconfident. With some labels, this maps it back (``a < 1``
    shrinks overconfident probabilities). Labels are P(a better): 1, 0, or 0.5 for a tie.
    """

    def __init__(self, a: float = 1.0, b: float = 0.0) -> None:
        self.a, self.b = a, b

    @classmethod
    def fit(cls, p: np.ndarray, labels: np.ndarray, *, l2: float = 1e-3) -> PlattCalibrator:
        p = np.asarray(p, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64)
        ok = ~np.isnan(p) & ~np.isnan(y)
        if ok.sum() < 2:
            raise ValueError("calibration needs at least two labelled items")
        z = _logit(p[ok])
        y = y[ok]

        def nll(theta):
            a, b = theta
            s = a * z + b
            # log(1 + e^s) - y s, stable
            return float(np.mean(np.logaddexp(0.0, s) - y * s) + l2 * ((a - 1) ** 2 + b ** 2))

        res = minimize(nll, np.array([1.0, 0.0]), method="L-BFGS-B")
        return cls(float(res.x[0]), float(res.x[1]))

    def __call__(self, p: np.ndarray) -> np.ndarray:
        s = self.a * _logit(np.asarray(p, dtype=np.float64)) + self.b
        return 1.0 / (1.0 + np.exp(-s))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
