"""``referee export VERDICTS``: preference data for training (TRL DPO, ranked lists, KTO)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import app
from ._combine import _split

console = Console()


@app.command("export")
def export_cmd(
    verdicts: Path = typer.Argument(..., help="a run folder / verdict store, a 'referee combine' JSONL, or "
                                             "external verdicts JSONL"),
    output: Path = typer.Option(..., "--output", "-o", help="output file: .jsonl or .parquet"),
    fmt: str = typer.Option("dpo", "--format", "-f", help="dpo (prompt/chosen/rejected), ranked (a list per "
                                                          "prompt) or kto (prompt/completion/label)"),
    judges: Optional[str] = typer.Option(None, "--judges", help="comma-separated judges (default: a stored "
                                                                "ensemble, else all judges combined)"),
    candidates: Optional[Path] = typer.Option(None, "--candidates", help="candidates file with the texts "
                                                                         "(needed for JSONL verdicts)"),
    min_margin: float = typer.Option(0.0, "--min-margin", min=0.0, max=1.0, help="least |2 p - 1| of a pair"),
    min_agreement: float = typer.Option(1.0, "--min-agreement", min=0.0, max=1.0,
                                        help="least share of judges siding with the combined verdict"),
    keep_disagreeing: bool = typer.Option(False, "--keep-disagreeing", help="same as --min-agreement 0"),
    keep_inconsistent: bool = typer.Option(False, "--keep-inconsistent",
                                           help="keep pairs whose verdict changed with the order"),
    chat: bool = typer.Option(False, "--chat", help="conversational format (lists of role/content messages)"),
    include_flagged: bool = typer.Option(False, "--include-flagged",
                                         help="keep pairs won by systems 'rank' flagged as prompt-independent"),
) -> None:
    """Write preference pairs/lists for training; pairs where judges disagree or changed their verdict with
    the order are left out unless asked."""
    from ..errors import InputError
    from ..export import FORMATS, Filters, build_rows, load_preferences, write_rows

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", field="--format")
    prefs = load_preferences(verdicts, judges=_split(judges), candidates=candidates)
    filters = Filters(min_margin=min_margin, min_agreement=0.0 if keep_disagreeing else min_agreement,
                      keep_inconsistent=keep_inconsistent, flagged=frozenset(prefs.flagged),
                      include_flagged=include_flagged)
    for system, why in prefs.flagged.items():
        kept = "kept (--include-flagged)" if include_flagged else "left out (--include-flagged keeps them)"
        console.print(f"[yellow]warning[/]: {system} is flagged as prompt-independent ({why}): pairs it wins "
                      f"are {kept}", highlight=False)
    rows, stats = build_rows(fmt, prefs.records, prefs.prompts, prefs.outputs, filters, chat=chat)
    write_rows(output, rows)
    for note in prefs.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)
    left = ", ".join(f"{n} {why}" for why, n in sorted(stats.excluded.items())) or "none"
    console.print(f"{fmt}: {len(rows)} rows from {stats.considered} {'prompts' if fmt == 'ranked' else 'pairs'} "
                  f"(judge {prefs.judge}); left out: {left}", highlight=False)
    console.print(f"wrote {output}", highlight=False)
