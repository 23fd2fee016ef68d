"""``referee combine VERDICTS``: several judges into one label-free verdict per item."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from . import app

console = Console()


def _split(judges: Optional[str]) -> list[str] | None:
    return [j.strip() for j in judges.split(",") if j.strip()] if judges else None


def _f(x, pct: bool = False) -> str:
    if x is None or x != x:  # None or NaN
        return "–"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


@app.command("combine")
def combine_cmd(
    verdicts: Path = typer.Argument(..., help="a run folder / verdict store, or a JSONL of verdicts with prompt_id, "
                                             "system_a, system_b, judge, outcome (P(a better) or a/b/tie)"),
    judges: Optional[str] = typer.Option(None, "--judges", help="comma-separated judges to combine (default: all)"),
    method: str = typer.Option("dawid-skene", help="dawid-skene, triplet or majority"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="combined verdicts JSONL (default: "
                                                                        "combined.jsonl in the run folder, or "
                                                                        "<input>.combined.jsonl)"),
    summary: bool = typer.Option(False, "--summary", help="print the per-judge table"),
    store: bool = typer.Option(True, "--store/--no-store", help="store the combined verdicts as a judge of their "
                                                                "own (store input only)"),
    tie_band: float = typer.Option(0.0, "--tie-band", min=0.0, max=0.5, help="verdicts within this of 0.5 are ties"),
    no_dedup: bool = typer.Option(False, "--no-dedup", help="keep near-duplicate judges"),
    group: Optional[list[str]] = typer.Option(None, "--group", help="comma-separated judges known to share their "
                                                                    "errors (e.g. length heuristics), weighed as one "
                                                                    "unit; repeatable"),
    levels: int = typer.Option(1, "--levels", min=1, max=5, help="answer levels per side: with 2+, confident "
                                                                 "verdicts can weigh more than hesitant ones"),
    labels: Optional[Path] = typer.Option(None, "--labels", help="JSONL of prompt_id, system_a, system_b, label: "
                                                                  "used only to evaluate, never to fit"),
    calibrate: bool = typer.Option(False, "--calibrate", help="explicitly use the --labels to recalibrate the "
                                                              "combined probabilities (Platt scaling)"),
    tie_break: bool = typer.Option(False, "--tie-break", help="judges screened out as near chance order the items "
                                   "the kept ones leave undecided (p within 0.05 of 1/2; for best-of-n)"),
) -> None:
    """Combine several judges without labels: estimate each one's accuracy, drop duplicates and
    uninformative ones, write one calibrated P(a better) per (prompt, system_a, system_b)."""
    from ..combine import combine, combined_rows, majority_vote, read_verdicts, store_ensemble, write_jsonl
    from ..combine import is_store, store_path
    from ..errors import InputError

    table = read_verdicts(verdicts, _split(judges))
    try:
        ens = combine(table.x, table.judges, method=method, tie_band=tie_band, dedup=not no_dedup,
                      groups=[_split(g) or [] for g in group or []], levels=levels, tie_break=tie_break)
    except ValueError as e:
        raise InputError(str(e), field="--group" if "group" in str(e) else "--method") from None
    y = None
    if labels is not None:
        from ..audit import align_labels, read_labels

        y = align_labels(table.items, read_labels(labels))
    raw_p = ens.p.copy()
    if calibrate:
        from ..combine import PlattCalibrator

        if y is None:
            raise InputError("--calibrate needs --labels", field="--calibrate")
        try:
            cal = PlattCalibrator.fit(ens.p, y)
        except ValueError as e:
            raise InputError(str(e), path=labels) from None
        ens.p = np.clip(cal(ens.p), 1e-6, 1 - 1e-6)
        ens.notes.append(f"recalibrated with the labels (Platt: a={cal.a:.3f}, b={cal.b:.3f})")
    from_store = is_store(verdicts)
    jid = None
    if from_store and store:
        jid = store_ensemble(verdicts, table, ens)
    rows = combined_rows(table, ens, judge_id=jid)
    if output is None:
        output = (store_path(verdicts).parent / "combined.jsonl" if from_store
                  else verdicts.with_name(verdicts.stem + ".combined.jsonl"))
    write_jsonl(output, rows)
    kept = ens.kept
    # no class prior to print: the label model is symmetric in a and b, so it is 1/2 by construction
    console.print(f"{len(table.items)} items, {len(rows)} decided, {len(table.judges)} judges ({len(kept)} kept), "
                  f"method {ens.method}", highlight=False)
    for note in ens.notes:
        console.print(f"[yellow]note[/]: {note}", highlight=False)
    if summary:
        t = Table(title="judges (estimated without labels)")
        for col in ("judge", "kept", "coverage", "says a", "est. accuracy", "sensitivity", "specificity", "weight",
                    "agrees w/ ensemble", "reason"):
            t.add_column(col, justify="left" if col in ("judge", "reason") else "right")
        for m in ens.members:
            t.add_row(m.name, "yes" if m.kept else "no", _f(m.coverage, True), _f(m.rate_a, True), _f(m.accuracy),
                      _f(m.sensitivity), _f(m.specificity), f"{m.weight:.2f}", _f(m.agreement, True),
                      (m.reason + (f"; breaks ties, weight {m.tie_weight:.2f}" if m.tie_weight else ""))
                      or (f"one unit: {m.unit}" if m.unit else ""))
        console.print(t)
    if y is not None:
        from ..audit import accuracy, ece

        n = int((~np.isnan(y)).sum())
        how = "used to recalibrate only" if calibrate else "not used to fit"
        t = Table(title=f"accuracy on the labels ({n} labelled items, a tie counts half; labels {how})")
        t.add_column("verdicts")
        t.add_column("accuracy", justify="right")
        t.add_column("ECE", justify="right")
        t.add_row("ensemble", _f(accuracy(raw_p, y), True), _f(ece(raw_p, y)))
        if calibrate:
            t.add_row("ensemble, recalibrated (in-sample)", _f(accuracy(ens.p, y), True), _f(ece(ens.p, y)))
        mv = majority_vote(table.x, tie_band)
        t.add_row("majority vote", _f(accuracy(mv, y), True), _f(ece(mv, y)))
        for j, name in enumerate(table.judges):
            t.add_row(name, _f(accuracy(table.x[:, j], y), True), _f(ece(table.x[:, j], y)))
        console.print(t)
    if jid:
        console.print(f"stored as judge {jid} in {store_path(verdicts)}", highlight=False)
    console.print(f"wrote {output}", highlight=False)
