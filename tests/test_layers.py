"""The house's layering: import-linter's contracts (pyproject.toml) hold, and the numeric core
loads without the pipeline, the HTTP client, pydantic or the templates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout and "3 kept" in done.stdout


def test_the_numeric_core_imports_no_pipeline_http_pydantic_or_templates():
    code = ("import sys, referee.rate, referee.relevance\n"
            "heavy = ('referee._pipeline', 'referee.judge', 'referee.store', 'httpx', 'pydantic', 'jinja2', 'typer',"
            " 'llama_cpp')\n"
            "print(','.join(m for m in heavy if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
