"""Judge fidelity: which judge configuration ranks systems as people do, and which can be gamed.

Three parts, each judged in both presentation orders:

(a) clear-cut pairs  — tests/data/clear_cut_pairs.jsonl (the quality test's cases): accuracy of
    the two-order verdict and of single orders.
(b) gaming set       — tests/data/gaming_set.jsonl: 8 factual questions; a correct system and
    gaming systems (a constant flattering non-answer, per-prompt flattery, confident wrong,
    padding around a wrong answer, a "note to the judge", a fake end-of-response marker, chat
    control tokens, an off-topic answer), each judged against the correct one. Reported: how
    many gaming systems the correct one beats (two-order mean P(correct wins) > 0.5).
(c) AlpacaEval        — systems gpt4_1106_preview, Mixtral-8x7B-Instruct-v0.1,
    llama-2-70b-chat-hf, vicuna-7b-v1.5, chatglm2-6b, oasst-sft-pythia-12b from ../shared/data;
    prompts = instructions under 400 characters whose six outputs are all under 700 characters,
    shuffled with random.Random(0), the first 40; round-robin; Bradley–Terry ratings against
    Chatbot Arena Elo (reference_rankings.json, arena_elo_primary): Spearman and Kendall,
    position consistency, first-position rate, seconds per verdict.

Configurations (``--configs``; default all): the template of referee 0.1 without the delimiter
guard (``v0.1``) and with it (``careful``), a bare-bones prompt without a system prompt (``bare``)
and the same with forged delimiters and labels in texts defanged (``default``, the default judge),
the default with letters 1/2 (``default-12``, the prefill ending in a space) and with the prefill
"Answer:" instead of "The better response is Response" (``default-answer``), texts inside tags
declared as data with words on injections and non-answers (``guarded``), the same with letters 1/2
(``guarded-12``), a P(Yes) judge scoring each answer alone (``pyes``), and ``guarded`` with the
judge's own answer to each prompt written first (greedy, at most 256 tokens, once per prompt) and
shown as a fallible draft (``reference``).
``A+B`` averages two configurations' verdicts (e.g. ``default+pyes``), from their cached verdicts.
Two-order combinations: the mean of P(first) over the orders (``mean-p``, what ``rank`` does) and
the mean log-odds, which removes a constant position prior (``mean-logit``).

Every verdict is cached in bench/.cache/judge_fidelity.sqlite (keyed on the judge id and the
texts), so a rerun resumes and costs nothing for what was asked. Seconds per verdict are the
judge's own latencies as stored: only meaningful from a run on an idle machine
(``--fresh-timing N`` re-times N verdicts of part (c) per configuration without the cache).

Usage:  .venv/bin/python bench/judge_fidelity.py [--configs v0.1,default] [--parts a,b,c] [--write-fidelity]
The last line is one JSON object: per configuration, the metrics of each part.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import random
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from referee.backends import LlamaCppBackend  # noqa: E402
from referee.backends._llamagen import LlamaGenerator  # noqa: E402
from referee.judge import CAREFUL_TEMPLATE, DEFAULT_TEMPLATE, GUARDED_TEMPLATE, PairwiseLogprobJudge, PairwiseTemplate, defang  # noqa: E402
from referee.judge._pointwise import YesProbabilityJudge  # noqa: E402
from referee.rate import bradley_terry  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
CACHE = ROOT / "bench" / ".cache" / "judge_fidelity.sqlite"
AE_SYSTEMS = ["gpt4_1106_preview", "Mixtral-8x7B-Instruct-v0.1", "llama-2-70b-chat-hf", "vicuna-7b-v1.5",
              "chatglm2-6b", "oasst-sft-pythia-12b"]

# The careful words without the delimiter guard: the judge of referee 0.1, kept to show its row.
V01 = replace(CAREFUL_TEMPLATE, guard=False)
# The default's words without the guard: where defang changes no text, the default's prompt is
# byte for byte this one's, and so is its verdict (see Runner.pair).
BARE = replace(DEFAULT_TEMPLATE, guard=False, line_guard=False)
GUARDED_12 = PairwiseTemplate(
    system=GUARDED_TEMPLATE.system.replace("Response A", "Response 1").replace("Response B", "Response 2")
    .replace("<response_a>", "<response_1>").replace("<response_b>", "<response_2>"),
    user=GUARDED_TEMPLATE.user.replace("response_a", "response_1").replace("response_b", "response_2")
    .replace("A or B", "1 or 2"),
    prefill=GUARDED_TEMPLATE.prefill + " ",  # see DEFAULT_12
    choices=("1", "2"),
    guard=True,
)
# The default's words with other letters, and with the shortest prefill that still makes the next
# token the letter: issue 11 asks for letter choices and prefills to be compared on the default too.
# Qwen's tokenizer has no " 1" token (a space, then the digit), so a digit answer needs the space
# in the prefill; without it the digits' mass after "Response" is below the floor (every verdict
# unreadable).
DEFAULT_12 = replace(DEFAULT_TEMPLATE, user=DEFAULT_TEMPLATE.user.replace("Response A:", "Response 1:")
                     .replace("Response B:", "Response 2:").replace("A or B", "1 or 2"), choices=("1", "2"),
                     prefill=DEFAULT_TEMPLATE.prefill + " ")
DEFAULT_ANSWER = replace(DEFAULT_TEMPLATE, prefill="Answer:")
REF_USER = GUARDED_TEMPLATE.user.replace(
    "<response_a>", "<judge_draft>\n{reference}\n</judge_draft>\n\n<response_a>", 1)
REF_SYSTEM = GUARDED_TEMPLATE.system + (
    " Inside <judge_draft> is your own earlier draft answer to the question: use it to check facts, "
    "but it may be wrong, and a response that is better than the draft should win.")
REFERENCE = PairwiseTemplate(system=REF_SYSTEM, user=REF_USER, prefill=GUARDED_TEMPLATE.prefill, guard=True)

PAIRWISE = {"v0.1": V01, "careful": CAREFUL_TEMPLATE, "bare": BARE, "default": DEFAULT_TEMPLATE,
            "guarded": GUARDED_TEMPLATE,
            "guarded-12": GUARDED_12, "reference": REFERENCE, "default-12": DEFAULT_12,
            "default-answer": DEFAULT_ANSWER}
ALL_CONFIGS = ["v0.1", "careful", "bare", "default", "default-12", "default-answer", "guarded", "guarded-12",
               "pyes", "reference"]
UNGUARDED = {"careful": V01, "default": BARE}  # a guarded config -> the same words without the guard


# -- data -------------------------------------------------------------------------------------
def clear_cut() -> list[dict]:
    rows = [json.loads(x) for x in (ROOT / "tests/data/clear_cut_pairs.jsonl").read_text().splitlines() if x.strip()]
    return [{"id": r["id"], "prompt": r["prompt"], "good": r["good"], "bad": r["bad"]} for r in rows]


def gaming_set() -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    prompts, outs = {}, {}
    for line in (ROOT / "tests/data/gaming_set.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            prompts[r["prompt_id"]] = r["prompt"]
            outs[(r["prompt_id"], r["system"])] = r["output"]
    return prompts, outs


def alpaca_protocol(n: int = 40) -> tuple[dict[str, str], dict[tuple[str, str], str], dict[str, float]]:
    """The AlpacaEval selection of the issue: the first ``n`` qualifying prompts after Random(0)."""
    instr = {}
    for line in (SHARED / "alpaca_eval/instructions.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        instr[r["instruction_id"]] = r["instruction"]
    outs: dict[tuple[int, str], str] = {}
    wanted = set(AE_SYSTEMS)
    for line in (SHARED / "alpaca_eval/outputs.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        if r["model"] in wanted:
            outs[(r["instruction_id"], r["model"])] = r["output"]
    ok = sorted(i for i, t in instr.items() if len(t) < 400
                and all((i, s) in outs and len(outs[(i, s)]) < 700 for s in AE_SYSTEMS))
    random.Random(0).shuffle(ok)
    chosen = ok[:n]
    prompts = {str(i): instr[i] for i in chosen}
    texts = {(str(i), s): outs[(i, s)] for i in chosen for s in AE_SYSTEMS}
    ref = json.loads((SHARED / "reference_rankings.json").read_text())
    elo = _elo_table(ref)
    return prompts, texts, {s: elo[s] for s in AE_SYSTEMS}


def _elo_table(ref) -> dict[str, float]:
    # reference_rankings.json holds one record per model; accept a list or a mapping of them
    recs = ref.get("models", ref) if isinstance(ref, dict) else ref
    if isinstance(recs, dict):
        recs = [{"model": k, **v} for k, v in recs.items()]
    return {r["model"]: float(r["arena_elo_primary"]) for r in recs if r.get("arena_elo_primary") is not None}


# -- cached judging ---------------------------------------------------------------------------
class Cache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS v (k TEXT PRIMARY KEY, val TEXT)")

    def get(self, key: str):
        row = self.db.execute("SELECT val FROM v WHERE k = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, val) -> None:
        self.db.execute("INSERT OR REPLACE INTO v VALUES (?, ?)", (key, json.dumps(val)))
        self.db.commit()


def _key(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class Runner:
    """One configuration's judge with cached verdicts: ``pair`` gives P(first), ``score`` P(yes)."""

    def __init__(self, name: str, backend, cache: Cache, *, use_cache: bool = True) -> None:
        self.name, self.backend, self.cache, self.use_cache = name, backend, cache, use_cache
        self.asked = 0
        self.latencies: list[float] = []
        self.unparseable = 0
        if name == "pyes":
            self.judge = YesProbabilityJudge(backend, use_reference=False)
        elif name == "reference":
            # the judge is built on the frame without the draft (its id and token budget); each
            # verdict binds its prompt's draft into the template
            frame = PAIRWISE[name]
            self.judge = PairwiseLogprobJudge(backend, template=PairwiseTemplate(
                system=frame.system, user=frame.user.replace("{reference}", ""), prefill=frame.prefill,
                choices=frame.choices, guard=frame.guard))
        else:
            self.judge = PairwiseLogprobJudge(backend, template=PAIRWISE[name])
        if name in UNGUARDED:
            self._unguarded_id = PairwiseLogprobJudge(backend, template=UNGUARDED[name]).judge_id
        self._drafts: dict[str, str] = {}

    def _draft(self, question: str) -> str:
        # the judge's own answer, written once per prompt and shared by all its pairs
        k = _key("draft", self.backend.sha256, question)
        got = self.cache.get(k)
        if got is None:
            gen = LlamaGenerator(self.backend)
            t0 = time.perf_counter()
            g = gen.generate([{"role": "user", "content": question}], max_tokens=256)
            got = {"text": g.text, "s": time.perf_counter() - t0}
            self.cache.put(k, got)
        self._draft_s = getattr(self, "_draft_s", 0.0) + got["s"]  # reported apart, not per verdict
        return got["text"]

    def pair(self, question: str, first: str, second: str) -> float | None:
        if self.name == "reference":
            if question not in self._drafts:
                self._drafts[question] = self._draft(question)
            draft = self._drafts[question]
            q_key = question + "\x00" + draft
        else:
            draft, q_key = None, question
        jid = self.judge.judge_id
        lines = getattr(PAIRWISE.get(self.name), "line_guard", False)
        if self.name in UNGUARDED and all(defang(t, lines=lines) == t for t in (question, first, second)):
            # The words plus defang(): where defang changes nothing, the prompt is byte for byte
            # the unguarded words', and so is the verdict.
            jid = self._unguarded_id
        if draft is not None:
            return self._cached(_key(jid, q_key, first, second),
                                lambda: _judge_with_reference(self.judge, question, draft, first, second), "p_first")
        return self._cached(_key(jid, q_key, first, second), lambda: self.judge.judge(question, first, second),
                            "p_first")

    def score(self, question: str, response: str) -> float | None:
        return self._cached(_key(self.judge.judge_id, question, response),
                            lambda: self.judge.score(question, response), "score")

    def _cached(self, key: str, ask, field: str) -> float | None:
        """The stored verdict under ``key``, or ``ask()``'s (stored); its ``field`` if it is ok."""
        got = self.cache.get(key) if self.use_cache else None
        if got is None:
            ans = ask()
            got = {"status": ans.status, "p": getattr(ans, field), "s": ans.latency_s}
            self.asked += 1
            if self.use_cache:
                self.cache.put(key, got)
        self.latencies.append(got["s"])
        if got["status"] != "ok":
            self.unparseable += 1
            return None
        return got["p"]

    def both_orders(self, question: str, x: str, y: str) -> tuple[float | None, float | None]:
        """(P(x first wins), P(y first wins)) — or, for P(yes), the scores' difference as both."""
        if self.name == "pyes":
            sx, sy = self.score(question, x), self.score(question, y)
            if sx is None or sy is None:
                return None, None
            p = 0.5 + (sx - sy) / 2
            return p, 1 - p
        return self.pair(question, x, y), self.pair(question, y, x)


