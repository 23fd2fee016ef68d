"""The authors' Inverse Constitutional AI package (``inverse-cai``) on the same split as ``bench/principles.py``.

The anchor for ``referee principles``: the same preferences (``planted`` or ``alpaca``, built by
``bench/principles.py``), the same train / held-out split, and the same packaged model, which
``inverse-cai`` reaches through a ``llama_cpp.server`` started here (its ``openai/`` models take
``OPENAI_BASE_URL``). ``inverse-cai`` pulls langchain, alpaca-eval and datasets, so it lives in a
venv of its own, not in referee's:

    python3 -m venv /tmp/icai && /tmp/icai/bin/pip install inverse-cai==0.4.8
    .venv/bin/python bench/principles_icai.py --icai-python /tmp/icai/bin/python [--set planted]

Its settings, where they differ from its defaults, and why: random clusters (its clustering embeds
with OpenAI's embedding service, which a local server does not offer); one voting seed instead of
three (the model is sampled at temperature 0, so three seeds ask the same question three times);
no AlpacaEval annotator stage (it needs OpenAI's models); the filter keeps at most 5 principles
directly (its second clustering of the filtered ones embeds, whatever ``s2_random_clusters`` says).
Proposals on 12 training pairs, 8 clusters and at most 5 principles, as in ``bench/principles.py``.
Held-out accuracy: its votes of the final principles on the held-out pairs
(``test_data_annotate_with_principles``), the sum of for (+1) and against (-1) per pair, and the
training set's more common side where the sum is 0, the rule ``referee principles`` uses for its
own constitution. Last line: one JSON object.

Run on 2026-12-03 with the packaged Qwen: proposals worked, but every vote was ``invalid``, since the
model wraps its JSON in a Markdown fence, which ``inverse-cai``'s parser rejects. ``--strip-fences``
puts a proxy on 127.0.0.1 between ``inverse-cai`` and the server that unwraps a reply that is one
fenced block and nothing else (```` ```json ... ``` ```` -> its inside) and changes nothing else. That
alters the model's replies, so the count of replies it unwrapped is part of the result. With it
(2026-12-07), 40 of 52 replies were unwrapped, no vote was invalid, and the held-out accuracy was
0.550 [0.342, 0.742]; see docs/principles.md. ``inverse-cai`` does not resume: a rerun asks again.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from principles import CACHE, DATA, alpaca, planted  # noqa: E402


def _write(path: Path, prefs) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "text_a", "text_b", "preferred_text"])
        for p in prefs:
            w.writerow([p.prompt, p.text_a, p.text_b, f"text_{p.preferred}"])


FENCED = re.compile(r"\A\s*```[A-Za-z]*\s*\n(.*?)\n?\s*```\s*\Z", re.DOTALL)


class FenceStripper:
    """A proxy to ``upstream`` (``http://127.0.0.1:PORT/v1``) on a free loopback port that unwraps
    chat replies consisting of one Markdown code fence; ``unwrapped`` / ``replies`` count them."""

    def __init__(self, upstream: str) -> None:
        import httpx

        self.upstream, self.replies, self.unwrapped = upstream.rstrip("/"), 0, 0
        root = self.upstream.rsplit("/v1", 1)[0]
        client = httpx.Client(timeout=600)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else None
                r = client.request(method, root + self.path, content=body,
                                   headers={"Content-Type": self.headers.get("Content-Type", "application/json")})
                data = r.content
                if method == "POST" and self.path.endswith("/chat/completions") and r.status_code == 200:
                    reply = r.json()
                    for choice in reply.get("choices") or []:
                        msg = choice.get("message") or {}
                        if isinstance(msg.get("content"), str):
                            proxy.replies += 1
                            m = FENCED.match(msg["content"])
                            if m:
                                msg["content"] = m.group(1)
                                proxy.unwrapped += 1
                    data = json.dumps(reply).encode()
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (http.server's names)
                self._forward("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._forward("POST")

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()


def _test_votes(results: Path) -> dict[int, dict]:
    """Per held-out row: principle index -> its vote (True: favours the preferred text)."""
    out = {}
    path = results / "cache" / "02_principle_votes_testset"
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            # pandas wrote the repr of a Python dict, under the Series' name ("0" in 0.4.8)
            votes = ast.literal_eval(row["votes"] if "votes" in row else row["0"])
            out[int(row["index"])] = {int(k): v for k, v in votes.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--icai-python", required=True, help="a Python with inverse-cai installed")
    ap.add_argument("--set", default="planted", choices=["planted", "alpaca"])
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--strip-fences", action="store_true", help="unwrap replies that are one Markdown code fence "
                    "(a proxy between inverse-cai and the server; counted)")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (the shared AlpacaEval data)")
    from referee.backends import LocalServer, resolve_model
    from referee.principles import split, wilson

    prefs, test_groups = {"planted": planted, "alpaca": alpaca}[args.set](args.pairs)
    train, test = split(prefs, test_groups=test_groups, test_fraction=0.5, seed=0)
    out = CACHE / f"{args.set}-icai{'-unfenced' if args.strip_fences else ''}"
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "train.csv", train)
    _write(out / "test.csv", test)
    path, sha, desc = resolve_model(args.model)
    t0 = time.perf_counter()
    server = LocalServer(path, alias="local", n_ctx=4096, log=out / "server.log")
    stripper = None
    try:
        server.wait_ready()
        url = server.url
        if args.strip_fences:
            stripper = FenceStripper(server.url)
            url = stripper.url
        env = {**os.environ, "OPENAI_BASE_URL": url, "OPENAI_API_BASE": url, "OPENAI_API_KEY": "local"}
        run = out / "run"
        cmd = [args.icai_python, "-c", "from inverse_cai.experiment.core import run; run()",
               f"data_path={out / 'train.csv'}",
               f"test_data_path={out / 'test.csv'}", "alg_model=openai/local", "s2_random_clusters=true",
               "s2_num_clusters=8", "s1_num_samples_for_principle_generation=12", "s3_max_principles=5",
               # no second clustering of the filtered principles: it always embeds, with OpenAI's service
               "s3_ratio_of_max_principles_to_cluster_again=1",
               "s3_num_seeds_to_reannotate_with=1", "test_data_annotate_with_principles=true",
               "annotator.skip=true", "async_task_num=1", f"hydra.run.dir={run}"]
        done = subprocess.run(cmd, env=env, cwd=out, capture_output=True, text=True)
        (out / "icai.log").write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode != 0:
            sys.exit(f"inverse-cai exited with {done.returncode}; its output is in {out / 'icai.log'}:\n"
                     + (done.stdout + done.stderr)[-3000:])
    finally:
        if stripper is not None:
            stripper.stop()
        server.stop()
    results = run / "results"
    summaries = json.loads((results / "030_distilled_principles_per_cluster.json").read_text())
    final = json.loads((results / "050_filtered_principles.json").read_text())
    index = {v: int(k) for k, v in summaries.items()}
    chosen = [index[p] for p in final if p in index]
    votes = _test_votes(results)
    labels = [p.preferred for p in train]
    fallback_right = sum(lab == "a" for lab in labels) >= len(labels) / 2  # the more common side is a
    correct = invalid = 0
    for i, p in enumerate(test):
        v = votes.get(i, {})
        s = sum(1 if v.get(j) is True else -1 if v.get(j) is False else 0 for j in chosen)
        invalid += sum(v.get(j) == "invalid" for j in chosen)  # Both, Neither, None: no vote
        correct += s > 0 or (s == 0 and (p.preferred == "a") == fallback_right)
    lo, hi = wilson(correct, len(test))
    seconds = round(time.perf_counter() - t0, 1)
    print(f"{args.set}: inverse-cai {len(final)} principles; held out {correct}/{len(test)} = "
          f"{correct / len(test):.3f} [{lo:.3f}, {hi:.3f}]; {seconds} s")
    for k, p in enumerate(final, 1):
        print(f"  {k}. {p}")
    print(json.dumps({"bench": "principles_icai", "set": args.set, "model": desc, "model_sha256": sha,
                      "principles": final, "test": {"accuracy": round(correct / len(test), 3),
                                                     "interval": [round(lo, 3), round(hi, 3)], "n": len(test)},
                      "invalid_votes": invalid, "seconds": seconds,
                      "fences_unwrapped": None if stripper is None else [stripper.unwrapped, stripper.replies]}))


if __name__ == "__main__":
    main()
