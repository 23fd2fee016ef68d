"""AlpacaEval-style length-controlled win rate against a single baseline."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from ..errors import RatingError


@dataclass
class LCResult:
    """Raw and length-controlled win rates (in percent) of systems against one baseline.

    ``coef`` has one row per system: ``[intercept, difficulty, length]`` of that
    system's logistic GLM, where ``length`` multiplies ``tanh`` of the standardised
    length difference "system minus baseline" (positive = the judge prefers the
    longer answer; AlpacaEval's own weights use "baseline minus system", the
    opposite sign).
    """

    systems: list[str]
    n: np.ndarray
    win_rate: np.ndarray
    win_rate_se: np.ndarray
    lc_win_rate: np.ndarray
    lc_se: np.ndarray
    coef: np.ndarray
    difficulty: np.ndarray = field(repr=False)
    notes: list[str] = field(default_factory=list)

    def to_records(self) -> list[dict]:
        """One dict per system, highest length-controlled win rate first."""
        order = np.argsort(-self.lc_win_rate, kind="stable")
        return [{"system": self.systems[i], "n": int(self.n[i]), "win_rate": float(self.win_rate[i]),
                 "win_rate_se": float(self.win_rate_se[i]), "lc_win_rate": float(self.lc_win_rate[i]),
                 "lc_se": float(self.lc_se[i]), "length_coef": float(self.coef[i, 2]),
                 "difficulty_coef": float(self.coef[i, 1]), "intercept": float(self.coef[i, 0])}
                for i in order]


def _check(system_idx, prompt_idx, preference, len_system, len_baseline, n_systems):
    s = np.asarray(system_idx)
    q = np.asarray(prompt_idx)
    y = np.asarray(preference, dtype=np.float64)
    ls = np.asarray(len_system, dtype=np.float64)
    lb = np.asarray(len_baseline, dtype=np.float64)
    if not (s.shape == q.shape == y.shape == ls.shape == lb.shape) or s.ndim != 1:
        raise RatingError("system_idx, prompt_idx, preference, len_system and len_baseline must be "
                          "1-d arrays of one length")
    if s.size == 0:
        raise RatingError("there are no comparisons against the baseline")
    if not (np.issubdtype(s.dtype, np.integer) and np.issubdtype(q.dtype, np.integer)):
        raise RatingError("system_idx and prompt_idx must be integer indices")
    if s.min() < 0 or s.max() >= n_systems or q.min() < 0:
        raise RatingError("system or prompt index out of range")
    if not np.all(np.isfinite(y)) or y.min() < 0 or y.max() > 1:
        raise RatingError("preferences must be probabilities in [0, 1] that the system beats the baseline")
    if not (np.all(np.isfinite(ls)) and np.all(np.isfinite(lb))):
        raise RatingError("lengths must be finite numbers")
    return s.astype(np.int64), q.astype(np.int64), y, ls, lb


def _std_delta(s, ls, lb, n_systems):
    # Standardised per system, as AlpacaEval does: each system's GLM sees its own spread.
    delta = ls - lb
    out = np.zeros_like(delta)
    for m in range(n_systems):
        k = s == m
        if k.sum() > 1:
            sd = delta[k].std(ddof=1)
            out[k] = delta[k] / sd if sd > 0 else 0.0
    return np.tanh(out)


def prompt_difficulty(system_idx, prompt_idx, preference, len_system, len_baseline, n_systems=None,
                      reg=1.0):
    """Estimate how hard each prompt is for the systems, relative to the baseline.

    Fits one logistic model over all systems jointly, ``logit p = theta_m +
    gamma_m * tanh(std_delta_len) - difficulty_i``, as AlpacaEval's authors did to
    obtain their per-instruction difficulty (theirs was fitted on many more
    systems and is not published with the data). A Gaussian prior of precision
    ``reg`` keeps prompts answered by few systems from getting extreme values.

    Parameters
    ----------
    system_idx : array_like
        Index of the system of each comparison.
    prompt_idx : array_like
        Index of the prompt of each comparison.
    preference : array_like
        Probability that the system beat the baseline, in [0, 1].
    len_system : array_like
        Length of the system's answer.
    len_baseline : array_like
        Length of the baseline's answer.
    n_systems : int, optional
        Number of systems (default: largest index + 1).
    reg : float, optional
        Prior precision of the difficulties (default 1).

    Returns
    -------
    difficulty : numpy.ndarray
        One value per prompt index (0 for prompts without comparisons); higher
        means the systems lose more often to the baseline there.
    """
    s = np.asarray(system_idx)
    n_systems = int(s.max()) + 1 if n_systems is None else n_systems
    s, q, y, ls, lb = _check(system_idx, prompt_idx, preference, len_system, len_baseline, n_systems)
    x = _std_delta(s, ls, lb, n_systems)
    n_prompts = int(q.max()) + 1
    m = n_systems
    # Newton steps with the prompt block eliminated by its (diagonal) Schur complement:
    # each step costs one pass over the rows plus a (2m x 2m) solve, however many prompts.
    theta, gamma, dif = np.zeros(m), np.zeros(m), np.zeros(n_prompts)

    def objective(th, ga, di):
        eta = th[s] + ga[s] * x - di[q]
        return -(y @ eta - np.logaddexp(0.0, eta).sum()) + 0.5 * reg * di @ di

    f_old = objective(theta, gamma, dif)
    for _ in range(100):
        eta = theta[s] + gamma[s] * x - dif[q]
        p = expit(eta)
        r = y - p
        w = p * (1 - p)
        g_sys = np.concatenate([-np.bincount(s, weights=r, minlength=m), -np.bincount(s, weights=r * x, minlength=m)])
        g_dif = np.bincount(q, weights=r, minlength=n_prompts) + reg * dif
        h_dif = np.bincount(q, weights=w, minlength=n_prompts) + reg
        H_sys = np.zeros((2 * m, 2 * m))
        idx = np.arange(m)
        H_sys[idx, idx] = np.bincount(s, weights=w, minlength=m)
        H_sys[idx, idx + m] = H_sys[idx + m, idx] = np.bincount(s, weights=w * x, minlength=m)
        H_sys[idx + m, idx + m] = np.bincount(s, weights=w * x * x, minlength=m)
        C = np.zeros((2 * m, n_prompts))
        np.add.at(C, (s, q), -w)
        np.add.at(C, (s + m, q), -w * x)
        S = H_sys - (C / h_dif) @ C.T + 1e-12 * np.eye(2 * m)
        d_sys = np.linalg.solve(S, g_sys - C @ (g_dif / h_dif))
        d_dif = (g_dif - C.T @ d_sys) / h_dif
        step = 1.0
        while True:  # backtracking keeps the first steps from overshooting
            th, ga, di = theta - step * d_sys[:m], gamma - step * d_sys[m:], dif - step * d_dif
            f_new = objective(th, ga, di)
            if f_new <= f_old + 1e-12 * abs(f_old) or step < 1e-4:
                break
            step *= 0.5
        theta, gamma, dif = th, ga, di
        done = f_old - f_new < 1e-12 * max(1.0, abs(f_old)) and np.max(np.abs(step * d_dif)) < 1e-9
        f_old = f_new
        if done:
            break
    seen = np.bincount(q, minlength=n_prompts) > 0
    dif = np.where(seen, dif - dif[seen].mean(), 0.0)
    return dif


def _glm(Xd, y, reg):
    """Logistic regression with soft targets and an L2 penalty ``reg`` on all weights but the first.

    The intercept stays free so that the mean prediction equals the mean outcome,
    which makes the LC win rate equal the raw one when length has no effect.
    """
    norm_ = float(len(y))
    pen = np.full(Xd.shape[1], reg)
    pen[0] = 0.0

    def f(beta):
        eta = Xd @ beta
        val = -(y @ eta - np.logaddexp(0.0, eta).sum()) + 0.5 * (pen * beta) @ beta
        g = -(Xd.T @ (y - expit(eta))) + pen * beta
        return val / norm_, g / norm_

    res = minimize(f, np.zeros(Xd.shape[1]), jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000, "gtol": 1e-10, "ftol": 1e-15})
    beta = res.x
    for _ in range(3):  # Newton polish: the SE below needs the exact optimum
        p = expit(Xd @ beta)
        H = (Xd * (p * (1 - p))[:, None]).T @ Xd + np.diag(pen)
        g = -(Xd.T @ (y - p)) + pen * beta
        beta = beta - np.linalg.solve(H, g)
    return beta


def lc_win_rate(system_idx, prompt_idx, preference, len_system, len_baseline, n_systems=None, *,
                systems=None, difficulty=None, reg=1e-6):
    """Compute raw and length-controlled win rates against a baseline, with standard errors.

    For each system a logistic GLM ``logit p_i = b0 + b1 * difficulty_i + b2 *
    tanh(std_delta_len_i)`` is fitted to its (soft) preferences over the baseline;
    the length-controlled win rate is the model's mean prediction over the same
    prompts with the length difference set to zero, i.e., the win rate the system
    would have if its answers were as long as the baseline's. This is AlpacaEval
    2.0's length-controlled win rate without its extra regularisation toward
    verbose/concise variants of the baseline. The standard error uses the
    influence function of that mean (prompt sampling and GLM estimation together).

    Parameters
    ----------
    system_idx : array_like
        Index of the system of each comparison.
    prompt_idx : array_like
        Index of the prompt of each comparison.
    preference : array_like
        Probability that the system beat the baseline, in [0, 1] (0.5 = tie).
    len_system : array_like
        Length of the system's answer (AlpacaEval uses characters).
    len_baseline : array_like
        Length of the baseline's answer to the same prompt.
    n_systems : int, optional
        Number of systems (default: largest index + 1).
    systems : list of str, optional
        Names of the systems.
    difficulty : array_like, optional
        Difficulty of each prompt index. By default it is estimated with
        :func:`prompt_difficulty` from the same comparisons.
    reg : float, optional
        L2 penalty (per comparison) on each system's difficulty and length weights
        (default 1e-6: only a numerical safeguard; a
        larger one shrinks the length effect and biases the LC win rate); the
        intercept is not penalised.

    Returns
    -------
    result : LCResult
        Win rates and length-controlled win rates in percent, with standard errors.
    """
    s0 = np.asarray(system_idx)
    n_systems = int(s0.max()) + 1 if n_systems is None else n_systems
    s, q, y, ls, lb = _check(system_idx, prompt_idx, preference, len_system, len_baseline, n_systems)
    systems = [str(i) for i in range(n_systems)] if systems is None else [str(x) for x in systems]
    if len(systems) != n_systems:
        raise RatingError(f"{len(systems)} names for {n_systems} systems")
    notes = []
    if difficulty is None:
        if n_systems < 5:
            notes.append(f"prompt difficulty estimated from only {n_systems} system(s): it is noisy")
        dif = prompt_difficulty(s, q, y, ls, lb, n_systems)
    else:
        dif = np.asarray(difficulty, dtype=np.float64)
        if dif.ndim != 1 or len(dif) <= q.max():
            raise RatingError("difficulty must have one value per prompt index")
    x = _std_delta(s, ls, lb, n_systems)
    n = np.bincount(s, minlength=n_systems)
    missing = [systems[i] for i in np.flatnonzero(n < 2)]
    if missing:
        raise RatingError(f"system(s) with fewer than 2 comparisons against the baseline: {', '.join(missing)}")
    wr = np.zeros(n_systems)
    wr_se = np.zeros(n_systems)
    lc = np.zeros(n_systems)
    lc_se = np.zeros(n_systems)
    coef = np.zeros((n_systems, 3))
    for m in range(n_systems):
        k = s == m
        ym, dm, xm = y[k], dif[q[k]], x[k]
        nm = len(ym)
        wr[m] = 100 * ym.mean()
        wr_se[m] = 100 * ym.std(ddof=1) / np.sqrt(nm)
        Xd = np.column_stack([np.ones(nm), dm, xm])
        beta = _glm(Xd, ym, reg * nm)
        coef[m] = beta
        X0 = Xd.copy()
        X0[:, 2] = 0.0
        p0 = expit(X0 @ beta)
        lc[m] = 100 * p0.mean()
        # Influence of each prompt on the mean prediction: its own term, plus its pull
        # on beta through the estimating equations.
        p = expit(Xd @ beta)
        H = (Xd * (p * (1 - p))[:, None]).T @ Xd / nm + np.diag([0.0, reg, reg])
        grad = (X0 * (p0 * (1 - p0))[:, None]).mean(axis=0)
        scores = Xd * (ym - p)[:, None]
        infl = (p0 - p0.mean()) + scores @ np.linalg.solve(H, grad)
        lc_se[m] = 100 * np.sqrt((infl ** 2).sum()) / nm
    return LCResult(systems=systems, n=n, win_rate=wr, win_rate_se=wr_se, lc_win_rate=lc, lc_se=lc_se,
                    coef=coef, difficulty=dif, notes=notes)
