"""``referee optimize PROMPTS``: a system's instruction optimized by DSPy, a referee judge as the metric."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import InputError
from . import app



@app.command("optimize")
def optimize_cmd(
    prompts: Path = typer.Argument(..., help="prompts (prompt_id + prompt): JSONL, CSV, Parquet, or HumanEval's file; "
                                             "split in file order into --train, --dev and the held-out rest"),
    system: str = typer.Option(..., "--system", help="the generator: a packaged model or GGUF path (served by a "
                               "llama_cpp.server started here) or openai:MODEL@URL"),
    instruction: Path = typer.Option(..., "--instruction", help="a file with the system's instruction (its system "
                                     "prompt), the starting point"),
    metric: str = typer.Option("qwen2.5-coder-1.5b", "--metric", help="the referee judge that scores outputs: "
                               "pairwise (P(beats the baseline), both orders), pointwise, or a verifier; several, "
                               "comma-separated, are combined without labels (weights learnt on warm-up samples)"),
    warmup_temperature: float = typer.Option(0.8, "--warmup-temperature", min=0.0, help="several --metric judges: "
                                             "the temperature of the original's warm-up samples their weights "
                                             "are learnt on"),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="candidates whose outputs the pairwise metric "
                                            "compares against (default: the original instruction's own outputs)"),
    baseline_system: Optional[str] = typer.Option(None, "--baseline-system", help="which system of --baseline"),
    optimizer: str = typer.Option("copro", "--optimizer", help="DSPy's optimizer: copro, mipro (MIPROv2), bootstrap "
                                  "(BootstrapFewShotWithRandomSearch) or gepa"),
    budget: int = typer.Option(6, "--budget", min=2, help="candidate programs scored on the dev set"),
    train: int = typer.Option(8, "--train", min=1, help="prompts demos are bootstrapped from"),
    dev: int = typer.Option(8, "--dev", min=1, help="prompts candidates are scored on"),
    test: Optional[int] = typer.Option(None, "--test", min=1, help="held-out prompts (default: all the rest)"),
    proposer: Optional[str] = typer.Option(None, "--proposer", help="the model that proposes instructions "
                                           "(default: --system's)"),
    demos: int = typer.Option(2, "--demos", min=0, help="most bootstrapped demos (mipro, bootstrap)"),
    max_tokens: int = typer.Option(512, "--max-tokens", min=1, help="the system's max tokens per output"),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="the system's sampling temperature"),
    seed: int = typer.Option(0, help="sampling and optimizer seed"),
    output: Path = typer.Option(Path("optimize"), "--output", "-o", help="the run folder to write"),
    n_ctx: int = typer.Option(4096, "--n-ctx", help="context size of local models"),
    threads: Optional[int] = typer.Option(None, "--threads", help="llama.cpp threads (default: all cores)"),
    no_heldout_rank: bool = typer.Option(False, "--no-heldout-rank", help="skip rating the held-out outputs"),
) -> None:
    """Optimize a system's instruction with DSPy's optimizers; compare original and optimized held out."""
    from ..load import load_prompts
    from ..optimize import optimize

    console = Console(file=sys.stdout)  # this stdout: DSPy's prints are sent to dspy.log while it runs
    try:
        text = instruction.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise InputError(f"cannot read the instruction: {e.strerror}", path=instruction, field="--instruction") from None
    table = load_prompts(prompts)
    counts = {"asked": 0, "reused": 0}

    def event(kind: str, info: dict) -> None:
        if kind == "generation":
            counts["reused" if info["reused"] else "asked"] += 1
            status.update(f"[bold]optimize[/] {phase[0]} · {counts['asked']} generated, {counts['reused']} "
                          "from the store")
        else:
            phase[0] = kind
            status.update(f"[bold]optimize[/] {kind}")

    phase = ["baseline"]
    with console.status("[bold]optimize[/] starting the model") as status:
        specs = [m.strip() for m in metric.split(",") if m.strip()]
        res = optimize(table, output, model=system, instruction=text,
                       metric=specs[0] if len(specs) == 1 else specs, optimizer=optimizer,
                       warmup_temperature=warmup_temperature,
                       budget=budget, train=train, dev=dev, test=test, baseline=baseline,
                       baseline_system=baseline_system, proposer=proposer, demos=demos, max_tokens=max_tokens,
                       temperature=temperature, seed=seed, n_ctx=n_ctx, threads=threads,
                       rank_heldout=not no_heldout_rank, prompts_source=str(prompts), on_event=event)
    rep = res.report
    trials = Table("trial", "dev score", "demos", "instruction", title=f"{optimizer}: {len(res.trials)} programs "
                   f"scored on {len(rep['prompts']['dev'])} dev prompts")
    for t in res.trials:
        trials.add_row(str(t["trial"]), "–" if t["dev_score"] is None else f"{t['dev_score']:.3f}",
                       str(t["n_demos"]),
                       t["instruction"][:90].replace("\n", " "))
    console.print(trials)
    warm = rep["metric"].get("warmup")
    if warm:
        console.print(f"metric: {warm['method']} over {len(warm['members'])} judges, weights learnt on "
                      f"{warm['comparisons']} warm-up comparisons: " + ", ".join(
                          f"{m['name']} {m['weight']:.2f}" + ("" if m["kept"] else f" (dropped: {m['reason']})")
                          for m in warm["members"]), highlight=False)
        for note in warm["notes"]:
            console.print(f"  [dim]{note}[/]", highlight=False)
    d, h = rep["dev"], rep["heldout_judge"]
    console.print(f"dev score: original {d['original']['dev_score']:.3f} -> optimized {d['optimized']['dev_score']:.3f}"
                  f"; held out ({h['n']} prompts) the judge prefers the optimized output with mean P "
                  f"{h['p_optimized_beats_original']:.3f} ({h['wins']} wins, {h['losses']} losses)", highlight=False)
    ranked = rep.get("heldout_rank") or []
    if isinstance(ranked, dict):
        console.print(f"[yellow]held out, not rated[/]: {ranked['error']}", highlight=False)
        ranked = []
    for r in ranked:
        console.print(f"  {r['system']}: {r['rating']:.0f} [{r['lower']:.0f}, {r['upper']:.0f}]", highlight=False)
    c = rep["counts"]
    console.print(f"{c['system_asked']} generations asked, {c['system_reused']} from the store; judge "
                  f"{c['judge_asked']} asked, {c['judge_reused']} from the store -> {res.out_dir} "
                  "(optimized.json, trials.json, report.html)", highlight=False)
    if c["system_truncated"]:
        console.print(f"[yellow]note[/]: {c['system_truncated']} of the system's outputs stopped at --max-tokens",
                      highlight=False)
    failed = c["system_failed"] + c["proposer_failed"] + sum(v for k, v in c.items()
                                                            if k in ("judge_unparseable", "judge_error"))
    if failed:
        console.print(f"[yellow]note[/]: {c['system_failed']} generation(s) and {c['proposer_failed']} proposal(s) "
                      f"failed, {c.get('judge_unparseable', 0) + c.get('judge_error', 0)} verdict(s) unreadable "
                      "(scored 0); run again to retry failed calls", highlight=False)
