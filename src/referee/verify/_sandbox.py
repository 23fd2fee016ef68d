"""Running untrusted code against trusted tests so that only correct results can pass.

Two processes, neither of them referee's:

- the **checker** (trusted: it never runs candidate code) holds the tests in memory (sent on its
  stdin, never written to disk), runs them, and writes the one result line referee reads;
- the **candidate** process runs the candidate's code in a sandbox — bubblewrap (new user, pid,
  network, IPC and mount namespaces; read-only system folders; an empty tmpfs as its only
  writable place) where the platform has it, else ``unshare -rn`` and then plain subprocess
  isolation — under CPU, memory, file-size, open-file and process-count limits, and, where this
  process may make one, in a pids cgroup of its own that is emptied when the job ends.

The checker's namespace holds a proxy for each function the candidate defined; a call sends the
arguments to the candidate process and gets the return value back as data (:data:`CODEC`: numbers,
strings, bytes, None and containers of them, nothing that can run code or compare itself equal to
anything). So the candidate cannot touch the tests, the assertions, the builtins or the result: it
can only return values, which the tests check. Exiting early, crashing or looping ends its process
and fails the calls still to come; printing goes nowhere (its stdout is not the result channel).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from functools import lru_cache

# Tagged JSON for values crossing between the processes; the same text runs on both sides.
CODEC = r'''
import math as _m
def _enc(v, depth=0):
    if depth > 60:
        raise TypeError("value nested too deeply")
    t = type(v)
    if v is None or t is bool or t is str:
        return v
    if t is int:
        return {"i": str(v)} if abs(v) >= 2 ** 53 else v
    if t is float:
        return v if _m.isfinite(v) else {"f": repr(v)}
    if t is complex:
        return {"c": [repr(v.real), repr(v.imag)]}
    if t is bytes:
        return {"b": v.hex()}
    if t in (list, tuple, set, frozenset):
        tag = {list: "l", tuple: "t", set: "s", frozenset: "z"}[t]
        return {tag: [_enc(x, depth + 1) for x in v]}
    if t is dict:
        return {"d": [[_enc(k, depth + 1), _enc(x, depth + 1)] for k, x in v.items()]}
    raise TypeError("cannot pass a " + t.__name__ + " between the processes")
def _dec(o):
    if o is None or type(o) in (bool, str, int, float):
        return o
    (tag, v), = o.items()
    if tag == "i": return int(v)
    if tag == "f": return float(v)
    if tag == "c": return complex(float(v[0]), float(v[1]))
    if tag == "b": return bytes.fromhex(v)
    if tag == "l": return [_dec(x) for x in v]
    if tag == "t": return tuple(_dec(x) for x in v)
    if tag == "s": return set(_dec(x) for x in v)
    if tag == "z": return frozenset(_dec(x) for x in v)
    if tag == "d": return {_dec(k): _dec(x) for k, x in v}
    raise ValueError("unknown tag")
'''

CANDIDATE = CODEC + r'''
import json, os, sys
_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
_null = os.open(os.devnull, os.O_RDWR)
os.dup2(_null, 0); os.dup2(_null, 1)
def _send(m):
    _out.write(json.dumps(m) + "\n"); _out.flush()
def _no_net(event, args):  # the floor where no namespace cuts the network; audit hooks cannot be removed
    if event in ("socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto", "socket.gethostbyname"):
        raise PermissionError("network access is disabled in referee's sandbox")
sys.addaudithook(_no_net)
code = json.loads(_in.readline())["code"]
ns = {"__name__": "__main__"}
try:
    compiled = compile(code, "solution.py", "exec")
except SyntaxError as e:
    _send({"syntax_error": str(e)[:300]}); raise SystemExit(0)
try:
    exec(compiled, ns)
except BaseException as e:
    _send({"load_error": type(e).__name__ + ": " + str(e)[:300]}); raise SystemExit(0)
_send({"ready": sorted(k for k, v in ns.items() if callable(v) and not k.startswith("__"))})
for line in _in:
    req = json.loads(line)
    try:
        res = ns[req["call"]](*_dec(req["args"]), **_dec(req["kwargs"]))
        msg = {"id": req["id"], "ok": _enc(res)}
    except BaseException as e:
        msg = {"id": req["id"], "raise": [type(e).__name__, str(e)[:300]]}
    _send(msg)
'''

CHECKER = CODEC + r'''
import ast, builtins, json, subprocess, sys
job = json.loads(sys.stdin.read())
res = {"passed": 0, "failed": 0, "errors": []}
proc = subprocess.Popen(job["cmd"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                        text=True, encoding="utf-8")
def _finish(result):
    sys.stdout.write("\n" + json.dumps(result) + "\n"); sys.stdout.flush()
    proc.kill()
    raise SystemExit(0)
class CandidateGone(Exception):
    """The candidate's process ended (exit, crash, limit) before answering."""