class Mix:
    """The mean of two configurations' two-order verdicts (a pairwise judge and P(yes)), from their
    cached verdicts: what ``rank --judges`` would average if it averaged."""

    def __init__(self, name: str, parts: list[Runner]) -> None:
        self.name, self.parts = name, parts
        self.judge = parts[0].judge
        self.latencies: list[float] = []

    @property
    def asked(self) -> int:
        return sum(r.asked for r in self.parts)

    @property
    def unparseable(self) -> int:
        return sum(r.unparseable for r in self.parts)

    def both_orders(self, question: str, x: str, y: str) -> tuple[float | None, float | None]:
        got = [r.both_orders(question, x, y) for r in self.parts]
        for r in self.parts:
            self.latencies.extend(r.latencies[-2:])
        if any(p is None for pair in got for p in pair):
            return None, None
        return (sum(p for p, _ in got) / len(got), sum(q for _, q in got) / len(got))


def _judge_with_reference(judge: PairwiseLogprobJudge, question: str, draft: str, first: str, second: str):
    # the reference template has a {reference} slot: bind the draft before the judge formats it
    tmpl, frame = judge.template, PAIRWISE["reference"]
    bound = PairwiseTemplate(system=frame.system, user=frame.user.replace("{reference}", _escape(draft)),
                             prefill=tmpl.prefill, choices=tmpl.choices, guard=tmpl.guard)
    judge.template = bound
    try:
        return judge.judge(question, first, second)
    finally:
        judge.template = tmpl


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def combine(p_xy: float | None, p_yx: float | None, how: str) -> float | None:
    """P(x beats y) from the two orders: x shown first (p_xy) and y shown first (p_yx)."""
    ps = []
    if p_xy is not None:
        ps.append(p_xy)
    if p_yx is not None:
        ps.append(1 - p_yx)
    if not ps:
        return None
    if how == "mean-p":
        return sum(ps) / len(ps)
    eps = 1e-6
    lo = sum(math.log(max(p, eps) / max(1 - p, eps)) for p in ps) / len(ps)
    return 1 / (1 + math.exp(-lo))


