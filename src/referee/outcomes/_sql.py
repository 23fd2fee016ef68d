"""Stored verdicts to unique-pair sums in SQL (DuckDB), for verdict logs too large for Python objects.

The same road as :func:`~referee.outcomes.judge_outcomes` followed by the numeric core's
aggregation, written in SQL over the store's Parquet shards and journal:

- pairwise: each comparison (one prompt, one pair of systems) averages its verdicts per
  presentation order; with both orders its outcome is ``(p_ab + 1 - p_ba) / 2`` at weight 1, with
  one it is that order minus the judge's position effect (measured on the comparisons with both) at
  weight 1/2 (:mod:`referee.outcomes._orders`);
- pointwise and verifier scores: every two scored systems of a prompt (:func:`compare_scores`);

then the outcomes are summed over unique pairs ``a < b`` into the sufficient statistics of
Bradley–Terry and of its sandwich covariance (:class:`referee.rate.Pairs`). Only that table, one
row a pair, reaches numpy. The prompt-clustered sandwich needs each prompt's score vector at the
fitted strengths: :meth:`PairSums.cluster_meat` computes it with a second query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import RatingError
from ..rate import Pairs
from ..store import POINTWISE_MODES, VerdictStore
from ..store._duck import answers_sql, connect

# One judge's pairwise comparisons, each presentation order averaged, for the prompts in
# [$lo, $hi) (either end open when NULL): memory stays bounded by the largest prompt range.
_COMPARISONS = """
INSERT INTO c
SELECT prompt_id, least(system_first, system_second) AS a, greatest(system_first, system_second) AS b,
       avg(p_first) FILTER (WHERE system_first < system_second) AS p_ab,
       avg(p_first) FILTER (WHERE system_first > system_second) AS p_ba
FROM ({answers}) v
WHERE p_first IS NOT NULL AND system_second IS NOT NULL
  AND ($lo IS NULL OR prompt_id >= $lo) AND ($hi IS NULL OR prompt_id < $hi)
GROUP BY prompt_id, a, b, bound
"""

# Comparisons as outcomes (prompt_id, a, b, o, w): ``o`` is P(a better), a < b; ``e`` the
# comparison's position effect where both orders are usable. A view: the 50M comparisons of 100M
# verdicts are read, not copied.
_PAIRWISE = """
CREATE TABLE d AS SELECT coalesce(avg((p_ab + p_ba - 1) / 2), 0) AS d FROM c
    WHERE p_ab IS NOT NULL AND p_ba IS NOT NULL;
CREATE VIEW outcomes AS
SELECT prompt_id, a, b,
       CASE WHEN p_ab IS NOT NULL AND p_ba IS NOT NULL THEN (p_ab + 1 - p_ba) / 2
            WHEN p_ab IS NOT NULL THEN greatest(0, least(1, p_ab - d))
            ELSE greatest(0, least(1, 1 - (p_ba - d))) END AS o,
       CASE WHEN p_ab IS NOT NULL AND p_ba IS NOT NULL THEN 1.0 ELSE 0.5 END AS w,
       (p_ab + p_ba - 1) / 2 AS e
FROM c, d
"""

_POINTWISE = """
CREATE TABLE outcomes AS
WITH v AS ({answers}),
s AS (
    SELECT prompt_id, system_first AS sys, any_value(score) AS score,
           any_value(json_extract_string(detail, '$.score_kind') = 'probability') AS prob
    FROM v WHERE system_second IS NULL AND score IS NOT NULL
    GROUP BY prompt_id, system_first)
SELECT x.prompt_id, x.sys AS a, y.sys AS b,
       CASE WHEN x.prob THEN greatest(0, least(1, x.score)) * (1 - greatest(0, least(1, y.score)))
                             + 0.5 * (greatest(0, least(1, x.score)) * greatest(0, least(1, y.score))
                                      + (1 - greatest(0, least(1, x.score))) * (1 - greatest(0, least(1, y.score))))
            WHEN x.score > y.score THEN 1.0 WHEN x.score < y.score THEN 0.0 ELSE 0.5 END AS o,
       1.0 AS w
FROM s x JOIN s y ON x.prompt_id = y.prompt_id AND x.sys < y.sys
"""

_SUMS = """
SELECT a, b, sum(w) AS count, sum(w * o) AS wins, sum(w * w) AS w2, sum(w * w * o) AS w2o,
       sum(w * w * o * o) AS w2o2, count(*) AS n
FROM outcomes GROUP BY a, b ORDER BY a, b
"""

# Each prompt's score vector at the fitted strengths: sum over its comparisons of w (o - p) at a, minus at b.
_CLUSTER = """
WITH r AS (
    SELECT o.prompt_id, o.a, o.b, o.w * (o.o - 1 / (1 + exp(tb.theta - ta.theta))) AS r
    FROM outcomes o JOIN theta ta ON ta.system = o.a JOIN theta tb ON tb.system = o.b)
SELECT prompt_id, system, sum(r) AS s FROM (
    SELECT prompt_id, a AS system, r FROM r UNION ALL SELECT prompt_id, b AS system, -r FROM r)
