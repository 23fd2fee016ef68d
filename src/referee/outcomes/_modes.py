"""Pointwise scores and listwise rankings into pairwise outcomes.

- Pointwise (and verifier) scores: on each prompt, every two systems with usable scores make one
  outcome. Scores on a scale compare hard (1, 0, or 0.5 within ``tie_margin``); probabilities
  (P(Yes)) compare as independent Bernoulli draws: P(a wins) + P(tie)/2 =
  ``pa (1 - pb) + (pa pb + (1 - pa)(1 - pb)) / 2``.
- Listwise rankings are broken into all their pairs (full rank breaking, which keeps the
  Plackett–Luce ordering information usable by Bradley–Terry); the forward and the reversed
  presentation play the role of the two orders of a pairwise comparison, so ``p_ab`` is "the
  pair member shown earlier wins", ``consistent`` says whether both presentations agreed, and a
  pair seen in one presentation only is treated as a one-order pairwise comparison.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..store import POINTWISE_MODES, PairOutcome, Verdict
from ._orders import from_orders, position_effect


def compare_scores(sa: float, sb: float, *, probability: bool = False, tie_margin: float = 0.0) -> float:
    """P(a beats b) from two pointwise scores (see the module notes)."""
    if probability:
        sa, sb = min(1.0, max(0.0, sa)), min(1.0, max(0.0, sb))
        return sa * (1 - sb) + 0.5 * (sa * sb + (1 - sa) * (1 - sb))
    if abs(sa - sb) <= tie_margin:
        return 0.5
    return 1.0 if sa > sb else 0.0


def pointwise_outcomes(verdicts: Iterable[Verdict], *, tie_margin: float = 0.0) -> list[PairOutcome]:
    """Pairwise outcomes from pointwise/verifier scores: every two scored systems of a prompt.

    ``p_ab`` carries the outcome (there is no presentation order); scores of kind
    ``"probability"`` compare as Bernoulli draws, others hard with ties within ``tie_margin``.
    """
    groups: dict[tuple[str, str], dict[str, Verdict]] = {}
    for v in verdicts:
        if v.mode in POINTWISE_MODES and v.status == "ok" and v.score is not None and len(v.systems) == 1:
            groups.setdefault((v.judge_id, v.prompt_id), {}).setdefault(v.systems[0], v)
    out = []
    for (jid, pid), by_sys in groups.items():
        names = list(by_sys)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                va, vb = by_sys[a], by_sys[b]
                p = compare_scores(va.score, vb.score, probability=va.detail.get("score_kind") == "probability",
                                   tie_margin=tie_margin)
                out.append(PairOutcome(judge_id=jid, prompt_id=pid, system_a=a, system_b=b, p_a=p, p_ab=p,
                                       verdict_ids=[va.verdict_id, vb.verdict_id]))
    return out


def listwise_outcomes(verdicts: Iterable[Verdict]) -> list[PairOutcome]:
    """Pairwise outcomes from listwise rankings by full rank breaking, forward/reversed as the two orders."""
    groups: dict[tuple[str, str, frozenset[str]], list[Verdict]] = {}
    for v in verdicts:
        if v.mode == "listwise" and v.status == "ok" and v.detail.get("ranking") is not None:
            groups.setdefault((v.judge_id, v.prompt_id, frozenset(v.systems)), []).append(v)
    pairs = []
    for (jid, pid, _), vs in groups.items():
        ref = vs[0].systems
        for i, a in enumerate(ref):
            for b in ref[i + 1:]:
                ab, ba = [], []  # a shown before b: did a win? / b shown before a: did b win?
                for v in vs:
                    shown = {s: k for k, s in enumerate(v.systems)}
                    place = {v.systems[pos]: r for r, pos in enumerate(v.detail["ranking"])}
                    a_wins = place[a] < place[b]
                    if shown[a] < shown[b]:
                        ab.append(1.0 if a_wins else 0.0)
                    else:
                        ba.append(0.0 if a_wins else 1.0)
                pairs.append((jid, pid, a, b, sum(ab) / len(ab) if ab else None, sum(ba) / len(ba) if ba else None,
                              [v.verdict_id for v in vs]))
    deltas = {jid: position_effect((p[4], p[5]) for p in pairs if p[0] == jid) for jid in {p[0] for p in pairs}}
    return [from_orders(jid, pid, a, b, p_ab, p_ba, ids, delta=deltas[jid]) for jid, pid, a, b, p_ab, p_ba, ids in pairs]