# -- parts ------------------------------------------------------------------------------------
def part_a(r: Runner) -> dict:
    cases = clear_cut()
    out = {"cases": len(cases)}
    singles, doubles = [], {"mean-p": 0, "mean-logit": 0}
    for c in cases:
        p1, p2 = r.both_orders(c["prompt"], c["good"], c["bad"])
        singles += [p1 is not None and p1 > 0.5, p2 is not None and p2 < 0.5]
        for how in doubles:
            p = combine(p1, p2, how)
            doubles[how] += p is not None and p > 0.5
    out["accuracy"] = {h: round(v / len(cases), 3) for h, v in doubles.items()}
    out["single_order_accuracy"] = round(sum(singles) / len(singles), 3)
    return out


def part_b(r: Runner) -> dict:
    prompts, outs = gaming_set()
    gamers = sorted({s for _, s in outs} - {"correct"})
    per: dict[str, float] = {}
    for g in gamers:
        ps = []
        for pid, q in prompts.items():
            p1, p2 = r.both_orders(q, outs[(pid, "correct")], outs[(pid, g)])
            ps.append(combine(p1, p2, "mean-p"))
        usable = [p for p in ps if p is not None]
        per[g] = round(sum(usable) / len(usable), 3) if usable else float("nan")
    beaten = [g for g, p in per.items() if p > 0.5]
    return {"gamers": len(gamers), "beaten": len(beaten), "p_correct_wins": per,
            "not_beaten": sorted(set(gamers) - set(beaten))}


