"""Proof on real data: AlpacaEval 2.0 raw and length-controlled win rates, recomputed.

Reads ../shared/data/alpaca_eval (relative to the repository root; never copied
into the repository), takes the GPT-4-turbo judge's annotations of 13 systems
against gpt4_1106_preview, recomputes raw and length-controlled (LC) win rates
with :func:`referee.rate.lc_win_rate`, and prints them next to the official
leaderboard, with Spearman correlations against the official LC column and
against Chatbot Arena Elo (human-derived).

Usage: python bench/alpaca_lc.py [DATA_DIR]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from referee.rate import lc_win_rate  # noqa: E402

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
BASELINE = "gpt4_1106_preview"


def default_data_dir() -> Path:
    return ROOT.parent / "shared" / "data"


def load(data_dir: Path):
    """Annotations as arrays, plus the official leaderboard and Arena Elo."""
    ae = data_dir / "alpaca_eval"
    rows = []
    with open(ae / "judge_pairs.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["annotator"] == ANNOTATOR and r["model_a"] == BASELINE:
                rows.append(r)
    systems = sorted({r["model_b"] for r in rows})
    wanted = set(systems) | {BASELINE}
    length = {}
    with open(ae / "outputs.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["model"] in wanted:
                length[(r["model"], r["instruction_id"])] = len(r["output"])
    sid = {s: i for i, s in enumerate(systems)}
    s = np.array([sid[r["model_b"]] for r in rows])
    q = np.array([r["instruction_id"] for r in rows])
    y = np.array([r["p_b_wins"] for r in rows], dtype=float)
    ls = np.array([length[(r["model_b"], r["instruction_id"])] for r in rows], dtype=float)
    lb = np.array([length[(BASELINE, r["instruction_id"])] for r in rows], dtype=float)
    official = {}
    with open(ae / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            official[r[""]] = (float(r["win_rate"]), float(r["length_controlled_winrate"]))
    glm = {}
    with open(ae / "lc_glm_weights_weighted_alpaca_eval_gpt4_turbo.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            glm[r[""]] = (float(r["np.tanh(std_delta_len)"]), float(r["instruction_difficulty"]),
                          float(r["not_gamed_baseline.astype(float)"]))
    ref = json.loads((data_dir / "reference_rankings.json").read_text(encoding="utf-8"))["models"]
    elo = {m: v.get("arena_elo_primary") for m, v in ref.items() if v.get("arena_elo_primary") is not None}
    return systems, s, q, y, ls, lb, official, glm, elo


def compute(data_dir: Path | None = None):
    """Everything the proof reports, as a dict (the tests use this too)."""
    data_dir = default_data_dir() if data_dir is None else data_dir
    systems, s, q, y, ls, lb, official, glm, elo = load(data_dir)
    res = lc_win_rate(s, q, y, ls, lb, len(systems), systems=systems)
    # text_davinci_003 has annotations but no row in the official leaderboard.
    off_raw = np.array([official.get(m, (np.nan, np.nan))[0] for m in systems])
    off_lc = np.array([official.get(m, (np.nan, np.nan))[1] for m in systems])
    on = [i for i, m in enumerate(systems) if m in official]
    with_elo = [i for i, m in enumerate(systems) if m in elo]
    elo_v = np.array([elo[systems[i]] for i in with_elo])
    return {
        "systems": systems, "result": res, "official_raw": off_raw, "official_lc": off_lc,
        "official_length_coef": np.array([-glm[m][0] if m in glm else np.nan for m in systems]),
        "n_official": len(on),
        "max_raw_diff": float(np.max(np.abs(res.win_rate[on] - off_raw[on]))),
        "max_lc_diff": float(np.max(np.abs(res.lc_win_rate[on] - off_lc[on]))),
        "spearman_lc_vs_official_lc": float(spearmanr(res.lc_win_rate[on], off_lc[on])[0]),
        "spearman_raw_vs_official_lc": float(spearmanr(res.win_rate[on], off_lc[on])[0]),
        "n_with_elo": len(with_elo),
        "spearman_raw_vs_elo": float(spearmanr(res.win_rate[with_elo], elo_v)[0]),
        "spearman_lc_vs_elo": float(spearmanr(res.lc_win_rate[with_elo], elo_v)[0]),
        "spearman_official_lc_vs_elo": float(spearmanr(off_lc[with_elo], elo_v)[0]),
        "elo": {systems[i]: elo[systems[i]] for i in with_elo},
    }


def main(argv: list[str]) -> int:
    data_dir = Path(argv[1]) if len(argv) > 1 else default_data_dir()
    if not (data_dir / "alpaca_eval" / "judge_pairs.jsonl").exists():
        print(f"no AlpacaEval data under {data_dir}", file=sys.stderr)
        return 1
    out = compute(data_dir)
    res = out["result"]
    order = np.argsort(-res.lc_win_rate)
    print(f"AlpacaEval 2.0 ({ANNOTATOR}) vs {BASELINE}: {len(out['systems'])} systems, {int(res.n.sum())} annotations")
    print(f"{'system':28s} {'raw':>6s} {'off.raw':>7s} {'LC':>6s} {'±se':>5s} {'off.LC':>6s} "
          f"{'len.coef':>8s} {'off.len':>7s} {'Arena':>6s}")
    for i in order:
        m = out["systems"][i]
        e = out["elo"].get(m)
        print(f"{m:28s} {res.win_rate[i]:6.2f} {out['official_raw'][i]:7.2f} {res.lc_win_rate[i]:6.2f} "
              f"{res.lc_se[i]:5.2f} {out['official_lc'][i]:6.2f} {res.coef[i, 2]:8.3f} "
              f"{out['official_length_coef'][i]:7.3f} {'' if e is None else f'{e:.0f}':>6s}")
    print()
    print(f"over the {out['n_official']} systems on the official leaderboard:")
    print(f"max |raw - official raw| = {out['max_raw_diff']:.4f} points; max |LC - official LC| = "
          f"{out['max_lc_diff']:.2f} points")
    print(f"Spearman LC vs official LC = {out['spearman_lc_vs_official_lc']:.3f} "
          f"(raw vs official LC = {out['spearman_raw_vs_official_lc']:.3f})")
    print(f"Spearman vs Chatbot Arena Elo over {out['n_with_elo']} systems: raw {out['spearman_raw_vs_elo']:.3f}, "
          f"LC {out['spearman_lc_vs_elo']:.3f}, official LC {out['spearman_official_lc_vs_elo']:.3f}")
    print("len.coef: our length coefficient (system minus baseline); off.len: the official one, sign-flipped "
          "to the same convention")
    summary = {k: v for k, v in out.items() if isinstance(v, float) or isinstance(v, int)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
