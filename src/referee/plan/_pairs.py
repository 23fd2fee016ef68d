"""Static plans: which (prompt, system, system) comparisons to ask for. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import NamedTuple


class Comparison(NamedTuple):
    """One unordered comparison of two systems on one prompt.

    The judge stage asks for it in both presentation orders; ``system_a`` is only the
    name listed first, not the one shown first.
    """

    prompt_id: str
    system_a: str
    system_b: str


def round_robin(answered: Mapping[str, Sequence[str]]) -> list[Comparison]:
    """All pairs of systems on every prompt.

    Args:
        answered: prompt id -> the systems that answered it, in a fixed order.

    Returns:
        ``sum(k*(k-1)/2)`` comparisons over prompts with ``k`` systems each, in prompt order,
        then in the order of ``answered``'s systems (so consecutive verdicts share a prompt and
        a first response, which keeps llama.cpp's KV cache warm).
    """
    return [Comparison(pid, a, b) for pid, systems in answered.items() for a, b in combinations(systems, 2)]


def vs_baseline(answered: Mapping[str, Sequence[str]], baseline: str) -> list[Comparison]:
    """Every system against one ``baseline`` system, on every prompt where both answered.

    Raises:
        ValueError: ``baseline`` answered no prompt.
    """
    if not any(baseline in systems for systems in answered.values()):
        known = sorted({s for systems in answered.values() for s in systems})
        raise ValueError(f"unknown baseline system '{baseline}' (systems: {', '.join(known)})")
    return [Comparison(pid, baseline, s) for pid, systems in answered.items() if baseline in systems
            for s in systems if s != baseline]
