"""``referee report RUN_DIR``: the self-contained HTML report of a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import app


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="a run folder written by `referee rank` (holds verdicts.sqlite)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="the HTML file (default RUN_DIR/report.html)"),
) -> None:
    """Write one self-contained HTML file: leaderboard, win-rate matrix, judge biases, every verdict.

    The file needs no network to open (plotly.js is inlined), so it can be mailed or attached as is.
    """
    from ..report import write_html_report

    console = Console()
    with console.status("writing the report"):
        path = write_html_report(run_dir, output)
    size = path.stat().st_size
    console.print(f"wrote {path} ({size / 1e6:.1f} MB); open it in any browser, no network needed", highlight=False)
