"""``referee select VERDICTS``: best-of-n per prompt from the (combined) judges."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from . import app
from ._combine import _split

console = Console()


@app.command("select")
def select_cmd(
    verdicts: Path = typer.Argument(..., help="a run folder / verdict store, a 'referee combine' JSONL, or "
                                             "external verdicts JSONL"),
    output: Path = typer.Option(..., "--output", "-o", help="picks as JSONL (one row per prompt)"),
    judges: Optional[str] = typer.Option(None, "--judges", help="comma-separated judges to combine (default: a "
                                                                "stored ensemble, else all judges)"),
    candidates: Optional[Path] = typer.Option(None, "--candidates", help="candidates file, for the picked texts"),
    seed: int = typer.Option(0, help="seed of the posterior draws behind P(best)"),
    show: int = typer.Option(10, help="print this many picks"),
    per_system: bool = typer.Option(False, "--per-system", help="one pick per prompt and system among its samples "
                                    "NAME#k (written as NAME+best, a candidates file for rank)"),
    include_flagged: bool = typer.Option(False, "--include-flagged",
                                         help="let systems 'rank' flagged as prompt-independent be picked"),
    tie_break: bool = typer.Option(False, "--tie-break", help="combine the judges here and let those screened out "
                                   "as near chance order the candidates the kept ones leave tied"),
) -> None:
    """Pick the best of the n candidates of every prompt, with the probability that the pick is the best."""
    from ..combine import write_jsonl
    from ..export import load_preferences, select_rows

    prefs = load_preferences(verdicts, judges=_split(judges), candidates=candidates, need_texts=False,
                             tie_break=tie_break)
    records = prefs.records
    if prefs.flagged and not include_flagged:
        # a system that does not answer its prompts is no candidate for the best answer
        records = [r for r in records if r["system_a"] not in prefs.flagged and r["system_b"] not in prefs.flagged]
        console.print(f"[yellow]warning[/]: left out {', '.join(prefs.flagged)}, flagged as prompt-independent "
                      "(--include-flagged keeps them)", highlight=False)
    rows = select_rows(records, prefs.prompts or None, prefs.outputs or None, seed=seed, per_system=per_system,
                       exclude=frozenset() if include_flagged else frozenset(prefs.flagged))
    write_jsonl(output, rows)
    for note in prefs.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)
    t = Table(title=f"best of n, {len(rows)} prompts (judge {prefs.judge})")
    for col in ("prompt", "pick", "P(best)", "runner-up", "n"):
        t.add_column(col, justify="right" if col in ("P(best)", "n") else "left")
    for r in rows[:show]:
        t.add_row(str(r["prompt_id"]), r["picked"], f"{100 * r['p_best']:.0f}%", str(r["runner_up"]),
                  str(r["n_candidates"]))
    console.print(t)
    console.print(f"wrote {output}", highlight=False)
