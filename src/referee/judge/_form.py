"""How a text is built, in words a small model can compare: counts, layout, first and last sentence.

Shown next to the texts themselves (``{{ first | form }}`` in a judge template, the principles
proposer's and voter's form lines), it lets a small model see form differences it does not notice
by reading, such as which of two answers ends with a question. Untrusted text is quoted and cut,
and a forged closing tag inside a quote closes nothing.
"""

from __future__ import annotations

import json
import re


def sentences(body: str) -> list[str]:
    """``body`` split after ``.``, ``!`` or ``?`` and at line breaks (never empty: ``[""]``)."""
    return [x for x in re.split(r"(?<=[.!?])\s+|\n+", body) if x.strip()] or [""]


def quote(x: str, width: int = 80) -> str:
    """``x`` on one line, cut to ``width`` characters, as a JSON string."""
    x = " ".join(x.split()).replace("</", "< /")  # quoted, a forged closing tag still closes nothing
    return json.dumps(x if len(x) <= width else x[:width - 3] + "...")


def structure(body: str, paragraphs: bool = False) -> str:
    """Lines (and with ``paragraphs``, blank-line-separated blocks), list items and code blocks."""
    lines = [ln for ln in body.splitlines() if ln.strip()]
    listed = sum(bool(re.match(r"\s*(?:[-*\u2022]|\d+[.)])\s", ln)) for ln in lines)
    parts = [f"{len(lines)} lines"]
    if paragraphs:
        blocks = [b for b in re.split(r"\n\s*\n", body) if b.strip()]
        parts.append(f"{len(blocks)} paragraphs")
    if listed:
        parts.append(f"{listed} list items")
    if "```" in body:
        parts.append("a code block")
    return "; ".join(parts)


def form_summary(text: str) -> str:
    """How ``text`` is built, in one line: words, lines, lists, code, and its first and last sentence
    (quoted and cut)."""
    body = text.strip()
    said = sentences(body)
    return "; ".join([f"{len(body.split())} words", structure(body),
                      f"first sentence {quote(said[0])}", f"last sentence {quote(said[-1])}"])
