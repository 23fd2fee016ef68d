"""Python unit tests run against a code candidate: the score is the passed fraction.

The candidate's code (the longest fenced Python block, or the whole output) runs in a sandboxed
process and the tests in another one that holds them (:mod:`referee.verify._sandbox`): the
candidate can change its verdict only by returning correct values.
"""

from __future__ import annotations

import re
import sys

from ..types import ScoredAnswer
from ._base import Verifier
from ._sandbox import run_tests

_CODE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)

def extract_code(output: str) -> str:
    """The longest fenced Python block of ``output``, or all of it when there is no fence."""
    blocks = _CODE.findall(output)
    return max(blocks, key=len) if blocks else output


class PythonTests(Verifier):
    """Pass fraction of Python unit tests against the candidate's code.

    Args:
        tests: test code (asserts and/or ``test_*`` functions); ``None`` reads it from the prompt's reference.
        timeout: wall-clock seconds (CPU time is limited to the same).
        memory_mb: address-space limit.
        entry_point: the function a HumanEval-style ``check(candidate)`` in the tests is called with.

    ``detail["result"]`` says how the run ended: ``passed``, ``failed``, ``timeout``, ``crashed``,
    ``syntax_error`` or ``load_error`` (all but ``passed`` score what passed, usually 0), and
    ``detail["sandbox"]`` which isolation ran the candidate.
    """

    kind = "python-tests"

    def __init__(self, tests: str | None = None, *, timeout: float = 10.0, memory_mb: int = 512,
                 entry_point: str | None = None, name: str | None = None) -> None:
        self.tests = tests
        self.entry_point = entry_point
        self.use_reference = tests is None
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._identify({"tests_sha256": None if tests is None else __import__("hashlib").sha256(tests.encode()).hexdigest(),
                        "timeout": timeout, "memory_mb": memory_mb, "entry_point": entry_point,
                        "runner": "checker+sandbox/1",
                        "python": sys.version.split()[0]}, name)

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        tests = self.tests if self.tests is not None else (reference or "")
        res = run_tests(extract_code(response), tests, timeout=self.timeout, memory_mb=self.memory_mb,
                        entry_point=self.entry_point)
        total = res["passed"] + res["failed"]
        score = res["passed"] / total if total else 0.0
        return ScoredAnswer(status="ok", score=score, detail=res, raw="\n".join(res.get("errors") or [])[-2000:])
