"""Synthetic benchmark: k verifiers of known accuracies on items with hidden truth.

Verifiers: varied accuracies (some near chance), a correlated near-copy of the best one, one that
always says "a", a biased one (different sensitivity and specificity), and 15% missing verdicts.
Reports the accuracy of the label-free ensemble (Dawid–Skene and triplet), of the majority vote
and of the best single verifier, and the error of the estimated accuracies of the kept verifiers.
Last line: one JSON object.

Usage: python bench/ensemble_accuracy.py [N_ITEMS] [SEEDS]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from referee.combine import combine, majority_vote  # noqa: E402

ACCURACIES = [0.85, 0.78, 0.72, 0.68, 0.62, 0.55, 0.52]


def simulate(n: int, seed: int, prior: float = 0.6, missing: float = 0.15):
    """Items x verifiers of P(a better) and the hidden truth; returns x, names, y, true accuracies."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prior
    cols, names, acc = [], [], []
    for k, a in enumerate(ACCURACIES):
        right = rng.random(n) < a
        says_a = np.where(right, y, ~y)
        conf = 0.5 + rng.uniform(0.1, 0.45, n)  # a confidence, not informative beyond the vote
        cols.append(np.where(says_a, conf, 1 - conf))
        names.append(f"acc{a:.2f}")
        acc.append(a)
    # Correlated near-copy of the best verifier: 5% of its votes flipped.
    flip = rng.random(n) < 0.05
    copy = np.where(flip, 1 - cols[0], cols[0])
    cols.append(copy)
    names.append("copy-of-acc0.85")
    acc.append(float(np.mean((copy > 0.5) == y)))
    # Biased: says a whenever a is better, and 40% of the time when it is not.
    biased = np.where(y, 0.8, np.where(rng.random(n) < 0.4, 0.8, 0.2))
    cols.append(biased)
    names.append("biased(sens1.0,spec0.6)")
    acc.append(float(np.mean((biased > 0.5) == y)))
    cols.append(np.full(n, 0.9))
    names.append("always-a")
    acc.append(float(np.mean(y)))
    x = np.array(cols).T
    x[rng.random(x.shape) < missing] = np.nan
    return x, names, y, np.array(acc)


def score(p, y):
    d = np.sign(p - 0.5)
    return float(np.mean(np.where(d == 0, 0.5, (d > 0) == y)))


def main(argv):
    n = int(argv[1]) if len(argv) > 1 else 4000
    seeds = int(argv[2]) if len(argv) > 2 else 5
    res = {"ensemble": [], "triplet": [], "majority": [], "best_single": [], "acc_error_max": [], "acc_error_mean": []}
    t0 = time.perf_counter()
    for seed in range(seeds):
        x, names, y, true_acc = simulate(n, seed)
        ens = combine(x, names)
        tri = combine(x, names, method="triplet")
        singles = [score(np.where(np.isnan(x[:, j]), 0.5, x[:, j]), y) for j in range(x.shape[1])]
        errs = [abs(m.accuracy - true_acc[j]) for j, m in enumerate(ens.members) if m.kept and m.accuracy is not None]
        res["ensemble"].append(score(ens.p, y))
        res["triplet"].append(score(tri.p, y))
        res["majority"].append(score(majority_vote(x), y))
        res["best_single"].append(max(singles))
        res["acc_error_max"].append(max(errs))
        res["acc_error_mean"].append(float(np.mean(errs)))
        if seed == 0:
            print(f"seed 0, {n} items: the label model's view")
            print(f"{'verifier':<26} {'kept':>5} {'true acc':>9} {'est. acc':>9}  reason")
            for j, m in enumerate(ens.members):
                est = "–" if m.accuracy is None else f"{m.accuracy:.3f}"
                print(f"{m.name:<26} {'yes' if m.kept else 'no':>5} {true_acc[j]:>9.3f} {est:>9}  {m.reason}")
    secs = time.perf_counter() - t0
    print(f"\n{seeds} seeds x {n} items ({secs:.1f} s)")
    print(f"{'verdicts':<30} {'accuracy (mean over seeds)':>28}")
    for k in ("ensemble", "triplet", "majority", "best_single"):
        print(f"{k:<30} {100 * np.mean(res[k]):>27.2f}%")
    print(f"estimated accuracy error, kept verifiers: mean {np.mean(res['acc_error_mean']):.4f}, "
          f"worst {np.max(res['acc_error_max']):.4f}")
    out = {"n_items": n, "seeds": seeds, "ensemble_accuracy": float(np.mean(res["ensemble"])),
           "triplet_accuracy": float(np.mean(res["triplet"])), "majority_accuracy": float(np.mean(res["majority"])),
           "best_single_accuracy": float(np.mean(res["best_single"])),
           "accuracy_error_mean": float(np.mean(res["acc_error_mean"])),
           "accuracy_error_max": float(np.max(res["acc_error_max"]))}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
