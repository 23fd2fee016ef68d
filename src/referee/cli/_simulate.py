"""``referee simulate VERDICTS``: try plans on a judge simulated from real verdicts, before paying."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ..errors import InputError
from ..plan import PLANS
from . import app


@app.command("simulate")
def simulate(
    verdicts: Path = typer.Argument(..., help="JSONL of verdicts against one baseline (AlpacaEval's judge_pairs "
                                              "format: instruction_id, model_a = baseline, model_b, annotator, p_b_wins)"),
    annotator: str = typer.Option(None, help="whose verdicts to use (needed if the file has several annotators)"),
    systems: str = typer.Option(None, help="comma-separated systems to keep (default: all)"),
    synthetic: int = typer.Option(0, help="simulate this many synthetic systems on the same prompts instead"),
    with_baseline: bool = typer.Option(False, "--with-baseline", help="rank the baseline system too"),
    plan: list[str] = typer.Option(["round-robin", "tournament", "adaptive"], "--plan",
                                   help=f"plans to try (repeatable): {', '.join(PLANS)}"),
    budget: int = typer.Option(None, help="at most this many comparisons a plan; each = 2 judge calls"),
    until: str = typer.Option(None, help="adaptive stopping rule: separated"),
    tolerance: float = typer.Option(0.0, help="with --until separated: rating points within which two "
                                    "neighbours count as tied (0 = full order)"),
    baseline: str = typer.Option(None, help="baseline system of the 'baseline' plan"),
    noise: float = typer.Option(1.0, help="judge noise: standard deviation on the log-odds scale"),
    position_bias: float = typer.Option(0.5, help="log-odds added in favour of the response shown first"),
    hard: bool = typer.Option(False, "--hard", help="verdicts are 0/1 draws, not probabilities"),
    unusable: float = typer.Option(0.0, help="share of comparisons whose verdicts are unusable"),
    eps: float = typer.Option(0.01, help="clip P(beats baseline) to eps..1-eps before taking log-odds"),
    seeds: int = typer.Option(5, min=1, help="repeat with this many seeds (judge noise and plan)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object instead of a table"),
) -> None:
    """Compare plans on a simulated judge: judge calls spent, and how close each plan's ranking
    comes to the one full round-robin gives (Spearman, Kendall, top-1, top-3)."""
    from ..simulate import (SimulatedJudge, evaluate_plan, latent_from_baseline, load_baseline_verdicts,
                            reference_strengths, synthetic_panel)

    for name in plan:
        if name not in PLANS:
            raise InputError(f"unknown plan '{name}' (known: {', '.join(PLANS)})", field="plan")
    keep = [s.strip() for s in systems.split(",") if s.strip()] if systems else None
    data = load_baseline_verdicts(verdicts, annotator, systems=keep)
    try:
        quality = latent_from_baseline(data.p_win, eps=eps)
    except ValueError as e:
        raise InputError(str(e), field="eps") from None
    names = list(data.systems)
    if synthetic:
        if synthetic < 2:
            raise InputError("--synthetic needs at least 2 systems", field="synthetic")
        quality = synthetic_panel(quality, synthetic, seed=0)
        names = [f"synthetic-{i:02d}" for i in range(synthetic)]
    if with_baseline:
        quality = np.vstack([np.zeros(len(data.prompts)), quality])
        names = [data.baseline, *names]
    if "baseline" in plan and baseline is None:
        baseline = data.baseline if with_baseline else None
    rows: dict[str, list[dict]] = {p: [] for p in plan}
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("simulating", total=seeds * len(plan))
        for seed in range(seeds):
            try:
                judge = SimulatedJudge(quality, names, data.prompts, noise=noise, position_bias=position_bias,
                                       hard=hard, unusable=unusable, seed=seed)
            except ValueError as e:
                raise InputError(str(e)) from None
            ref = reference_strengths(judge)
            for name in plan:
                try:
                    adaptive = name == "adaptive"
                    rows[name].append(evaluate_plan(judge, name, budget=budget, until=until if adaptive else None,
                                                    tolerance=tolerance if adaptive else 0.0, baseline=baseline,
                                                    seed=seed, reference=ref))
                except ValueError as e:
                    raise InputError(str(e), field="plan") from None
                progress.advance(task)
    n, P = len(names), len(data.prompts)
    full = n * (n - 1) // 2 * P
    summary = {name: {k: {"mean": float(np.mean([r[k] for r in rs])), "sd": float(np.std([r[k] for r in rs]))}
                      for k in ("judge_calls", "spearman", "kendall", "top1", "top3")}
               | {"stop_reason": rs[0]["stop_reason"]} for name, rs in rows.items()}
    if as_json:
        typer.echo(json.dumps({"systems": n, "prompts": P, "round_robin_judge_calls": 2 * full, "seeds": seeds,
                               "plans": summary}))
        return
    table = Table(title=f"{n} systems x {P} prompts, {seeds} seeds; full round-robin (RR) = {2 * full} judge calls",
                  caption="mean±sd; agreement with full round-robin's ranking", box=box.SIMPLE_HEAD)
    for col in ("plan", "calls", "% RR", "Spearman", "Kendall", "top-1", "top-3"):
        table.add_column(col, justify="left" if col == "plan" else "right", no_wrap=True)
    for name, s in summary.items():
        table.add_row(name, f"{s['judge_calls']['mean']:.0f}", f"{100 * s['judge_calls']['mean'] / (2 * full):.1f}",
                      *(f"{s[k]['mean']:.2f}±{s[k]['sd']:.2f}" for k in ("spearman", "kendall", "top1", "top3")))
    console = Console()
    console.print(table)
    for name, s in summary.items():
        console.print(f"[bold]{name}[/] (seed 0): {s['stop_reason']}", highlight=False)