_seq = [0]
def _ask(msg):
    try:
        proc.stdin.write(json.dumps(msg) + "\n"); proc.stdin.flush()
        line = proc.stdout.readline()
    except (BrokenPipeError, OSError):
        line = ""
    if not line:
        raise CandidateGone("the candidate's process ended before answering")
    return json.loads(line)
def _proxy(name):
    def call(*args, **kwargs):
        _seq[0] += 1
        rep = _ask({"id": _seq[0], "call": name, "args": _enc(list(args)), "kwargs": _enc(kwargs)})
        if rep.get("id") != _seq[0]:
            raise CandidateGone("the candidate's process answered out of turn")
        if "raise" in rep:
            kind, text = rep["raise"]
            cls = getattr(builtins, kind, None)
            if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
                raise cls(text)
            raise RuntimeError(kind + ": " + text)
        return _dec(rep["ok"])
    call.__name__ = name
    return call
try:
    proc.stdin.write(json.dumps({"code": job["code"]}) + "\n"); proc.stdin.flush()
    hello = json.loads(proc.stdout.readline() or "null")
except (BrokenPipeError, OSError, ValueError):
    hello = None
if hello is None:
    _finish({**res, "result": "crashed", "errors": ["the candidate's process ended while loading"]})
if "syntax_error" in hello:
    _finish({**res, "result": "syntax_error", "errors": [hello["syntax_error"]]})
if "load_error" in hello:
    _finish({**res, "result": "load_error", "errors": [hello["load_error"]]})
ns = {"__name__": "__tests__"}
for name in hello.get("ready") or []:
    # a candidate's "def abs(x): return 0" must not answer for the builtin the tests call
    if isinstance(name, str) and name.isidentifier() and not hasattr(builtins, name):
        ns[name] = _proxy(name)
tests = job["tests"]
gone = False
try:
    body = ast.parse(tests).body
except SyntaxError as e:
    body = None
    res["errors"].append("tests: SyntaxError: " + str(e)[:200])
top_ok = body is not None
# statement by statement: a failing top-level assert still leaves the test functions after it defined
for stmt in body or []:
    try:
        exec(compile(ast.Module(body=[stmt], type_ignores=[]), "tests.py", "exec"), ns)
    except CandidateGone as e:
        top_ok, gone = False, True
        res["errors"].append("tests: " + str(e))
    except BaseException as e:
        top_ok = False
        res["errors"].append("tests: " + type(e).__name__ + ": " + str(e)[:200])
