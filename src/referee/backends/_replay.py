"""Replay: pairwise verdicts recorded elsewhere play back as if a judge gave them.

Plans, stores and ratings can then be studied without running a model. Records are JSONL rows in
either form:

- referee's: ``prompt_id``, ``system_a``, ``system_b`` and ``p_a`` (P(system_a better));
- AlpacaEval's (``../shared/data/alpaca_eval/judge_pairs.jsonl``): ``instruction_id``, ``model_a``,
  ``model_b``, ``p_b_wins`` (or ``preference`` in 1..2) and ``annotator``.

The judge interface only sees texts, so the judge is bound to a candidate set first
(:meth:`ReplayJudge.bind`; ``referee rank`` does it): a (prompt text, first text, second text)
question is then looked up by the systems that wrote those texts. Recorded verdicts have no
presentation order, so both orders replay the same preference. A question with no record is
``unparseable`` ("no recorded verdict"), never invented.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import BackendError, InputError
from ..types import Answer


def _record(row: dict[str, Any], line: int, path: str) -> tuple[str, str, str, float, str | None] | None:
    try:
        if "instruction_id" in row:
            pid, a, b = str(row["instruction_id"]), str(row["model_a"]), str(row["model_b"])
            pref = row.get("preference")
            if pref is None and row.get("p_b_wins") is not None:
                pref = float(row["p_b_wins"]) + 1.0
            ann = row.get("annotator")
            if pref is None or not 1.0 <= float(pref) <= 2.0:
                return None  # AlpacaEval marks failed annotations with preference 0 (or none): no verdict
            p_a = 2.0 - float(pref)
        else:
            pid, a, b = str(row["prompt_id"]), str(row["system_a"]), str(row["system_b"])
            p_a = float(row["p_a"])
            ann = row.get("judge") or row.get("annotator")
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"not a recorded pairwise verdict ({type(e).__name__}: {e})", path=path, line=line) from None
    if not 0.0 <= p_a <= 1.0:
        raise InputError(f"probability {p_a} outside [0, 1]", path=path, line=line)
    return pid, a, b, p_a, ann


class ReplayJudge:
    """A pairwise judge that answers from recorded verdicts.

    Args:
        source: a JSONL file of records (see the module notes) or the records themselves.
        annotator: keep only records of this annotator (AlpacaEval files hold several).
    """

    mode = "pairwise"

    def __init__(self, source: str | Path | Iterable[dict[str, Any]], *, annotator: str | None = None,
                 name: str | None = None) -> None:
        h = hashlib.sha256()
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise BackendError(f"replay: no such file {path}")
            rows = []
            with open(path, encoding="utf-8") as fh:
                for i, line in enumerate(fh, 1):
                    h.update(line.encode())
                    if line.strip():
                        try:
                            rows.append((i, json.loads(line)))
                        except ValueError as e:
                            raise InputError(f"not JSON: {e}", path=path, line=i) from None
            where = str(path)
        else:
            rows = list(enumerate(source, 1))
            for _, r in rows:
                h.update(json.dumps(r, sort_keys=True).encode())
            where = "<records>"
        self.records: dict[tuple[str, frozenset[str]], tuple[str, float]] = {}
        self.skipped = 0
        for i, row in rows:
            rec = _record(row, i, where)
            if rec is None:
                self.skipped += 1
                continue
            pid, a, b, p_a, ann = rec
            if annotator is not None and ann != annotator:
                continue
            # several records of one pair (repeats) average
            key = (pid, frozenset((a, b)))
            if key in self.records:
                a0, p0 = self.records[key]
                p_a = (p0 + (p_a if a0 == a else 1.0 - p_a)) / 2
                a = a0
            self.records[key] = (a, p_a)
        if not self.records:
            raise BackendError(f"replay: {where} holds no verdicts" + (f" of annotator {annotator!r}" if annotator else ""))
        self.name = name or f"replay:{Path(where).name}" + (f"#{annotator}" if annotator else "")
        self.spec: dict[str, Any] = {"mode": self.mode, "method": "replay of recorded verdicts",
                                     "backend": {"backend": "replay", "source": Path(where).name,
                                                 "sha256": h.hexdigest(), "annotator": annotator}}
        self.judge_id = "rp-" + hashlib.sha256(json.dumps(self.spec, sort_keys=True).encode()).hexdigest()[:16]
        self._by_text: tuple[dict[str, list[str]], dict[tuple[str, str], list[str]]] | None = None

    def bind(self, candidates: Any) -> None:
        """Learn which (prompt, system) wrote each text, so texts can be looked up.

        The index holds one entry per candidate (not per pair of them), so that a judge bound to a
        million candidates fits in every Ray actor that holds one.
        """
        prompts: dict[str, list[str]] = {}
        writers: dict[tuple[str, str], list[str]] = {}
        for (pid, system), cand in candidates.candidates.items():
            writers.setdefault((pid, cand.output), []).append(system)
        for pid, prompt in candidates.prompts.items():
            prompts.setdefault(prompt.text, []).append(pid)
        self._by_text = (prompts, writers)

    def _find(self, question: str, first: str, second: str) -> tuple[tuple[str, str, str], float] | None:
        # Two prompts may share a text and two systems an output: the first recorded reading wins,
        # in the candidate set's order.
        prompts, writers = self._by_text  # type: ignore[misc]
        for pid in prompts.get(question, ()):
            for s1 in writers.get((pid, first), ()):
                for s2 in writers.get((pid, second), ()):
                    if s1 != s2:
                        p = self.lookup(pid, s1, s2)
                        if p is not None:
                            return (pid, s1, s2), p
        return None

    def lookup(self, prompt_id: str, first: str, second: str) -> float | None:
        """P(``first`` better) on ``prompt_id`` from the records, or ``None``."""
        rec = self.records.get((prompt_id, frozenset((first, second))))
        if rec is None:
            return None
        a, p_a = rec
        return p_a if a == first else 1.0 - p_a

    def judge(self, question: str, first: str, second: str) -> Any:

        if self._by_text is None:
            raise BackendError("replay judge is not bound to a candidate set: call bind(candidates) first")
        found = self._find(question, first, second)
        if found is None:
            return Answer(status="unparseable", error="no recorded verdict for this question",
                          detail={"replayed": False})
        (pid, s1, s2), p = found
        return Answer(status="ok", p_first=p, detail={"replayed": True, "record": [pid, s1, s2]},
                      raw=json.dumps({"p_first": p}))
