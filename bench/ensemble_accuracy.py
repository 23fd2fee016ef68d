"""Synthetic benchmark: k verifiers of known accuracies on items with hidden truth.

Verifiers: varied accuracies (some near chance), a correlated near-copy of the best one, one that
always says "a", a biased one (different sensitivity and specificity), and 15% missing verdicts.
Reports the accuracy of the label-free ensemble (Dawid–Skene and triplet), of the majority vote
and of the best single verifier, and the error of the estimated accuracies of the kept verifiers.

Then correlated blocks: four weak verifiers that copy one shared 0.7 heuristic 80% of the time
(their errors coincide), added (1) to the verifiers above, where the independent ones outnumber the
block and the screening finds it, and (2) to only one strong (0.85) and two independent verifiers
(0.7, 0.65), where from the votes alone the block looks like the truth and must be declared
(``groups=``): the dependency-aware model against the same model without the declaration.
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


def add_block(x, y, seed, size=4, share=0.8, heuristic=0.7, missing=0.15):
    """Append ``size`` verifiers that copy one shared heuristic ``share`` of the time (else vote on their own
    with the same accuracy); returns the new matrix, the block's columns and their true accuracies."""
    rng = np.random.default_rng(seed + 1000)
    n = len(y)

    def vote(a):
        return np.where(rng.random(n) < a, y, ~y)

    h = vote(heuristic)
    cols = [np.where(rng.random(n) < share, h, vote(heuristic)) for _ in range(size)]
    b = np.array(cols).T.astype(float) * 0.6 + 0.2
    b[rng.random(b.shape) < missing] = np.nan
    acc = [float(np.mean((c > 0.5)[~np.isnan(c)] == y[~np.isnan(c)])) for c in b.T]
    return np.column_stack([x, b]), list(range(x.shape[1], x.shape[1] + size)), acc


def block_case(n, seed, base):
    """Returns accuracies of (declared, undeclared, majority, best single) and the worst accuracy error."""
    if base:
        x, names, y, true_acc = simulate(n, seed)
    else:
        rng = np.random.default_rng(seed)
        y = rng.random(n) < 0.6
        x = np.array([np.where(rng.random(n) < a, y, ~y) for a in (0.85, 0.7, 0.65)]).T.astype(float) * 0.6 + 0.2
        x[rng.random(x.shape) < 0.15] = np.nan
        names, true_acc = ["strong", "ind0.70", "ind0.65"], [0.85, 0.7, 0.65]
    x, cols, bacc = add_block(x, y, seed)
    names = names + [f"block{k}" for k in range(len(cols))]
    true_acc = np.array(list(true_acc) + bacc)
    dec = combine(x, names, groups=[[names[c] for c in cols]])
    und = combine(x, names)
    singles = [score(np.where(np.isnan(x[:, j]), 0.5, x[:, j]), y) for j in range(x.shape[1])]
    errs = [abs(m.accuracy - true_acc[j]) for j, m in enumerate(dec.members) if m.kept and m.accuracy is not None]
    found = bool(und.members[cols[0]].unit) and und.members[cols[0]].unit == und.members[cols[-1]].unit
    return score(dec.p, y), score(und.p, y), score(majority_vote(x), y), max(singles), max(errs), found


def score(p, y):
    d = np.sign(p - 0.5)
    return float(np.mean(np.where(d == 0, 0.5, (d > 0) == y)))


def main(argv):
    n = int(argv[1]) if len(argv) > 1 else 4000
    seeds = int(argv[2]) if len(argv) > 2 else 5
    res = {"ensemble": [], "ensemble_asymmetric": [], "triplet": [], "majority": [], "best_single": [], "acc_error_max": [], "acc_error_mean": []}
    t0 = time.perf_counter()
    for seed in range(seeds):
        x, names, y, true_acc = simulate(n, seed)
        ens = combine(x, names)
        tri = combine(x, names, method="triplet")
        # The items have a real positive class (prior 0.6) and one verifier is biased (sensitivity
        # != specificity): what symmetric=False is for. The default symmetric model is for pairs
        # whose orientation is arbitrary, and cannot represent either.
        asym = combine(x, names, symmetric=False)
        res["ensemble_asymmetric"].append(score(asym.p, y))
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
            print(f"{'verifier':<26} {'kept':>5} {'true acc':>9} {'est. acc':>9}  reason / unit")
            for j, m in enumerate(ens.members):
                est = "–" if m.accuracy is None else f"{m.accuracy:.3f}"
                why = m.reason or (f"one unit: {m.unit}" if m.unit else "")
                print(f"{m.name:<26} {'yes' if m.kept else 'no':>5} {true_acc[j]:>9.3f} {est:>9}  {why}")
    secs = time.perf_counter() - t0
    print(f"\n{seeds} seeds x {n} items ({secs:.1f} s)")
    print(f"{'verdicts':<30} {'accuracy (mean over seeds)':>28}")
    for k in ("ensemble", "ensemble_asymmetric", "triplet", "majority", "best_single"):
        print(f"{k:<30} {100 * np.mean(res[k]):>27.2f}%")
    print(f"estimated accuracy error, kept verifiers: mean {np.mean(res['acc_error_mean']):.4f}, "
          f"worst {np.max(res['acc_error_max']):.4f}")
    out = {"n_items": n, "seeds": seeds, "ensemble_accuracy": float(np.mean(res["ensemble"])),
           "ensemble_asymmetric_accuracy": float(np.mean(res["ensemble_asymmetric"])),
           "triplet_accuracy": float(np.mean(res["triplet"])), "majority_accuracy": float(np.mean(res["majority"])),
           "best_single_accuracy": float(np.mean(res["best_single"])),
           "accuracy_error_mean": float(np.mean(res["acc_error_mean"])),
           "accuracy_error_max": float(np.max(res["acc_error_max"]))}
    for base, key, what in ((True, "block_in_many", "block of 4 added to the verifiers above"),
                            (False, "block_vs_few", "block of 4 + one strong and two independent verifiers")):
        r = np.array([block_case(n, seed, base) for seed in range(seeds)], dtype=float)
        m = r.mean(axis=0)
        print(f"\n{what} ({seeds} seeds): block declared {100 * m[0]:.2f}%, not declared {100 * m[1]:.2f}% "
              f"(screening joined the block in {int(r[:, 5].sum())}/{seeds} seeds), majority {100 * m[2]:.2f}%, "
              f"best single {100 * m[3]:.2f}%; worst accuracy error (declared) {r[:, 4].max():.4f}")
        out[key] = {"ensemble_accuracy": float(m[0]), "ensemble_undeclared_accuracy": float(m[1]),
                    "majority_accuracy": float(m[2]), "best_single_accuracy": float(m[3]),
                    "accuracy_error_max": float(r[:, 4].max()), "block_found_unaided": int(r[:, 5].sum())}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
