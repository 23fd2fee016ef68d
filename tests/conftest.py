"""Shared fixtures: real judges (llama.cpp with packaged models), loaded once per session."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# The README's test command (and so CI) runs the same generated examples every time, so a red run
# replays exactly; HYPOTHESIS_PROFILE=explore searches new ones (and keeps what it finds in
# .hypothesis/, which later runs try first).
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared" / "data"
EXAMPLE = ROOT / "examples" / "candidates.jsonl"


def shared_data(relative: str) -> Path:
    """A file of ../shared/data, which CI always has: a test that reads it fails, naming the file,
    rather than skipping where nobody notices that it never ran."""
    path = SHARED / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: these tests read the shared AlpacaEval data (see README.md)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def smol_judge():
    """The real SmolLM2-135M judge through llama.cpp: fast, position-biased; for mechanics only."""
    from referee.judge import make_judge

    return make_judge("smollm2-135m", n_ctx=2048)


@pytest.fixture(scope="session")
def qwen_judge():
    """The real default judge (Qwen2.5-Coder-1.5B through llama.cpp): for quality assertions."""
    from referee.judge import make_judge

    return make_judge("qwen2.5-coder-1.5b", n_ctx=4096)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def referee_cmd(*args: str) -> list[str]:
    """The CLI as a user runs it, in a child process."""
    return [sys.executable, "-m", "referee", *args]


@pytest.fixture
def child_env():
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "200"
    return env


def run_cli(monkeypatch, *args) -> int:
    """Run ``referee ARGS`` in this process (through ``main``, as the console script does); its exit code."""
    from referee.cli import main

    monkeypatch.setattr(sys, "argv", ["referee", *map(str, args)])
    try:
        main()
    except SystemExit as e:
        return e.code
    return 0


@pytest.fixture(scope="session")
def smol_server(tmp_path_factory):
    """A real llama-cpp-python OpenAI-compatible server on 127.0.0.1 with SmolLM2, one per session."""
    import llama_cpp.server  # noqa: F401  - scripts/setup.sh installs it: missing is a failure, not a skip
    from _http_helpers import LlamaServer
    from referee.backends import resolve_model

    srv = LlamaServer(resolve_model("smollm2-135m")[0], n_ctx=2048, n_threads=2,
                      log=tmp_path_factory.mktemp("srv") / "server.log")
    try:
        srv.wait_ready(timeout=120)
        yield srv
    finally:
        srv.stop()



def kill_9_after(proc, db: Path, rows: int, *, table: str = "generations", timeout: float = 300) -> int:
    """``kill -9`` the child ``proc`` once ``db`` holds ``rows`` rows of ``table``; the rows kept."""
    import signal
    import sqlite3
    import time

    def count() -> int:
        try:
            with sqlite3.connect(db) as con:
                return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet, or mid-write
            return 0

    deadline = time.monotonic() + timeout
    while count() < rows and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return count()


def example_subset(folder, n_prompts: int = 8):
    """The first ``n_prompts`` prompts of the example file, as a candidates file in ``folder``."""
    import json as _json

    rows = [_json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    keep = list(dict.fromkeys(r["prompt_id"] for r in rows))[:n_prompts]
    path = folder / f"example-{n_prompts}.jsonl"
    path.write_text("".join(_json.dumps(r) + "\n" for r in rows if r["prompt_id"] in keep), encoding="utf-8")
    return path
