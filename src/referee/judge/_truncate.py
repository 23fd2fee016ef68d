"""Fitting a question and its candidates into a judge's context.

A question that is too long keeps its head and its tail: the instruction is as often at the end
("... summarise the text above") as at the start. Candidates share one budget, so a short one leaves
what it does not use to a long one. Each kind of text says, in its own marker, what was cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TRUNCATION_MARKER = "\n[... truncated by referee: the rest of this response was cut to fit the judge's context ...]"
QUESTION_TRUNCATION_MARKER = ("\n[... truncated by referee: the middle of this question was cut to fit the judge's "
                              "context ...]\n")
REFERENCE_TRUNCATION_MARKER = ("\n[... truncated by referee: the rest of this reference answer was cut to fit the "
                               "judge's context ...]")
MARKERS = {"response": TRUNCATION_MARKER, "reference": REFERENCE_TRUNCATION_MARKER}

# The share of a cut question kept from its end.
QUESTION_TAIL = 0.5
# The least a candidate is given however full the context: a prompt that then overflows is an error
# verdict, which says more than a candidate cut to nothing.
MIN_CANDIDATE_TOKENS = 32


def default_candidate_cap(n_ctx: int, per_context: float = 3 / 8, floor: int = 1536) -> int:
    """The default most tokens of one candidate for a judge with an ``n_ctx`` context.

    ``per_context`` of the context (1536 of 4096 for pairwise and pointwise judges), never below
    ``floor``: up to 4096 tokens of context the cap is the one every judge had before it followed
    the context, so their specs and ids stay the same (and there the context, not the cap, is what
    mostly limits a candidate). Larger contexts let candidates grow with them.
    """
    return max(floor, int(n_ctx * per_context))


def question_budget(n_ctx: int) -> int:
    # Independent of the candidates on purpose: the question comes before them in every prompt, and
    # the same cut for every pair keeps llama.cpp's KV cache prefix shared across the prompt's pairs.
    return max(64, n_ctx // 4)


def share_budget(lengths: Sequence[int], total: int, cap: int, floor: int = MIN_CANDIDATE_TOKENS) -> list[int]:
    """Token budgets for texts of ``lengths`` sharing ``total``: max-min fair, at most ``cap`` each.

    Shortest first, each text takes what it needs up to an equal share of what is left, so what a
    short text does not use goes to the longer ones. A text is cut only where its budget is below its
    length; no budget is below ``floor``.
    """
    out = [0] * len(lengths)
    left = max(0, total)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for k, i in enumerate(order):
        give = min(lengths[i], cap, left // (len(order) - k))
        left -= give
        out[i] = max(floor, give)
    return out


def fit(backend: Any, frame_tokens: int, question: str, texts: Sequence[str], cap: int,
        kinds: Sequence[str] | None = None) -> tuple[str, list[str], list[bool]]:
    """``question`` and ``texts`` cut to fit ``backend.context_size`` with ``frame_tokens`` of the rest.

    ``kinds`` names each text (``response``, ``reference``) for its marker; responses by default.
    Returns the question, the texts and the truncation flags (question first).
    """
    n_ctx = backend.context_size
    question, q_cut = backend.truncate(question, question_budget(n_ctx), QUESTION_TRUNCATION_MARKER,
                                       tail=QUESTION_TAIL)
    left = n_ctx - frame_tokens - backend.count_tokens(question)
    budgets = share_budget([backend.count_tokens(t) for t in texts], left, cap)
    out, cuts = [], [q_cut]
    for t, budget, kind in zip(texts, budgets, kinds or ["response"] * len(texts)):
        t2, cut = backend.truncate(t, budget, MARKERS[kind])
        out.append(t2)
        cuts.append(cut)
    return question, out, cuts
