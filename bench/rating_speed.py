"""Rating speed at Chatbot Arena scale, against two baselines measured in the same run.

Synthetic verdicts with known true strengths (100 systems, 1.6 million pairwise
verdicts with ties, like Arena's battle log) are rated with 95% intervals by
referee (sandwich, and a 100-round bootstrap), by choix's ``ilsr_pairwise``, and by
a re-implementation of the method FastChat's current Arena code describes: dedup
battles into unique (a, b, outcome) rows with counts, fit Bradley-Terry with scipy
L-BFGS, bootstrap by multinomial re-weighting of the unique rows, one L-BFGS fit
per round in a process pool. That baseline is written from the description, not
copied. Coverage of the true strengths is measured over repeated synthetic draws.

The last line printed is one JSON object with every number.

Usage: python bench/rating_speed.py [--systems 100] [--verdicts 1600000] [--rounds 100]
       [--draws 20] [--no-choix]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import resource
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from referee.rate import rate_pairwise  # noqa: E402

SCALE, BASE = 400.0, 1000.0
PTS = SCALE / math.log(10)


def synth(n_sys, n_ver, seed, tie_rate=0.3):
    """Arena-like battles: skewed system popularity, ties, known strengths (Elo points)."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0, 1.0, n_sys)
    true -= true.mean()
    pop = rng.dirichlet(np.full(n_sys, 2.0))
    a = rng.choice(n_sys, n_ver, p=pop)
    b = rng.choice(n_sys, n_ver, p=pop)
    same = a == b
    while same.any():
        b[same] = rng.choice(n_sys, same.sum(), p=pop)
        same = a == b
    p = expit(true[a] - true[b])
    u = rng.random(n_ver)
    # Ties are likelier between close systems; P(a) + P(tie)/2 = p keeps the truth exactly BT.
    p_tie = tie_rate * 4 * p * (1 - p)
    p_a = p - p_tie / 2
    o = np.where(u < p_a, 1.0, np.where(u < p_a + p_tie, 0.5, 0.0))
    return BASE + PTS * true, a, b, o


# ---- FastChat-style baseline (written from the description of its method) ----

def _fc_loss(ratings, matchups, outcomes, weights, alpha):
    d = alpha * (ratings[matchups[:, 0]] - ratings[matchups[:, 1]])
    p = expit(d)
    eps = 1e-300
    loss = -((np.log(p + eps) * outcomes + np.log(1 - p + eps) * (1 - outcomes)) * weights).sum()
    g_rows = -alpha * (outcomes - p) * weights
    grad = np.zeros_like(ratings)
    np.add.at(grad, matchups[:, 0], g_rows)
    np.add.at(grad, matchups[:, 1], -g_rows)
    return loss, grad


def _fc_fit(weights, matchups, outcomes, n, alpha, tol, maxiter=100, ftol=None):
    opts = {"maxiter": maxiter, "gtol": tol}
    if ftol is not None:
        opts["ftol"] = ftol
    res = minimize(_fc_loss, np.zeros(n), args=(matchups, outcomes, weights, alpha), jac=True,
                   method="L-BFGS-B", options=opts)
    return res.x


def fastchat_style(a, b, o, n, rounds, seed, tol=1e-6, procs=None):
    """Dedup + L-BFGS fit + multinomial bootstrap over unique rows, one fit per round in a pool.

    Returns the point ratings, the 95% percentile bounds, a tightly converged point fit
    (untimed, for the agreement check) and the seconds the method itself took.
    """
    t0 = time.perf_counter()
    rows = np.stack([a, b, (o * 2).astype(np.int64)], axis=1)
    uniq, counts = np.unique(rows, axis=0, return_counts=True)
    matchups = uniq[:, :2]
    outcomes = uniq[:, 2] / 2.0
    alpha = math.log(10.0) / SCALE
    point = _fc_fit(counts.astype(float), matchups, outcomes, n, alpha, tol)
    rng = np.random.default_rng(seed)
    boot_w = rng.multinomial(len(a), counts / counts.sum(), size=rounds).astype(float)
    fit = partial(_fc_fit, matchups=matchups, outcomes=outcomes, n=n, alpha=alpha, tol=tol)
    with mp.get_context("fork").Pool(procs or os.cpu_count()) as pool:
        boots = np.array(pool.map(fit, list(boot_w)))
    center = lambda r: r - r.mean(axis=-1, keepdims=True) + BASE  # noqa: E731
    point, boots = center(point), center(boots)
    lower, upper = np.quantile(boots, [0.025, 0.975], axis=0)
    # Not part of the timed method: the same fit run to a tight tolerance, to check that both
    # implementations reach one optimum (the default stopping rule leaves ~0.01-point errors).
    seconds = time.perf_counter() - t0
    # The loss is scaled to a mean so that float rounding of a ~1e6 sum does not stop the line search early.
    exact = center(_fc_fit(counts / counts.sum(), matchups, outcomes, n, alpha, 0.0, maxiter=100_000, ftol=0.0))
    return point, lower, upper, exact, seconds