top_asserts = not body or any(isinstance(n, ast.Assert) for n in body)
# the tests' own functions, by their source: a candidate function of the same name is shadowed, not run
defined = [n.name for n in body or [] if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
names = [n for n in defined if n.startswith("test")]
entry = job.get("entry_point")
if entry and "check" in defined:
    if entry not in ns:
        res["errors"].append("the code defines no " + entry)
    names.append("check")
if not names or top_asserts or not top_ok:
    res["passed" if top_ok else "failed"] += 1
for n in names:
    try:
        ns[n](ns.get(entry)) if n == "check" else ns[n]()
        res["passed"] += 1
    except CandidateGone as e:
        gone = True
        res["failed"] += 1
        res["errors"].append(n + ": " + str(e))
    except BaseException as e:
        res["failed"] += 1
        res["errors"].append(n + ": " + type(e).__name__ + ": " + str(e)[:200])
res["result"] = "crashed" if gone else ("passed" if res["failed"] == 0 and res["passed"] > 0 else "failed")
_finish(res)
'''


@lru_cache(maxsize=1)
def sandbox_kind() -> str:
    """The strongest isolation this machine gives the candidate process: ``"bwrap"`` (bubblewrap),
    ``"netns"`` (``unshare -rn``: no network) or ``"subprocess"`` (limits only)."""
    bwrap = shutil.which("bwrap")
    if bwrap is not None:
        try:
            if subprocess.run([bwrap, *_bwrap_args(), "true"], capture_output=True, timeout=10).returncode == 0:
                return "bwrap"
        except (OSError, subprocess.SubprocessError):
            pass
    exe = shutil.which("unshare")
    if exe is not None:
        try:
            if subprocess.run([exe, "-rn", "true"], capture_output=True, timeout=5).returncode == 0:
                return "netns"
        except (OSError, subprocess.SubprocessError):
            pass
    return "subprocess"


def _python() -> str:
    # the interpreter itself, not a venv's wrapper: the sandbox binds only system folders
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _bwrap_args() -> list[str]:
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--proc", "/proc",
            "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/tmp", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin"]
    binds = {"/usr", os.path.realpath(sys.base_prefix), os.path.dirname(os.path.dirname(_python()))}
    for path in sorted(binds):
        if os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for link, target in (("/bin", "usr/bin"), ("/lib", "usr/lib"), ("/lib64", "usr/lib64"), ("/sbin", "usr/sbin")):
        if os.path.islink(link):
            args += ["--symlink", target, link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    return args


def candidate_command(kind: str | None = None) -> list[str]:
    """The command that starts the candidate process (:data:`CANDIDATE`) in the sandbox ``kind``."""
    kind = kind or sandbox_kind()
    cmd = [_python(), "-I", "-S", "-c", CANDIDATE]
    if kind == "bwrap":
        return [shutil.which("bwrap") or "bwrap", *_bwrap_args(), *cmd]
    if kind == "netns":
        return [shutil.which("unshare") or "unshare", "-rn", *cmd]
    return cmd


def _limits(cpu_s: int, memory_mb: int) -> None:
    """Resource limits, set in the checker before it starts and inherited by the candidate process."""
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    mem = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (10 * 1024 * 1024, 10 * 1024 * 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # a fork bomb stops at this many processes (per user namespace under bubblewrap)
    resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))
    os.setsid()


# Processes the checker and its candidate may hold together. RLIMIT_NPROC does not hold a process
# running as root on the host (a fork bomb filled the machine's 32k pids and outlived its
# sandbox), so where this process may make a pids cgroup, the job runs in one of its own.
MAX_PIDS = 64
_CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")


def _pid_cgroup() -> str | None:
    """A new pids cgroup limited to :data:`MAX_PIDS`, or ``None`` where none can be made."""
    import uuid

    for root in _CGROUP_ROOTS:
        if not os.path.isfile(os.path.join(root, "pids.max")) and not os.path.isfile(
                os.path.join(root, "cgroup.procs")):
            continue
        path = os.path.join(root, f"referee-sandbox-{uuid.uuid4().hex[:12]}")
        try:
            os.mkdir(path)
            with open(os.path.join(path, "pids.max"), "w") as f:
                f.write(str(MAX_PIDS))
            return path
        except OSError:
            try:
                os.rmdir(path)
            except OSError:
                pass
    return None


def _join_cgroup(path: str | None) -> None:
    if path is not None:
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))


def _end_cgroup(path: str | None) -> None:
    """Kill everything left in the job's cgroup (a candidate that escaped its process group) and remove it."""
    import time

    if path is None:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [int(x) for x in f.read().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)
    try:
        os.rmdir(path)
    except OSError:
        pass


def run_tests(code: str, tests: str, *, timeout: float, memory_mb: int, entry_point: str | None = None,
              kind: str | None = None) -> dict:
    """Run ``tests`` against ``code`` (see the module notes).

    Returns:
        ``passed`` / ``failed`` test counts, ``errors`` (short reasons), ``result`` — one of
        ``passed``, ``failed``, ``timeout``, ``crashed`` (the candidate's process ended before the
        tests were done), ``syntax_error``, ``load_error`` (the code raised while defining itself)
        — and ``sandbox``, the isolation used.
    """
    kind = kind or sandbox_kind()
    job = json.dumps({"code": code, "tests": tests, "entry_point": entry_point, "cmd": candidate_command(kind)})
    cgroup = _pid_cgroup()

    def setup() -> None:
        _join_cgroup(cgroup)
        _limits(int(timeout) + 1, memory_mb)

    try:
        return _run(job, timeout, setup, kind)
    finally:
        _end_cgroup(cgroup)


def _run(job: str, timeout: float, setup, kind: str) -> dict:
    proc = subprocess.Popen([_python(), "-I", "-S", "-c", CHECKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", cwd="/",
                            env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}, preexec_fn=setup)
    try:
        out, err = proc.communicate(job, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.communicate()
        return {"passed": 0, "failed": 0, "errors": [f"no result within {timeout:g} s"], "result": "timeout",
                "sandbox": kind}
    finally:
        _kill_group(proc.pid)
    lines = [line for line in out.splitlines() if line.strip()]
    try:
        res = json.loads(lines[-1])
    except (IndexError, ValueError):
        # the checker itself died: over the memory or CPU limit, which the candidate's data can push it to
        return {"passed": 0, "failed": 0, "errors": [f"the checker ended without a result (exit {proc.returncode}): "
                                                     f"{err[-300:]}"], "result": "crashed", "sandbox": kind}
    return {**res, "sandbox": kind}


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
