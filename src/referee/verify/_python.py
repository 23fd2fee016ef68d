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

_FENCE_LINE = re.compile(r"^[ \t]*```[ \t]*(?:python|py|python3)?[ \t]*$", re.IGNORECASE | re.MULTILINE)


def extract_code(output: str) -> str:
    """The longest fenced Python block of ``output``; without a whole block, all of it minus lines
    that are a lone fence (models often close a block they never opened, or are cut off inside one)."""
    blocks = _CODE.findall(output)
    return max(blocks, key=len) if blocks else _FENCE_LINE.sub("", output)


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
                        "runner": "checker+sandbox/3",
                        "python": sys.version.split()[0]}, name)

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        tests = self.tests if self.tests is not None else (reference or "")
        res = run_tests(candidate_program(question, response), tests, timeout=self.timeout, memory_mb=self.memory_mb,
                        entry_point=self.entry_point)
        total = res["passed"] + res["failed"]
        score = res["passed"] / total if total else 0.0
        return ScoredAnswer(status="ok", score=score, detail=res, raw="\n".join(res.get("errors") or [])[-2000:])


class PublicExamples(Verifier):
    """Pass fraction of the examples in the prompt's own docstring (``>>> f(2)`` then ``4``), run
    against the candidate's code like :class:`PythonTests`: the public checks a system, a selector
    or a reviser may use, never a benchmark's hidden tests.

    A candidate that is only the function's body or its completion is run after the prompt (the
    HumanEval style); one that defines the function itself is run alone. A prompt without examples
    gives an ``unparseable`` verdict (nothing to check), counted as such.
    """

    kind = "examples"

    def __init__(self, *, timeout: float = 10.0, memory_mb: int = 512, name: str | None = None) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._identify({"timeout": timeout, "memory_mb": memory_mb, "python": sys.version.split()[0],
                        "runner": "checker+sandbox/3"}, name)

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        tests = example_tests(question)
        if not tests:
            return ScoredAnswer(status="unparseable", error="the prompt has no docstring examples to run")
        res = run_tests(candidate_program(question, response), tests, timeout=self.timeout, memory_mb=self.memory_mb)
        total = res["passed"] + res["failed"]
        return ScoredAnswer(status="ok", score=res["passed"] / total if total else 0.0,
                            detail={**res, "examples": tests.count("def test_example_")},
                            raw="\n".join(res.get("errors") or [])[-2000:])


# plain "=" is left out: prompts use it for definitions ("tri(3) = 8" of a function returning a list)
_ARROW = r"(?:==>|==|=>|➞|->|returns|should return)"


def example_tests(prompt: str) -> str:
    """Test functions, one per example in ``prompt`` whose expected output is a Python literal: doctest
    examples (``>>> f(2)`` then ``4``) and the prose forms code prompts use for the prompt's last
    function (``f(2) == 4``, ``f(2) ➞ 4``, ``f(2) => 4``, ``f(2) returns 4``, ...)."""
    import ast
    import doctest

    pairs: list[tuple[str, str]] = []
    try:
        for ex in doctest.DocTestParser().get_examples(prompt):
            # the docstring's closing quotes often follow the expected output on the next line
            want = "\n".join(ln for ln in ex.want.splitlines() if ln.strip() not in ('"""', "'''")).strip()
            pairs.append((ex.source.strip(), want))
    except ValueError:  # inconsistent doctest indentation: the prose forms may still be there
        pass
    names = _defined(prompt)
    if names:
        prose = re.compile(rf"^[ \t*>-]*({re.escape(names[-1])}\(.*\))\s*{_ARROW}\s*(.+?)\s*\.?\s*$", re.MULTILINE)
        pairs += [(m.group(1), m.group(2)) for m in prose.finditer(prompt) if not m.group(1).startswith(">>>")]
    import builtins

    known = set(dir(builtins)) | set(names)
    out, seen = [], set()
    for source, want in pairs:
        try:
            value = ast.literal_eval(want)
            call = ast.parse(source, mode="eval")
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue  # a statement, or output that is not a value: nothing to compare with
        if any(isinstance(n, ast.Name) and n.id not in known for n in ast.walk(call)):
            continue  # names the prompt never defines ("is_happy(a) => False"): no runnable example
        shown = ast.unparse(call)  # unparsed: comments and line breaks gone
        if (shown, repr(value)) not in seen:
            seen.add((shown, repr(value)))
            # the message says what the call gave: feedback a reviser can act on (CodeRL's signal)
            out.append(f"def test_example_{len(out)}():\n    got = ({shown})\n"
                       f"    assert got == ({value!r}), '%s returned %r, expected %r' % ({shown!r}, got, {value!r})\n")
    return "\n".join(out)


def _defined(source: str) -> list[str]:
    return re.findall(r"^def\s+([A-Za-z_]\w*)\s*\(", source, re.MULTILINE)


_IMPORT = re.compile(r"^(?:from\s+\S+\s+import\s+.+|import\s+.+)$", re.MULTILINE)


def candidate_program(question: str, response: str) -> str:
    """The program a code candidate stands for. A candidate that is only the body or the completion
    of the prompt's last function runs after the prompt (the HumanEval style); one that defines that
    function itself runs alone, after the prompt's own import lines (a whole-function answer that
    leaves out ``from typing import List`` is a formatting slip, not wrong code)."""
    code = extract_code(response)
    names = _defined(question)
    if not names:
        return code
    if not re.search(rf"^\s*def\s+{re.escape(names[-1])}\s*\(", code, re.MULTILINE):
        return question + code
    head = question[: question.find(f"def {names[0]}")] if f"def {names[0]}" in question else ""
    imports = "\n".join(m.group(0) for m in _IMPORT.finditer(head))
    return f"{imports}\n{code}" if imports else code
