"""A judge played by numbers: per-prompt latent qualities, optional noise and position bias."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.special import expit, ndtri

from ..plan import Comparison

_M = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: a counter-based generator, so a verdict depends only on its own
    # key and not on how many verdicts were drawn before it (plans share verdicts exactly).
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def keyed_uniform(seed: int, stream: int, *keys: np.ndarray) -> np.ndarray:
    """Uniform draws in (0, 1), one per element of the broadcast ``keys``, fixed by ``seed`` and ``stream``."""
    with np.errstate(over="ignore"):
        h = _mix(np.full(np.broadcast(*keys).shape, (seed * 0x9E3779B97F4A7C15 + stream) & 0xFFFFFFFFFFFFFFFF,
                         dtype=np.uint64))
        for k in keys:
            h = _mix(h ^ (np.asarray(k).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


class SimulatedJudge:
    """Answers any pair on any prompt with the probability implied by latent qualities.

    The verdict on ``prompt`` with ``first`` shown first is
    ``P(first better) = sigmoid(q[first, prompt] - q[second, prompt] + position_bias + noise * e)``,
    with ``e`` a standard normal fixed by (seed, prompt, first, second): asking the same
    question twice gives the same answer, as from a deterministic judge, and every plan
    sees the same verdict for the same comparison.

    Args:
        quality: ``(n_systems, n_prompts)`` latent log-odds qualities.
        systems: names of the rows; default ``"0"``, ``"1"``, ...
        prompts: ids of the columns; default ``"0"``, ``"1"``, ...
        noise: standard deviation of the judge's error on the log-odds scale.
        position_bias: log-odds added in favour of the response shown first.
        hard: answer 0 or 1 (a Bernoulli draw) instead of a probability.
        unusable: fraction of comparisons whose verdicts are unusable (left out of results).
        seed: fixes the noise, the hard draws and which comparisons are unusable.
    """

    def __init__(self, quality: np.ndarray, systems: Sequence[str] | None = None,
                 prompts: Sequence[str] | None = None, *, noise: float = 0.0, position_bias: float = 0.0,
                 hard: bool = False, unusable: float = 0.0, seed: int = 0) -> None:
        q = np.asarray(quality, dtype=np.float64)
        if q.ndim != 2 or q.shape[0] < 2 or q.shape[1] < 1:
            raise ValueError(f"quality must be (n_systems >= 2, n_prompts >= 1), got shape {q.shape}")
        if not np.all(np.isfinite(q)):
            raise ValueError("quality must be finite")
        if noise < 0 or not 0 <= unusable < 1:
            raise ValueError("noise must be >= 0 and unusable in [0, 1)")
        self.quality = q
        self.systems = [str(i) for i in range(q.shape[0])] if systems is None else [str(s) for s in systems]
        self.prompts = [str(i) for i in range(q.shape[1])] if prompts is None else [str(p) for p in prompts]
        if len(self.systems) != q.shape[0] or len(self.prompts) != q.shape[1]:
            raise ValueError("systems/prompts do not match the shape of quality")
        if len(set(self.systems)) != len(self.systems) or len(set(self.prompts)) != len(self.prompts):
            raise ValueError("system names and prompt ids must be unique")
        self.noise = float(noise)
        self.position_bias = float(position_bias)
        self.hard = bool(hard)
        self.unusable = float(unusable)
        self.seed = int(seed)
        self._sys = {s: i for i, s in enumerate(self.systems)}
        self._prm = {p: j for j, p in enumerate(self.prompts)}

    @property
    def answered(self) -> dict[str, list[str]]:
        """Prompt id -> every system: the simulated data set is complete."""
        return {p: list(self.systems) for p in self.prompts}

    def expected(self, prompt: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """P(a beats b) of a noiseless, unbiased judge (index arrays)."""
        q = self.quality
        return expit(q[a, prompt] - q[b, prompt])

    def first_order(self, prompt: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The verdict P(first better) with ``first`` shown first (index arrays)."""
        q = self.quality
        x = q[first, prompt] - q[second, prompt] + self.position_bias
        if self.noise:
            x = x + self.noise * ndtri(keyed_uniform(self.seed, 1, prompt, first, second))
        p = expit(x)
        if self.hard:
            p = (keyed_uniform(self.seed, 2, prompt, first, second) < p).astype(np.float64)
        return p

    def both_orders(self, prompt: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Combined P(a beats b): the mean of the two orders' verdicts, as the run loop combines them."""
        return 0.5 * (self.first_order(prompt, a, b) + 1.0 - self.first_order(prompt, b, a))

    def usable(self, prompt: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether each comparison's verdicts are usable (the same for both listing orders)."""
        if not self.unusable:
            return np.ones(np.broadcast(prompt, a, b).shape, dtype=bool)
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        return keyed_uniform(self.seed, 3, prompt, lo, hi) >= self.unusable

    def indices(self, comparisons: Sequence[Comparison]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prompt, a, b) index arrays of named comparisons.

        Raises:
            KeyError: an unknown prompt or system.
        """
        p = np.fromiter((self._prm[c.prompt_id] for c in comparisons), np.int64, len(comparisons))
        a = np.fromiter((self._sys[c.system_a] for c in comparisons), np.int64, len(comparisons))
        b = np.fromiter((self._sys[c.system_b] for c in comparisons), np.int64, len(comparisons))
        return p, a, b

    def judge(self, comparisons: Iterable[Comparison]) -> dict[Comparison, float]:
        """Combined verdicts of named comparisons; unusable ones are absent."""
        cs = list(comparisons)
        if not cs:
            return {}
        p, a, b = self.indices(cs)
        out = self.both_orders(p, a, b)
        ok = self.usable(p, a, b)
        return {c: float(v) for c, v, k in zip(cs, out, ok) if k}
