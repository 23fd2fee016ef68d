"""Python unit tests run against a code candidate in a subprocess: timeout, resource limits, no network.

The candidate's code (the first ```python fenced block, or the whole output) and the tests (given,
or the prompt's reference) run in a fresh isolated interpreter (``python -I``) in an empty
temporary folder with an empty environment, under CPU-time, address-space, file-size and
open-file limits, with the network cut: in a new network namespace (``unshare -rn``) when the
kernel allows it, and always by an audit hook that refuses socket connections, binds and DNS.
The tests are plain ``assert`` statements and/or ``test_*`` functions; the score is the passed
fraction. This stops accidents and careless code, not a determined attacker: run hostile code
in a container.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache

from ..types import ScoredAnswer
from ._base import Verifier

_CODE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)

_RUNNER = r'''
import sys, json
nonce = sys.stdin.readline().strip()
def _no_net(event, args):
    if event in ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto", "socket.gethostbyname"):
        raise PermissionError("network access is disabled in referee's sandbox")
sys.addaudithook(_no_net)
ns = {"__name__": "__candidate__"}
res = {"passed": 0, "failed": 0, "errors": []}
try:
    exec(compile(open("solution.py").read(), "solution.py", "exec"), ns)
except BaseException as e:
    res["errors"].append("solution: " + type(e).__name__ + ": " + str(e)[:200])
    res["load_failed"] = True
else:
    tests = open("tests.py").read()
    try:
        exec(compile(tests, "tests.py", "exec"), ns)
        top_ok = True
    except BaseException as e:
        top_ok = False
        res["errors"].append("tests: " + type(e).__name__ + ": " + str(e)[:200])
    names = [n for n, f in list(ns.items()) if n.startswith("test") and callable(f)]
    import ast
    try:
        top_asserts = any(isinstance(n, ast.Assert) for n in ast.parse(tests).body)
    except SyntaxError:
        top_asserts = True
    if not names or top_asserts or not top_ok:
        res["passed" if top_ok else "failed"] += 1
    if True:
        for n in names:
            try:
                ns[n]()
                res["passed"] += 1
            except BaseException as e:
                res["failed"] += 1
                res["errors"].append(n + ": " + type(e).__name__ + ": " + str(e)[:200])
sys.stdout.flush()
sys.__stdout__.write("\n" + nonce + json.dumps(res) + "\n")
sys.__stdout__.flush()
'''


def extract_code(output: str) -> str:
    """The longest fenced Python block of ``output``, or all of it when there is no fence."""
    blocks = _CODE.findall(output)
    return max(blocks, key=len) if blocks else output


@lru_cache(maxsize=1)
def netns_available() -> bool:
    """Whether ``unshare -rn`` can give a child its own, empty network namespace here."""
    exe = shutil.which("unshare")
    if exe is None:
        return False
    try:
        return subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class PythonTests(Verifier):
    """Pass fraction of Python unit tests against the candidate's code.

    Args:
        tests: test code (asserts and/or ``test_*`` functions); ``None`` reads it from the prompt's reference.
        timeout: wall-clock seconds (CPU time is limited to the same).
        memory_mb: address-space limit.
    """

    kind = "python-tests"

    def __init__(self, tests: str | None = None, *, timeout: float = 10.0, memory_mb: int = 512,
                 name: str | None = None) -> None:
        self.tests = tests
        self.use_reference = tests is None
        self.timeout = timeout
        self.memory_mb = memory_mb
        self._identify({"tests_sha256": None if tests is None else __import__("hashlib").sha256(tests.encode()).hexdigest(),
                        "timeout": timeout, "memory_mb": memory_mb,
                        "python": sys.version.split()[0]}, name)

    def _limits(self) -> None:  # runs in the child before exec
        import resource

        cpu = int(self.timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        mem = self.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (10 * 1024 * 1024, 10 * 1024 * 1024))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()

    def check(self, question: str, response: str, reference: str | None) -> ScoredAnswer:
        tests = self.tests if self.tests is not None else (reference or "")
        code = extract_code(response)
        nonce = "@@referee-" + secrets.token_hex(16) + "@@"
        with tempfile.TemporaryDirectory(prefix="referee-pytest-") as tmp:
            for fname, text in (("solution.py", code), ("tests.py", tests), ("runner.py", _RUNNER)):
                with open(os.path.join(tmp, fname), "w", encoding="utf-8") as fh:
                    fh.write(text)
            cmd = [sys.executable, "-I", "-S", "runner.py"]
            sandbox = "audit-hook"
            if netns_available():
                cmd = [shutil.which("unshare") or "unshare", "-rn", *cmd]
                sandbox = "netns+audit-hook"
            try:
                proc = subprocess.run(cmd, input=nonce + "\n", capture_output=True, text=True, cwd=tmp,
                                      env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
                                      timeout=self.timeout, preexec_fn=self._limits)
            except subprocess.TimeoutExpired as e:
                return ScoredAnswer(status="ok", score=0.0, detail={"passed": 0, "failed": 0, "timeout": True,
                                                                    "sandbox": sandbox},
                                    raw=((e.stdout or "") if isinstance(e.stdout, str) else "")[-2000:])
        marker = [line for line in proc.stdout.splitlines() if line.startswith(nonce)]
        stderr_tail = proc.stderr[-1500:]
        if not marker:
            return ScoredAnswer(status="ok", score=0.0, raw=stderr_tail,
                                detail={"passed": 0, "failed": 0, "crashed": True, "returncode": proc.returncode,
                                        "sandbox": sandbox})
        res = json.loads(marker[-1][len(nonce):])
        total = res["passed"] + res["failed"]
        score = res["passed"] / total if total else 0.0
        return ScoredAnswer(status="ok", score=score, raw=stderr_tail,
                            detail={**res, "returncode": proc.returncode, "sandbox": sandbox})
