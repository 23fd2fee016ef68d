"""Rating verdict logs of 1M, 10M and 100M rows: Parquet shards aggregated by DuckDB, against SQLite + Python.

Each log is a synthetic run folder of 100 systems: every pair judged on every prompt in both
orders (9,900 verdicts a prompt), soft P(first wins) from known strengths plus a position effect
and noise, 1% of comparisons in one order only, 1% unparseable rows. The folder is a real store
(``verdicts.sqlite`` with judges, prompts and candidate texts; verdicts in ``verdicts/`` shards with
the full shard schema, texts bound by their hashes), written once and cached under
``bench/.cache/store_scale``. Each measurement runs ``referee rate RUN --ci sandwich`` (clustered by
prompt) in a fresh process, which reports its own peak RSS (VmHWM). The baseline is the
same command on the same verdicts in a plain SQLite store (the journal only: the Python road), at
the sizes given to ``--baseline`` (building it and reading 10M rows through Python objects take
tens of minutes).

    .venv/bin/python bench/store_scale.py [--sizes 1e6,1e7,1e8] [--baseline 1e6]

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache" / "store_scale"
N_SYSTEMS = 100
JUDGE = "bench-judge"
HEX = np.array([f"{i:02x}" for i in range(256)], dtype="S2")


def _hexes(rng, n):
    return pa.array(HEX[rng.integers(0, 256, (n, 32), dtype=np.uint8)].view("S64").ravel()).cast(pa.string())


def _sha(texts):
    return np.array([hashlib.sha256(t.encode()).hexdigest() for t in texts], dtype=object)


def build(rows: int, folder: Path, *, sharded: bool = True, seed: int = 0) -> dict:
    """Write a run folder with about ``rows`` verdicts; returns its description (cached)."""
    from referee.store import VerdictStore
    from referee.store._shards import row_verdict

    done = folder / "built.json"
    if done.exists():
        return json.loads(done.read_text())
    if folder.exists():
        import shutil
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    per_prompt = N_SYSTEMS * (N_SYSTEMS - 1)
    n_prompts = max(1, round(rows / per_prompt))
    systems = np.array([f"system-{i:03d}" for i in range(N_SYSTEMS)], dtype=object)
    strength = rng.normal(0, 1, N_SYSTEMS)
    prompt_ids = np.array([f"prompt-{i:06d}" for i in range(n_prompts)], dtype=object)
    prompt_sha = _sha([f"Question {i}?" for i in range(n_prompts)])
    cand_sha = _sha([f"{s} answers question {p}" for p in range(n_prompts) for s in systems]).reshape(n_prompts, -1)
    store = VerdictStore(folder / "verdicts.sqlite")
    store.register_judge(JUDGE, {"mode": "pairwise", "backend": "synthetic"})
    store.put_candidates([SimpleNamespace(id=p, text=f"Question {i}?", reference=None) for i, p in enumerate(prompt_ids)],
                         [SimpleNamespace(prompt_id=p, system=s, output=f"{s} answers question {i}",
                                          content_hash=cand_sha[i, j], metadata={})
                          for i, p in enumerate(prompt_ids) for j, s in enumerate(systems)])
    ia, ib = np.triu_indices(N_SYSTEMS, 1)
    first, second = np.concatenate([ia, ib]), np.concatenate([ib, ia])
    chunk = max(1, 1_000_000 // per_prompt)
    total = 0
    for p0 in range(0, n_prompts, chunk):
        ps = np.arange(p0, min(n_prompts, p0 + chunk))
        pid = np.repeat(ps, per_prompt)
        f, s = np.tile(first, len(ps)), np.tile(second, len(ps))
        q = 1 / (1 + np.exp(strength[s] - strength[f]))
        p = np.clip(q + 0.05 + rng.normal(0, 0.15, len(q)), 0, 1)
        keep = rng.random(len(q)) >= 0.005  # about 1% of comparisons lose one of their two orders
        bad = rng.random(len(q)) < 0.01
        pid, f, s, p, bad = pid[keep], f[keep], s[keep], p[keep], bad[keep]
        n = len(p)
        texts = np.empty(3 * n, dtype=object)
        texts[0::3], texts[1::3], texts[2::3] = prompt_sha[pid], cand_sha[pid, f], cand_sha[pid, s]
        offsets = pa.array(np.arange(0, 3 * n + 1, 3, dtype=np.int32))
        sys_lists = np.empty(2 * n, dtype=object)
        sys_lists[0::2], sys_lists[1::2] = systems[f], systems[s]
        table = pa.table({
            "verdict_id": _hexes(rng, n), "question": _hexes(rng, n), "judge_id": pa.array(np.full(n, JUDGE, object)),
            "mode": pa.array(np.full(n, "pairwise", object)), "prompt_id": pa.array(prompt_ids[pid]),
            "systems": pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)),
                                                pa.array(sys_lists, pa.string())),
            "system_first": pa.array(systems[f]), "system_second": pa.array(systems[s]),
            "status": pa.array(np.where(bad, "unparseable", "ok").astype(object)),
            "p_first": pa.array(np.where(bad, np.nan, p), mask=bad), "score": pa.nulls(n, pa.float64()),
            "detail": pa.array(np.full(n, '{"mass": 0.99}', object)), "raw": pa.array(np.full(n, " A", object)),
            "error": pa.nulls(n, pa.string()), "prompt_tokens": pa.array(np.full(n, 300, np.int64)),
            "completion_tokens": pa.array(np.zeros(n, np.int64)), "latency_s": pa.array(np.full(n, 0.1)),
            "cost": pa.array(np.zeros(n)), "created_at": pa.array(np.full(n, "2026-12-02T00:00:00.000+00:00", object)),
            "texts": pa.ListArray.from_arrays(offsets, pa.array(texts, pa.string())),
        })
        if sharded:
            store.append_shard(table)
        else:
            store.put_many(row_verdict(r) for r in table.to_pylist())
        total += n
        print(f"  {folder.name}: {total:,} verdicts, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    store.close()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    info = {"rows": total, "prompts": n_prompts, "systems": N_SYSTEMS, "bytes": size,
            "build_s": round(time.perf_counter() - t0, 1), "sharded": sharded}
    done.write_text(json.dumps(info))
    return info


# The child reports its own peak RSS (VmHWM) as it exits: getrusage's ru_maxrss would also count the
# memory of this process, which the child held between fork and exec.
_CHILD = """
import atexit, sys
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("PEAK_RSS_KB " + line.split()[1] + "\\n")
atexit.register(_peak)
sys.argv = ["referee", *sys.argv[1:]]
from referee.cli import main
main()
"""


def measure(folder: Path) -> dict:
    """``referee rate FOLDER --ci sandwich`` in a fresh process: wall seconds and peak RSS."""
    out = folder / "ratings.json"
    cmd = [sys.executable, "-c", _CHILD, "rate", str(folder), "--ci", "sandwich", "-o", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"referee rate {folder} --ci sandwich failed:\n{proc.stderr}")
    peak = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB ")]
    doc = json.loads(out.read_text())
    return {"seconds": round(wall, 2), "peak_rss_mb": round(peak[-1] / 1024, 1),
            "ratings": {r["system"]: r["rating"] for r in doc["ratings"]},
            "lower": {r["system"]: r["lower"] for r in doc["ratings"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1e6,1e7,1e8")
    ap.add_argument("--baseline", default="1e6", help="sizes also measured through SQLite + Python ('' for none)")
    args = ap.parse_args()
    sizes = [int(float(x)) for x in args.sizes.split(",") if x]
    base_sizes = [int(float(x)) for x in args.baseline.split(",") if x]
    results = []
    for rows in sorted(set(sizes) | set(base_sizes)):
        row: dict = {"rows_asked": rows}
        if rows in sizes:
            info = build(rows, CACHE / f"parquet-{rows}")
            m = measure(CACHE / f"parquet-{rows}")
            row.update(rows=info["rows"], prompts=info["prompts"], gb_on_disk=round(info["bytes"] / 1e9, 2),
                       parquet_s=m["seconds"], parquet_rss_mb=m["peak_rss_mb"],
                       parquet_s_per_million=round(m["seconds"] / (info["rows"] / 1e6), 3))
            print(f"parquet {info['rows']:>12,} rows: {m['seconds']:7.1f} s, {m['peak_rss_mb']:7.0f} MB peak RSS",
                  flush=True)
        if rows in base_sizes:
            info = build(rows, CACHE / f"sqlite-{rows}", sharded=False)
            b = measure(CACHE / f"sqlite-{rows}")
            row.update(rows=info["rows"], sqlite_s=b["seconds"], sqlite_rss_mb=b["peak_rss_mb"])
            print(f"sqlite  {info['rows']:>12,} rows: {b['seconds']:7.1f} s, {b['peak_rss_mb']:7.0f} MB peak RSS",
                  flush=True)
            if rows in sizes:
                diff = max(abs(m["ratings"][k] - b["ratings"][k]) for k in b["ratings"])
                dlo = max(abs(m["lower"][k] - b["lower"][k]) for k in b["lower"])
                row.update(speedup=round(b["seconds"] / m["seconds"], 1), max_rating_diff=diff, max_lower_diff=dlo)
                print(f"  same verdicts: ratings differ by at most {diff:.2e}, lower bounds by {dlo:.2e}; "
                      f"parquet+duckdb is {b['seconds'] / m['seconds']:.1f}x faster", flush=True)
        results.append(row)
    big = [r for r in results if "parquet_s" in r]
    summary = {"bench": "store_scale", "results": results}
    if big:
        top = max(big, key=lambda r: r["rows"])
        summary.update(largest_rows=top["rows"], largest_s=top["parquet_s"], largest_rss_mb=top["parquet_rss_mb"],
                       target_met=top["rows"] >= 99_000_000 and top["parquet_s"] <= 60 and top["parquet_rss_mb"] <= 2048)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