GROUP BY prompt_id, system
"""


# Verdicts grouped into comparisons at once: about 0.5 GB of DuckDB's memory.
PARTITION_ROWS = 5_000_000


def _prompt_ranges(store: VerdictStore, partition_rows: int) -> list[tuple[str | None, str | None]]:
    """Ranges ``[lo, hi)`` of prompt ids (open at both ends overall) with about ``partition_rows``
    verdicts each, assuming verdicts spread evenly over the store's prompts."""
    rows = sum(s["rows"] for s in store.shard_info())
    prompts = sorted(store.prompts())
    k = min(max(1, -(-rows // partition_rows)), max(1, len(prompts)))
    if k == 1:
        return [(None, None)]
    cuts = [prompts[len(prompts) * i // k] for i in range(1, k)]
    cuts = sorted(set(cuts))
    return list(zip([None, *cuts], [*cuts, None]))


@dataclass
class PairSums:
    """One judge's stored verdicts summed over unique pairs, with what the fit and report need.

    Attributes:
        systems: every system with an outcome, sorted; indices in ``pairs`` refer to it.
        pairs: the unique-pair sums (``inverse`` and ``flipped`` are empty: there is no per-verdict data).
        n_outcomes: outcomes (comparisons) per pair, aligned with ``pairs.a``.
        n_clusters: prompts with an outcome.
        position_effect: the judge's mean advantage for the first-shown response (pairwise only).
        one_order: comparisons judged in one order only (weight 1/2).
    """

    systems: list[str]
    pairs: Pairs
    n_outcomes: np.ndarray
    n_clusters: int
    position_effect: float | None = None
    one_order: int = 0
    _con: Any = field(default=None, repr=False)

    def cluster_meat(self, theta: np.ndarray) -> np.ndarray:
        """``B`` of the prompt-clustered sandwich at natural-scale strengths ``theta``: the sum over
        prompts of the outer product of each prompt's score vector."""
        import pyarrow as pa

        self._con.register("theta", pa.table({"system": self.systems, "theta": np.asarray(theta, np.float64)}))
        got = self._con.execute(_CLUSTER).fetchnumpy()
        index = {s: i for i, s in enumerate(self.systems)}
        _, cl = np.unique(got["prompt_id"], return_inverse=True)
        S = np.zeros((int(cl.max()) + 1 if len(cl) else 0, len(self.systems)))
        np.add.at(S, (cl, np.fromiter((index[s] for s in got["system"]), np.int64, len(cl))), got["s"])
        return S.T @ S

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def pair_sums(store: VerdictStore, judge_id: str, *, threads: int | None = None,
              partition_rows: int = PARTITION_ROWS) -> PairSums:
    """Sum one pairwise, pointwise or verifier judge's current verdicts over unique pairs, in DuckDB.

    Equal, within floating point, to aggregating :func:`~referee.outcomes.judge_outcomes` of the same
    judge (a test asserts it). Listwise judges and stored ensembles take the Python road. Pairwise
    verdicts are grouped into comparisons one range of prompt ids at a time, each holding about
    ``partition_rows`` verdicts; a comparison never spans two prompts, so the ranges add up exactly,
    and shards written prompt by prompt (as ``rank`` writes them) let DuckDB skip the row groups
    outside a range.

    Raises:
        RatingError: the judge is listwise or an ensemble, or has no usable verdict.
    """
    spec = store.judges(screens=True).get(judge_id)
    mode = (spec or {}).get("mode", "pairwise")
    if mode not in ("pairwise", *POINTWISE_MODES) or judge_id.startswith("ens-"):
        raise RatingError(f"judge {judge_id}: {mode} verdicts are aggregated in Python, not in SQL")
    con = connect(threads)
    try:
        answers, params = answers_sql(store, con, judge_id, (mode,))
        if mode == "pairwise":
            con.execute("CREATE TABLE c (prompt_id VARCHAR, a VARCHAR, b VARCHAR, p_ab DOUBLE, p_ba DOUBLE)")
            for lo, hi in _prompt_ranges(store, partition_rows):
                con.execute(_COMPARISONS.format(answers=answers), {**params, "lo": lo, "hi": hi})
            con.execute(_PAIRWISE)
        else:
            con.execute(_POINTWISE.format(answers=answers), params)
        got = con.execute(_SUMS).fetchnumpy()
        if not len(got["a"]):
            raise RatingError(f"judge {judge_id} has no usable verdicts to rate")
        effect, one_order = None, 0
        n_clusters = con.execute("SELECT count(DISTINCT prompt_id) FROM outcomes").fetchall()[0][0]
        if mode == "pairwise":
            one_order = con.execute("SELECT count(*) FROM outcomes WHERE w < 1").fetchall()[0][0]
            effect = con.execute("SELECT avg(e) FROM outcomes").fetchall()[0][0]
    except BaseException:
        con.close()
        raise
    systems = sorted(set(got["a"].tolist()) | set(got["b"].tolist()))
    index = {s: i for i, s in enumerate(systems)}
    a = np.fromiter((index[s] for s in got["a"]), np.int64, len(got["a"]))
    b = np.fromiter((index[s] for s in got["b"]), np.int64, len(got["b"]))
    empty = np.zeros(0, np.int64)
    pairs = Pairs(n_systems=len(systems), a=a, b=b, wins=got["wins"].astype(np.float64),
                  count=got["count"].astype(np.float64), w2=got["w2"].astype(np.float64),
                  w2o=got["w2o"].astype(np.float64), w2o2=got["w2o2"].astype(np.float64), inverse=empty,
                  flipped=empty.astype(bool), n_verdicts=int(got["n"].sum()))
    return PairSums(systems, pairs, got["n"].astype(np.int64), int(n_clusters),
                    None if effect is None else float(effect), int(one_order), con)

