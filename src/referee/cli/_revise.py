"""``referee revise CANDIDATES``: critique -> revision -> judged; revised outputs become ``NAME+revised``."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..backends import DEFAULT_JUDGE_MODEL
from . import app
from ._combine import _split
from ._engine import ENGINE, RAY_ADDRESS, WORKER_THREADS, WORKERS, model_maker
from ._rank import EngineKind

console = Console()


@app.command("revise")
def revise_cmd(
    candidates: Path = typer.Argument(..., help="candidates file (JSONL/CSV/JSON/Parquet) or folder"),
    critic: str = typer.Option(DEFAULT_JUDGE_MODEL, "--critic", help="the model that names each output's earliest "
                               "critical error: a packaged model, a GGUF path or openai:MODEL@URL"),
    reviser: Optional[str] = typer.Option(None, "--reviser", help="the model that rewrites (default: the critic's)"),
    judge: str = typer.Option(DEFAULT_JUDGE_MODEL, "--judge", help="decides, in both orders, whether a revision "
                              "is kept (any --judge of 'rank', e.g. verify:examples)"),
    rounds: int = typer.Option(2, "--rounds", min=1, help="most critique-revise rounds per candidate"),
    feedback: str = typer.Option("examples", "--feedback", help="examples: run the prompt's public examples and "
                                 "show the results to critic and reviser; none: the texts alone"),
    systems: Optional[str] = typer.Option(None, "--systems", help="comma-separated systems to revise (default: all)"),
    output: Path = typer.Option(Path("revised.jsonl"), "--output", "-o", help="candidates file to write"),
    max_tokens: int = typer.Option(512, "--max-tokens", help="most tokens of a revision"),
    critic_max_tokens: int = typer.Option(384, "--critic-max-tokens", help="most tokens of a critique (a cut "
                                          "critique is unparseable)"),
    seed: int = typer.Option(0, help="seed of the critic's and reviser's calls"),
    n_ctx: int = typer.Option(4096, "--n-ctx", help="context size of in-process models"),
    threads: Optional[int] = typer.Option(None, "--threads", help="llama.cpp threads (default: all cores)"),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="requests in flight (openai: models)"),
    engine: EngineKind = ENGINE,
    ray_address: Optional[str] = RAY_ADDRESS,
    workers: int = WORKERS,
    worker_threads: int = WORKER_THREADS,
) -> None:
    """Revise outputs round by round, keeping a revision only if the judge prefers it; resumable."""
    from ..revise import revise

    with ExitStack() as stack, console.status("revising…") as status:
        def step(what: str, r: int, total: int) -> None:
            status.update(f"round {r}/{total}: {what}")

        make_model = model_maker(stack, engine, ray_address=ray_address, workers=workers,
                                 worker_threads=worker_threads, n_ctx=n_ctx, concurrency=concurrency,
                                 models=len({critic, reviser or critic}))
        res = revise(candidates, output, critic=critic, reviser=reviser, judge=judge, rounds=rounds,
                     feedback=feedback, systems=_split(systems), max_tokens=max_tokens,
                     critic_max_tokens=critic_max_tokens, seed=seed, n_ctx=n_ctx,
                     threads=threads, concurrency=concurrency, on_step=step, make_model=make_model)
    t = Table(title=f"critique and revise ({feedback} feedback)")
    cols = ("round", "entering", "no_error", "unparseable", "failed", "revised", "kept", "rejected", "undecided")
    for col in cols:
        t.add_column(col.replace("_", " "), justify="right")
    for row in res.rounds:
        t.add_row(*(str(row[c]) for c in cols))
    console.print(t)
    calls = res.provenance["calls"]
    console.print(f"calls asked / from the store: critic {calls['critic']['asked']}/{calls['critic']['reused']}, "
                  f"reviser {calls['reviser']['asked']}/{calls['reviser']['reused']}, judge "
                  f"{calls['judge']['asked']}/{calls['judge']['reused']}", highlight=False)
    console.print(f"wrote {res.output} (originals and NAME+revised; rank it to compare); kept in {res.store} and "
                  f"{res.verdicts}", highlight=False)
    if any(row["failed"] for row in res.rounds):
        console.print("[red]some model calls failed[/]; run the same command again to retry them", highlight=False)
        raise typer.Exit(1)
