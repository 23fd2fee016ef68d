"""What every verifier is: a pointwise judge without an LLM, with the same provenance."""

from __future__ import annotations

from typing import Any

from ..types import ScoredAnswer, judge_id_for


class Verifier:
    """Base class: ``score(question, response, reference=None) -> ScoredAnswer``.

    A verifier's verdicts are stored with ``mode="verifier"`` and a numeric ``score`` (higher is
    better); its ``judge_id`` hashes its kind, parameters and library versions, like an LLM judge's.
    Subclasses set :attr:`kind`, call :meth:`_identify` with their parameters and implement
    :meth:`check`.
    """

    mode = "verifier"
    kind = "verifier"
    use_reference = False

    def _identify(self, params: dict[str, Any], name: str | None = None) -> None:
        self.params = params
        self.spec: dict[str, Any] = {"mode": self.mode, "verifier": self.kind, "use_reference": self.use_reference,
                                     **params}
        self.judge_id = judge_id_for("vf", self.spec)
        self.name = name or self.kind

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:  # pragma: no cover
        raise NotImplementedError

    def score(self, question: str, response: str, reference: str | None = None) -> ScoredAnswer:
        if self.use_reference and reference is None:
            return ScoredAnswer(status="error", error=f"{self.kind} needs a reference answer and this prompt has none")
        try:
            ans = self.check(question, response, reference)
        except Exception as e:  # noqa: BLE001 - a verifier failure is this verdict's error, not the run's
            return ScoredAnswer(status="error", error=f"{self.kind} failed: {type(e).__name__}: {e}"[:500])
        ans.detail.setdefault("score_kind", "probability" if ans.detail.get("binary") else "scale")
        return ans


def passed(ok: bool, **detail: Any) -> ScoredAnswer:
    """A pass/fail verdict: score 1.0 or 0.0."""
    return ScoredAnswer(status="ok", score=1.0 if ok else 0.0, detail={"passed": bool(ok), **detail})
