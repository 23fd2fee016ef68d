"""Adaptive plans: spend each next batch where the ranking is still uncertain."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import expit, ndtri

from ._pairs import Comparison
from ._tournament import CALLS_PER_COMPARISON, prompt_rng

UNTIL_RULES = ("separated",)
_PROMPT_CHOICES = ("spread", "random", "discriminating")

# Prior weight (in verdicts) of the mean discrimination when scoring a prompt; small, so a
# prompt's own verdicts soon decide, but a single tie does not bury a prompt.
_PROMPT_PRIOR = 1.0
# Ridge on the strengths: keeps the early fits finite when a system has won everything.
_REG = 1e-3
# Rating points (the leaderboard's 400 * log10-odds scale) per natural log-odds unit.
_POINTS = 400.0 / math.log(10.0)


def _near_tie(z: np.ndarray) -> np.ndarray:
    # Normal density of the z score: measured against z*phi(z), a wider density and flat
    # weights on the simulated AlpacaEval panels, it reached the round-robin ranking soonest.
    return np.exp(-0.5 * z * z)


class AdaptivePlan:
    """Chooses each batch from the current Bradley–Terry fit and its uncertainty.

    The first batch is a random cycle through the systems (a connected graph). Each later
    batch refits the strengths and picks comparisons greedily, one at a time, by how much
    one more verdict on a pair would shrink the variance of the rating differences whose
    order is still in doubt (weighted by the normal density of their z scores), updating
    the covariance after each pick; a pair that has used a share ``f`` of its prompts has
    its variance scaled by ``1 - f``, so it stops drawing verdicts as it runs out. The pair
    goes to the unused prompt on which its two systems have been compared least (ties in
    seeded random order): blind to verdicts, so unbiased, and it spreads each system over
    many prompts, which averages out how its quality varies by prompt (2-4 times fewer
    calls to Spearman 0.95 than random prompts on the simulated AlpacaEval panels).
    Batches grow by a tenth of what was handed out (at least one per system), up to 1% of
    every possible comparison: few refits, judging stays parallel, and a stopping rule is
    checked at least every 1% of the full round-robin.

    Stops when the budget is spent, when every pair has been compared on every prompt, or
    (``until="separated"``) when every two neighbours in the current order are apart by
    ``z >= Φ⁻¹(1 − (1 − level) / (2(n − 1)))`` standard errors (Bonferroni over the
    neighbours). With ``finite=True`` (default) that is about the order full round-robin
    on these prompts would give: its fit is predicted from the verdicts in, with the
    uncertainty of the verdicts not yet asked for and of the current fit. On the simulated
    AlpacaEval panels (bench/plan_efficiency.py, 12 seeds each of n16 and ae13, closest two
    systems in full round-robin 0.1-1.9 rating points apart) all 24 runs stopped this way
    had exactly full round-robin's order, after 88-98% of its calls: ordering such
    near-ties needs nearly all of it. With
    ``finite=False`` it is about a population of prompts (the larger of the Fisher and
    sandwich variances); near-ties then rarely settle. :attr:`stop_reason` says which.

    A near-tie in full round-robin's ratings can only be ordered by asking for nearly all of
    it. With ``tolerance`` > 0 (rating points), neighbours whose difference is within
    ``tolerance`` at the same confidence (``|d| + z * se <= tolerance``) count as settled too,
    their order left open: a run of such neighbours is one tied group, and every two systems
    in it must be within ``tolerance``, so a chain of ties cannot hide a larger gap. Every
    other two neighbours must still be separated; the reason printed names the tied groups.
    Pairs are then chosen by how far they are from either outcome, not only from a tie.
    With ``tolerance=10`` the same 24 runs stopped after 47-69% (n16) and 68-95% (ae13) of
    round-robin's calls, every pair more than 10 points apart in round-robin's order in all.

    Unusable verdicts (absent from the results) still count against the budget.

    Args:
        answered: prompt id -> the systems that answered it.
        budget: at most this many comparisons; each is judged in both orders, so the plan
            makes at most ``2 * budget`` judge calls.
        until: ``"separated"``, or None to spend the whole budget.
        seed: fixes the warm-up, the prompt order and the tie-breaks.
        level: confidence of the ``separated`` rule.
        finite: settle full round-robin's order on these prompts, not a population's.
        tolerance: rating points (400 * log10 odds) within which two neighbours count as
            tied for ``separated``; 0 (default) demands their order.
        prompt_choice: ``"spread"`` (default, above), ``"random"`` (next unused prompt in
            seeded order) or ``"discriminating"`` (the unused prompt whose verdicts so far
            have the largest mean ``(2p - 1)^2``, shrunk towards the mean; this biases the
            ranking towards such prompts and did worst on the simulated panels).

    Raises:
        ValueError: neither a budget nor a rule, an unknown rule, fewer than 2 systems.
    """

    def __init__(self, answered: Mapping[str, Sequence[str]], *, budget: int | None = None,
                 until: str | None = None, seed: int = 0, level: float = 0.95,
                 finite: bool = True, prompt_choice: str = "spread", tolerance: float = 0.0) -> None:
        if budget is None and until is None:
            raise ValueError("the adaptive plan needs a budget (--budget N) and/or a stopping rule "
                             "(--until separated)")
        if until is not None and until not in UNTIL_RULES:
            raise ValueError(f"unknown stopping rule '{until}' (known: {', '.join(UNTIL_RULES)})")
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be >= 0 comparisons (got {budget})")
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1) (got {level})")
        if prompt_choice not in _PROMPT_CHOICES:
            raise ValueError(f"unknown prompt_choice '{prompt_choice}'")
        if not tolerance >= 0 or not math.isfinite(tolerance):
            raise ValueError(f"tolerance must be >= 0 rating points (got {tolerance})")
        self.tolerance = float(tolerance)
        self._tol = self.tolerance / _POINTS if until is not None else 0.0
        self.tied: list[list[str]] = []
        self.budget, self.until, self.seed, self.level = budget, until, seed, level
        self.prompt_choice = prompt_choice
        self.finite = finite
        self.stop_reason: str | None = None
        self.comparisons_issued = 0
        self.batches = 0

        self.systems = list(dict.fromkeys(s for ss in answered.values() for s in ss))
        n = len(self.systems)
        if n < 2:
            raise ValueError("the adaptive plan needs at least 2 systems")
        self._sys = {s: i for i, s in enumerate(self.systems)}
        self.prompts = [p for p in answered if len(set(answered[p])) >= 2]
        order = {p: prompt_rng(seed, p, "order").random() for p in self.prompts}
        # Prompts in seeded order, so that "first unused" and ties follow the seed.
        self.prompts.sort(key=order.__getitem__)
        self._prm = {p: k for k, p in enumerate(self.prompts)}
        has = np.zeros((len(self.prompts), n), dtype=bool)
        for k, p in enumerate(self.prompts):
            has[k, [self._sys[s] for s in answered[p]]] = True
        self._I, self._J = np.triu_indices(n, 1)
        self._pair = np.full((n, n), -1, dtype=np.int64)
        self._pair[self._I, self._J] = np.arange(len(self._I))
        self._pair[self._J, self._I] = np.arange(len(self._I))
        # free[pair, prompt]: both systems answered it and the pair was not compared on it.
        self._free = (has[:, self._I] & has[:, self._J]).T.copy()
        self._free_count = int(self._free.sum())
        self._possible = self._free_count
        self._N_real = self._free.sum(axis=1).astype(float)  # prompts each pair can use
        self._N = np.maximum(self._N_real, 1)
        self._n = np.zeros(len(self._I))  # comparisons handed out per pair
        self._has = has
        self._use = np.zeros(has.shape)  # comparisons handed out per (prompt, system)
        self._disc_sum = np.zeros(len(self.prompts))
        self._disc_n = np.zeros(len(self.prompts))
        self._a: list[int] = []
        self._b: list[int] = []
        self._y: list[float] = []
        self._pending: list[Comparison] = []
        self.strengths: np.ndarray | None = None

    @property
    def judge_calls(self) -> int:
        """Judge calls handed out so far (2 per comparison)."""
        return CALLS_PER_COMPARISON * self.comparisons_issued

    def _done(self, why: str, detail: str = "") -> list[Comparison]:
        self.stop_reason = (f"{why} after {self.comparisons_issued} comparisons "
                            f"({self.judge_calls} judge calls){detail}")
        return []

    def _take(self, pair: int, prompt: int) -> Comparison:
        self._free[pair, prompt] = False
        self._free_count -= 1
        self._n[pair] += 1
        self._use[prompt, self._I[pair]] += 1
        self._use[prompt, self._J[pair]] += 1
        return Comparison(self.prompts[prompt], self.systems[self._I[pair]], self.systems[self._J[pair]])

    def next_batch(self, results: Mapping[Comparison, float]) -> list[Comparison]:
        for c in self._pending:
            y = results.get(c)
            if y is None:
                continue
            self._a.append(self._sys[c.system_a])
            self._b.append(self._sys[c.system_b])
            self._y.append(float(y))
            k = self._prm[c.prompt_id]
            self._disc_sum[k] += (2.0 * y - 1.0) ** 2
            self._disc_n[k] += 1
        self._pending = []
        remaining = math.inf if self.budget is None else self.budget - self.comparisons_issued
        fit = self._fit() if self._y else None
        if fit is not None and self.until == "separated":
            worst = self._least_separated(*fit)
            if worst[0] >= worst[1]:
                ties = "; ".join(" = ".join(g) for g in self.tied)
                sep = (f"every two neighbours apart by at least {worst[0]:.3g} standard errors (needed "
                       f"{worst[1]:.2f})" if math.isfinite(worst[0]) else "no two neighbours separated")
                if ties:
                    sep = (f"{sep.replace('every two neighbours', 'every other two neighbours')}, tied within "
                           f"{self.tolerance:g} rating points: {ties} (order left open)")
                return self._done(f"rank order settled at {self.level:.0%}", f": {sep}")
        if remaining <= 0:
            return self._done("budget spent", self._unsettled(fit))
        if self._free_count == 0:
            return self._done("every pair compared on every prompt", self._unsettled(fit))
        grow = min(math.ceil(0.1 * self.comparisons_issued), math.ceil(0.01 * self._possible))
        size = max(len(self.systems), grow)
        size = int(min(size, remaining, self._free_count))
        batch = self._select(fit, size) if fit is not None else self._warmup(size)
        self.comparisons_issued += len(batch)
        self.batches += 1
        self._pending = batch
        return batch

    def _unsettled(self, fit) -> str:
        if fit is None or self.until is None:
            return ""
        z, need, a, b = self._least_separated(*fit)
        return f"; rank order not settled: {a} vs {b} apart by {z:.2f} standard errors (needed {need:.2f})"

    def _warmup(self, size: int) -> list[Comparison]:
        """Random cycles through the systems, one prompt each: connected, and every system plays."""
        batch: list[Comparison] = []
        for k, p in enumerate(self.prompts):
            cyc = [int(i) for i in np.flatnonzero(self._has[k])]
            prompt_rng(self.seed, p, f"warmup{self.batches}").shuffle(cyc)
            edges = list(zip(cyc, cyc[1:] + cyc[:1])) if len(cyc) > 2 else [(cyc[0], cyc[1])]
            for i, j in edges:
                pair = self._pair[i, j]
                if self._free[pair, k] and len(batch) < size:
                    batch.append(self._take(pair, k))
            if len(batch) >= size:
                break
        if len(batch) < size:  # the cycles' edges are used up: any free comparisons, in seeded order
            for pair, k in zip(*np.nonzero(self._free)):
                if len(batch) >= size:
                    break
                batch.append(self._take(int(pair), int(k)))
        return batch

    def _fit(self):
        """Strengths, Fisher information and sandwich meat, or None if the data cannot be rated yet."""
        from ..errors import RatingError
        from ..rate import bradley_terry

        n = len(self.systems)
        a, b, y = np.array(self._a), np.array(self._b), np.array(self._y)
        try:
            theta = np.asarray(bradley_terry(a, b, y, n, scale=math.log(10.0), base=0.0, reg=_REG))
        except RatingError:
            return None
        self.strengths = theta
        p = expit(theta[a] - theta[b])
        h = p * (1 - p)
        hess = _laplacian(a, b, h, n) + _REG * np.eye(n)
        meat = _laplacian(a, b, (y - p) ** 2, n)
        # For choosing only: each verdict's information divided by its pair's finite-population
        # correction, so that a pair running out of prompts stops looking worth more verdicts.
        s = 1.0 / self._fpc(self._n)[self._pair[a, b]]
        choose = _laplacian(a, b, h * s, n) + _REG * np.eye(n)
        return theta, hess, meat, choose

    def _fpc(self, n: np.ndarray) -> np.ndarray:
        """Variance factor of a pair after ``n`` of its ``N`` prompts: (N - n + 1) / N, or 1."""
        return (self._N - n + 1) / self._N if self.finite else np.ones_like(n)

    def _gain(self, pairs: np.ndarray) -> np.ndarray:
        """Information (in verdicts) that one more comparison adds to each pair: n/fpc(n) grows by this."""
        n = self._n[pairs]
        if not self.finite:
            return np.ones_like(n)
        N = self._N[pairs]
        return (n + 1) * N / np.maximum(N - n, 1) - n * N / (N - n + 1)

    def _least_separated(self, theta, hess, meat, _choose=None) -> tuple[float, float, str, str]:
        """The least separated neighbours in the current order that are not tied within the
        tolerance: (z, z needed, name, name); z is inf when every two neighbours are tied.
        Sets :attr:`tied` to the tied groups, best first."""
        n = len(self.systems)
        order = np.argsort(-theta, kind="stable")
        self.tied = []
        if self.finite:
            target, cov = self._completed(theta, hess, meat)
            if target is None:
                return -math.inf, 0.0, self.systems[order[0]], self.systems[order[1]]
            var = lambda i, j: _diff_var(cov, i, j)
        else:
            cov = np.linalg.inv(hess + np.ones((n, n)))
            sand = cov @ meat @ cov
            target = theta
            var = lambda i, j: np.maximum(_diff_var(cov, i, j), _diff_var(sand, i, j))
        # Neighbours in the order of the verdicts' own fit, the one a leaderboard shows: a predicted
        # order that disagrees with it gives z < 0, never a stop.
        i, j = order[:-1], order[1:]
        d = target[i] - target[j]
        se = np.sqrt(np.maximum(var(i, j), 1e-300))
        z = d / se
        need = float(ndtri(1 - (1 - self.level) / (2 * (n - 1)))) if n > 1 else 0.0
        tied = (z < need) & (np.abs(d) + need * se <= self._tol)
        k = 0
        while k < n - 1:  # a run of tied links is one group: all its members must be within the tolerance
            if not tied[k]:
                k += 1
                continue
            e = k
            while e < n - 1 and tied[e]:
                e += 1
            g = order[k:e + 1]
            x, y = np.triu_indices(len(g), 1)
            if np.all(np.abs(target[g[x]] - target[g[y]]) + need * np.sqrt(np.maximum(var(g[x], g[y]), 1e-300))
                      <= self._tol):
                self.tied.append([self.systems[s] for s in g])
            else:
                tied[k:e] = False
            k = e
        if tied.all():
            return math.inf, need, self.systems[i[0]], self.systems[j[0]]
        k = int(np.argmin(np.where(tied, np.inf, z)))
        return float(z[k]), need, self.systems[i[k]], self.systems[j[k]]

    def _completed(self, theta: np.ndarray, hess: np.ndarray, meat: np.ndarray):
        """Predicted Bradley–Terry strengths of the full round-robin, and their covariance.

        Each pair's mean verdict over all its prompts is predicted from its verdicts so far,
        shrunk towards the current fit by how far pairs stray from it (a normal model with
        the pairs' spread around their own means and around the fit); the uncertainty left is
        that of the verdicts not yet asked for plus that of the current fit the prediction
        leans on, both carried to the strengths by the full fit's Jacobian.
        """
        from ..errors import RatingError
        from ..rate import bradley_terry

        n, I, J = len(self.systems), self._I, self._J
        m = len(I)
        a, b, y = np.array(self._a), np.array(self._b), np.array(self._y)
        pidx = self._pair[a, b]
        y = np.where(a == I[pidx], y, 1.0 - y)  # P(I beats J) for every verdict
        cnt = np.bincount(pidx, minlength=m).astype(float)
        tot = np.bincount(pidx, y, minlength=m)
        sq = np.bincount(pidx, (y - (tot / np.maximum(cnt, 1))[pidx]) ** 2, minlength=m)
        many = cnt >= 2
        pooled = sq[many].sum() / (cnt[many] - 1).sum() if many.any() else 0.25
        pooled = max(pooled, 1e-4)
        # A pair's own spread, shrunk a little towards the pooled one so that 2 verdicts do not decide it.
        s2 = np.where(many, (sq + 2 * pooled) / (np.maximum(cnt - 1, 0) + 2), pooled)
        fit = expit(theta[I] - theta[J])
        seen = cnt > 0
        ybar = np.where(seen, tot / np.maximum(cnt, 1), fit)
        tau2 = max(float(np.mean((ybar - fit)[seen] ** 2 - (s2 / np.maximum(cnt, 1))[seen])), 1e-4) \
            if seen.any() else 0.25
        prec = cnt / s2 + 1 / tau2
        mu = (cnt / s2 * ybar + fit / tau2) / prec
        N = self._N_real
        miss = np.maximum(N - cnt, 0)
        ok = N > 0
        full = np.clip((cnt * ybar + miss * mu)[ok] / N[ok], 0.0, 1.0)
        var_mean = ((miss * s2 + miss ** 2 / prec)[ok]) / N[ok] ** 2
        try:
            target = np.asarray(bradley_terry(I[ok], J[ok], full, n, weight=N[ok], scale=math.log(10.0),
                                              base=0.0, reg=_REG))
        except RatingError:
            return None, None
        p = expit(target[I[ok]] - target[J[ok]])
        full_hess = _laplacian(I[ok], J[ok], N[ok] * p * (1 - p), n) + _REG * np.eye(n)
        bread = np.linalg.inv(full_hess + np.ones((n, n)))
        cov = bread @ _laplacian(I[ok], J[ok], N[ok] ** 2 * var_mean, n) @ bread
        # The predicted means lean on the current fit (share g of each missing part): its error moves them together.
        g = (1 / tau2) / prec
        lean = bread @ _laplacian(I[ok], J[ok], (miss * g * fit * (1 - fit))[ok], n)
        # The current fit's covariance: the Fisher one scaled by the verdicts' dispersion, or the
        # sandwich, the larger. Unscaled Fisher treats a soft verdict as a coin flip, so it
        # doubled every standard error (measured on the simulated panels: standardized errors
        # against full round-robin had sd 0.5-0.6; about 0.9-1.0 with the dispersion).
        now = np.linalg.inv(hess + np.ones((n, n)))
        sand = now @ meat @ now
        pv = expit(theta[a] - theta[b])
        phi = float(np.sum((np.asarray(self._y) - pv) ** 2) / max(float(np.sum(pv * (1 - pv))), 1e-12))
        now = phi * now if np.trace(phi * now) >= np.trace(sand) else sand
        return target, cov + lean @ now @ lean.T

    def _select(self, fit, size: int) -> list[Comparison]:
        theta, _, _, hess = fit
        n = len(self.systems)
        I, J = self._I, self._J
        # Any inverse that is exact on sum-zero vectors will do: rating differences are all we use.
        cov = np.linalg.inv(hess + np.ones((n, n)))
        s2 = np.maximum(_diff_var(cov, I, J), 1e-12)
        delta = theta[I] - theta[J]
        p = expit(delta)
        h0 = p * (1 - p)
        h = h0 * self._gain(np.arange(len(I)))
        # Distance, in standard errors, from either way of settling a pair: its order, or (with a
        # tolerance) a tie within it. Without a tolerance this is just the distance from a tie.
        z = np.maximum(np.abs(delta), self._tol - np.abs(delta)) / np.sqrt(s2)
        u = _near_tie(z) / s2  # pairs far from settled, per unit of their own variance
        U = _laplacian(I, J, u, n)
        rng = np.random.default_rng([self.seed, self.batches])
        jitter = 1 + rng.uniform(0, 1e-9, len(I))
        avail = self._free.any(axis=1)
        score = self._prompt_scores()
        batch = []
        for _ in range(size):
            # One more verdict on pair c (difference vector x_c) removes h_c (y' C x_c)^2 /
            # (1 + h_c x_c' C x_c) from the variance of every difference y; weighted by u and
            # summed over all y that is x_c' (C U C) x_c: an n x n product, not m x m.
            M = cov @ U @ cov
            value = h / (1 + h * _diff_var(cov, I, J)) * _diff_var(M, I, J) * jitter
            value[~avail] = -np.inf
            c = int(np.argmax(value))
            if not np.isfinite(value[c]):
                break
            cx = cov[:, I[c]] - cov[:, J[c]]
            cov -= (h[c] / (1 + h[c] * (cx[I[c]] - cx[J[c]]))) * np.outer(cx, cx)
            if self.prompt_choice == "spread":
                k = int(np.argmin(np.where(self._free[c], self._use[:, I[c]] + self._use[:, J[c]], np.inf)))
            else:
                k = int(np.argmax(np.where(self._free[c], score, -np.inf)))
            batch.append(self._take(c, k))
            h[c] = h0[c] * self._gain(np.array([c]))[0]
            if not self._free[c].any():
                avail[c] = False
        return batch

    def _prompt_scores(self) -> np.ndarray:
        """Higher = the prompt has separated systems more; argmax ties go to the seeded order."""
        if self.prompt_choice == "random" or not self._disc_n.any():
            return -np.arange(len(self.prompts), dtype=float)
        mean = self._disc_sum.sum() / self._disc_n.sum()
        shrunk = (self._disc_sum + _PROMPT_PRIOR * mean) / (self._disc_n + _PROMPT_PRIOR)
        return shrunk - 1e-12 * np.arange(len(self.prompts))


def _laplacian(a: np.ndarray, b: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    L = np.zeros((n, n))
    np.add.at(L, (a, b), -w)
    np.add.at(L, (b, a), -w)
    L[np.diag_indices(n)] = -L.sum(axis=1)
    return L


def _diff_var(cov: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    return cov[i, i] + cov[j, j] - 2 * cov[i, j]
