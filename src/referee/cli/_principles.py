"""``referee principles PREFERENCES``: a constitution that reconstructs pairwise preferences (ICAI)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from . import app

console = Console()


@app.command("principles")
def principles_cmd(
    preferences: Path = typer.Argument(..., help="a JSONL of prompt, text_a, text_b, preferred (a/b), optional id "
                                                 "and group; or a run folder (its judge's verdicts)"),
    model: str = typer.Option("qwen2.5-coder-1.5b", "--model", help="proposes and votes: a packaged model, a GGUF "
                              "path or openai:MODEL@URL"),
    judge: Optional[str] = typer.Option(None, "--judge", help="also test this referee judge on the held-out "
                                        "preferences, without and with the constitution"),
    output: Path = typer.Option(Path("principles"), "--output", "-o", help="the folder to write"),
    test_group: list[str] = typer.Option([], "--test-group", help="hold out this group (repeat); default: a "
                                         "seeded random --test-fraction of the groups"),
    test_fraction: float = typer.Option(0.5, "--test-fraction", help="share of groups held out"),
    propose_pairs: int = typer.Option(50, "--propose-pairs", min=1, help="training preferences asked for principles"),
    per_pair: int = typer.Option(3, "--per-pair", min=1, help="principles proposed per preference (per batch)"),
    propose_batch: int = typer.Option(1, "--propose-batch", min=1, help="preferences shown to the proposer at once: "
                                      "above 1 it proposes what the preferred texts share"),
    propose_facets: str = typer.Option("", "--propose-facets", help="comma-separated aspects (opening, ending, "
                                       "length, structure) each proposed on alone, per batch of --propose-batch"),
    candidates: int = typer.Option(20, "--candidates", min=1, help="merged principles voted on, per view (the "
                                   "whole texts, each facet)"),
    max_principles: int = typer.Option(5, "--max-principles", min=1, help="most principles in the constitution"),
    vote: str = typer.Option("logprob", "--vote", help="logprob: P(A) of a judge per principle, both orders "
                             "averaged; generate: a JSON reply A, B or neither, orders that disagree are no vote"),
    vote_min_mass: float = typer.Option(0.5, "--vote-min-mass", help="logprob votes: below this probability on the "
                                        "letters A and B a vote is unreadable (no vote)"),
    add_principles: Optional[Path] = typer.Option(None, "--add-principles", help="a file of your own principles, "
                                                  "one per line, voted and chosen beside the proposed ones"),
    seed: int = typer.Option(0, help="split, sampling of preferences, and the models' seed"),
    n_ctx: int = typer.Option(4096, "--n-ctx", help="context size of in-process models"),
    threads: Optional[int] = typer.Option(None, "--threads", help="llama.cpp threads (default: all cores)"),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="requests in flight (openai: models)"),
) -> None:
    """Propose, merge, vote and choose principles that reconstruct the preferences; test them held out."""
    from ..principles import learn_principles, load_preferences, load_principles

    prefs = load_preferences(preferences)
    res = learn_principles(prefs, output, model=model, judge=judge, test_groups=test_group or None,
                           test_fraction=test_fraction, seed=seed, propose_pairs=propose_pairs, per_pair=per_pair,
                           candidates=candidates, max_principles=max_principles, n_ctx=n_ctx, threads=threads,
                           concurrency=concurrency, vote=vote, propose_batch=propose_batch, vote_min_mass=vote_min_mass,
                           propose_facets=[f.strip() for f in propose_facets.split(",") if f.strip()],
                           added=load_principles(add_principles) if add_principles else ())
    rep = res.report
    console.print(f"{rep['preferences']['train']} training and {rep['preferences']['test']} held-out preferences; "
                  f"{rep['proposals']} principles proposed, {len(rep['candidates'])} after merging", highlight=False)
    for k, (p, facet) in enumerate(zip(res.principles, res.facets), 1):
        console.print(f"  {k}. {p}" + (f" (voted on its {facet})" if facet else ""), highlight=False)
    table = Table("held out", "accuracy", "interval", "n")
    for name, r in rep["test"].items():
        table.add_row(name.replace("_", " "), f"{r['accuracy']:.3f}", f"[{r['interval'][0]:.3f}, {r['interval'][1]:.3f}]",
                      str(r["n"]))
    console.print(table)
    c = rep["counts"]
    console.print(f"unparseable: {c['proposals_unparseable']} proposals, {c['votes_unparseable']} votes; "
                  f"{c['votes_inconsistent']} votes whose orders disagreed -> {res.out_dir} "
                  f"(judge template: {res.template})", highlight=False)
