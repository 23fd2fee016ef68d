"""``referee generate PROMPTS``: candidates from models, every generation stored as it arrives."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from . import app
from ._engine import ENGINE, RAY_ADDRESS, WORKER_THREADS, WORKERS, model_maker
from ._rank import EngineKind

console = Console()


@app.command("generate")
def generate_cmd(
    prompts: Path = typer.Argument(..., help="prompts (prompt_id + prompt): JSONL (.jsonl.gz too, e.g. HumanEval's "
                                            "file), JSON, CSV or Parquet; a candidates file works too"),
    system: list[str] = typer.Option([], "--system", help="NAME=SPEC, SPEC a packaged model, a GGUF path or "
                                                          "openai:MODEL@URL; repeat for several"),
    systems: Optional[Path] = typer.Option(None, "--systems", help="systems file (TOML [[system]] tables or JSON "
                                                                   "list): name, model, system_prompt, sampling"),
    system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="system prompt text, or @FILE"),
    temperature: float = typer.Option(0.0, help="sampling temperature (0: greedy)"),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="nucleus sampling (default: the backend's)"),
    max_tokens: int = typer.Option(512, "--max-tokens", help="most tokens a generation may have"),
    stop: list[str] = typer.Option([], "--stop", help="stop string; repeat for several"),
    seed: int = typer.Option(0, help="seed of sample 0 (sample k uses seed + k)"),
    n: int = typer.Option(1, "--n", help="samples per prompt (systems become NAME#0 .. NAME#n-1)"),
    output: Path = typer.Option(Path("candidates.jsonl"), "--output", "-o", help="the candidates file to write"),
    n_ctx: int = typer.Option(4096, "--n-ctx", help="context size of in-process models"),
    threads: Optional[int] = typer.Option(None, "--threads", help="llama.cpp threads (default: all cores)"),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="requests in flight (openai: systems; per "
                                    "actor with --engine ray)"),
    engine: EngineKind = ENGINE,
    ray_address: Optional[str] = RAY_ADDRESS,
    workers: int = WORKERS,
    worker_threads: int = WORKER_THREADS,
) -> None:
    """Generate candidates for every prompt from each system; resumable (Ctrl-C, kill -9: run it again)."""
    from ..generate import load_systems, parse_system
    from ..load import load_prompts

    defaults = {"system_prompt": system_prompt, "temperature": temperature, "top_p": top_p,
                "max_tokens": max_tokens, "stop": list(stop), "seed": seed, "n": n}
    specs = [parse_system(s, defaults) for s in system]
    if systems is not None:
        specs += load_systems(systems, defaults)
    table = load_prompts(prompts)
    with ExitStack() as stack:
        make_model = model_maker(stack, engine, ray_address=ray_address, workers=workers,
                                 worker_threads=worker_threads, n_ctx=n_ctx, concurrency=concurrency)
        res = _generate_with_progress(table, specs, output, prompts, make_model, n_ctx=n_ctx, threads=threads,
                                      concurrency=concurrency)
    _summary(res)


def _generate_with_progress(table, specs, output: Path, prompts: Path, make_model, **options):
    from ..generate import generate

    t0 = time.perf_counter()
    tokens = [0]
    with Progress(TextColumn("[bold]generate[/]"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console,
                  transient=False) as bar:
        task = bar.add_task("generate", total=None, rate="")

        def started(total: int) -> None:
            bar.update(task, total=total)

        def landed(g, reused: bool) -> None:
            if not reused:
                tokens[0] += g.completion_tokens
            rate = tokens[0] / max(time.perf_counter() - t0, 1e-9)
            bar.update(task, advance=1, rate=f"{rate:.1f} tok/s")

        return generate(table, specs, output, on_generation=landed, on_start=started, prompts_source=str(prompts),
                        make_model=make_model, **options)


def _summary(res) -> None:
    console.print(f"{len(res.rows)} candidates ({res.asked} generated, {res.reused} from the store) -> {res.output}; "
                  f"generations kept in {res.store}", highlight=False)
    if res.truncated:
        console.print(f"[yellow]note[/]: {res.truncated} candidate(s) stopped at --max-tokens (marked truncated)",
                      highlight=False)
    if res.failed:
        for f in res.failed[:5]:
            console.print(f"[red]failed[/]: {f}", highlight=False)
        console.print(f"[red]{len(res.failed)} generation(s) failed[/]; run the same command again to retry them",
                      highlight=False)
        raise typer.Exit(1)
