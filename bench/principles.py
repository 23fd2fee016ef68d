"""Principles that reconstruct preferences (``referee principles``), measured on held-out groups.

Two sets, both from ``../shared/data/alpaca_eval`` texts (never copied into the repo):

- ``planted``: two AlpacaEval systems' outputs per instruction; one side, chosen at random, gets a
  closing question to the user appended, and the "annotators" always prefer that side. The
  constitution must find the rule and reconstruct >= 90% of the held-out preferences.
- ``alpaca``: GPT-4-turbo's recorded preferences (``weighted_alpaca_eval_gpt4_turbo``, decided
  ones), ``gpt4_1106_preview`` against six other systems, as many wins of each side per system
  (``--pairs`` / 12 each); train on three systems' pairs, test on the other three's (groups = systems).

Both use instructions under 400 characters whose two outputs are under 700 characters, shuffled
with ``random.Random(0)``. For each: held-out accuracy with Wilson intervals of the constitution's
votes, the more common side, the judge alone and the judge with the constitution; the
principles found; model calls and seconds. Every call is stored under ``bench/.cache/principles``,
so a rerun resumes.

    .venv/bin/python bench/principles.py [--set planted,alpaca] [--pairs 40] [--vote logprob|generate]
        [--propose-batch 4] [--propose-facets ending,length] [--vote-min-mass 0.2] [--add-principles bench/principles_form.txt]

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "alpaca_eval"
CACHE = ROOT / "bench" / ".cache" / "principles"
CLOSING = ["Would you like me to go into more detail?", "Is there anything else you would like to know?",
           "Shall I give you a few more examples?", "Do you want me to explain any part further?"]
# Systems that GPT-4-turbo's weighted annotator compared with gpt4_1106_preview (judge_pairs.jsonl), in
# three tiers; the first three are the training groups, the other three (one of each tier) held out.
ALPACA_SYSTEMS = ["claude-2", "OpenHermes-2.5-Mistral-7B", "vicuna-13b-v1.5",
                  "claude-instant-1.2", "Qwen-14B-Chat", "vicuna-7b-v1.5"]


def _texts() -> tuple[dict[int, str], dict[tuple[int, str], str]]:
    instructions = {}
    for line in open(DATA / "instructions.jsonl", encoding="utf-8"):
        r = json.loads(line)
        instructions[r["instruction_id"]] = r["instruction"]
    outputs = {}
    for line in open(DATA / "outputs.jsonl", encoding="utf-8"):
        r = json.loads(line)
        outputs[(r["instruction_id"], r["model"])] = r["output"]
    return instructions, outputs


def _short(instructions, outputs, iid, *models) -> bool:
    return len(instructions[iid]) < 400 and all(len(outputs.get((iid, m), "x" * 999)) < 700 for m in models)


def planted(n: int):
    from referee.principles import Preference

    instructions, outputs = _texts()
    a_sys, b_sys = "gpt4_1106_preview", "Mixtral-8x7B-Instruct-v0.1"
    ids = [i for i in sorted(instructions) if _short(instructions, outputs, i, a_sys, b_sys)]
    random.Random(0).shuffle(ids)
    rng = random.Random(1)
    prefs = []
    for k, iid in enumerate(ids[:n]):
        a, b = outputs[(iid, a_sys)].rstrip(), outputs[(iid, b_sys)].rstrip()
        side = rng.choice("ab")
        q = rng.choice(CLOSING)
        if side == "a":
            a = f"{a}\n\n{q}"
        else:
            b = f"{b}\n\n{q}"
        prefs.append(Preference(f"i{iid}", instructions[iid], a, b, side, f"g{k % 8}"))
    return prefs, None


def alpaca(n: int):
    from referee.principles import Preference

    instructions, outputs = _texts()
    rows = [json.loads(line) for line in open(DATA / "judge_pairs.jsonl", encoding="utf-8")]
    rows = [r for r in rows if r["annotator"] == "weighted_alpaca_eval_gpt4_turbo" and r["model_b"] in ALPACA_SYSTEMS
            and r["preference"] not in (None, 0, 1.5) and r["output_a_matches"] and r["output_b_matches"]
            and _short(instructions, outputs, r["instruction_id"], r["model_a"], r["model_b"])]
    random.Random(0).shuffle(rows)
    # as many wins of each side per system: GPT-4-turbo prefers gpt4_1106_preview (side a) in about 80%
    # of these pairs, and a constitution that only learnt "a wins" would look good for nothing
    per = max(1, n // (2 * len(ALPACA_SYSTEMS)))
    prefs, taken = [], {(s, side): 0 for s in ALPACA_SYSTEMS for side in "ab"}
    for r in rows:
        side = "a" if float(r["preference"]) < 1.5 else "b"
        if taken[(r["model_b"], side)] >= per:
            continue
        taken[(r["model_b"], side)] += 1
        iid = r["instruction_id"]
        prefs.append(Preference(f"i{iid}-{r['model_b']}", instructions[iid], outputs[(iid, r["model_a"])],
                                outputs[(iid, r["model_b"])], side, r["model_b"]))
    return prefs, ALPACA_SYSTEMS[len(ALPACA_SYSTEMS) // 2:]  # train on the first half's pairs, test on the rest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", default="planted,alpaca")
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--judge", default="qwen2.5-coder-1.5b")
    ap.add_argument("--propose-pairs", type=int, default=12)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--vote", default="logprob", choices=["logprob", "generate"])
    ap.add_argument("--propose-batch", type=int, default=1, help="preferences shown to the proposer at once")
    ap.add_argument("--propose-facets", default="", help="aspects proposed on alone: opening,ending,length,structure")
    ap.add_argument("--vote-min-mass", type=float, default=0.5, help="logprob votes: the letters' least probability")
    ap.add_argument("--add-principles", type=Path, default=None,
                    help="your own principles beside the proposed ones (e.g. bench/principles_form.txt)")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (the shared AlpacaEval data)")
    from referee.principles import learn_principles, load_principles

    added = load_principles(args.add_principles) if args.add_principles else ()

    out: dict = {"bench": "principles", "model": args.model, "judge": args.judge, "vote": args.vote,
                 "propose_batch": args.propose_batch, "vote_min_mass": args.vote_min_mass, "added": len(added),
                 "sets": {}}
    for name in args.set.split(","):
        prefs, test_groups = {"planted": planted, "alpaca": alpaca}[name](args.pairs)
        t0 = time.perf_counter()
        folder = f"{name}-{args.vote}"
        if args.propose_batch > 1:
            folder += f"-batch{args.propose_batch}"
        if args.propose_facets:
            folder += "-facets-" + args.propose_facets.replace(",", "-")
        if args.vote_min_mass != 0.5:
            folder += f"-mass{args.vote_min_mass:g}"
        res = learn_principles(prefs, CACHE / folder, model=args.model, judge=args.judge,
                               test_groups=test_groups, propose_pairs=args.propose_pairs, candidates=args.candidates,
                               max_principles=5, n_ctx=4096, vote=args.vote, added=added,
                               propose_batch=args.propose_batch, vote_min_mass=args.vote_min_mass,
                               propose_facets=[f for f in args.propose_facets.split(",") if f])
        rep = res.report
        row = {"preferences": rep["preferences"], "principles": [[p, f] for p, f in zip(res.principles, res.facets)],
               "test": {k: {"accuracy": round(v["accuracy"], 3), "interval": [round(x, 3) for x in v["interval"]],
                            "n": v["n"]} for k, v in rep["test"].items()},
               "candidates": [[c["text"], c["facet"], c["added"], c["train_agree"], c["train_disagree"]]
                              for c in rep["candidates"]],
               "counts": rep["counts"], "asked": rep["asked"], "seconds": round(time.perf_counter() - t0, 1)}
        out["sets"][name] = row
        print(f"{name}: {rep['preferences']['train']} train / {rep['preferences']['test']} held out; "
              f"{rep['proposals']} proposals, {len(rep['candidates'])} merged; {row['seconds']} s", flush=True)
        for text, facet, mine, agree, disagree in row["candidates"]:
            print(f"  {'added' if mine else 'found'} {facet or 'whole':9s} train {agree:2d} agree / {disagree:2d} "
                  f"disagree  {text}", flush=True)
        for k, (p, facet) in enumerate(zip(res.principles, res.facets), 1):
            print(f"  {k}. [{facet or 'whole'}] {p}", flush=True)
        for k, v in row["test"].items():
            print(f"  {k:26s} {v['accuracy']:.3f} [{v['interval'][0]:.3f}, {v['interval'][1]:.3f}] n={v['n']}",
                  flush=True)
    if "planted" in out["sets"]:
        out["planted_target_met"] = out["sets"]["planted"]["test"]["constitution"]["accuracy"] >= 0.90
    print(json.dumps(out))


if __name__ == "__main__":
    main()
