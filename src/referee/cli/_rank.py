"""``referee rank``: candidates in, leaderboard out."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .._pipeline import RankOptions, RankResult, rank as run_rank
from ..backends import DEFAULT_JUDGE_MODEL
from ..report import fidelity_line
from . import app

console = Console()



class StoreKind(str, Enum):
    sqlite = "sqlite"
    parquet = "parquet"


class EngineKind(str, Enum):
    local = "local"
    ray = "ray"

@app.command()
def rank(
    candidates: list[Path] = typer.Argument(..., help="JSONL/CSV/JSON/Parquet file(s) or a folder of per-system files"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="run folder (default referee-runs/<name>/)"),
    judge: Optional[str] = typer.Option(None, help=f"{DEFAULT_JUDGE_MODEL} (the default), smollm2-135m, a GGUF path, "
                              "openai:MODEL@URL (key from $REFEREE_API_KEY/$OPENAI_API_KEY), replay:FILE.jsonl[#annotator] "
                              "verify:bleu|chrf|exact|regex:PAT|length:N|json-schema:FILE|python-tests|perplexity, "
                              "or a judge config file (.json/.toml; see docs/judges.md)"),
    judges: Optional[str] = typer.Option(None, help="several judges, comma-separated (same forms as --judge), "
                                         "combined without labels (Dawid–Skene)"),
    judge_group: Optional[list[str]] = typer.Option(None, "--judge-group", help="comma-separated judges among "
                                                    "--judges known to share their errors (e.g. length checks), "
                                                    "weighed as one unit; repeatable"),
    mode: str = typer.Option("pairwise", help="pairwise, pairwise-generate, pointwise (rubric score + diagnoses), "
                             "pyes (pointwise P(Yes)) or listwise"),
    template: Optional[Path] = typer.Option(None, help="custom judge: a Jinja template file with a referee header, "
                                            "or a constitution.json from referee principles (its votes decide)"),
    plan: Optional[str] = typer.Option(None, help="round-robin (the default), baseline (the default with "
                                       "--baseline), tournament or adaptive"),
    baseline: Optional[str] = typer.Option(None, help="the system every other is compared with (plan 'baseline')"),
    budget: Optional[int] = typer.Option(None, help="at most this many comparisons (each = 2 judge calls)"),
    until: Optional[str] = typer.Option(None, help="adaptive stopping rule: 'separated'"),
    tolerance: float = typer.Option(0.0, help="with --until separated: rating points within which two "
                                    "neighbours count as tied, their order left open (0 = full order)"),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="compare systems only where both answered"),
    seed: int = typer.Option(0, help="seed for plans and bootstrap"),
    n_boot: int = typer.Option(1000, "--n-boot", help="bootstrap replicates for the intervals"),
    level: float = typer.Option(0.95, help="confidence level of the intervals"),
    reg: Optional[float] = typer.Option(None, help="Gaussian prior on the ratings (natural log-odds strengths, "
                                        "penalty reg/2·θ²); default: none, or 0.1 with a note when a system never "
                                        "won or never lost; 0: maximum likelihood or an error"),
    n_ctx: int = typer.Option(4096, "--n-ctx", help="judge context window (tokens)"),
    min_mass: Optional[float] = typer.Option(None, "--min-mass", help="least letter probability mass that makes a "
                                             "logprob verdict (default 0.5); below it the verdict is unparseable"),
    max_candidate_tokens: Optional[int] = typer.Option(None, "--max-candidate-tokens",
                                                       help="cut each candidate to this many tokens (LLM judges; "
                                                       "default: the judge's own)"),
    concurrency: Optional[int] = typer.Option(None, help="requests in flight at once (openai: judges; default 8)"),
    report: bool = typer.Option(True, "--report/--no-report", help="write the self-contained report.html"),
    independence_check: bool = typer.Option(True, "--independence-check/--no-independence-check",
                                            help="flag systems whose outputs do not depend on the prompt "
                                            "(listed below all others, left out of exports)"),
    independence_prompts: int = typer.Option(12, "--independence-prompts", min=2,
                                             help="prompts per system the judge checks (own and another prompt)"),
    prices: Optional[Path] = typer.Option(None, "--prices", help="price table (.toml/.json): model name -> "
                                          "{input, output} USD per 1M tokens; prices hosted judges' verdicts"),
    max_cost: Optional[float] = typer.Option(None, "--max-cost", help="stop asking once the next call would pass "
                                             "this many USD; rates what was judged (priced judges)"),
    store: StoreKind = typer.Option(StoreKind.sqlite, "--store", help="sqlite: every verdict in verdicts.sqlite; parquet: "
                              "answers also move, every --shard-rows, into append-only Parquet shards in verdicts/ "
                              "(needs referee[parquet]); either is resumed and read by every command"),
    shard_rows: int = typer.Option(50_000, "--shard-rows", min=1, help="answers per Parquet shard"),
    engine: EngineKind = typer.Option(EngineKind.local, "--engine", help="ray: Ray actors, each holding the judge, "
                                      "answer the questions; the store stays here (needs referee[ray])"),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="an existing Ray cluster (auto, "
                                              "ray://HOST:PORT); default: start a local instance"),
    workers: int = typer.Option(2, "--workers", min=1, help="Ray actors (--engine ray)"),
    worker_threads: int = typer.Option(1, "--worker-threads", min=1, help="CPUs and llama.cpp threads per actor"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the calls, tokens, cost and time the run would "
                                 "take; ask nothing, write nothing"),
    seconds_per_call: Optional[float] = typer.Option(None, "--seconds-per-call", help="with --dry-run: the time "
                                                     "one call takes (default 0.6 local, 1.0 hosted)"),
) -> None:
    """Judge every planned pair in both orders, fit Bradley–Terry ratings with bootstrap intervals."""
    if plan is None:
        plan = "round-robin" if baseline is None else "baseline"
    # Only what was given: RankOptions tells a chosen value from a default (--judge next to --judges).
    given = {k: v for k, v in (("judge", judge), ("min_mass", min_mass)) if v is not None}
    options = RankOptions(candidates=candidates, output=output, plan=plan, baseline=baseline,
                          budget=budget, until=until, tolerance=tolerance, allow_missing=allow_missing, seed=seed,
                          n_boot=n_boot, level=level, reg=reg, n_ctx=n_ctx, report=report, mode=mode,
                          independence_check=independence_check, independence_prompts=independence_prompts,
                          template=template, max_candidate_tokens=max_candidate_tokens, concurrency=concurrency,
                          judges=None if judges is None else [j.strip() for j in judges.split(",") if j.strip()],
                          judge_groups=[[j.strip() for j in g.split(",") if j.strip()] for g in judge_group or []]
                          or None, prices=prices, max_cost=max_cost, store=store.value, shard_rows=shard_rows,
                          engine=engine.value, ray_address=ray_address, workers=workers,
                          worker_threads=worker_threads, **given)
    if dry_run:
        from .._estimate import estimate_rank

        print_estimate(estimate_rank(options, seconds_per_call=seconds_per_call))
        return
    columns = (TextColumn("[bold]judging[/]"), BarColumn(), MofNCompleteColumn(),
               TextColumn("cache hits {task.fields[hits]}"), TextColumn("{task.fields[speed]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("judging", total=None, hits=0, speed="")
        state = {}

        def on_start(progress):
            state["p"] = progress

        def on_verdict(verdict, cached):
            p = state["p"]
            speed = f"{p.asked / p.judge_seconds:.2f} verdicts/s" if p.judge_seconds > 0 else ""
            bar.update(task, total=p.planned, completed=p.done, hits=p.cache_hits, speed=speed)

        result = run_rank(options, on_start=on_start, on_verdict=on_verdict)
    print_result(result)


def print_result(result: RankResult) -> None:
    prov = result.provenance
    level = int(round(100 * prov["rating"]["level"]))
    table = Table(title=f"referee leaderboard — judge {prov['judge']['name']} ({prov['judge']['id']})")
    for col, just in (("rank", "right"), ("system", "left"), ("rating", "right"), (f"{level}% CI", "left"),
                      ("rank range", "center"), ("win rate", "right"), ("verdicts", "right"),
                      ("position consistency", "right")):
        table.add_column(col, justify=just)
    for r in result.rows:
        pc = _pct(r["position_consistency"])
        rr = f"{r['rank_min']}–{r['rank_max']}" if r["rank_min"] != r["rank_max"] else str(r["rank_min"])
        # a rating the prior placed (see the note below the table) is marked where it is read
        mark = {"below": " ↓prior", "above": " ↑prior"}.get(r.get("unbounded") or "", "")
        name = Text(r["system"]) + (Text(" ⚠ flagged", style="bold red") if r.get("flag") else Text(""))
        table.add_row(str(r["rank"]), name, f"{r['rating']:.0f}{mark}", f"{r['lower']:.0f} – {r['upper']:.0f}", rr,
                      f"{100 * r['win_rate']:.1f}%", str(r["verdicts"]), pc)
    console.print(table)
    console.print(fidelity_line(prov["judge"].get("fidelity")), highlight=False)
    v, beh = prov["verdicts"], prov["judge_behaviour"]
    console.print(
        f"verdicts: {v['ok']} ok, {v['unparseable']} unparseable, {v['error']} error "
        f"({v['asked']} asked, {v['cache_hits']} from the store); "
        f"position consistency {_pct(beh['position_consistency'])} over {beh['pairs_both_orders']} pairs; "
        f"first-shown wins {_pct(beh['first_position_rate'])}; "
        f"truncated candidates: {beh['truncated_candidates']}", highlight=False)
    runs = prov.get("code_runs") or {}
    if runs:
        console.print("code runs (sandboxed): " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in runs.items()),
                      highlight=False)
    ens = prov.get("ensemble")
    if ens:
        kept = [m for m in ens["members"] if m.get("kept", True)]
        console.print(f"ensemble {ens['id']} ({ens['method']}) of {len(ens['members'])} judges, "
                      f"{len(kept)} kept", highlight=False)
    changed = (prov.get("candidates") or {}).get("changed")
    if changed:
        console.print(f"[yellow]texts changed[/]: {changed['notice']}", highlight=False)
    for r in result.rows:
        if r.get("flag"):
            console.print(Text("warning: ", style="bold red") + Text(
                f"{r['system']} is flagged as prompt-independent and listed below the others: {r['flag']}"))
    unrated = prov["rating"].get("unrated_systems") or []
    if unrated:
        console.print(f"[yellow]not rated[/] (no usable verdict): {', '.join(unrated)}", highlight=False)
    for note in prov["rating"].get("notes") or []:
        console.print(f"note: {note}", highlight=False)
    if result.stop_reason:
        console.print(f"plan: {result.stop_reason}", highlight=False)
    console.print(cost_line(prov.get("cost") or {}), highlight=False)
    if (prov.get("cost") or {}).get("stopped"):
        console.print(f"[yellow]--max-cost[/]: {prov['cost']['stopped']}; every verdict bought is stored, the "
                      "leaderboard is of what was judged (the prompt-independence check was skipped)",
                      highlight=False)
    report = ", report.html" if (result.out_dir / "report.html").is_file() else ""
    console.print(f"wrote {result.out_dir}/ (leaderboard.json, leaderboard.csv, leaderboard.md, run.json, "
                  f"verdicts.sqlite{report})", highlight=False)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def cost_line(cost: dict) -> str:
    """What the run spent: USD for priced hosted judges, "not priced" without a price, $0 in process."""
    tokens = f"{cost.get('prompt_tokens', 0):,} input + {cost.get('completion_tokens', 0):,} output tokens asked"
    if cost.get("kind") == "hosted":
        usd = f"${cost['usd']:.4f}" if cost.get("priced") and cost.get("usd") is not None else "not priced (--prices)"
        return f"cost: {usd}, {tokens}"
    return f"cost: $0 ({'local model' if cost.get('kind') == 'local' else 'no model asked'}), {tokens}"


def print_estimate(est) -> None:
    table = Table(title="referee rank --dry-run (nothing asked, nothing written)")
    for col in ("judge", "calls", "input tokens", "output tokens", "cost", "time"):
        table.add_column(col, justify="left" if col == "judge" else "right")
    for j in est.judges:
        usd = "not priced" if j.usd is None else ("$0 (local model)" if j.kind == "local" else f"${j.usd:.4f}")
        calls = f"{j.calls}" if j.exact else f"≤ {j.calls}"
        table.add_row(j.name, calls, f"{j.prompt_tokens:,}", f"{j.completion_tokens:,}", usd,
                      f"{j.seconds:.0f} s ({est.seconds_per_call[j.name]:g} s a call)")
    console.print(table)
    total = "not priced (--prices FILE)" if est.usd is None else f"${est.usd:.4f}"
    console.print(f"estimated cost: {total}; tokens are the judges' own counts of the texts, cut to their caps",
                  highlight=False)
    for note in est.notes:
        console.print(f"note: {note}", highlight=False)