def choix_fit(a, b, o, n):
    """choix's ILSR; a tie is one win each way (choix has no ties)."""
    import choix

    wins = o == 1.0
    ties = o == 0.5
    data = list(zip(a[wins].tolist(), b[wins].tolist()))
    data += list(zip(b[o == 0.0].tolist(), a[o == 0.0].tolist()))
    data += list(zip(a[ties].tolist(), b[ties].tolist())) + list(zip(b[ties].tolist(), a[ties].tolist()))
    t0 = time.perf_counter()
    params = choix.ilsr_pairwise(n, data, alpha=0.0, tol=1e-10, max_iter=1000)
    return BASE + PTS * (params - params.mean()), time.perf_counter() - t0


def timed(f, *args, **kw):
    t0 = time.perf_counter()
    out = f(*args, **kw)
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--systems", type=int, default=100)
    ap.add_argument("--verdicts", type=int, default=1_600_000)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--draws", type=int, default=20, help="synthetic draws for coverage")
    ap.add_argument("--no-choix", action="store_true")
    args = ap.parse_args()
    n, V, R = args.systems, args.verdicts, args.rounds
    names = [f"m{i:03d}" for i in range(n)]

    true, a, b, o = synth(n, V, seed=0)
    print(f"{n} systems, {V:,} verdicts ({np.mean(o == 0.5):.0%} ties), {R} bootstrap rounds, "
          f"{os.cpu_count()} cores", flush=True)

    t_sand_tab, t_sand = timed(rate_pairwise, names, a, b, o, ci="sandwich")
    print(f"referee sandwich:           {t_sand:7.2f} s", flush=True)
    t_boot_tab, t_boot = timed(rate_pairwise, names, a, b, o, ci="bootstrap", n_boot=R, seed=0)
    print(f"referee bootstrap ({R}):     {t_boot:7.2f} s  ({t_boot_tab.n_boot_failed} rounds failed)", flush=True)

    fc_point, fc_lo, fc_hi, fc_exact, t_fc = fastchat_style(a, b, o, n, R, 0)
    print(f"FastChat-style ({R}, pool): {t_fc:7.2f} s", flush=True)
    ours = t_sand_tab.rating
    out = {
        "systems": n, "verdicts": V, "rounds": R, "cores": os.cpu_count(),
        "seconds": {"referee_sandwich": t_sand, "referee_bootstrap": t_boot, "fastchat_style_bootstrap": t_fc},
        "speedup_bootstrap_vs_fastchat": t_fc / t_boot,
        "speedup_sandwich_vs_fastchat": t_fc / t_sand,
        "max_abs_rating_diff_vs_fastchat": float(np.max(np.abs(ours - fc_point))),
        "max_abs_rating_diff_vs_fastchat_tight_tol": float(np.max(np.abs(ours - fc_exact))),
        "max_abs_bound_diff_vs_fastchat_bootstrap": float(max(np.max(np.abs(t_boot_tab.lower - fc_lo)),
                                                              np.max(np.abs(t_boot_tab.upper - fc_hi)))),
        "max_abs_rating_diff_vs_truth": float(np.max(np.abs(ours - true))),
    }
    if not args.no_choix:
        try:
            ch, t_ch = choix_fit(a, b, o, n)
        except ImportError:
            print("choix is not installed (pip install choix): skipped", flush=True)
        else:
            # choix counts a tie as a full win each way, i.e. double weight; fit ours on that same data.
            ties = o == 0.5
            a2 = np.concatenate([a, b[ties]])
            b2 = np.concatenate([b, a[ties]])
            o2 = np.concatenate([np.where(ties, 1.0, o), np.ones(ties.sum())])
            ours2 = rate_pairwise(names, a2, b2, o2, ci="none").rating
            print(f"choix ilsr_pairwise:        {t_ch:7.2f} s (point estimate only)", flush=True)
            out["seconds"]["choix_ilsr_point_only"] = t_ch
            out["speedup_sandwich_vs_choix"] = t_ch / t_sand
            out["max_abs_rating_diff_vs_choix"] = float(np.max(np.abs(ours2 - ch)))

    # Coverage over repeated draws (each draw: new battles from the same kind of truth).
    cov_s, cov_b, tot = 0, 0, 0
    width_s, width_b = [], []
    for d in range(args.draws):
        tr, aa, bb, oo = synth(n, V, seed=1000 + d)
        ts = rate_pairwise(names, aa, bb, oo, ci="sandwich")
        tb = rate_pairwise(names, aa, bb, oo, ci="bootstrap", n_boot=R, seed=d)
        tr = tr - tr.mean() + BASE
        cov_s += int(np.sum((ts.lower <= tr) & (tr <= ts.upper)))
        cov_b += int(np.sum((tb.lower <= tr) & (tr <= tb.upper)))
        width_s.append(np.median(ts.upper - ts.lower))
        width_b.append(np.median(tb.upper - tb.lower))
        tot += n
        print(f"coverage draw {d + 1}/{args.draws}: sandwich {cov_s / tot:.3f}, bootstrap {cov_b / tot:.3f}",
              flush=True)
    out["coverage_sandwich"] = cov_s / tot if tot else None
    out["coverage_bootstrap"] = cov_b / tot if tot else None
    out["coverage_intervals"] = tot
    out["median_ci_width_points"] = {"sandwich": float(np.median(width_s)) if width_s else None,
                                     "bootstrap": float(np.median(width_b)) if width_b else None}
    out["peak_rss_mb"] = {
        "main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "pool_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