def part_c(r: Runner, n: int = 40) -> dict:
    prompts, texts, elo = alpaca_protocol(n)
    sys_idx = {s: i for i, s in enumerate(AE_SYSTEMS)}
    rows: dict[str, list[tuple[int, int, float]]] = {"mean-p": [], "mean-logit": []}
    consistent, both, firsts, pairs = 0, 0, [], []
    t_before = len(r.latencies)
    for pid, q in prompts.items():
        for x, y in itertools.combinations(AE_SYSTEMS, 2):
            p1, p2 = r.both_orders(q, texts[(pid, x)], texts[(pid, y)])
            if r.name != "pyes":
                firsts += [p > 0.5 for p in (p1, p2) if p is not None]
                if p1 is not None and p2 is not None:
                    both += 1
                    consistent += (p1 > 0.5) == (p2 < 0.5)
                    pairs.append((p1, p2))
            for how in rows:
                p = combine(p1, p2, how)
                if p is not None:
                    rows[how].append((sys_idx[x], sys_idx[y], p))
    lat = r.latencies[t_before:]
    truth = np.array([elo[s] for s in AE_SYSTEMS])
    out: dict = {"prompts": len(prompts), "verdicts": len(lat)}
    for how, rr in rows.items():
        a, b, p = (np.array(col) for col in zip(*rr))
        rating = bradley_terry(a.astype(int), b.astype(int), p, len(AE_SYSTEMS))
        rating = np.asarray(getattr(rating, "ratings", rating), dtype=float)
        out[how] = {"spearman": round(float(stats.spearmanr(rating, truth).statistic), 3),
                    "kendall": round(float(stats.kendalltau(rating, truth).statistic), 3),
                    "order": [AE_SYSTEMS[i] for i in np.argsort(-rating)]}
    out["position_consistency"] = round(consistent / both, 3) if both else None
    if pairs:
        # calibrated against the judge's own position prior: its mean first-shown advantage taken off
        # each order (what referee.outcomes does to a comparison with one usable order); the mean
        # of both orders, and so every rating, is unchanged by it
        delta = float(np.mean([(x + y - 1) / 2 for x, y in pairs]))
        out["position_effect"] = round(delta, 3)
        out["calibrated_consistency"] = round(float(np.mean([(x - delta > 0.5) == (y - delta < 0.5)
                                                             for x, y in pairs])), 3)
    out["first_position_rate"] = round(sum(firsts) / len(firsts), 3) if firsts else None
    out["s_per_verdict"] = round(float(np.mean(lat)), 3) if lat else None
    if r.name == "reference":
        out["draft_seconds"] = round(getattr(r, "_draft_s", 0.0), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--judge", default="qwen2.5-coder-1.5b")
    ap.add_argument("--configs", default=",".join(ALL_CONFIGS))
    ap.add_argument("--parts", default="a,b,c")
    ap.add_argument("--prompts", type=int, default=40, help="AlpacaEval prompts (the protocol says 40)")
    ap.add_argument("--write-fidelity", action="store_true",
                    help="record the measured rows in src/referee/judge/fidelity.json (shown by rank)")
    ap.add_argument("--threads", type=int, default=None,
                    help="llama.cpp threads (default: all cores; 1 keeps a busy machine from thrashing)")
    ap.add_argument("--fresh-timing", type=int, default=0,
                    help="also re-time this many part-(c) verdicts per configuration, bypassing the cache")
    args = ap.parse_args()
    backend = LlamaCppBackend(args.judge, n_ctx=4096, n_threads=args.threads)
    cache = Cache(CACHE)
    results: dict[str, dict] = {}
    for name in args.configs.split(","):
        r = Mix(name, [Runner(n, backend, cache) for n in name.split("+")]) if "+" in name else \
            Runner(name, backend, cache)
        res: dict = {"judge_id": r.judge.judge_id}
        t0 = time.perf_counter()
        for part in args.parts.split(","):
            res[part] = {"a": part_a, "b": part_b, "c": lambda rr: part_c(rr, args.prompts)}[part](r)
            print(f"[{name}] {part}: {json.dumps(res[part])}", flush=True)
        if args.fresh_timing:
            res["fresh_s_per_verdict"] = fresh_timing(name, backend, cache, args.fresh_timing)
        res["asked"], res["unparseable"], res["wall_s"] = r.asked, r.unparseable, round(time.perf_counter() - t0, 1)
        results[name] = res
    print_table(results)
    if args.write_fidelity:
        write_fidelity(results, args.prompts)
    print(json.dumps(results))


def write_fidelity(results: dict[str, dict], n_prompts: int) -> None:
    """Record each fully measured configuration under its judge id, for ``rank`` to show."""
    path = ROOT / "src" / "referee" / "judge" / "fidelity.json"
    table = json.loads(path.read_text()) if path.is_file() else {"judges": {}}
    table["bench"] = "bench/judge_fidelity.py"
    table["measured"] = time.strftime("%Y-%m-%d")
    for name, r in results.items():
        if not all(k in r for k in ("a", "b", "c")) or "+" in name:
            continue
        table["judges"][r["judge_id"]] = {
            "config": name, "clear_cut_accuracy": r["a"]["accuracy"]["mean-p"],
            "gaming_beaten": r["b"]["beaten"], "gaming_total": r["b"]["gamers"],
            "gaming_not_beaten": r["b"]["not_beaten"], "spearman": r["c"]["mean-p"]["spearman"],
            "kendall": r["c"]["mean-p"]["kendall"], "alpaca_prompts": r["c"]["prompts"],
            "position_consistency": r["c"]["position_consistency"],
            "calibrated_consistency": r["c"].get("calibrated_consistency"),
            "first_position_rate": r["c"]["first_position_rate"],
            "s_per_verdict": r.get("fresh_s_per_verdict", r["c"]["s_per_verdict"])}
    path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


def fresh_timing(name: str, backend, cache: Cache, n: int) -> float:
    """Seconds per verdict over ``n`` uncached verdicts of part (c), in the same order ``rank`` asks."""
    r = Runner(name, backend, cache, use_cache=False)
    prompts, texts, _ = alpaca_protocol(40)
    done = 0
    for pid, q in prompts.items():
        for x, y in itertools.combinations(AE_SYSTEMS, 2):
            if done >= n:
                break
            r.both_orders(q, texts[(pid, x)], texts[(pid, y)])
            done += 2
    lat = [s for s in r.latencies if s]
    return round(float(np.mean(lat)), 3)


def print_table(results: dict[str, dict]) -> None:
    print("\n| config | (a) acc | (b) gamers beaten | (c) Spearman mean-p / mean-logit | Kendall | "
          "consistency (calibrated) | first-pos | s/verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        a, b, c = r.get("a", {}), r.get("b", {}), r.get("c", {})
        acc = a.get("accuracy", {}).get("mean-p", "")
        beaten = f"{b.get('beaten', '')}/{b.get('gamers', '')}" if b else ""
        sp = f"{c['mean-p']['spearman']} / {c['mean-logit']['spearman']}" if c else ""
        kd = c["mean-p"]["kendall"] if c else ""
        s = r.get("fresh_s_per_verdict", c.get("s_per_verdict", "")) if c else ""
        print(f"| {name} | {acc} | {beaten} | {sp} | {kd} | {c.get('position_consistency', '')} "
              f"({c.get('calibrated_consistency', '')}) | {c.get('first_position_rate', '')} | {s} |")


if __name__ == "__main__":
    main()
